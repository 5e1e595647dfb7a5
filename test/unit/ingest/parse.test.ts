// parseMessage: charsets, HTML-only bodies, signature parts, message ids, as handlers will see them.
import Encoding from 'encoding-japanese';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { messageIds, parseMessage, TextTooLongError } from '../../../src/ingest/parse.js';

const mail = (head: string, body: Buffer | string) => Buffer.concat([Buffer.from(`${head.replace(/\n/g, '\r\n')}\r\n\r\n`), Buffer.isBuffer(body) ? body : Buffer.from(body)]);

describe('parseMessage', () => {
  it('reads ISO-2022-JP text and encoded words', async () => {
    const jis = Buffer.from(Encoding.convert(Encoding.stringToCode('日本語の返信です'), { to: 'JIS', from: 'UNICODE' }));
    const parsed = await parseMessage(mail('From: a@b.example\nSubject: =?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=\nContent-Type: text/plain; charset=ISO-2022-JP', jis));
    expect(parsed.subject).toBe('日本語');
    expect(parsed.text.trim()).toBe('日本語の返信です');
  });

  it('reads 8-bit text without any charset as UTF-8 when it is, and as Windows-1252 otherwise', async () => {
    expect((await parseMessage(mail('From: a@b.example', Buffer.from('Grüße aus Köln\r\n', 'utf8')))).text.trim()).toBe('Grüße aus Köln');
    expect((await parseMessage(mail('From: a@b.example', Buffer.from([0x47, 0x72, 0xfc, 0xdf, 0x65, 0x20, 0x80, 0x0d, 0x0a])))).text.trim()).toBe('Grüße €');
  });

  it('reads Latin-1 bytes labelled utf-8, unknown-8bit or an unknown charset as Windows-1252, but keeps UTF-8 with one stray byte as UTF-8', async () => {
    const latin1 = Buffer.from('Grüße aus Köln\r\n', 'latin1');
    expect((await parseMessage(mail('From: a@b.example\nContent-Type: text/plain; charset=utf-8', latin1))).text.trim()).toBe('Grüße aus Köln');
    expect((await parseMessage(mail('From: a@b.example\nContent-Type: text/plain; charset=unknown-8bit', latin1))).text.trim()).toBe('Grüße aus Köln');
    expect((await parseMessage(mail('From: a@b.example\nContent-Type: text/plain; charset="x-no-such-charset"', latin1))).text.trim()).toBe('Grüße aus Köln');
    expect((await parseMessage(mail('From: a@b.example\nContent-Type: text/plain; charset="x-no-such-charset"', Buffer.from('Grüße aus Köln\r\n', 'utf8')))).text.trim()).toBe('Grüße aus Köln');
    expect((await parseMessage(mail('From: a@b.example\nContent-Type: text/plain; charset=us-ascii', latin1))).text.trim()).toBe('Grüße aus Köln');
  });

  it('believes a charset libmime knows, under any of its aliases, even with a byte it does not define', async () => {
    // 0x98 is undefined in Windows-1251 and 0xa1 in ISO-8859-6: each is one replacement character, and
    // the rest stays Russian or Arabic rather than becoming Windows-1252.
    const russian = Buffer.concat([iconv.encode('Привет, коллеги ', 'windows-1251'), Buffer.from([0x98, 0x0d, 0x0a])]);
    for (const label of ['windows-1251', 'x-cp1251', 'cp1251']) {
      expect((await parseMessage(mail(`From: a@b.example\nContent-Type: text/plain; charset=${label}`, russian))).text.trim(), label).toBe('Привет, коллеги \uFFFD');
    }
    const arabic = Buffer.concat([iconv.encode('مرحبا ', 'iso-8859-6'), Buffer.from([0xa1, 0x0d, 0x0a])]);
    expect((await parseMessage(mail('From: a@b.example\nContent-Type: text/plain; charset=iso-8859-6-i', arabic))).text.trim()).toBe('مرحبا \uFFFD');
    const stray = Buffer.concat([Buffer.from('Grüße – 日本語 ', 'utf8'), Buffer.from([0xa3]), Buffer.from('5\r\n')]);
    expect((await parseMessage(mail('From: a@b.example', stray))).text.trim()).toBe('Grüße – 日本語 \uFFFD5');
  });

  it('turns HTML-only mail into Markdown: typed Markdown kept, table rows as tab-separated lines, quotations as text (as GitLab), empty anchors unwrapped', async () => {
    const html = '<p>### Title and **bold** as typed</p><p><b>real bold</b></p><table><tr><th>Company</th><th>Contact</th><th>Country</th></tr><tr><td>A</td><td>B</td><td>C</td></tr></table><blockquote>quoted text</blockquote><p><a name="x">no brackets!</a></p>';
    const parsed = await parseMessage(mail('From: a@b.example\nContent-Type: text/html; charset=utf-8', html));
    expect(parsed.text).toBe('### Title and **bold** as typed\n\n**real bold**\n\nCompany\tContact\tCountry\nA\tB\tC\n\nquoted text\n\nno brackets!');
  });

  it('does not count S/MIME or PGP signatures as attachments, and keeps Content-IDs of inline parts', async () => {
    const raw = [
      'From: a@b.example', 'MIME-Version: 1.0', 'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary="s"', '', '--s',
      'Content-Type: multipart/related; boundary="r"', '', '--r', 'Content-Type: text/html', '', '<p>See <img src="cid:logo@x" alt="logo"></p>', '--r',
      'Content-Type: image/png; name="logo.png"', 'Content-ID: <logo@x>', 'Content-Disposition: inline; filename="logo.png"', 'Content-Transfer-Encoding: base64', '', 'iVBORw0KGgo=', '--r--',
      '--s', 'Content-Type: application/pkcs7-signature; name="smime.p7s"', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="smime.p7s"', '', 'AAAA', '--s--', '',
    ].join('\r\n');
    const parsed = await parseMessage(Buffer.from(raw));
    expect(parsed.attachments.map((a) => [a.filename, a.contentType, a.contentId])).toEqual([['logo.png', 'image/png', 'logo@x']]);
    expect(parsed.text).toBe('See ![logo](cid:logo@x)');
  });

  // Apple Mail marks attached files `inline`; mailparser alone would read their text as the body.
  it('takes a text part with a filename for a file, not for the body, whatever its disposition', async () => {
    const raw = [
      'From: a@b.example', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="m"', '', '--m',
      'Content-Type: text/html; charset=utf-8', '', '<p>The <b>log</b> is attached.</p>', '--m',
      'Content-Type: text/plain; name="server.log"', 'Content-Disposition: inline; filename="server.log"', '', '/close', 'ERROR widget squeaks', '--m',
      'Content-Type: text/plain; name="notes.txt"', '', 'a note', '--m',
      'Content-Type: text/html; name="report.html"', '', '<p>report</p>', '--m',
      'Content-Type: application/octet-stream', 'Content-Disposition: attachment; filename*=utf-8\'\'a%0A%0Ab%07.bin', '', 'x', '--m--', '',
    ].join('\r\n');
    const parsed = await parseMessage(Buffer.from(raw));
    expect(parsed.text).toBe('The **log** is attached.');
    expect(parsed.attachments.map((a) => [a.filename, a.contentType, Buffer.concat(a.content).toString()])).toEqual([
      ['server.log', 'text/plain', '/close\r\nERROR widget squeaks'],
      ['notes.txt', 'text/plain', 'a note'],
      ['report.html', 'text/html', '<p>report</p>'],
      ['a b .bin', 'application/octet-stream', 'x'],
    ]);
  });

  it('reads the HTML alternative when the text one is blank', async () => {
    const raw = ['From: a@b.example', 'MIME-Version: 1.0', 'Content-Type: multipart/alternative; boundary="a"', '', '--a', 'Content-Type: text/plain', '', '  ', '--a', 'Content-Type: text/html', '', '<p>The bearings fixed it.</p>', '--a--', ''].join('\r\n');
    expect((await parseMessage(Buffer.from(raw))).text).toBe('The bearings fixed it.');
  });

  it('keeps a top-level text with a name as the body', async () => {
    expect((await parseMessage(mail('From: a@b.example\nContent-Type: text/plain; name="reply.txt"', 'The reply.'))).text).toBe('The reply.');
  });

  it('keeps a forwarded message as a file even when it is marked inline, never as the sender\'s text', async () => {
    const raw = [
      'From: a@b.example', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="m"', '', '--m',
      'Content-Type: text/plain', '', 'Forwarding the complaint.', '--m',
      'Content-Type: message/rfc822; name="complaint.eml"', 'Content-Disposition: inline; filename="complaint.eml"', '',
      'From: c@customer.example', 'Subject: Broken', '', '/close', 'It broke.', '--m',
      'Content-Type: message/rfc822', 'Content-Disposition: inline', '', 'From: d@customer.example', '', 'Me too.', '--m--', '',
    ].join('\r\n');
    const parsed = await parseMessage(Buffer.from(raw));
    expect(parsed.text).toBe('Forwarding the complaint.');
    expect(parsed.attachments.map((a) => [a.filename, a.contentType])).toEqual([
      ['complaint.eml', 'message/rfc822'],
      ['message.eml', 'message/rfc822'],
    ]);
    expect(Buffer.concat(parsed.attachments[0]!.content).toString()).toContain('It broke.');
  });

  it('reads Sender, To, Cc, In-Reply-To and References, including comma-joined and quoted References', async () => {
    const parsed = await parseMessage(
      mail('From: A <a@b.example>\nSender: S <s@b.example>\nReply-To: r@b.example\nTo: x@y.example, "Z" <z@y.example>\nCc: c@y.example\nMessage-ID: <m1@b.example>\nIn-Reply-To: <p@y.example>\nReferences: "<r1@y.example>,<r2@y.example>" <r3@y.example>', 'hi'),
    );
    expect(parsed).toMatchObject({ from: 'a@b.example', replyTo: 'r@b.example', sender: 's@b.example', to: ['x@y.example', 'z@y.example'], cc: ['c@y.example'], messageId: 'm1@b.example', inReplyTo: ['p@y.example'], references: ['r1@y.example', 'r2@y.example', 'r3@y.example'] });
  });

  it('keeps the first 20 and the last 80 References (a notification\'s own id, the nearest ancestors) and the first 100 In-Reply-To ids', async () => {
    // More than SQLite's 32,766 parameters, which one lookup of them all exceeded.
    const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `<${prefix}${i}@y>`).join(' ');
    const parsed = await parseMessage(mail(`From: a@b.example\nIn-Reply-To: ${ids('p', 300)}\nReferences: ${ids('r', 40_000)}`, 'hi'));
    expect(parsed.references).toHaveLength(100);
    expect([parsed.references[0], parsed.references[19], parsed.references[20], parsed.references.at(-1)]).toEqual(['r0@y', 'r19@y', 'r39920@y', 'r39999@y']);
    expect([parsed.inReplyTo.length, parsed.inReplyTo[0]]).toEqual([100, 'p0@y']);
  });

  it('reads a part whose Content-Type names no type as a file of unknown type, never failing on it', async () => {
    // mailsplit gives such a part no type at all (false); with no name it once threw inside mailparser's
    // own callback, which nothing could catch, and ended the writer thread.
    for (const header of ['Content-Type:', 'Content-Type: ; name="notes.txt"', 'Content-Type: (a comment)', 'Content-Type: ;']) {
      const raw = mail(`From: a@b.example\nContent-Type: multipart/mixed; boundary=b`, `--b\r\nContent-Type: text/plain\r\n\r\nThe reply.\r\n--b\r\n${header}\r\nContent-Disposition: attachment\r\n\r\nSome bytes.\r\n--b--\r\n`);
      const parsed = await parseMessage(raw);
      expect(parsed.text.trim(), header).toBe('The reply.');
      expect(parsed.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, size: a.size })), header).toEqual([
        { filename: header.includes('notes.txt') ? 'notes.txt' : 'attachment', contentType: 'application/octet-stream', size: 11 },
      ]);
    }
  });

  it('drops NUL characters from the text', async () => {
    expect((await parseMessage(mail('From: a@b.example\nContent-Type: text/plain; charset=utf-8', Buffer.from([0x61, 0x00, 0x62])))).text).toBe('ab');
  });
});

