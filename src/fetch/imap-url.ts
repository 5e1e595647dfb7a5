// imap-url: the name of one message in an IMAP folder, as `inbound_messages.fetched_from` keeps it: an
// IMAP URL (RFC 5092) with the folder's UIDVALIDITY, under which a UID names one message for ever. Pure.

export interface ImapMessagePlace {
  user: string;
  host: string;
  port: number;
  mailbox: string;
  uidValidity: bigint | number;
  uid: number;
}

/**
 * @example imapMessageUrl({ user: 'intake', host: 'imap.example.com', port: 993, mailbox: 'INBOX', uidValidity: 1795831900n, uid: 17 })
 * // 'imap://intake@imap.example.com:993/INBOX;UIDVALIDITY=1795831900/;UID=17'
 */
export function imapMessageUrl(place: ImapMessagePlace): string {
  // A folder's levels keep their `/`; everything else that is not plain is %-encoded (RFC 5092 `achar`).
  const mailbox = place.mailbox.split('/').map(encodeURIComponent).join('/');
  const host = place.host.includes(':') ? `[${place.host}]` : place.host.toLowerCase();
  return `imap://${encodeURIComponent(place.user)}@${host}:${place.port}/${mailbox};UIDVALIDITY=${place.uidValidity}/;UID=${place.uid}`;
}
