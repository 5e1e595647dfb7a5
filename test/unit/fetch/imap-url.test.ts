import { describe, expect, it } from 'vitest';
import { imapMessageUrl } from '../../../src/fetch/imap-url.js';

const place = { user: 'intake', host: 'imap.example.com', port: 993, mailbox: 'INBOX', uidValidity: 1795831900n, uid: 17 };

describe('imapMessageUrl', () => {
  it('names the server, user, folder, UIDVALIDITY and UID as RFC 5092 writes them', () => {
    expect(imapMessageUrl(place)).toBe('imap://intake@imap.example.com:993/INBOX;UIDVALIDITY=1795831900/;UID=17');
  });

  it('%-encodes what is not plain in the user and folder, keeping the folder levels', () => {
    expect(imapMessageUrl({ ...place, user: 'support@example.com', mailbox: 'Shared/Help desk;x' })).toBe(
      'imap://support%40example.com@imap.example.com:993/Shared/Help%20desk%3Bx;UIDVALIDITY=1795831900/;UID=17',
    );
  });

  it('brackets an IPv6 server and lower-cases a host name', () => {
    expect(imapMessageUrl({ ...place, host: '::1', port: 143 })).toBe('imap://intake@[::1]:143/INBOX;UIDVALIDITY=1795831900/;UID=17');
    expect(imapMessageUrl({ ...place, host: 'IMAP.Example.COM' })).toBe('imap://intake@imap.example.com:993/INBOX;UIDVALIDITY=1795831900/;UID=17');
  });

  it('gives another name under another UIDVALIDITY: the UIDs are another folder\'s', () => {
    expect(imapMessageUrl({ ...place, uidValidity: 1n })).not.toBe(imapMessageUrl(place));
  });
});
