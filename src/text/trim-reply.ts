// trim-reply: finds what the sender wrote in a reply (drops quoted history, embedded and forwarded mails,
// attribution lines, signatures), following the rules of Discourse's email_reply_trimmer.
// Input: untrusted mail text (any size, any bytes). Pure: no I/O; its only state is two memos that cannot change an answer.

export interface TrimmedReply {
  /** What the sender wrote. */
  reply: string;
  /** What was cut off (quote, embedded mail, signature), normalised as it was classified. */
  elided: string;
}

/**
 * One letter per line, in the priority order lines are classified:
 * e(mpty), d(elimiter), s(ignature), b (embedded-mail marker), h(eader), q(uote), t(ext).
 */
type Kind = 'e' | 'd' | 's' | 'b' | 'h' | 'q' | 't';

/**
 * @example trimReply('Thanks!\n\nOn Mon, 1 Jan 2024, Bob wrote:\n> hi') // { reply: 'Thanks!', elided: 'On Mon, ...\n> hi' }
 */
export function trimReply(text: string): TrimmedReply {
  // Upstream is not idempotent: dropping a header can make two lines one wrapped marker, or bring a
  // list footer to the end. Trimming again until nothing changes gives the same answer for a reply as
  // for the mail it came from; real mail settles after one pass, the bound is for crafted input.
  let current = trimOnce(text);
  const elided = [current.elided];
  // Nothing cut: a second pass would see the same lines (most replies to a notification end here).
  for (let pass = 1; pass < MAX_PASSES && current.elided !== ''; pass++) {
    const next = trimOnce(current.reply);
    if (next.reply === current.reply) break;
    // What a later pass removes sat above what the earlier one did.
    elided.unshift(next.elided);
    current = next;
  }
  return { reply: current.reply, elided: elided.filter((part) => part !== '').join('\n') };
}

const MAX_PASSES = 8;

function trimOnce(text: string): TrimmedReply {
  if (text.trim() === '') return { reply: '', elided: '' };
  const doc = prepare(text);
  const kept = keptLines(doc.lines.map((line) => classify(line, doc.markers)));
  const isKept = new Array<boolean>(doc.lines.length).fill(false);
  for (const i of kept) isKept[i] = true;
  const elided: string[] = [];
  doc.lines.forEach((_, i) => {
    if (!isKept[i]) elided.push(doc.restore(i));
  });
  return {
    reply: kept.map((i) => doc.restore(i)).join('\n').trim(),
    elided: elided.join('\n').trim(),
  };
}

/**
 * Finds a forwarded or embedded message: the text before it, and the message itself.
 * @example extractEmbedded('FYI\n\n---------- Forwarded message ---------\nFrom: a\nDate: 1 May 2024\nTo: b\n\nHi') // { before: 'FYI', embedded: 'From: a\n...\nHi' }
 */
export function extractEmbedded(text: string): { before: string; embedded: string } | null {
  if (text.trim() === '') return null;
  const doc = prepare(text);
  const kinds = doc.lines.map((line) => classify(line, doc.markers));
  const range = (from: number, to: number, map: (line: string) => string = (line) => line) => {
    const out: string[] = [];
    for (let i = from; i < to; i++) out.push(map(doc.restore(i)));
    return out.join('\n').trim();
  };
  let start = headerBlockStart(kinds);
  let embedded: string;
  if (start !== -1) {
    embedded = range(start, kinds.length);
  } else {
    start = quotedForwardStart(kinds);
    if (start === -1) return null;
    // Apple Mail forwards inside a quote: the message is the quote without its markers.
    embedded = range(start + 1, kinds.length, (line) => line.replace(/^>\s*/, ''));
  }
  return { before: range(0, leadInStart(kinds, start)), embedded };
}

// ---------------------------------------------------------------------------------------------------
// The rules, applied to the string of line kinds. Each works on indices so that what is dropped can be
// reported as the elided part, and each is a linear scan: the kind string can be millions long.

function keptLines(all: Kind[]): number[] {
  let at = all.map((_, i) => i);
  let kinds = [...all];
  const cut = (end: number) => {
    at = at.slice(0, end);
    kinds = kinds.slice(0, end);
  };
  const drop = (kind: Kind) => {
    if (!kinds.includes(kind)) return;
    at = at.filter((_, i) => kinds[i] !== kind);
    kinds = kinds.filter((k) => k !== kind);
  };

  // Everything under a "-- "-style line is signature or footer.
  const delimiter = kinds.indexOf('d');
  if (delimiter !== -1) cut(delimiter);
  drop('s');

  // Bottom-posting: "On ... wrote:", the quote, then the answer at the end: keep only the answer.
  if (kinds[0] === 'b') {
    const firstText = kinds.indexOf('t');
    if (firstText >= 2 && kinds.slice(firstText).every((k) => k === 't' || k === 'e')) return at.slice(firstText);
  }

  // A marker after the text with no quote anywhere below it: the rest is the unquoted old message.
  const lastQuote = kinds.lastIndexOf('q');
  for (let j = lastQuote + 1; j < kinds.length; j++) {
    if (kinds[j] !== 'b') continue;
    const before = skipBack(kinds, j - 1, 'e');
    if (kinds[before] === 't') {
      cut(before + 1);
      break;
    }
  }

  // A marker followed by a quote and then only a few text lines: those are the quoted mail's own
  // unquoted remainder (footers, links), not an inline answer.
  let lastBlock = kinds.length - 1;
  while (lastBlock >= 0 && (kinds[lastBlock] === 't' || kinds[lastBlock] === 'e')) lastBlock--;
  if (lastBlock >= 0) {
    let text = lastBlock - 1;
    while (text >= 0 && kinds[text] !== 't') text--;
    if (text >= 0 && kinds[skipForward(kinds, text + 1, 'e')] === 'b') {
      let textAfter = 0;
      for (let i = lastBlock + 1; i < kinds.length; i++) if (kinds[i] === 't') textAfter++;
      if (textAfter < 7) cut(text + 1);
    }
  }

  // A quote (or marker) ending the mail is the message replied to. When a header rather than text sits
  // right above it, upstream keeps the quote's first line (later rules usually drop it); so do we, for
  // the same answers. A mail that is only a quote is kept whole: upstream keeps its first line, which is
  // neither the message nor nothing.
  if (kinds.some((k) => k !== 'q' && k !== 'e')) {
    let tail = kinds.length;
    while (tail > 0 && (kinds[tail - 1] === 'q' || kinds[tail - 1] === 'b' || kinds[tail - 1] === 'e')) tail--;
    if (tail < kinds.length) cut(kinds[tail - 1] === 't' ? tail : tail + 1);
  }

  drop('b');
  mergeWrappedHeaders(kinds);

  // Three header lines after the text start an Outlook-style embedded message.
  for (let i = 0; i < kinds.length; i++) {
    if (kinds[i] !== 't') continue;
    const headers = skipForward(kinds, i + 1, 'e', 'q');
    if (skipForward(kinds, headers, 'h') - headers >= 3) {
      cut(i + 1);
      break;
    }
  }

  drop('h');
  if (kinds.includes('t')) {
    let tail = kinds.length;
    while (tail > 0 && (kinds[tail - 1] === 'e' || kinds[tail - 1] === 'q')) tail--;
    cut(tail);
  }
  return at;
}

