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
  replacement: (content) => `${content.replace(/\s+/g, ' ').trim()}\t`,
});
turndown.addRule('tableRow', {
  filter: 'tr',
  replacement: (content) => `${content.replace(/\t+$/, '')}\n`,
});
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
