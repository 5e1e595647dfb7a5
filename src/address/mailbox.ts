// mailbox: when two recipient addresses are the same mailbox: the domain in any case, the local part
// as written, since keys are case-sensitive. Input: untrusted addresses. Pure.

/**
 * The address with its domain in lower case: equal for the same mailbox.
 * @example mailboxOf('incoming+Key@Example.COM') // 'incoming+Key@example.com'
 */
export function mailboxOf(address: string): string {
  const at = address.lastIndexOf('@');
  return address.slice(0, at + 1) + address.slice(at + 1).toLowerCase();
}

/** @example sameMailbox('a+K@X.org', 'a+K@x.org') // true */
export function sameMailbox(a: string, b: string): boolean {
  return a.length === b.length && mailboxOf(a) === mailboxOf(b);
}
