// html-to-markdown: the text of an HTML-only message, as Markdown. Input: untrusted HTML. Pure.
import { createRequire } from 'node:module';
import type TurndownService from 'turndown';

const require = createRequire(import.meta.url);

/**
 * The converter with intake's rules, made at the first HTML message: turndown and its DOM take about
 * 50 ms to load, which every `intake deliver` of a plain-text message and every command would pay.
 */
function createTurndown(): TurndownService {
  const turndown = new (require('turndown') as typeof TurndownService)({
    headingStyle: 'atx',
    emDelimiter: '*',
    codeBlockStyle: 'fenced',
    bulletListMarker: '-',
    // Outlook's marker is an empty element, which turndown hands here rather than to the rules.
    blankReplacement: (_content, node) => (isOutlookOriginal(node as unknown as MailElement) ? `\n\n${QUOTED_FROM_HERE}\n\n` : (node as unknown as { isBlock: boolean }).isBlock ? '\n\n' : ''),
  });
  // What people type in an HTML mail ("### heading", "**bold**") is already Markdown; escaping it would
  // turn their formatting into literal characters. Only what would read as a tag is kept as text: an
  // `&lt;img ...&gt;` the sender saw as text must not become HTML in the note.
  turndown.escape = (text: string) => text.replace(/<(?=[A-Za-z/!?])/g, '&lt;');
  turndown.remove(['style', 'script', 'head', 'title']);
  // Mail tables are layout more often than data: each row becomes one line of tab-separated cells, as
  // GitLab does, rather than a Markdown table that layout tables would turn into noise.
  turndown.addRule('tableCell', {
    filter: ['td', 'th'],
    replacement: (content) => `${content.trim()}\t`,
  });
  turndown.addRule('tableRow', {
    filter: 'tr',
    replacement: (content) => {
      const cells = content.split('\t').map((cell) => cell.trim()).filter((cell) => cell !== '');
      // Cells holding paragraphs (a layout table around a whole message) stay paragraphs.
      return cells.some((cell) => cell.includes('\n')) ? `\n\n${cells.join('\n\n')}\n\n` : `${cells.join('\t')}\n`;
    },
  });
  // As GitLab: a quotation in HTML mail is text of the message, not a quote for the trimmer to cut.
  turndown.addRule('blockquote', {
    filter: 'blockquote',
    replacement: (content) => `\n\n${content.trim()}\n\n`,
  });
  // But the quotation a mail client adds under a reply is marked as one, and is a quote for the trimmer
  // (which keeps it, collapsed): as text it would stay in the note, and a command in it would run.
  // Gmail, Yahoo, Apple Mail and Thunderbird put it in an element of its own, with its attribution line.
  // Only the outermost is marked: one `> ` level is enough for the trimmer, and one per level would
  // make deep nesting cost its depth squared.
  turndown.addRule('replyQuote', {
    filter: (node) => isReplyQuote(node) && !insideReplyQuote(node),
    replacement: (content) => `\n\n${quoted(content.trim())}\n\n`,
  });
  // Outlook puts the original after a header block (From:, Sent:, ...) in no element of its own: the
  // block and everything after it are the quotation.
  turndown.addRule('outlookOriginal', {
    filter: (node) => isOutlookOriginal(node),
    replacement: (content) => `\n\n${QUOTED_FROM_HERE}\n\n${content}\n\n`,
  });
  // Preformatted text without <code> (psql output, logs) is a code block too: as plain lines, a row of
  // `----+----` would read as a signature delimiter and cut the reply there.
  turndown.addRule('preformatted', {
    filter: (node) => node.nodeName === 'PRE' && !(node.firstChild && node.firstChild.nodeName === 'CODE'),
    replacement: (_content, node) => {
      const text = ((node as unknown as { textContent: string | null }).textContent ?? '').replace(/\n+$/, '');
      // Longer than any run of backticks in it, so no line of the text can close the block.
      const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
      const fence = '`'.repeat(Math.max(3, longest + 1));
      return `\n\n${fence}\n${text}\n${fence}\n\n`;
    },
  });
  // <details> stays a <details> block, which Markdown renders as it was meant; its content is converted
  // like the rest (kept as HTML, it would carry any script or handler the sender put in it).
  turndown.addRule('details', {
    filter: 'details',
    replacement: (content, node) => {
      const summary = childElements(node as unknown as MailElement).find((child) => child.nodeName === 'SUMMARY');
      const title = summary ? textOf(summary).replace(/\s+/g, ' ').trim().replace(/&/g, '&amp;').replace(/</g, '&lt;') : '';
      return `\n\n<details>${title ? `<summary>${title}</summary>` : ''}\n\n${content.trim()}\n\n</details>\n\n`;
    },
  });
  turndown.addRule('summary', { filter: 'summary', replacement: () => '' });
  // Links and images are kept for the schemes mail uses; a `javascript:` or `data:` one keeps its text.
  turndown.addRule('unsafeLink', {
    filter: (node) => node.nodeName === 'A' && !isSafeUrl(node.getAttribute('href')),
    replacement: (content) => content,
  });
  turndown.addRule('unsafeImage', {
    filter: (node) => node.nodeName === 'IMG' && !isSafeUrl(node.getAttribute('src')),
    replacement: () => '',
  });
  // turndown numbers an ordered item by searching its siblings for it, which made a list of 100,000
  // items take 12 s: the numbers of a list are found once.
  turndown.addRule('listItem', {
    filter: 'li',
    replacement: (content, node, options) => {
      const item = node as unknown as MailElement;
      const parent = item.parentNode;
      let prefix = `${options.bulletListMarker}   `;
      if (parent?.nodeName === 'OL') {
        const start = Number(parent.getAttribute?.('start'));
        prefix = `${(Number.isSafeInteger(start) && parent.getAttribute?.('start') ? start : 1) + itemIndex(parent, item)}.  `;
      }
      const isParagraph = content.endsWith('\n');
      const body = content.replace(/^\n+|\n+$/g, '') + (isParagraph ? '\n' : '');
      return prefix + body.replace(/\n/g, `\n${' '.repeat(prefix.length)}`) + (item.nextSibling ? '\n' : '');
    },
  });
  turndown.addRule('table', {
    filter: 'table',
    replacement: (content) => `\n\n${content.replace(/^\n+|\n+$/g, '')}\n\n`,
  });
  return turndown;
}

