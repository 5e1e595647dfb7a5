// header-block: how big a message's header is, read no further than a limit, before anything that
// parses the header whole (mailauth, whose parser slows with the square of its lines). Pure; input:
// untrusted bytes, in the pieces they arrived in.

export interface HeaderLimits {
  maxLines: number;
  maxBytes: number;
  /** DKIM-Signature and ARC-Message-Signature fields: each may ask for a hash of the whole body. */
  maxSignatures: number;
  /** The largest From or Sender field (its lines together): every address in it is parsed, some parsers slower than linearly. */
  maxAuthorFieldBytes: number;
  /** DKIM-Signature and ARC fields together: a signature's `h=` list is matched against every header. */
  maxSignatureBytes: number;
  /** Colons in DKIM-Signature and ARC-Message-Signature fields: about one per name in `h=`, each matched against every field. */
  maxSignatureColons: number;
}

export interface HeaderBlock {
  /** Lines before the empty line that ends the header, each continuation line counted. */
  lines: number;
  /** Bytes up to and including that empty line (all of them when there is none). */
  bytes: number;
  /** DKIM-Signature and ARC-Message-Signature fields among them. */
  signatures: number;
  /** The largest From or Sender field, in bytes, its line ends included. */
  authorFieldBytes: number;
  /** DKIM-Signature, ARC-Message-Signature, ARC-Seal and ARC-Authentication-Results fields, in bytes. */
  signatureBytes: number;
  /** Colons in the DKIM-Signature and ARC-Message-Signature fields. */
  signatureColons: number;
  /** From fields (RFC 5322 allows one). */
  fromFields: number;
  /** Past a limit; counting stopped there. */
  over: boolean;
}

// A field's name as it may stand at the start of a line, before its colon (RFC 5322 4.5.3 allows blanks).
const SIGNATURE = /^(?:dkim-signature|arc-message-signature)[ \t]*:/i;
const AUTHENTICATION = /^(?:dkim-signature|arc-message-signature|arc-seal|arc-authentication-results)[ \t]*:/i;
const AUTHOR = /^(?:from|sender)[ \t]*:/i;
const FROM = /^from[ \t]*:/i;
const NAME_BYTES = 40;

/**
 * Counts the header's lines, bytes, signatures and the size of its author and signature fields,
 * stopping at the empty line (CRLF or bare LF) that ends it or at the first line past a limit. A
 * message with no empty line is all header.
 * @example headerBlock([Buffer.from('From: a@b\r\n\r\nbody')], LIMITS) // { lines: 1, bytes: 13, signatures: 0, authorFieldBytes: 11, signatureBytes: 0, over: false }
 */
export function headerBlock(pieces: readonly Buffer[], limits: HeaderLimits): HeaderBlock {
  const found = { lines: 0, bytes: 0, signatures: 0, authorFieldBytes: 0, signatureBytes: 0, signatureColons: 0, fromFields: 0 };
  // The current line so far (it may run over pieces): its length, its last byte and its first bytes.
  let lineLength = 0;
  let last = -1;
  let head = '';
  // What the field the current line belongs to is, and its size so far.
  let field: 'author' | 'signature' | 'other' = 'other';
  let fieldBytes = 0;
  let signing = false;
  // Colons of the current line so far.
  let colons = 0;
  const past = () =>
    found.lines > limits.maxLines ||
    found.bytes > limits.maxBytes ||
    found.signatures > limits.maxSignatures ||
    found.authorFieldBytes > limits.maxAuthorFieldBytes ||
    found.signatureBytes > limits.maxSignatureBytes ||
    found.signatureColons > limits.maxSignatureColons;
  const endLine = (length: number) => {
    found.lines++;
    // A line that starts with a blank continues the field before it.
    if (!/^[ \t]/.test(head)) {
      field = AUTHOR.test(head) ? 'author' : AUTHENTICATION.test(head) ? 'signature' : 'other';
      fieldBytes = 0;
      signing = SIGNATURE.test(head);
      if (signing) found.signatures++;
      if (FROM.test(head)) found.fromFields++;
    }
    fieldBytes += length;
    if (field === 'author') found.authorFieldBytes = Math.max(found.authorFieldBytes, fieldBytes);
    if (field === 'signature') found.signatureBytes += length;
    if (signing) found.signatureColons += colons;
  };
  for (const piece of pieces) {
    let start = 0;
    while (start < piece.length) {
      const nl = piece.indexOf(0x0a, start);
      const end = nl === -1 ? piece.length : nl;
      if (end > start) last = piece[end - 1] as number;
      if (head.length < NAME_BYTES) head += piece.toString('latin1', start, Math.min(end, start + NAME_BYTES - head.length));
      // Within the line only: a search past its end would read on into the body for every line.
      const line = piece.subarray(start, end);
      for (let at = line.indexOf(0x3a); at !== -1; at = line.indexOf(0x3a, at + 1)) colons++;
      lineLength += end - start;
      found.bytes += end - start;
      if (nl === -1) {
        if (found.bytes > limits.maxBytes) return { ...found, over: true };
        break;
      }
      found.bytes++;
      if (lineLength === 0 || (lineLength === 1 && last === 0x0d)) return { ...found, over: past() };
      endLine(lineLength + 1);
      if (past()) return { ...found, over: true };
      lineLength = 0;
      last = -1;
      head = '';
      colons = 0;
      start = nl + 1;
    }
  }
  if (lineLength > 0) endLine(lineLength);
  return { ...found, over: past() };
}
