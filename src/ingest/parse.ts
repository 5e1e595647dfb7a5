// parse: reads a raw message with mailparser into the few fields intake uses.
// Input: untrusted bytes from any ingress. Side effects: none.
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
  return {
    messageId: mail.messageId ?? null,
    subject: mail.subject ?? null,
    from: firstAddress(mail.from),
    replyTo: firstAddress(mail.replyTo),
    text: mail.text ?? (typeof mail.html === 'string' ? htmlToMarkdown(mail.html) : orphanBody(raw, mail)),
    attachments: mail.attachments.map((a) => ({
      filename: a.filename ?? 'attachment',
      contentType: a.contentType,
      content: a.content,
    })),
    header: (name) => headerValues.get(name.toLowerCase()) ?? [],
  };
}

function firstAddress(field: AddressObject | AddressObject[] | undefined): string | null {
  const objects = Array.isArray(field) ? field : field ? [field] : [];
  for (const object of objects) {
    for (const entry of object.value) {
      if (entry.address) return entry.address;
      for (const member of entry.group ?? []) if (member.address) return member.address;
    }
  }
  return null;
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
