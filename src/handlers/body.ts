// body: GitLab's ReplyParser modes, the text a handler stores: trimmed or whole, with or without the
// trimmed-off quote, all-quoted bodies allowed or not. Input: untrusted mail text. Pure.
import { lfLineEnds, trimLineEnd, trimReply } from '../text/trim-reply.js';

const QUOTED_OR_BLANK = /^\s*(>.*)?$/;

/** GitLab's empty-quote rule: a body of nothing but quotes (and blank lines) says nothing. */
export function isOnlyQuotes(text: string): boolean {
  return text.split('\n').every((line) => QUOTED_OR_BLANK.test(line));
}

function tidy(text: string): string {
  return lfLineEnds(text).split('\n').map(trimLineEnd).join('\n').trim();
}

/** The reply without quote and signature ('' when only quotes are left), and what was cut off. */
export function trimmedBody(text: string): { body: string; elided: string } {
  const { reply, elided } = trimReply(text);
  const body = tidy(reply);
  return isOnlyQuotes(body) ? { body: '', elided: tidy(elided) || body } : { body, elided: tidy(elided) };
}

/** The whole body, quotes included; with `allowOnlyQuotes` an all-quoted forward is kept too. */
export function wholeBody(text: string, options: { allowOnlyQuotes: boolean }): string {
  const body = tidy(text);
  return !options.allowOnlyQuotes && isOnlyQuotes(body) ? '' : body;
}

/** A reply to an issue keeps the trimmed-off quote, collapsed, as GitLab's message_with_appended_reply. */
export function withCollapsedQuote(body: string, elided: string): string {
  return elided ? `${body}\n\n<details><summary>...</summary>\n\n${elided}\n\n</details>` : body;
}
