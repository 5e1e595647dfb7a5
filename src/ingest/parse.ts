// parse: reads a raw message with mailparser's streaming parser into the few fields intake uses.
// Attachments are read in pieces and never joined, and text that could never be stored is refused
// before it is decoded, so a large message is held about once. Input: untrusted bytes. Side effects: none.
import iconv from 'iconv-lite';
import libmime from 'libmime';
import { MailParser, type AddressObject, type AttachmentStream, type HeaderLines, type Headers, type MessageText } from 'mailparser';
import { CHUNK_BYTES } from '../db/chunks.js';
import type { ParsedAttachment, ParsedMessage } from '../handlers/handler.js';
import { htmlToMarkdown } from '../text/html-to-markdown.js';
import { garbageCollector } from './memory.js';
import { oversizedTextPart, TEXT_LIMITS } from './text-size.js';

export type { ParsedMessage };

export class UnparsableMessageError extends Error {
  override name = 'UnparsableMessageError';
}

/** The message's text is longer than any item may be: refused, not cut (see text-size.ts). */
export class TextTooLongError extends Error {
  override name = 'TextTooLongError';
  constructor(
    message: string,
    /** The message with its headers read and no text, for the record of the refusal. */
    readonly headersOnly: ParsedMessage,
  ) {
    super(message);
  }
}

/** A message as it was received: one buffer, or the pieces it arrived in (never joined when large). */
export type RawMessage = Buffer | readonly Buffer[];

/** The size of the pieces a large message is stored in: an ingress that cuts it so saves a copy. */
export const RAW_PIECE_BYTES = CHUNK_BYTES;

export function rawPieces(raw: RawMessage): readonly Buffer[] {
  return Buffer.isBuffer(raw) ? [raw] : raw;
}

export function rawSize(raw: RawMessage): number {
  return rawPieces(raw).reduce((sum, piece) => sum + piece.length, 0);
}

const FEED_BYTES = 64 * 1024;

/**
 * In-Reply-To's first ids, and References' first and last ones (a notification's own, and the nearest
 * ancestors), are kept: a thread is found by them, and 40,000 ids in one lookup passed SQLite's limit
 * on parameters.
 */
export const MAX_MESSAGE_IDS = 100;

/** References: the first 20 (a notification's `<reply-KEY@HOST>` goes first) and the last 80 ids. */
function firstAndLast(ids: string[]): string[] {
  return ids.length <= MAX_MESSAGE_IDS ? ids : [...ids.slice(0, 20), ...ids.slice(-(MAX_MESSAGE_IDS - 20))];
}

/** Pieces above this are checked for oversized text before mailparser decodes them. */
const PRESCAN_BYTES = 1024 * 1024;

/**
 * Parses a message; throws UnparsableMessageError for what mailparser cannot read, and
 * TextTooLongError for a text part longer than an item may be. Attachments over maxAttachmentBytes
 * keep their size and lose their content (they will not be stored).
 */