/**
 * A header whose value wrapped onto further lines ("To: a,\n b") leaves text lines between headers;
 * the first header...header-then-empty stretch is made all header so the block is seen as one.
 */
function mergeWrappedHeaders(kinds: Kind[]): void {
  let start = 0;
  for (let i = 0; i <= kinds.length; i++) {
    if (i < kinds.length && kinds[i] !== 'q') continue;
    const first = indexIn(kinds, 'h', start, i);
    if (first !== -1) {
      for (let end = i - 1; end >= first + 3; end--) {
        if (kinds[end] === 'e' && kinds[end - 1] === 'h') {
          kinds.fill('h', first, end + 1);
          return;
        }
      }
    }
    start = i + 1;
  }
}

/** Start of an Outlook/Gmail header block (3+ headers, then the message), or -1. */
function headerBlockStart(kinds: Kind[]): number {
  let i = 0;
  while (i < kinds.length) {
    if (!isHeaderBlockKind(kinds[i])) {
      i++;
      continue;
    }
    let end = i;
    while (end < kinds.length && isHeaderBlockKind(kinds[end] as Kind)) end++;
    const first = indexIn(kinds, 'h', i, end);
    let seen = 0;
    let third = -1;
    for (let j = first; first !== -1 && j < end && third === -1; j++) if (kinds[j] === 'h' && ++seen === 3) third = j;
    // The block ends at a quote or at the message text.
    if (third !== -1 && (indexIn(kinds, 'q', third, end) !== -1 || kinds[end] === 't')) return first;
    i = end;
  }
  return -1;
}

function isHeaderBlockKind(kind: Kind | undefined): boolean {
  return kind === 'h' || kind === 'e' || kind === 'q' || kind === 'd';
}

/** A marker followed by a quote or text: a message forwarded inside a quote. */
function quotedForwardStart(kinds: Kind[]): number {
  for (let j = 0; j < kinds.length; j++) {
    if (kinds[j] !== 'b') continue;
    let k = j + 1;
    let quoted = false;
    for (; kinds[k] === 'e' || kinds[k] === 'q' || kinds[k] === 'd'; k++) if (kinds[k] === 'q') quoted = true;
    if (quoted || kinds[k] === 't') return j;
  }
  return -1;
}

/** Where the lead-in before an embedded message ends: its marker, delimiters and blank lines go with it. */
function leadInStart(kinds: Kind[], end: number): number {
  let afterMarker = end;
  while (afterMarker > 0 && 'eqd'.includes(kinds[afterMarker - 1] as Kind)) afterMarker--;
  let best = end;
  if (afterMarker > 0 && kinds[afterMarker - 1] === 'b') best = skipBack(kinds, afterMarker - 2, 'e') + 1;
  let blanks = end;
  while (blanks > 0 && (kinds[blanks - 1] === 'e' || kinds[blanks - 1] === 'd')) blanks--;
  const markers = skipBack(kinds, blanks - 1, 'b') + 1;
  const start = markers < blanks ? skipBack(kinds, markers - 1, 'e') + 1 : blanks;
  return Math.min(best, start);
}

function indexIn(kinds: Kind[], kind: Kind, from: number, to: number): number {
  for (let i = from; i < to; i++) if (kinds[i] === kind) return i;
  return -1;
}

function skipBack(kinds: Kind[], from: number, ...skip: Kind[]): number {
  let i = from;
  while (i >= 0 && skip.includes(kinds[i] as Kind)) i--;
  return i;
}

function skipForward(kinds: Kind[], from: number, ...skip: Kind[]): number {
  let i = from;
  while (i < kinds.length && skip.includes(kinds[i] as Kind)) i++;
  return i;
}

// ---------------------------------------------------------------------------------------------------
// Preprocessing: normalise the text so that one line is one thing.

interface Prepared {
  lines: string[];
  /** The markers that may occur in this text (the others are not tried on any line). */
  markers: Markers;
  /** The line as the caller sees it: a hoisted code block comes back whole. */
  restore(index: number): string;
}