let turndown: TurndownService | undefined;

/** A character no mail contains (private use): where Outlook's quotation starts, in the Markdown. */
const QUOTED_FROM_HERE = '\uE000intake-quote\uE000';

const REPLY_QUOTE_CLASSES = ['yahoo_quoted', 'moz-cite-prefix'];

/** The little of a DOM element the rules read (turndown's parser gives a full one). */
interface MailElement {
  nodeName: string;
  nodeType: number;
  id?: string;
  nextSibling: MailElement | null;
  parentNode: MailElement | null;
  childNodes?: ArrayLike<MailElement>;
  textContent?: string | null;
  getAttribute?(name: string): string | null;
}

function childElements(node: MailElement): MailElement[] {
  const children: MailElement[] = [];
  const nodes = node.childNodes ?? [];
  for (let i = 0; i < nodes.length; i++) if ((nodes[i] as MailElement).nodeType === 1) children.push(nodes[i] as MailElement);
  return children;
}

function textOf(node: MailElement): string {
  return node.textContent ?? '';
}

const itemIndexes = new WeakMap<MailElement, Map<MailElement, number>>();

/** The position of an item among its list's items (elements), counted once per list. */
function itemIndex(list: MailElement, item: MailElement): number {
  let indexes = itemIndexes.get(list);
  if (!indexes) {
    indexes = new Map(childElements(list).map((child, i) => [child, i]));
    itemIndexes.set(list, indexes);
  }
  return indexes.get(item) ?? 0;
}

