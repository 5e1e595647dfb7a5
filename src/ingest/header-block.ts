// header-block: how big a message's header is, read no further than a limit, before anything that
// parses the header whole (mailauth, whose parser slows with the square of its lines). Pure; input:
// untrusted bytes, in the pieces they arrived in.

export interface HeaderLimits {
  maxLines: number;
  maxBytes: number;
}

export interface HeaderBlock {
  /** Lines before the empty line that ends the header, each continuation line counted. */
  lines: number;
  /** Bytes up to and including that empty line (all of them when there is none). */
  bytes: number;
  /** More lines or bytes than the limits allow; counting stopped there. */
  over: boolean;
}

/**
 * Counts the header's lines and bytes, stopping at the empty line (CRLF or bare LF) that ends it or
 * at the first line past either limit. A message with no empty line is all header.
 * @example headerBlock([Buffer.from('A: 1\r\nB: 2\r\n\r\nbody')], { maxLines: 10, maxBytes: 100 }) // { lines: 2, bytes: 14, over: false }
 */
export function headerBlock(pieces: readonly Buffer[], limits: HeaderLimits): HeaderBlock {
  let lines = 0;
  let bytes = 0;
  // The current line so far (it may run over pieces): its length, and its last byte.
  let lineLength = 0;
  let last = -1;
  for (const piece of pieces) {
    let start = 0;
    while (start < piece.length) {
      const nl = piece.indexOf(0x0a, start);
      const end = nl === -1 ? piece.length : nl;
      if (end > start) last = piece[end - 1] as number;
      lineLength += end - start;
      bytes += end - start;
      if (nl === -1) {
        if (bytes > limits.maxBytes) return { lines, bytes, over: true };
        break;
      }
      bytes++;
      if (lineLength === 0 || (lineLength === 1 && last === 0x0d)) return { lines, bytes, over: bytes > limits.maxBytes };
      lines++;
      if (lines > limits.maxLines || bytes > limits.maxBytes) return { lines, bytes, over: true };
      lineLength = 0;
      last = -1;
      start = nl + 1;
    }
  }
  if (lineLength > 0) lines++;
  return { lines, bytes, over: lines > limits.maxLines || bytes > limits.maxBytes };
}
