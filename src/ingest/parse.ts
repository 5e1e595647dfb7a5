// parse: reads a raw message with mailparser into the few fields intake uses.
// Input: untrusted bytes from any ingress. Side effects: none.
import iconv from 'iconv-lite';
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import type { ParsedMessage } from '../handlers/handler.js';
import { htmlToMarkdown } from '../text/html-to-markdown.js';

export type { ParsedMessage };

export class UnparsableMessageError extends Error {
  override name = 'UnparsableMessageError';
}

/** Parses a message; throws UnparsableMessageError for what mailparser cannot read. */
export async function parseMessage(raw: Buffer): Promise<ParsedMessage> {
  let mail: ParsedMail;
  try {
    // Some clients (and some fixtures) put empty lines before the first header; without this the whole
    // message would be read as body.
    let start = 0;
    while (raw[start] === 0x0a || (raw[start] === 0x0d && raw[start + 1] === 0x0a)) start += raw[start] === 0x0d ? 2 : 1;
    mail = await simpleParser(start > 0 ? raw.subarray(start) : raw, {
      skipTextToHtml: true,
      // HTML-only mail is turned into Markdown by html-to-markdown.ts, not into mailparser's plain text.
      skipHtmlToText: true,
      skipImageLinks: true,
      maxHtmlLengthToParse: 10 * 1024 * 1024,
    });
  } catch (error) {
    throw new UnparsableMessageError((error as Error).message);
  }
  const headerValues = new Map<string, string[]>();
  for (const { key, line } of mail.headerLines) {
    const colon = line.indexOf(':');
    const value = (colon === -1 ? '' : line.slice(colon + 1)).replace(/\r?\n[ \t]+/g, ' ').trim();
    const list = headerValues.get(key);
    if (list) list.push(value);
    else headerValues.set(key, [value]);
  }
  const header = (name: string) => headerValues.get(name.toLowerCase()) ?? [];
  return {
    messageId: messageIds(header('message-id'))[0] ?? null,
    subject: mail.subject ?? null,
    from: addresses(mail.from)[0] ?? null,
    replyTo: addresses(mail.replyTo)[0] ?? null,
    to: addresses(mail.to),
    cc: addresses(mail.cc),
    inReplyTo: messageIds(header('in-reply-to')),
    references: messageIds(header('references')),
    // NUL cannot be typed and ends a string in sqlite3's output, hiding the rest of a note.
    text: undeclaredCharset(raw, mail, mail.text || (typeof mail.html === 'string' ? htmlToMarkdown(mail.html) : orphanBody(raw, mail))).replaceAll('\u0000', ''),
    attachments: mail.attachments
      .filter((a) => !SIGNATURE_TYPES.has(a.contentType.toLowerCase()))
      .map((a) => ({
        filename: a.filename ?? 'attachment',
        contentType: a.contentType,
        content: a.content,
        contentId: a.contentId ? a.contentId.replace(/^<|>$/g, '') : null,
      })),
    header,
  };
}

/** S/MIME and PGP signatures sign the message; they are not files the sender attached. */
const SIGNATURE_TYPES = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature', 'application/pgp-signature']);

/**
 * Message ids in header values, without angle brackets. Like GitLab, ids are whatever sits between
 * < and >, so comma-joined References from Exchange and iOS are read too.
 */
export function messageIds(values: string[]): string[] {
  const ids: string[] = [];
  for (const value of values) {
    const found = value.match(/<([^<>\s]+)>/g);
    if (found) for (const id of found) ids.push(id.slice(1, -1));
    else if (value.trim() && !/[\s<>]/.test(value.trim())) ids.push(value.trim());
  }
  return ids;
}

function addresses(field: AddressObject | AddressObject[] | undefined): string[] {
  const found: string[] = [];
  for (const object of Array.isArray(field) ? field : field ? [field] : []) {
    for (const entry of object.value) {
      if (entry.address) found.push(entry.address);
      for (const member of entry.group ?? []) if (member.address) found.push(member.address);
    }
  }
  return found;
}

/**
 * A single-part message with 8-bit text and no charset at all is read as UTF-8 when it is valid UTF-8
 * and as Windows-1252 (what such mail almost always is) otherwise, instead of replacement characters.
 */
function undeclaredCharset(raw: Buffer, mail: ParsedMail, text: string): string {
  if (!text.includes('\uFFFD')) return text;
  const contentType = mail.headers.get('content-type') as { value?: string; params?: Record<string, string> } | undefined;
  if (contentType?.params?.charset || (contentType?.value && !/^text\/plain$/i.test(contentType.value))) return text;
  const encoding = String(mail.headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  if (encoding !== '7bit' && encoding !== '8bit' && encoding !== 'binary') return text;
  const start = headerEnd(raw);
  return start === -1 ? text : iconv.decode(raw.subarray(start), 'windows-1252').replace(/\r\n/g, '\n');
}

function headerEnd(raw: Buffer): number {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  if (crlf === -1 && lf === -1) return -1;
  if (crlf === -1 || (lf !== -1 && lf < crlf)) return lf + 2;
  return crlf + 4;
}

/**
 * A message that declares multipart but has no parts (some phone clients send this) leaves mailparser
 * with only a preamble, which it drops; like the Mail gem, take the body after the headers as text.
 */
function orphanBody(raw: Buffer, mail: ParsedMail): string {
  if (mail.attachments.length > 0) return '';
  const text = raw.toString('utf8');
  const match = /\r?\n\r?\n/.exec(text.replace(/^(\r?\n)+/, ''));
  if (!match) return '';
  const body = text.replace(/^(\r?\n)+/, '').slice(match.index + match[0].length);
  return /^--\S/m.test(body) ? '' : body;
}
