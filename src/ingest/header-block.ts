// header-block: what a message's header holds that decides how much reading it would cost, counted
// before anything parses it whole (mailauth, whose parser slows with the square of its lines), and its
// From and Sender fields, for reading the author alone. Pure; input: untrusted bytes, in pieces.

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
  /** Counting goes on past the other limits to the header's end, but no further than this. */
  scanBytes: number;
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
  /** The From and Sender fields, each whole, in order, while none is past maxAuthorFieldBytes. */
  authorFields: Buffer[];
  /** The header ended within scanBytes: every count is of all of it. */
  complete: boolean;
  /** Past a limit, or not complete. */
  over: boolean;
}

// A field's name as it may stand at the start of a line, before its colon (RFC 5322 4.5.3 allows blanks).
const SIGNATURE = /^(?:dkim-signature|arc-message-signature)[ \t]*:/i;
const AUTHENTICATION = /^(?:dkim-signature|arc-message-signature|arc-seal|arc-authentication-results)[ \t]*:/i;
const AUTHOR = /^(?:from|sender)[ \t]*:/i;
const FROM = /^from[ \t]*:/i;
const NAME_BYTES = 40;

type Counts = Omit<HeaderBlock, 'complete' | 'over'>;

/**
 * Counts the header's lines, bytes, signatures and the size of its author and signature fields, to
 * the empty line (CRLF or bare LF) that ends it, or scanBytes. A message with no empty line is all
 * header.
 * @example headerBlock([Buffer.from('From: a@b\r\n\r\nbody')], LIMITS) // { lines: 1, bytes: 13, fromFields: 1, authorFieldBytes: 11, authorFields: [<From: a@b\r\n>], complete: true, over: false, ... }
 */
export function headerBlock(pieces: readonly Buffer[], limits: HeaderLimits): HeaderBlock {
  const found: Counts = { lines: 0, bytes: 0, signatures: 0, authorFieldBytes: 0, signatureBytes: 0, signatureColons: 0, fromFields: 0, authorFields: [] };
  const result = (complete: boolean): HeaderBlock => ({
    ...found,
    complete,
    over:
      !complete ||
      found.lines > limits.maxLines ||
      found.bytes > limits.maxBytes ||
      found.signatures > limits.maxSignatures ||
      found.authorFieldBytes > limits.maxAuthorFieldBytes ||
      found.signatureBytes > limits.maxSignatureBytes ||
      found.signatureColons > limits.maxSignatureColons,
  });
  // The current line so far (it may run over pieces): its length, its last byte, its first bytes, its colons.
  let lineLength = 0;
  let last = -1;
  let head = '';
  let colons = 0;
  let segments: Buffer[] = [];
  // The field the current line belongs to, and its size and lines so far.
  let field: 'author' | 'signature' | 'other' = 'other';
  let signing = false;
  let fieldBytes = 0;
  let fieldLines: Buffer[] = [];
  const endField = () => {
    if (field === 'author' && fieldBytes <= limits.maxAuthorFieldBytes) found.authorFields.push(Buffer.concat(fieldLines));
    fieldLines = [];
  };
  const endLine = (length: number) => {
    found.lines++;
    // A line that starts with a blank continues the field before it (the first line has none to continue).
    const continued = /^[ \t]/.test(head) && found.lines > 1;
    if (!continued) {
      endField();
      const name = head.trimStart();
      field = AUTHOR.test(name) ? 'author' : AUTHENTICATION.test(name) ? 'signature' : 'other';
      signing = SIGNATURE.test(name);
      fieldBytes = 0;
      if (signing) found.signatures++;
      if (FROM.test(name)) found.fromFields++;
    }
    fieldBytes += length;
    if (field === 'author') {
      found.authorFieldBytes = Math.max(found.authorFieldBytes, fieldBytes);
      if (fieldBytes <= limits.maxAuthorFieldBytes) fieldLines.push(...segments);
    }
    if (field === 'signature') found.signatureBytes += length;
    if (signing) found.signatureColons += colons;
  };
  for (const piece of pieces) {
    let start = 0;
    while (start < piece.length) {
      const nl = piece.indexOf(0x0a, start);
      // Never past scanBytes, however long a line is.
      const end = Math.min(nl === -1 ? piece.length : nl, start + (limits.scanBytes - found.bytes));
      const line = piece.subarray(start, end);
      if (end > start) last = piece[end - 1] as number;
      if (head.length < NAME_BYTES) head += line.toString('latin1', 0, NAME_BYTES - head.length);
      for (let at = line.indexOf(0x3a); at !== -1; at = line.indexOf(0x3a, at + 1)) colons++;
      lineLength += end - start;
      found.bytes += end - start;
      if (end !== nl) {
        if (found.bytes >= limits.scanBytes) return result(false);
        segments.push(line);
        break;
      }
      found.bytes++;
      if (lineLength === 0 || (lineLength === 1 && last === 0x0d)) {
        endField();
        return result(true);
      }
      segments.push(piece.subarray(start, nl + 1));
      endLine(lineLength + 1);
      if (found.bytes >= limits.scanBytes) return result(false);
      lineLength = 0;
      last = -1;
      head = '';
      colons = 0;
      segments = [];
      start = nl + 1;
    }
  }
  if (lineLength > 0) endLine(lineLength);
  endField();
  return result(true);
}
