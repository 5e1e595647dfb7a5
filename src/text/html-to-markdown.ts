// html-to-markdown: the text of an HTML-only message, as Markdown. Input: untrusted HTML. Pure.
import TurndownService from 'turndown';

const turndown = new TurndownService({ headingStyle: 'atx', emDelimiter: '*', codeBlockStyle: 'fenced', bulletListMarker: '-' });
// What people type in an HTML mail ("### heading", "**bold**") is already Markdown; escaping it would
// turn their formatting into literal characters.
turndown.escape = (text: string) => text;
turndown.remove(['style', 'script', 'head', 'title']);

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
