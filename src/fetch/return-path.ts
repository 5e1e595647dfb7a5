// return-path: the envelope sender of a message taken from a mailbox, as the server that delivered it
// wrote it in the topmost Return-Path field. Pure; input: untrusted bytes.

/** Far past any real header's first field; a Return-Path is the first line its delivery agent writes. */
const SCAN_BYTES = 64 * 1024;

/**
 * The address of the message's first Return-Path field, '' for the null sender `<>`, or null when the
 * header has none (or one that is not an address), read no further than its first 64 KiB.
 * @example returnPathOf(Buffer.from('Return-Path: <a@b.example>\r\nFrom: c@d\r\n\r\nbody')) // 'a@b.example'
 * @example returnPathOf(Buffer.from('Return-Path: <>\r\n\r\n')) // ''
 */
export function returnPathOf(raw: Buffer): string | null {
  const head = raw.subarray(0, SCAN_BYTES).toString('latin1');
  const lines = head.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    // The empty line ends the header: a Return-Path in the body is text.
    if (line === '') return null;
    const match = /^return-path[ \t]*:(.*)$/i.exec(line);
    if (!match) continue;
    let value = match[1] as string;
    for (let j = i + 1; j < lines.length && /^[ \t]/.test(lines[j] as string); j++) value += lines[j];
    return addressOf(value.trim());
  }
  return null;
}

function addressOf(value: string): string | null {
  const bracketed = /^<([^<>\s]*)>$/.exec(value);
  if (bracketed) return bracketed[1] as string;
  // Without brackets, as some agents write it: one word with an @.
  return /^[^<>\s@]+@[^<>\s@]+$/.test(value) ? value : null;
}
