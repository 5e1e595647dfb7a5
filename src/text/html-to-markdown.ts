// html-to-markdown: the text of an HTML-only message, as Markdown. Input: untrusted HTML. Pure.
import TurndownService from 'turndown';

const turndown = new TurndownService({ headingStyle: 'atx', emDelimiter: '*', codeBlockStyle: 'fenced', bulletListMarker: '-' });
// What people type in an HTML mail ("### heading", "**bold**") is already Markdown; escaping it would
// turn their formatting into literal characters.
turndown.escape = (text: string) => text;
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
// <details> blocks are kept as HTML, which Markdown renders as they were meant.
turndown.keep(['details']);
turndown.addRule('table', {
  filter: 'table',
  replacement: (content) => `\n\n${content.replace(/^\n+|\n+$/g, '')}\n\n`,
});

/** @example htmlToMarkdown('<p>Hi <b>there</b></p>') // 'Hi **there**' */
export function htmlToMarkdown(html: string): string {
  return turndown
    .turndown(html)
    .split('\n')
    .map((line) => line.replace(/[ \t]+$/, ''))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
