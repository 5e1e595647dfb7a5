// branch: whether a mail's text names a git branch: the subject of a new merge request is its source
// branch, a `/target_branch` its target. Input: untrusted text. Pure.

/**
 * A name `git check-ref-format --branch` would take: no blank, control or `~^:?*[\` character, no
 * `..` or `@{`, no part that starts with `.` or ends with `.lock`, and no `/` or `.` at either end.
 * A name a consumer passes to git must not be an option (`-x`) or a path (`../x`) either.
 * @example isBranchName('feature/oil') // true
 * @example isBranchName('../../etc/passwd') // false
 */
export function isBranchName(name: string): boolean {
  if (name.length === 0 || name.length > 255 || name === '@' || name === 'HEAD') return false;
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (/[\u0000-\u0020\u007f~^:?*[\\]/.test(name)) return false;
  if (name.includes('..') || name.includes('@{') || name.includes('//')) return false;
  if (name.startsWith('-') || name.startsWith('/') || name.endsWith('/') || name.endsWith('.')) return false;
  return name.split('/').every((part) => !part.startsWith('.') && !part.endsWith('.lock'));
}