export async function parseMessage(raw: RawMessage, options: { maxAttachmentBytes?: number } = {}): Promise<ParsedMessage> {
  const pieces = withoutLeadingEmptyLines(rawPieces(raw));
  const size = rawSize(raw);
  const oversized = size > PRESCAN_BYTES ? await oversizedTextPart(pieces) : null;
  let mail: StreamedMail;
  try {
    mail = await readStream(pieces, options.maxAttachmentBytes ?? Number.POSITIVE_INFINITY, { headersOnly: oversized !== null });
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
  const addressField = (name: string) => mail.headers.get(name) as AddressObject | AddressObject[] | undefined;
  const subject = mail.headers.get('subject');
  const parsed = (text: string, attachments: ParsedAttachment[]): ParsedMessage => ({
    messageId: messageIds(header('message-id'))[0] ?? null,
    subject: typeof subject === 'string' ? subject : null,
    from: addresses(addressField('from'))[0] ?? null,
    replyTo: addresses(addressField('reply-to'))[0] ?? null,
    sender: addresses(addressField('sender'))[0] ?? null,
    to: addresses(addressField('to')),
    cc: addresses(addressField('cc')),
    inReplyTo: messageIds(header('in-reply-to')).slice(0, MAX_MESSAGE_IDS),
    references: firstAndLast(messageIds(header('references'))),
    text,
    attachments,
    header,
  });
  if (oversized) throw new TextTooLongError(oversized, parsed('', []));
  // The fallbacks read the body again, which only small messages ever need.
  const whole = () => (size <= TEXT_LIMITS.bytes ? Buffer.concat(pieces as Buffer[]) : null);
  // A blank text/plain alternative next to real HTML (some clients send one) is not the message.
  const text = mail.text?.trim() ? mail.text : typeof mail.html === 'string' ? htmlToMarkdown(mail.html) : mail.text || orphanBody(whole, mail);
  // NUL cannot be typed and ends a string in sqlite3's output, hiding the rest of a note.
  const decoded = undeclaredCharset(whole, mail, text).replaceAll('\u0000', '');
  if (decoded.length > TEXT_LIMITS.characters) {
    throw new TextTooLongError(`${decoded.length} characters of text; items hold at most ${TEXT_LIMITS.characters} characters`, parsed('', []));
  }
  return parsed(decoded, mail.attachments.filter((a) => !SIGNATURE_TYPES.has(a.contentType.toLowerCase())));
}

/**
 * Some clients (and some fixtures) put empty lines before the first header; read as they come, the
 * whole message would be body (mailparser), or header (mailauth).
 */
export function withoutLeadingEmptyLines(pieces: readonly Buffer[]): readonly Buffer[] {
  const first = pieces[0] ?? Buffer.alloc(0);
  let start = 0;
  while (first[start] === 0x0a || (first[start] === 0x0d && first[start + 1] === 0x0a)) start += first[start] === 0x0d ? 2 : 1;
  return start > 0 ? [first.subarray(start), ...pieces.slice(1)] : pieces;
}

/**
 * Who the message says wrote it, read from its header as parseMessage reads it: every address of
 * From (a group's members too), and Sender's. Throws UnparsableMessageError as parseMessage does.
 */
export async function readAuthors(raw: RawMessage): Promise<{ from: string[]; sender: string | null }> {
  let mail: StreamedMail;
  try {
    mail = await readStream(withoutLeadingEmptyLines(rawPieces(raw)), 0, { headersOnly: true });
  } catch (error) {
    throw new UnparsableMessageError((error as Error).message);
  }
  const field = (name: string) => mail.headers.get(name) as AddressObject | AddressObject[] | undefined;
  return { from: addresses(field('from')), sender: addresses(field('sender'))[0] ?? null };
}

interface StreamedMail {
  headers: Headers;
  headerLines: HeaderLines;
  text?: string;
  html?: string;
  attachments: ParsedAttachment[];
}

/**
 * Drives mailparser's streaming parser: the text comes at the end, each attachment as a stream read
 * into pieces (or only counted, past maxAttachmentBytes). Rejects with the first error, as
 * simpleParser does.
 */
function readStream(pieces: readonly Buffer[], maxAttachmentBytes: number, options: { headersOnly: boolean }): Promise<StreamedMail> {
  return new Promise((resolve, reject) => {
    const mail: StreamedMail = { headers: new Map(), headerLines: [], attachments: [] };
    const collect = garbageCollector();
    // mailparser's own checksum is not used: attachments are hashed (sha256) when stored.
    // ignoreEmbedded: a forwarded message (message/rfc822) is a file, even marked inline; unpacked,
    // a third party's text would become the sender's, its commands included.
    const parser = new FileAwareMailParser({ skipTextToHtml: true, skipHtmlToText: true, skipImageLinks: true, maxHtmlLengthToParse: TEXT_LIMITS.htmlBytes, checksumAlgo: false, ignoreEmbedded: true } as ConstructorParameters<typeof MailParser>[0]);
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      parser.destroy();
      reject(error);
    };
    parser.on('error', fail);
    parser.on('headers', (headers: Headers) => {
      mail.headers = headers;
      mail.headerLines = parser.headerLines || [];
      if (!options.headersOnly) return;
      settled = true;
      parser.destroy();
      resolve(mail);
    });
    parser.on('data', (data: AttachmentStream | MessageText) => {
      // mailparser emits from a callback of its own: what this throws would end the thread uncaught.
      try {
        take(data);
      } catch (error) {
        fail(error as Error);
      }
    });
    const take = (data: AttachmentStream | MessageText) => {
      if (data.type === 'text') {
        mail.text = data.text;
        mail.html = typeof data.html === 'string' ? data.html : undefined;
        return;
      }
      // A part whose Content-Type names no type (`Content-Type:`, `; name=x`) has none at all (false).
      const contentType = (data.contentType as string | false | undefined) || UNKNOWN_TYPE;
      const attachment: ParsedAttachment = {
        filename: fileName(data.filename, contentType),
        contentType,
        size: 0,
        content: [],
        contentId: data.contentId ? data.contentId.replace(/^<|>$/g, '') : null,
      };
      mail.attachments.push(attachment);
      const kept: Buffer[] = [];
      data.content.on('data', (chunk: Buffer) => {
        attachment.size += chunk.length;
        collect(chunk.length);
        if (attachment.size <= maxAttachmentBytes) kept.push(chunk);
        else kept.length = 0;
      });
      data.content.on('end', () => {
        attachment.content = kept;
        data.release?.();
      });
      data.content.on('error', fail);
    };
    parser.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(mail);
    });
    // In 64 KB views: mailparser turns what it is given into strings, and a string over 1 MB lives
    // outside V8's young generation, where it outlasts the collections that free the rest.
    for (const piece of pieces) for (let at = 0; at < piece.length && !settled; at += FEED_BYTES) parser.write(piece.subarray(at, at + FEED_BYTES));
    if (!settled) parser.end();
  });
}

