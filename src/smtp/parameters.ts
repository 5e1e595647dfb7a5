// parameters: the MAIL FROM and RCPT TO parameters intake takes, which are those of the extensions it
// advertises. smtp-server checks the values of the ones it knows and lets any other name through.
// Input: the parameters smtp-server parsed from an untrusted command. Pure.

/**
 * SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531), and REQUIRETLS (RFC 8689), offered on an
 * encrypted session: intake delivers, never relays, so it keeps the promise by taking the message
 * only over TLS. DSN is not offered, so RET and ENVID are not taken.
 */
export const MAIL_PARAMETERS: ReadonlySet<string> = new Set(['SIZE', 'BODY', 'SMTPUTF8', 'REQUIRETLS']);
/** None: NOTIFY and ORCPT belong to DSN, which intake does not offer. */
export const RCPT_PARAMETERS: ReadonlySet<string> = new Set();

/** Names are cut to this in a reply: a client chooses them, and a reply line is read by people. */
const NAME_CHARS = 40;

/**
 * The name of the first parameter not in `allowed`, or null when all are. `args` is smtp-server's
 * parsed form: false when there are none, else names (upper case) to values (true when bare).
 * @example unsupportedParameter({ SIZE: '100', FOO: 'bar' }, MAIL_PARAMETERS) // 'FOO'
 */
export function unsupportedParameter(args: unknown, allowed: ReadonlySet<string>): string | null {
  if (!args || typeof args !== 'object') return null;
  const name = Object.keys(args).find((key) => !allowed.has(key.toUpperCase()));
  if (name === undefined) return null;
  return name.length > NAME_CHARS ? `${name.slice(0, NAME_CHARS)}...` : name;
}

/**
 * The message size a MAIL FROM declares with SIZE= (RFC 1870), in bytes; 0 when it declares none.
 * smtp-server has checked the value's form and refused one above the limit already.
 * @example declaredSize({ SIZE: '2048', BODY: '8BITMIME' }) // 2048
 */
export function declaredSize(args: unknown): number {
  if (!args || typeof args !== 'object') return 0;
  const value = (args as Record<string, unknown>).SIZE;
  const size = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : 0;
  return Number.isSafeInteger(size) ? size : 0;
}

/**
 * True when an address's local part is not ASCII and the command did not declare SMTPUTF8 (RFC 6531
 * §3.4). Only the local part is looked at: smtp-server hands an xn-- domain over in Unicode.
 * @example undeclaredUtf8('jörg@example.com', false) // true
 */
export function undeclaredUtf8(address: string, smtpUtf8: boolean): boolean {
  if (smtpUtf8) return false;
  const at = address.lastIndexOf('@');
  return !/^\p{ASCII}*$/u.test(at === -1 ? address : address.slice(0, at));
}

/**
 * Whether MAIL FROM's own parameters declare SMTPUTF8. Not session.envelope.smtpUtf8: smtp-server sets
 * that before the MAIL is judged and keeps it after a refused one.
 */
export function declaresUtf8(args: unknown): boolean {
  return typeof args === 'object' && args !== null && (args as Record<string, unknown>).SMTPUTF8 === true;
}