describe('messageIds', () => {
  it('takes ids between angle brackets, or a bare id', () => {
    expect(messageIds(['<a@b> <c@d>,<e@f>', 'bare@id', 'not an id'])).toEqual(['a@b', 'c@d', 'e@f', 'bare@id']);
  });
});

describe('parseMessage on large content', () => {
  const withFile = (file: Buffer) =>
    mail(
      'From: a@b.example\nMessage-ID: <file@b.example>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"',
      `--b\r\nContent-Type: text/plain\r\n\r\nSee the file.\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="f.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n${file.toString('base64').replace(/(.{76})/g, '$1\r\n')}\r\n--b--\r\n`,
    );

  it('reads an attachment in pieces that join to the file, from a message given in pieces', async () => {
    const file = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 31) % 251));
    const raw = withFile(file);
    const pieces = [raw.subarray(0, 1000), raw.subarray(1000, 150_000), raw.subarray(150_000)];
    const [attachment] = (await parseMessage(pieces)).attachments;
    expect(attachment?.size).toBe(file.length);
    expect(Buffer.concat(attachment?.content ?? []).equals(file)).toBe(true);
  });

  it('keeps the size but not the content of an attachment over the limit', async () => {
    const [attachment] = (await parseMessage(withFile(Buffer.alloc(5000, 1)), { maxAttachmentBytes: 4000 })).attachments;
    expect(attachment).toMatchObject({ filename: 'f.bin', size: 5000, content: [] });
  });

  it('refuses text over 1,000,000 characters, keeping what the headers say', async () => {
    const error = await parseMessage(mail('From: a@b.example\nSubject: big\nMessage-ID: <big@b.example>', `${'y'.repeat(1_000_001)}\r\n`)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TextTooLongError);
    expect((error as TextTooLongError).message).toBe('1000002 characters of text; items hold at most 1000000 characters');
    expect((error as TextTooLongError).headersOnly).toMatchObject({ messageId: 'big@b.example', subject: 'big', from: 'a@b.example', text: '' });
  });
});

describe('parseMessage on a large message with blank lines before its headers', () => {
  it('reads the headers as headers, so a large attachment is not taken for text', async () => {
    const file = Buffer.alloc(3 * 1024 * 1024, 7);
    const raw = Buffer.concat([
      Buffer.from('\r\n'),
      mail(
        'From: a@b.example\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"',
        `--b\r\nContent-Type: text/plain\r\n\r\nSee the file.\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="f.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n${file.toString('base64').replace(/(.{76})/g, '$1\r\n')}\r\n--b--\r\n`,
      ),
    ]);
    const parsed = await parseMessage(raw);
    expect(parsed.text.trim()).toBe('See the file.');
    expect(parsed.attachments.map((a) => a.size)).toEqual([file.length]);
  });
});
