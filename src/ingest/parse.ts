// parse: reads a raw message with mailparser into the few fields intake uses.
// Input: untrusted bytes from any ingress. Side effects: none.
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import type { ParsedMessage } from '../handlers/handler.js';

export type { ParsedMessage };

export class UnparsableMessageError extends Error {
  override name = 'UnparsableMessageError';
}

/** Parses a message; throws UnparsableMessageError for what mailparser cannot read. */
export async function parseMessage(raw: Buffer): Promise<ParsedMessage> {
  let mail: ParsedMail;
  try {
    mail = await simpleParser(raw, {
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
    text: mail.text ?? '',
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
