// title: the title of an issue or merge request from a mail subject or a /title command. Input:
// untrusted decoded text (an encoded word can hold any character). Pure.

/** GitLab's Issuable::TITLE_LENGTH_MAX, in characters. */
export const TITLE_MAX = 255;

/**
 * One line of at most TITLE_MAX characters: control characters (a line break from an encoded word,
 * NUL, escape sequences) become spaces, runs of space one, and a longer subject is cut at a word
 * where it can be, ending in `…`. '' when nothing is left.
 * @example itemTitle('Order 123\r\nX-Injected: yes') // 'Order 123 X-Injected: yes'
 */
export function itemTitle(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is being removed
  const line = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').replace(/\s+/g, ' ').trim();
  const characters = [...line];
  if (characters.length <= TITLE_MAX) return line;
  const cut = characters.slice(0, TITLE_MAX - 1).join('');
  const atWord = cut.lastIndexOf(' ');
  return `${(atWord > TITLE_MAX * 0.8 ? cut.slice(0, atWord) : cut).trimEnd()}…`;
}
