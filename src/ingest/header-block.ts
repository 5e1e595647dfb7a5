// header-block: how big a message's header is, read no further than a limit, before anything that
// parses the header whole (mailauth, whose parser slows with the square of its lines). Pure; input:
// untrusted bytes, in the pieces they arrived in.

export interface HeaderLimits {
  maxLines: number;
  maxBytes: number;
  /** DKIM-Signature and ARC-Message-Signature fields: each may ask for a hash of the whole body. */
  maxSignatures: number;
}

export interface HeaderBlock {
  /** Lines before the empty line that ends the header, each continuation line counted. */
  lines: number;
  /** Bytes up to and including that empty line (all of them when there is none). */
  bytes: number;
  /** DKIM-Signature and ARC-Message-Signature fields among them. */
  signatures: number;
  /** More lines, bytes or signatures than the limits allow; counting stopped there. */
  over: boolean;
}

/** A field's name as it may stand at the start of a line, before its colon (RFC 5322 4.5.3 allows blanks). */
const SIGNATURE_FIELD = /^(?:dkim-signature|arc-message-signature)[ \t]*:/i;
const NAME_BYTES = 32;

/**
 * Counts the header's lines, bytes and signature fields, stopping at the empty line (CRLF or bare LF)
 * that ends it or at the first line past a limit. A message with no empty line is all header.
 * @example headerBlock([Buffer.from('A: 1\r\nB: 2\r\n\r\nbody')], { maxLines: 10, maxBytes: 100, maxSignatures: 1 }) // { lines: 2, bytes: 14, signatures: 0, over: false }
 */
export function headerBlock(pieces: readonly Buffer[], limits: HeaderLimits): HeaderBlock {
  let lines = 0;
  let bytes = 0;
  let signatures = 0;
  // The current line so far (it may run over pieces): its length, its last byte and its first bytes.
  let lineLength = 0;
  let last = -1;
  let head = '';
  const result = (over: boolean): HeaderBlock => ({ lines, bytes, signatures, over });
  for (const piece of pieces) {
    let start = 0;
    while (start < piece.length) {
      const nl = piece.indexOf(0x0a, start);
      const end = nl === -1 ? piece.length : nl;
      if (end > start) last = piece[end - 1] as number;
      if (head.length < NAME_BYTES) head += piece.toString('latin1', start, Math.min(end, start + NAME_BYTES - head.length));
      lineLength += end - start;
      bytes += end - start;
      if (nl === -1) {
        if (bytes > limits.maxBytes) return result(true);
        break;
      }
      bytes++;
      if (lineLength === 0 || (lineLength === 1 && last === 0x0d)) return result(bytes > limits.maxBytes);
      lines++;
      if (SIGNATURE_FIELD.test(head)) signatures++;
      if (lines > limits.maxLines || bytes > limits.maxBytes || signatures > limits.maxSignatures) return result(true);
      lineLength = 0;
      last = -1;
      head = '';
      start = nl + 1;
    }
  }
  if (lineLength > 0) {
    lines++;
    if (SIGNATURE_FIELD.test(head)) signatures++;
  }
  return result(lines > limits.maxLines || bytes > limits.maxBytes || signatures > limits.maxSignatures);
}