function prepare(text: string): Prepared {
  let body = lfLineEnds(text);
  body = stripPgp(body);
  let lines = body.split('\n').map(trimLineEnd);
  lines = lines.slice(0, unsubscribeFooterStart(lines));
  lines = lines.map(dropAliasAttribution);
  lines = unwrapEnclosedQuotes(lines, ENCLOSED_NAMED);
  lines = unwrapEnclosedQuotes(lines, ENCLOSED_PLAIN);
  const { lines: hoisted, blocks } = hoistCodeBlocks(lines);
  // Most mail has no code block: then no line needs looking up (hashing every line is not free).
  const isBlock = blocks.size === 0 ? () => false : (line: string) => blocks.has(line);
  lines = hoisted.map((line) => (isBlock(line) ? line : normaliseQuoteMarkers(line)));
  // Tested on the lines as they now are: the steps above may have moved what starts a line.
  const now = lines.join('\n');
  const wrappable = WRAPPABLE_MARKERS.filter((marker) => marker.mayOccur(now));
  for (const marker of wrappable) lines = joinWrappedMarkers(lines, isBlock, marker);
  lines = stripBlankEdges(lines);
  const markers = { wrappable, oneLine: ONE_LINE_MARKERS.filter((marker) => marker.mayOccur(now)) };
  return { lines, markers, restore: blocks.size === 0 ? (i) => lines[i] as string : (i) => blocks.get(lines[i] as string) ?? (lines[i] as string) };
}

/** CRLF and bare CR as LF (the text as it is when there is no CR, the common case). */
export function lfLineEnds(text: string): string {
  return text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text;
}

/** The line without trailing blanks and tabs (a loop: `/[ \t]+$/` would try every run of blanks in it). */
export function trimLineEnd(line: string): string {
  let end = line.length;
  while (end > 0 && (line.charCodeAt(end - 1) === 0x20 || line.charCodeAt(end - 1) === 0x09)) end--;
  return end === line.length ? line : line.slice(0, end);
}

function stripPgp(body: string): string {
  const signed = body.replace(/^-----BEGIN PGP SIGNED MESSAGE-----\n(?:Hash: \w+)?\s+/i, '');
  const begin = /^-----BEGIN PGP SIGNATURE-----$/m.exec(signed);
  if (!begin) return signed;
  let end = -1;
  const ends = /^-----END PGP SIGNATURE-----/gm;
  ends.lastIndex = begin.index + begin[0].length + 1;
  for (let m = ends.exec(signed); m; m = ends.exec(signed)) end = m.index + m[0].length;
  if (end === -1) return signed;
  // Clear-signed text escapes every line that starts with a dash as "- " (RFC 4880 7.1): undone, the
  // "-- " signature delimiter and the sender's lists read as written.
  const content = signed.slice(0, begin.index);
  return (signed === body ? content : content.replace(/^- /gm, '')) + signed.slice(end);
}

/** Where a mailing list's "Unsubscribe: ..." footers (each with its link line) at the very end start. */
function unsubscribeFooterStart(lines: string[]): number {
  const footer = (line: string | undefined) => line !== undefined && /^Unsubscribe: .+@./i.test(line);
  let end = lines.length;
  for (;;) {
    let last = end - 1;
    while (last >= 0 && (lines[last] as string).trim() === '') last--;
    if (last >= 1 && footer(lines[last - 1]) && /.http:./.test(lines[last] as string)) end = last - 1;
    else if (last >= 0 && footer(lines[last])) end = last;
    else return end;
  }
}

/** Old newsreaders prefix the quote with `>>>>> "Bob" == Bob Smith <bob@x> writes:`. */
function dropAliasAttribution(line: string): string {
  // What the expression needs literally, and without a `>`: searching for one with `>` in a deeply
  // quoted line (`>>>>>>>> text`) matched part of it at nearly every position.
  if (!line.includes('" == ')) return line;
  const alias = />{5} "[^"]+" == /.exec(line);
  if (!alias) return line;
  const writes = line.lastIndexOf(' writes:');
  return writes >= alias.index + alias[0].length + 1 ? line.slice(writes + ' writes:'.length) : line;
}

interface EnclosedStyle {
  open(line: string): string[] | null;
  close(line: string): string[] | null;
}

/** `>>> name >>>` ... `<<< name <<<` (the names must agree, give or take one space each side). */
const ENCLOSED_NAMED: EnclosedStyle = {
  open: (line) => enclosedNames(line, '>>>'),
  close: (line) => enclosedNames(line, '<<<'),
};

/** `>>>>` ... `<<<<` on lines of their own. */
const ENCLOSED_PLAIN: EnclosedStyle = {
  open: (line) => (/^>{4,}[\t\p{Zs}]*$/u.test(line) ? [''] : null),
  close: (line) => (/^<{4,}[\t\p{Zs}]*$/u.test(line) ? [''] : null),
};

function enclosedNames(line: string, fence: string): string[] | null {
  if (line.length < 7 || !line.startsWith(fence) || !line.endsWith(fence)) return null;
  const inner = line.slice(3, -3);
  const names = new Set<string>();
  for (const lead of [0, 1]) {
    for (const trail of [0, 1]) {
      if ((lead && !inner.startsWith(' ')) || (trail && !inner.endsWith(' '))) continue;
      const name = inner.slice(lead, inner.length - trail);
      if (name !== '') names.add(name);
    }
  }
  return names.size > 0 ? [...names] : null;
}

