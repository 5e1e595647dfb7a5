// text-size: how much text an item may hold, and a check of a large message's text parts against it
// that reads only the MIME structure and sizes (mailsplit), so mailparser never decodes a text part
// that would be refused anyway. Input: untrusted bytes. Side effects: none.
import { finished } from 'node:stream/promises';
import { Splitter } from '@zone-eu/mailsplit';
import { garbageCollector } from './memory.js';

export const TEXT_LIMITS = {
  /** GitLab refuses a note over 1,000,000 characters ("Note is too long"); intake holds every item to it. */
  characters: 1_000_000,
  /**
   * A text/plain part larger than this as sent is refused before it is decoded: 4 bytes per character
   * (UTF-8's most), so text that fits is refused for its bytes only when its encoding inflates it.
   */
  bytes: 4 * 1_000_000,
  /** Likewise for a text/html part (Markdown is much shorter than its HTML); mailparser's maxHtmlLengthToParse. */
  htmlBytes: 10 * 1024 * 1024,
} as const;

const TEXT_TYPES = new Set(['text/plain', 'text/html']);

/**
 * Why the message's text cannot be stored without decoding it (a text part larger than the limits as
 * sent), or null. Reads the message once, keeping nothing but a byte count per MIME part.
 */
export async function oversizedTextPart(pieces: readonly Buffer[]): Promise<string | null> {
  const sizes = new Map<object, { contentType: string; textual: boolean; bytes: number }>();
  const splitter = new Splitter({ ignoreEmbedded: true });
  splitter.on('data', (data: { type: string; node?: MimeNodeShape; value?: Buffer }) => {
    if (data.type === 'node') {
      const node = data as unknown as MimeNodeShape;
      // mailparser's rule: a text type without a disposition, or `inline`, is text (the root defaults to
      // text/plain); and parse.ts's: a part with a name, but the root, is a file whatever its disposition.
      const contentType = node.contentType || (node.root ? 'text/plain' : '');
      const named = Boolean(node.filename) && !node.root;
      const textual = !node.multipart && !named && TEXT_TYPES.has(contentType) && (!node.disposition || node.disposition === 'inline');
      sizes.set(node, { contentType, textual, bytes: 0 });
    } else if (data.type === 'body' && data.node && data.value) {
      const entry = sizes.get(data.node);
      if (entry) entry.bytes += data.value.length;
    }
  });
  const collect = garbageCollector();
  for (const piece of pieces) {
    splitter.write(piece);
    collect(piece.length);
  }
  splitter.end();
  try {
    await finished(splitter);
  } catch {
    // mailparser meets the same problem and says what it is.
    return null;
  }
  for (const { contentType, textual, bytes } of sizes.values()) {
    if (!textual) continue;
    const limit = contentType === 'text/html' ? TEXT_LIMITS.htmlBytes : TEXT_LIMITS.bytes;
    if (bytes > limit) return `a ${contentType} part of ${bytes} bytes; text parts are read up to ${limit} bytes`;
  }
  return null;
}

interface MimeNodeShape {
  type: 'node';
  root: boolean;
  multipart: string | false;
  contentType: string | false;
  disposition: string | false;
  filename: string | false;
}