/**
 * A file's name as it can be shown and linked: control characters (an encoded line break would end
 * the Markdown link) become spaces; a forwarded message without a name is `message.eml`.
 */
function fileName(given: string | undefined, contentType: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is being removed
  const name = (given ?? '').replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return name || (contentType.toLowerCase() === 'message/rfc822' ? 'message.eml' : 'attachment');
}

/** What mailparser's createNode needs of a mailsplit node, and decides about it. */
interface SplitNode {
  root?: boolean;
  filename?: string | false;
}
interface ParserNode {
  disposition?: string;
  isAttachment?: boolean;
}
const createNode = (MailParser.prototype as unknown as { createNode?: (node: SplitNode) => ParserNode }).createNode;
if (typeof createNode !== 'function') throw new Error('mailparser no longer has createNode(): parse.ts must be updated');

/**
 * mailparser reads every text/plain and text/html part not marked `attachment` as body text, and
 * joins them; Apple Mail sends attached files as `inline` with a filename. Here a part with a
 * filename is a file, as in GitLab (Mail's attachment?): stored and linked, its text never taken for
 * the sender's words or commands. The message's own top-level text stays its body.
 */
class FileAwareMailParser extends MailParser {
  createNode(node: SplitNode): ParserNode {
    const made = createNode!.call(this, node);
    if (made.isAttachment === false && node.filename && !node.root) {
      made.disposition = 'attachment';
      made.isAttachment = true;
    }
    return made;
  }
}

/** The type of a file whose part names none (RFC 2046: bytes of no known kind). */
const UNKNOWN_TYPE = 'application/octet-stream';

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
 * A single-part message with 8-bit text and no charset it can be read in (none, `unknown-8bit`, one no
 * decoder knows, or `utf-8` or `us-ascii` that is not) is read as Windows-1252 (what such mail almost
 * always is) instead of with replacement characters, unless it is mostly UTF-8 with a stray byte: then
 * only that byte is lost.
 */
function undeclaredCharset(whole: () => Buffer | null, mail: StreamedMail, text: string): string {
  if (!text.includes('\uFFFD')) return text;
  const contentType = mail.headers.get('content-type') as { value?: string; params?: Record<string, string> } | undefined;
  if (contentType?.value && !/^text\/plain$/i.test(contentType.value)) return text;
  // Re-read from the raw body, flowed text would lose its joined lines: left as mailparser read it.
  if (contentType?.params?.format?.toLowerCase() === 'flowed') return text;
  if (!readAsUtf8(contentType?.params?.charset ?? '')) return text;
  const encoding = String(mail.headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  if (encoding !== '7bit' && encoding !== '8bit' && encoding !== 'binary') return text;
  const raw = whole();
  const start = raw ? headerEnd(raw) : -1;
  if (!raw || start === -1) return text;
  const body = raw.subarray(start);
  const asUtf8 = body.toString('utf8');
  let invalid = 0;
  let wide = 0;
  for (const character of asUtf8) {
    if (character === '\uFFFD') invalid++;
    else if (character.charCodeAt(0) > 0x7f) wide++;
  }
  return wide > invalid ? text : iconv.decode(body, 'windows-1252').replace(/\r\n/g, '\n');
}

/**
 * Whether mailparser read text in this charset as UTF-8, as it does for none, `utf-8` and `us-ascii`
 * (handed to no decoder), and for a label libmime does not know (`unknown-8bit`, `x-no-such-charset`)
 * or refuses (UTF-7). libmime itself is asked, as mailparser asks it: it resolves aliases
 * (`x-cp1251`, `iso-8859-6-i`) that iconv-lite alone does not know.
 */
function readAsUtf8(charset: string): boolean {
  if (['', 'ascii', 'usascii', 'utf8'].includes(charset.toLowerCase().replace(/[^a-z0-9]/g, ''))) return true;
  const decoder = libmime.createDecodeStream(charset);
  return !decoder.supported || /^utf-?8$/i.test(decoder.charset);
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
function orphanBody(whole: () => Buffer | null, mail: StreamedMail): string {
  if (mail.attachments.length > 0) return '';
  const raw = whole();
  if (!raw) return '';
  const text = raw.toString('utf8');
  const match = /\r?\n\r?\n/.exec(text.replace(/^(\r?\n)+/, ''));
  if (!match) return '';
  const body = text.replace(/^(\r?\n)+/, '').slice(match.index + match[0].length);
  return /^--\S/m.test(body) ? '' : body;
}