function unwrapEnclosedQuotes(lines: string[], style: EnclosedStyle): string[] {
  // Closing lines by name, in order, so each opening line finds its closer without rescanning.
  const closers = new Map<string, number[]>();
  lines.forEach((line, i) => {
    for (const name of style.close(line) ?? []) {
      const list = closers.get(name);
      if (list) list.push(i);
      else closers.set(name, [i]);
    }
  });
  if (closers.size === 0) return lines;
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const names = style.open(lines[i] as string);
    let close = -1;
    for (const name of names ?? []) {
      const candidate = firstCloserAfter(closers.get(name) ?? [], i, lines);
      if (candidate !== -1 && (close === -1 || candidate < close)) close = candidate;
    }
    if (close === -1) {
      out.push(lines[i] as string);
      continue;
    }
    for (let j = i + 1; j < close; j++) out.push(trimLineEnd(`> ${lines[j] as string}`));
    i = close;
  }
  return out;
}

/** The quoted part must not be empty, so the closer is at least two lines down. */
function firstCloserAfter(indices: number[], open: number, lines: string[]): number {
  let lo = 0;
  let hi = indices.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((indices[mid] as number) < open + 2) lo = mid + 1;
    else hi = mid;
  }
  if (lo < indices.length && indices[lo] === open + 2 && lines[open + 1] === '') lo++;
  return lo < indices.length ? (indices[lo] as number) : -1;
}

/**
 * Replaces each fenced code block with one placeholder line, so that nothing inside it is classified
 * (a `# comment` or `--` in code is not a delimiter) and no cut falls inside it.
 */