/** No scheme (relative, a fragment) or one mail uses; `javascript:`, `data:`, `vbscript:`... are not. */
function isSafeUrl(url: string | null | undefined): boolean {
  if (!url) return true;
  // Browsers ignore control characters and blanks inside a scheme (`java\tscript:`).
  // eslint-disable-next-line no-control-regex -- control characters are what is being removed
  const bare = url.replace(/[\u0000-\u0020\u007f]/g, '');
  // Markdown decodes entities in a link: `javascript&colon;` is `javascript:` to the renderer.
  if (/^[^/?#]*&/.test(bare)) return false;
  const scheme = /^([^:/?#]*):/.exec(bare)?.[1]?.toLowerCase();
  return scheme === undefined || ['http', 'https', 'mailto', 'ftp', 'cid', 'tel'].includes(scheme);
}

function classesOf(node: MailElement): string[] {
  return (node.getAttribute?.('class') ?? '').split(/\s+/);
}

/**
 * Gmail's reply quote is its `blockquote.gmail_quote`, with the `gmail_attr` line before it; a Gmail
 * forward has the same container and attribution but no blockquote, and stays text.
 */
function isReplyQuote(node: MailElement): boolean {
  if (node.nodeType !== 1) return false;
  const classes = classesOf(node);
  if (node.nodeName === 'BLOCKQUOTE' && (node.getAttribute?.('type')?.toLowerCase() === 'cite' || classes.includes('gmail_quote'))) return true;
  if (classes.includes('gmail_attr')) {
    const next = nextElement(node);
    return next !== null && next.nodeName === 'BLOCKQUOTE' && classesOf(next).includes('gmail_quote');
  }
  return REPLY_QUOTE_CLASSES.some((name) => classes.includes(name));
}

function insideReplyQuote(node: MailElement): boolean {
  for (let parent = node.parentNode; parent; parent = parent.parentNode) if (isReplyQuote(parent)) return true;
  return false;
}

function isOutlookOriginal(node: MailElement): boolean {
  return node.id === 'divRplyFwdMsg' || node.id === 'appendonsend' || (node.nodeName === 'HR' && nextElement(node)?.id === 'divRplyFwdMsg');
}

function nextElement(node: MailElement): MailElement | null {
  let next = node.nextSibling;
  while (next && next.nodeType !== 1) next = next.nextSibling;
  return next;
}

function quoted(markdown: string): string {
  return markdown
    .split('\n')
    .map((line) => (line === '' ? '>' : `> ${line}`))
    .join('\n');
}

/**
 * Deeper than this, HTML is read as plain text: turndown's parser and walk recurse per level (5,000
 * levels overflowed the stack after 0.5 s, 50,000 took 30 s), and no mail client nests this deep
 * (Chrome flattens anything past 512 levels).
 */
const MAX_NESTING = 500;
// Elements that hold nothing, or that the next sibling closes (li after li): they open no level.
const NO_LEVEL = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'param', 'source', 'track', 'wbr', 'p', 'li', 'dt', 'dd', 'option', 'optgroup', 'tr', 'td', 'th', 'thead', 'tbody', 'tfoot']);

// Their content is text to the HTML parser, whatever tags it holds: `<script></div></script>` closes
// nothing, so the scan must not count it either.
const RAW_TEXT = new Set(['script', 'style', 'textarea', 'title', 'xmp', 'noscript', 'iframe', 'noembed', 'noframes']);
const LISTS = new Set(['ul', 'ol', 'menu', 'dir']);
/**
 * turndown's cost is per element (100,000 line breaks took 1.4 s), times the elements around it (each
 * level copies its content), and a list item's content is indented once per list around it. Each tag
 * counts its depth plus the square of its list depth, and past this sum the HTML is read as plain
 * text: 450 levels around 40,000 lines took 3.4 s, 16 lists around 49,000 lines 1.1 s; this is about
 * 1 s. Real mail stays far below: 20,000 tags 30 levels deep are 1,400,000.
 */
const MAX_WORK = 6_000_000;
/** A tag's own cost, in levels: 500,000 line breaks at the top took 4 s, as many as 32 levels each. */
const TAG_WORK = 40;

/**
 * Whether the HTML is too much for turndown, in one pass over the tags: elements nested deeper than
 * max, or more work than MAX_WORK. An end tag
 * closes down to its own, comments and raw text are skipped, and a `<` with no `>` after it ends the
 * scan (no search starts twice).
 */
export function tooDeepToConvert(html: string, max: number = MAX_NESTING): boolean {
  const stack: string[] = [];
  const open = new Map<string, number>();
  let lists = 0;
  let work = 0;
  let lower: string | null = null;
  // The next `>`, found once for all the `<` before it.
  let end = -1;
  for (let at = html.indexOf('<'); at !== -1; ) {
    if (html.startsWith('<!--', at)) {
      // Where the HTML parser ends it: `<!-->` and `<!--->` at once, else at the first `-->` or `--!>`.
      let close: number;
      if (html.startsWith('<!-->', at) || html.startsWith('<!--->', at)) close = html.indexOf('>', at);
      else {
        const plain = html.indexOf('-->', at + 4);
        const bang = html.indexOf('--!>', at + 4);
        close = plain === -1 ? (bang === -1 ? -1 : bang + 3) : bang === -1 || plain < bang ? plain + 2 : bang + 3;
      }
      at = close === -1 ? -1 : html.indexOf('<', close + 1);
      continue;
    }
    if (end < at) end = html.indexOf('>', at);
    if (end === -1) break;
    const match = /^<(\/?)([A-Za-z][\w:-]*)/.exec(html.slice(at, Math.min(end, at + 64)));
    at = html.indexOf('<', at + 1);
    const name = match?.[2]?.toLowerCase();
    if (!name) continue;
    work += TAG_WORK + stack.length + lists * lists;
    if (work > MAX_WORK) return true;
    if (NO_LEVEL.has(name)) continue;
    if (match?.[1] !== '/') {
      if (name === 'plaintext') break;
      // Inside <svg> or <math>, <style> and <script> are elements like any other: their tags count.
      if (RAW_TEXT.has(name) && !(open.get('svg') || open.get('math'))) {
        lower ??= html.toLowerCase();
        const close = lower.indexOf(`</${name}`, end);
        at = close;
        continue;
      }
      stack.push(name);
      open.set(name, (open.get(name) ?? 0) + 1);
      if (stack.length > max) return true;
      if (LISTS.has(name)) lists++;
    } else if ((open.get(name) ?? 0) > 0) {
      for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
        open.set(top, (open.get(top) ?? 1) - 1);
        if (LISTS.has(top)) lists--;
        if (top === name) break;
      }
    }
  }
  return false;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/** The text of HTML too deep to convert: tags as line breaks, the common entities decoded. */
function plainTextOf(html: string): string {
  return html
    // A tag ends at its `>`, or at the next `<`: a stray `<` never makes the search run to the end.
    .replace(/<[^<>]*>?/g, '\n')
    .replace(/&(amp|lt|gt|quot|apos|nbsp);/g, (_, name: string) => ENTITIES[name] as string)
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join('\n');
}

/** @example htmlToMarkdown('<p>Hi <b>there</b></p>') // 'Hi **there**' */
export function htmlToMarkdown(html: string): string {
  if (tooDeepToConvert(html, MAX_NESTING)) return plainTextOf(html);
  let markdown: string;
  try {
    turndown ??= createTurndown();
    markdown = turndown.turndown(html);
  } catch (error) {
    // Whatever the scan above missed (a stack overflow in the parser): the text is still the message.
    if (!(error instanceof RangeError)) throw error;
    return plainTextOf(html);
  }
  const quoteAt = markdown.indexOf(QUOTED_FROM_HERE);
  if (quoteAt !== -1) markdown = `${markdown.slice(0, quoteAt)}${quoted(markdown.slice(quoteAt).replaceAll(QUOTED_FROM_HERE, '').trim())}`;
  return markdown
    .split('\n')
    .map((line) => line.replace(/[ \t]+$/, ''))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