function hoistCodeBlocks(lines: string[]): { lines: string[]; blocks: Map<string, string> } {
  const blocks = new Map<string, string>();
  const nextFence = new Array<number>(lines.length + 1).fill(-1);
  for (let i = lines.length - 1; i >= 0; i--) nextFence[i] = lines[i] === '```' ? i : (nextFence[i + 1] as number);
  // The placeholder uses a private-use character in a run longer than any in the text, so no line of
  // the text can be mistaken for it.
  let mark: string | null = null;
  const placeholderMark = () => {
    let longest = 0;
    for (const run of lines.join('\n').matchAll(/\uE000+/g)) longest = Math.max(longest, run[0].length);
    return '\uE000'.repeat(longest + 1);
  };
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const close = line.startsWith('```') && /^```\w*$/.test(line) ? (nextFence[i + 1] as number) : -1;
    if (close === -1) {
      out.push(line);
      continue;
    }
    mark ??= placeholderMark();
    const token = `${mark}${blocks.size}${mark}`;
    blocks.set(token, lines.slice(i, close + 1).join('\n'));
    out.push(token);
    i = close;
  }
  return { lines: out, blocks };
}

/**
 * `| quoted`, `Bob> quoted` and `> | quoted` all become `>` quotes. A `word|` is left alone: it is text
 * (or a table), and rewriting it would change what the sender wrote; so is a table row `| a | b |`.
 */
function normaliseQuoteMarkers(line: string): string {
  // Most lines have neither character; the expression below would try every word start to learn it.
  const pipe = line.includes('|');
  if (!pipe && !line.includes('>')) return line;
  // Plain quote markers (`> > text`, no `|` and no `>` after them) are already what they become.
  if (!pipe && line.indexOf('>', quoteMarkersEnd(line)) === -1) return line;
  if (isTableRow(line)) return line;
  const lead = /^(?:[\t\p{Zs}]*(?:\p{Alphabetic}+>|[>|]))+/u.exec(line);
  if (!lead) return line;
  return lead[0].replace(/\p{Alphabetic}+>|\|/gu, '>') + line.slice(lead[0].length);
}

/**
 * Where the leading run of blanks, tabs and `>` ends. By character codes, not scanWhile's expression:
 * it runs on every quoted line, and a test per character took a tenth of the trimmer's time.
 */
function quoteMarkersEnd(line: string): number {
  let end = 0;
  for (let code = line.charCodeAt(0); code === 0x3e || code === 0x20 || code === 0x09; code = line.charCodeAt(++end));
  return end;
}

/**
 * `| a | b |` and `|---|---|`: a Markdown table row, which people type in plain text too, not a line
 * quoted with `|` (which has no second pipe after its text).
 */
function isTableRow(line: string): boolean {
  const text = line.trimStart();
  return text.startsWith('|') && /^\|[\s|>]*[^\s|>][^|]*\|/.test(text);
}

function stripBlankEdges(lines: string[]): string[] {
  let start = 0;
  while (start < lines.length && (lines[start] as string).trim() === '') start++;
  let end = lines.length;
  while (end > start && (lines[end - 1] as string).trim() === '') end--;
  const out = lines.slice(start, end);
  if (out.length > 0) {
    out[0] = (out[0] as string).trimStart();
    out[out.length - 1] = (out[out.length - 1] as string).trimEnd();
  }
  return out;
}

interface WrappableMarker {
  /**
   * Cheap test that the marker can start on some line of the text (a line start, a word, a year):
   * joining lines never makes one, so a marker that fails it is skipped for the whole text.
   */
  mayOccur(text: string): boolean;
  /** Cheap test that the marker can start on this line. */
  mayStart(line: string): boolean;
  /**
   * Where a marker starting on the first line of `text` (which may hold a few lines) ends, or -1.
   * The same finder classifies a single line.
   */
  find(text: string): number;
}

/**
 * Clients wrap a long "On <date>, <name> <address> wrote:" over several lines. A marker spanning at most
 * five lines is put back on one; the window is six lines so that a longer one is seen and left alone.
 */
function joinWrappedMarkers(lines: string[], isBlock: (line: string) => boolean, marker: WrappableMarker): string[] {
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    let last = i;
    if (!isBlock(line) && marker.mayStart(line)) {
      while (last + 1 < lines.length && last - i < 5 && !isBlock(lines[last + 1] as string)) last++;
    }
    const window = last > i ? lines.slice(i, last + 1).join('\n') : '';
    const end = last > i ? marker.find(window) : -1;
    const newlines = end === -1 ? 0 : countNewlines(window, end);
    if (newlines === 0 || newlines > 4) {
      out.push(line);
      continue;
    }
    const rest = window.slice(end);
    out.push(window.slice(0, end).replace(/\n+\s*/g, ' ') + rest.slice(0, lineEnd(rest, 0)));
    i += newlines;
  }
  return out;
}

function countNewlines(text: string, end: number): number {
  let count = 0;
  for (let i = 0; i < end; i++) if (text.charCodeAt(i) === 10) count++;
  return count;
}

// ---------------------------------------------------------------------------------------------------
// Line classification. Every matcher here runs on every line of untrusted text, so each is linear in
// the line length: regexes are written without overlapping quantifiers, and the patterns that would
// need them are checked by hand.

function classify(line: string, markers: Markers): Kind {
  if (/^[\t\p{Zs}]*$/u.test(line)) return 'e';
  if (isDelimiter(line)) return 'd';
  if (isSignature(line)) return 's';
  if (isEmbeddedMarker(line, markers)) return 'b';
  if (isHeader(line)) return 'h';
  if (/^[\t\p{Zs}]*>/u.test(line)) return 'q';
  return 't';
}

/**
 * `--`, `____`, `=====`, `*****`... A lone `-` or `*` is not one: Gmail's plain-text part puts list
 * bullets on lines of their own, and treating them as delimiters cut replies at their first bullet.
 */
function isDelimiter(line: string): boolean {
  return /^[\t\p{Zs}]*[-_,=+~#*ᐧ—]+[\t\p{Zs}]*$/u.test(line) && !/^[\t\p{Zs}]*[-*][\t\p{Zs}]*$/u.test(line);
}

const MOBILE_SIGNATURE = new RegExp(
  '^[\\t\\p{Zs}]*(?:' +
    [
      '從我的 iPhone 傳送',
      '[\\p{L}\\p{M}\\p{Nd}\\p{Pc}]+ from mobile',
      '[(<]*Sent (?:from|via|with|by) .',
      // Upstream takes any "From my ..." line, which eats replies such as "From my work address.".
      'From my (?:iPhone|iPad|iPod|Android|mobile|phone|smartphone|tablet|BlackBerry|Samsung|Galaxy|Huawei|Pixel|Xiaomi)',
      'Get Outlook for ',
      'Envoyé (?:depuis|de) (?:mon|Yahoo Mail)',
      'Von meinem .+ gesendet',
      'Diese Nachricht wurde von .+ gesendet',
      'Inviato da ',
      'Sendt fra min ',
      'Enviado do meu ',
      'Enviado desde mi ',
      'Verzonden met ',
      'Verstuurd vanaf mijn ',
      'från min ',
    ].join('|') +
    ')',
  'iu',
);

function isSignature(line: string): boolean {
  // "Sent from [Mail](https://...) for Windows" is matched on its link text.
  return MOBILE_SIGNATURE.test(line.includes('](') ? line.replace(/\[([^[\]]+)\]\([^()]+\)/g, '$1') : line);
}

const HEADER_WITH_DATE =
  /^[\t\p{Zs}*]*(?:Sendt|Sent|Date|Le|Gesendet|Enviada em|Enviado|Fecha|Data|Datum|Skickat|发送时间|Отправлено|Дата|送信日時|日時)[\t\p{Zs}*]*[:：].*\d/u;
const HEADER_WITH_TEXT = new RegExp(
  '^[\\t\\p{Zs}*]*(?:' +
    [
      'Fra|Til|Emne', // Norwegian
      'From|To|Cc|Reply-To|Subject',
      'De|Expéditeur|À|Destinataire|Répondre à|Objet', // French
      'Von|An|Betreff', // German
      'Para|Assunto|Asunto', // Portuguese, Spanish
      'Da|Risposta|A|Oggetto', // Italian
      'Van|Beantwoorden - Aan|Aan|Onderwerp', // Dutch
      'Från|Till|Ämne', // Swedish
      '发件人|收件人|主题', // Chinese
      'От|Кому|Копия|Тема', // Russian
      '差出人|宛先|件名', // Japanese
    ].join('|') +
    ')[\\t\\p{Zs}*]*[:：].*[\\p{L}\\p{M}\\p{Nd}\\p{Pc}]',
  'iu',
);

function isHeader(line: string): boolean {
  return HEADER_WITH_DATE.test(line) || HEADER_WITH_TEXT.test(line);
}

interface Markers {
  wrappable: readonly WrappableMarker[];
  oneLine: readonly OneLineMarker[];
}

function isEmbeddedMarker(line: string, markers: Markers): boolean {
  return markers.wrappable.some((marker) => marker.mayStart(line) && marker.find(line) !== -1) || markers.oneLine.some((marker) => marker.test(line));
}

interface OneLineMarker {
  /**
   * Cheap test that the marker can occur in the text, by a word it needs literally. Joining wrapped
   * lines puts a blank where a line break was, so it cannot make such a word (none holds a blank).
   */
  mayOccur(text: string): boolean;
  test(line: string): boolean;
}

const ANY_TEXT = () => true;

/**
 * In a long quoted thread every line starts with quote markers, which each expression would read
 * again before failing: three share one expression (FORWARDED_OR_POSTED), and the others wait for a
 * word they need literally, in the text and then on the line.
 */
const ONE_LINE_MARKERS: OneLineMarker[] = [
  { mayOccur: ANY_TEXT, test: (line) => FORWARDED_OR_POSTED.test(line) },
  { mayOccur: (text) => text.includes('--'), test: (line) => line.includes('--') && FORWARDED_RULE.test(line) },
  { mayOccur: (text) => text.includes('GMT+'), test: (line) => line.includes('GMT+') && ISO_DATE_SOMEONE.test(line) },
  { mayOccur: (text) => holdsDateWroteWord(text), test: isDateWroteSomeone },
  { mayOccur: (text) => text.includes('wrote') || text.includes('schrieb'), test: isSomeoneViaWrote },
  { mayOccur: (text) => text.includes('wrote'), test: isSomeoneEmailWrote },
  { mayOccur: (text) => text.includes('写道'), test: isSomeoneAtDateWroteZh },
];

/** Gmail in Chinese: "Bob <bob@example.com> 于2024年1月1日周一 10:00写道：". By index: no backtracking. */
function isSomeoneAtDateWroteZh(line: string): boolean {
  const wrote = line.lastIndexOf('写道');
  if (wrote === -1 || !/^[:：]?[\t\p{Zs}]*$/u.test(line.slice(wrote + 2))) return false;
  const at = line.lastIndexOf('于', wrote);
  return at > 0 && at <= 200 && wrote - at <= 160 && /\d/.test(line.slice(at, wrote));
}

// "On <date>, <someone> wrote:" in its many languages. The body may not run past another opening word
// or the closing word, so "On this day / I wrote something" is not one; `(?=\n|$)` rather than `$`
// because the same expression also runs on a few lines at once.
const END = '[\\t\\p{Zs}.:：>-]*(?=\\n|$)';
// "schreef <name> <address>:" - the name runs to the colon; split so that the name and the blanks after
// the colon never compete for the same characters.
const TO_COLON = `(?:[^:]+:${END}|[^:]+(?=\\n|$))`;
const ON_DATE_SOMEONE_WROTE: Array<[open: string, stop: string, close: string]> = [
  ['在', '在|写道', `写道${END}`], // Chinese
  ['Op', 'Op|het\\svolgende\\sgeschreven|schreef', `(?:het\\svolgende\\sgeschreven${END}|\\bschreef${TO_COLON})`], // Dutch
  ['In message', 'In message|writes', `writes${END}`],
  ['On|At', 'On|wrote|writes|says|said', `(?:wrote|writes|says|said)${END}`],
  ['Le', 'Le|nous\\sa\\sdit|a\\s+écrit', `(?:nous\\sa\\sdit|a\\s+écrit)${END}`], // French
  ['Am', 'Am|schrieben\\sSie', `schrieben\\sSie${END}`], // German
  ['Am', 'Am|geschrieben|schrieb', `(?:geschrieben${END}|\\bschrieb${TO_COLON})`],
  ['Il', 'Il|ha\\sscritto', `ha\\sscritto${END}`], // Italian
  ['Dnia|Dňa', 'Dnia|Dňa|napisał', `napisał(?:\\(a\\))?${END}`], // Polish
  ['Em', 'Em|escreveu', `escreveu${END}`], // Portuguese
  ['El', 'El|escribió', `escribió${END}`], // Spanish
];

/**
 * Which openings start a line of the text, found in one scan for all of them: a scan per marker took a
 * fifth of the time for a long quoted thread. One group per opening (two markers share `Am`); at a line
 * start at most one can match, since no opening is another's followed by a space.
 */
const ON_DATE_OPENS = [...new Set(ON_DATE_SOMEONE_WROTE.map(([open]) => open))];
const ANY_ON_DATE_START = new RegExp(`^[\\t\\p{Zs}<>-]*(?:${ON_DATE_OPENS.map((open) => `(${open})`).join('|')}) `, 'gimu');
let lastText: string | null = null;
let lastOpens: ReadonlySet<string> = new Set();

function onDateOpensIn(text: string): ReadonlySet<string> {
  // The markers ask in turn about the same text: remember the last answer.
  if (text !== lastText) {
    const found = new Set<string>();
    for (const match of text.matchAll(ANY_ON_DATE_START)) found.add(ON_DATE_OPENS[match.slice(1).findIndex((group) => group !== undefined)] as string);
    lastText = text;
    lastOpens = found;
  }
  return lastOpens;
}

const ON_DATE_MARKERS: WrappableMarker[] = ON_DATE_SOMEONE_WROTE.map(([open, stop, close]) => {
  const start = new RegExp(`^[\\t\\p{Zs}<>-]*(?:${open}) `, 'iu');
  const full = new RegExp(`^[\\t\\p{Zs}<>-]*(?:${open}) (?:(?!\\b(?:${stop})\\b).)+?${close}`, 'isu');
  return {
    mayOccur: (text) => onDateOpensIn(text).has(open),
    mayStart: (line) => start.test(line),
    find: (text) => {
      const m = full.exec(text);
      return m ? m[0].length : -1;
    },
  };
});

/** "Max <max@example.com> wrote on Fri, 28 Apr 2017 at 11:53:" and the German "schrieb am". */
const SOMEONE_WROTE_ON_DATE: WrappableMarker[] = [
  { word: 'wrote', pattern: /\bwrote\s+on\b/g },
  { word: 'schrieb', pattern: /\bschrieb\s+am\b/g },
].map(({ word, pattern }) => ({
  mayOccur: (text) => text.includes(word),
  mayStart: (line) => line.includes(word),
  find: (text) => findWroteOnDate(text, pattern),
}));

function findWroteOnDate(text: string, pattern: RegExp): number {
  const firstLineEnd = lineEnd(text, 0);
  // Per line the date can end on: the first colon below it, and the last colon on it. Cached, as a
  // line may hold any number of "wrote on".
  const colons = new Map<number, { below: number; last: number }>();
  let found = -1;
  pattern.lastIndex = 1; // something must come before "wrote"
  for (let m = pattern.exec(text); m && m.index < firstLineEnd; m = pattern.exec(text)) {
    pattern.lastIndex = m.index + 1;
    const dateStart = m.index + m[0].length;
    const dateEnd = dateStart <= firstLineEnd ? firstLineEnd : lineEnd(text, dateStart);
    let line = colons.get(dateEnd);
    if (!line) {
      line = {
        below: dateEnd < text.length ? text.indexOf(':', dateEnd) : -1,
        last: lastColonAfterNonColon(text, text.lastIndexOf('\n', dateEnd - 1) + 2, dateEnd),
      };
      colons.set(dateEnd, line);
    }
    // The date runs to the first colon after its line, or else to a colon on its own line.
    if (dateEnd > dateStart && line.below !== -1) found = line.below + 1;
    else if (line.last >= dateStart + 2) found = line.last + 1;
  }
  return found;
}

function lastColonAfterNonColon(text: string, from: number, to: number): number {
  for (let i = to - 1; i >= from; i--) if (text[i] === ':' && text[i - 1] !== ':') return i;
  return -1;
}

function lineEnd(text: string, from: number): number {
  const end = text.indexOf('\n', from);
  return end === -1 ? text.length : end;
}

let lastYearText: string | null = null;
let lastHasYear = false;

/** Four digits in a row. Four markers ask in turn about the same text or line: remember the last answer. */
function hasYear(text: string): boolean {
  if (text !== lastYearText) {
    lastYearText = text;
    // Spelled out: V8 scans for /\d{4}/ two to three times slower (50 KB of text: 17 against 6 µs).
    lastHasYear = /\d\d\d\d/.test(text);
  }
  return lastHasYear;
}

/**
 * "23 mar 2017 21:25 "Neil" <neil@example.com> napisał(a):" (Polish), "... пише:" (Ukrainian) and
 * "... пользователь Neil написал:" (Russian): a year, at most 80 characters, the closing word within
 * 80 more, possibly wrapped once. Without its closing word anywhere, a text has none: joining lines
 * puts a space where a line break was, so it cannot make a word that has none.
 */
const DATE_SOMEONE_WROTE: WrappableMarker[] = [
  { user: '', wrote: 'napisał(a):' },
  { user: '', wrote: 'пише:' },
  { user: 'пользователь', wrote: 'написал:' },
].map(({ user, wrote }) => ({
  mayOccur: (text) => text.includes(wrote) && hasYear(text),
  mayStart: hasYear,
  find: (text) => findDateSomeoneWrote(text, user, wrote),
}));

function findDateSomeoneWrote(text: string, user: string, wrote: string): number {
  const firstEnd = lineEnd(text, 0);
  const first = text.slice(0, firstEnd);
  const years = yearStarts(first);
  // Where the name may start: right after a year (no "user" word) or after a "user" word that follows
  // a year closely enough.
  const anchors: number[] = [];
  if (user === '') {
    for (let s = 0; s < first.length; s++) if (years[s]) anchors.push(s + 4);
  } else {
    for (let u = first.indexOf(user); u !== -1; u = first.indexOf(user, u + 1)) {
      if (hasYearIn(years, u - 84, u - 5)) anchors.push(u + user.length);
    }
  }
  if (anchors.length === 0) return -1;
  // "year, 1-80 chars, then the closing word within 80 more" is, on one line, "within 1-160 chars";
  // with a "user" word the gap after it may be empty.
  const minGap = user === '' ? 1 : 0;
  const maxGap = 160;
  let anchor = 0;
  for (let k = first.indexOf(wrote); k !== -1; k = first.indexOf(wrote, k + 1)) {
    while (anchor < anchors.length && (anchors[anchor] as number) < k - maxGap) anchor++;
    if (anchor < anchors.length && (anchors[anchor] as number) <= k - minGap) return k + wrote.length;
  }
  if (firstEnd === text.length) return -1;
  // Wrapped: the line ends within 80 characters of the anchor and the word comes early on the next one.
  const nextStart = firstEnd + 1;
  const next = text.slice(nextStart, lineEnd(text, nextStart));
  const at = next.indexOf(wrote);
  if (at === -1 || at > 80) return -1;
  const reachesEnd = anchors.some((a) => firstEnd - a <= 80 && firstEnd - a >= minGap);
  return reachesEnd ? nextStart + at + wrote.length : -1;
}

function yearStarts(line: string): boolean[] {
  const starts = new Array<boolean>(line.length).fill(false);
  let run = 0;
  for (let i = line.length - 1; i >= 0; i--) {
    const code = line.charCodeAt(i);
    run = code >= 48 && code <= 57 ? run + 1 : 0;
    starts[i] = run >= 4;
  }
  return starts;
}

function hasYearIn(years: boolean[], from: number, to: number): boolean {
  for (let s = Math.max(0, from); s <= to; s++) if (years[s]) return true;
  return false;
}

/** "2016-10-24 15:36 GMT+02:00 Foo <foo@example.com>:" and "2013/7/20 sam <sam@example.com>". */
const DATE_SOMEONE_EMAIL: WrappableMarker = {
  mayOccur: hasYear,
  mayStart: hasYear,
  find: findDateSomeoneEmail,
};

function findDateSomeoneEmail(text: string): number {
  const firstEnd = lineEnd(text, 0);
  // Where the years are, once an address ends a line: most lines with a year have none.
  let years: boolean[] | null = null;
  // The address may open at the start of the next line when the name filled the first one.
  const lastOpen = firstEnd < text.length ? firstEnd + 1 : firstEnd - 1;
  for (let lt = text.indexOf('<'); lt !== -1 && lt <= lastOpen; lt = text.indexOf('<', lt + 1)) {
    const end = addressEnd(text, lt);
    if (end === -1) continue;
    years ??= yearStarts(text.slice(0, firstEnd));
    for (let s = Math.max(0, lt - 85); s <= lt - 5; s++) {
      if (!years[s]) continue;
      const gap = lt - s - 4;
      const spaceBefore = /\s/.test(text[lt - 1] as string);
      if (text.slice(s + 4, lt - 1).includes('\n')) continue;
      if ((gap <= 80 && text[lt - 1] !== '\n') || (gap >= 2 && gap <= 81 && spaceBefore)) return end;
    }
  }
  return -1;
}

/** End of `<local@domain.tld>` (plus an optional colon) starting at `lt`, when it ends its line. */
function addressEnd(text: string, lt: number): number {
  const at = scanUntil(text, lt + 1, '@<>');
  if (at === lt + 1 || text[at] !== '@') return -1;
  const dot = scanUntil(text, at + 1, '@<>.');
  if (dot === at + 1 || text[dot] !== '.') return -1;
  const gt = scanUntil(text, dot + 1, '@<>');
  if (gt === dot + 1 || text[gt] !== '>') return -1;
  const end = text[gt + 1] === ':' ? gt + 2 : gt + 1;
  return end === text.length || text[end] === '\n' ? end : -1;
}

function scanUntil(text: string, from: number, stops: string): number {
  let i = from;
  while (i < text.length && !stops.includes(text[i] as string)) i++;
  return i;
}

const WRAPPABLE_MARKERS: WrappableMarker[] = [...ON_DATE_MARKERS, ...SOMEONE_WROTE_ON_DATE, ...DATE_SOMEONE_WROTE, DATE_SOMEONE_EMAIL];

/**
 * "Begin forwarded message:" (Apple Mail), its French, and "Posted by mpalmer on 01/21/2016" (forum
 * software): one expression, as their quote markers are read once for the three.
 */
const FORWARDED_OR_POSTED = /^[\t\p{Zs}>]*(?:Begin forwarded message:|Début du message transféré :|Posted by .+ on \d{2}\/\d{2}\/\d{4}$)/iu;

/** "---------- Forwarded message ---------" and its kin. */
const FORWARDED_RULE =
  /^[\t\p{Zs}>*]*-{2,}[\t\p{Zs}]*(?:(?:Forwarded|Original|Reply) Message|Message transféré|Ursprüngliche Nachricht|Mensaje original|原始邮件)[\t\p{Zs}]*-{2,}/iu;

/** "2016-03-03 17:21 GMT+01:00 Some One" (Gmail). */
const ISO_DATE_SOMEONE = /^[\t\p{Zs}>]*20\d\d-\d\d-\d\d \d\d:\d\d GMT\+\d\d:\d\d [\w\t\p{Zs}]+$/u;

/** The Dutch, German or Danish word isDateWroteSomeone needs, in a text or a line. */
function holdsDateWroteWord(text: string): boolean {
  return text.includes('schreef') || text.includes('schrieb') || text.includes('skrev');
}

/** "Op 10 dec. 2015 18:35 schreef "Arpit" <a@example.com>:", "Den 15. jun. 2016 kl. 20.42 skrev ...:". */
function isDateWroteSomeone(line: string): boolean {
  if (!holdsDateWroteWord(line)) return false;
  const open = /^[\t\p{Zs}>]*(?:Op|Am|Den|søn\.)\s/u.exec(line);
  if (!open) return false;
  const lastColon = line.lastIndexOf(':');
  const word = /\s(?:schreef|schrieb|skrev)\s/g;
  word.lastIndex = open[0].length + 1;
  for (let m = word.exec(line); m; m = word.exec(line)) {
    word.lastIndex = m.index + 1;
    const name = m.index + m[0].length;
    if (name < line.length && line[name] !== ':' && lastColon > name) return true;
  }
  return false;
}

/** "codinghorror via Discourse Meta wrote:". */
function isSomeoneViaWrote(line: string): boolean {
  // The expression below is tried at every position of the line. Most lines cannot end as it needs
  // ("e", "b" or ":", then blanks), and their last character says so; a non-ASCII one may be a blank.
  const last = line.charCodeAt(line.length - 1);
  if (last < 0x80 && last !== 0x65 && last !== 0x62 && last !== 0x3a && last !== 0x20 && last !== 0x09) return false;
  if (!line.includes(' wrote') && !line.includes(' schrieb')) return false;
  const wrote = / (?:wrote|schrieb):?[\t\p{Zs}]*$/u.exec(line);
  if (!wrote) return false;
  const via = line.indexOf(' via ', 1);
  return via !== -1 && via + 6 <= wrote.index;
}

/** "Some One <some.one@example.com> wrote:", "Gavin (gavin@example.com.au) wrote". */
function isSomeoneEmailWrote(line: string): boolean {
  if (!line.endsWith('wrote') && !line.endsWith('wrote:')) return false;
  const wrote = line.length - (line.endsWith(':') ? 6 : 5);
  for (let at = line.indexOf('@'); at !== -1 && at < wrote; at = line.indexOf('@', at + 1)) {
    let local = at;
    while (local > 0 && /[\w.+-]/.test(line[local - 1] as string)) local--;
    let startsAtWord = false;
    for (let s = Math.max(local, 1); s < at && !startsAtWord; s++) startsAtWord = isWordChar(line[s - 1]) !== isWordChar(line[s]);
    if (!startsAtWord) continue;
    const domainEnd = scanWhile(line, at + 1, /[\w.-]/);
    for (let dot = at + 2; dot < domainEnd; dot++) {
      if (line[dot] !== '.') continue;
      const tld = scanWhile(line, dot + 1, /\w/);
      if (tld - dot - 1 >= 2) {
        if (tld <= wrote - 1) return true;
        break;
      }
    }
  }
  return false;
}

function isWordChar(char: string | undefined): boolean {
  return char !== undefined && /\w/.test(char);
}

function scanWhile(text: string, from: number, allowed: RegExp): number {
  let i = from;
  while (i < text.length && allowed.test(text[i] as string)) i++;
  return i;
}
