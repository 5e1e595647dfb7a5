// template: the address template (`incoming+%{key}@example.com`) compiled into a matcher and a formatter.
// Input: untrusted addresses from the network. Pure: no I/O.
import { domainToASCII } from 'node:url';

export const KEY_PLACEHOLDER = '%{key}';

export class TemplateError extends Error {
  override name = 'TemplateError';
}

export type TemplateMatch =
  /** serviceDesk: under the Service Desk alias template (addresses.ts), which names Service Desks alone. */
  | { kind: 'key'; key: string; serviceDesk?: true }
  | { kind: 'mailbox' }
  /** The reserved mailbox every mail server takes (RFC 5321 §4.5.1): bare, or at the template's domain. */
  | { kind: 'postmaster' }
  | { kind: 'foreign_domain'; domain: string }
  | { kind: 'no_match' }
  | { kind: 'no_domain' };

export interface AddressTemplate {
  readonly template: string;
  readonly domain: string;
  readonly hasKey: boolean;
  /** The template with `%{key}` and the separator before it removed: `incoming@example.com`, or null. */
  readonly mailbox: string | null;
  match(address: string): TemplateMatch;
  format(key: string): string;
  /** The Service Desk alias template, when there is one (addresses.ts). */
  readonly serviceDesk?: AddressTemplate | null;
}

const DOMAIN = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const SEPARATORS = '+-_.=';
const ASCII = /^\p{ASCII}*$/u;

/** An internationalised domain in its ASCII form (xn--); '' when it is no domain. */
function asciiDomain(domain: string): string {
  return ASCII.test(domain) ? domain : domainToASCII(domain);
}

/**
 * The domain as compared: in lower case, in its ASCII form. smtp-server hands over an xn-- domain
 * turned into Unicode, and a client may send either.
 */
function comparable(domain: string): string {
  const lower = domain.toLowerCase();
  return asciiDomain(lower) || lower;
}

/**
 * Compiles an address template. The domain is compared case-insensitively; the key is taken
 * verbatim (case-sensitive, greedy, so it may itself hold `+` or `-`), as GitLab does.
 * @example compileTemplate('incoming+%{key}@example.com').match('incoming+abc@EXAMPLE.com') // { kind: 'key', key: 'abc' }
 */
export function compileTemplate(template: string): AddressTemplate {
  const at = template.lastIndexOf('@');
  if (at <= 0 || at === template.length - 1) {
    throw new TemplateError(`address template must look like local@domain, e.g. incoming+${KEY_PLACEHOLDER}@example.com`);
  }
  const local = template.slice(0, at);
  const written = template.slice(at + 1);
  if (written.includes(KEY_PLACEHOLDER)) throw new TemplateError(`${KEY_PLACEHOLDER} must be in the local part, not the domain`);
  // An internationalised domain is used in its ASCII form (xn--), which every MTA can send to.
  const domain = asciiDomain(written);
  if (!DOMAIN.test(domain)) throw new TemplateError(`"${written}" is not a valid domain name`);
  if (local.includes('@')) throw new TemplateError('the local part of the template must not contain "@"');
  if (/[\s<>()[\]\\,;:"]/.test(local)) throw new TemplateError('the local part of the template must not contain spaces or any of <>()[]\\,;:"');
  const first = local.indexOf(KEY_PLACEHOLDER);
  if (first !== local.lastIndexOf(KEY_PLACEHOLDER)) throw new TemplateError(`${KEY_PLACEHOLDER} may appear only once`);
  const lowerDomain = domain.toLowerCase();
  // The mailbox address: the template without its key (and the separator before it).
  const mailboxLocal = first === -1 ? local : withoutSeparator(local.slice(0, first)) + local.slice(first + KEY_PLACEHOLDER.length);
  if (mailboxLocal.toLowerCase() === POSTMASTER) {
    throw new TemplateError(`its mailbox address ${mailboxLocal}@${domain} is postmaster's (RFC 5321 §4.5.1), which is kept for a person to read and never routed; choose another local part`);
  }

  if (first === -1) {
    const mailbox = `${local}@${domain}`;
    return {
      template,
      domain: lowerDomain,
      hasKey: false,
      mailbox,
      match: (address) => {
        const split = splitAddress(address);
        if (!split) return isBarePostmaster(address) ? { kind: 'postmaster' } : { kind: 'no_domain' };
        if (comparable(split.domain) !== lowerDomain) return { kind: 'foreign_domain', domain: split.domain };
        const lowerLocal = split.local.toLowerCase();
        if (lowerLocal === POSTMASTER) return { kind: 'postmaster' };
        return lowerLocal === local.toLowerCase() ? { kind: 'mailbox' } : { kind: 'no_match' };
      },
      format: () => {
        throw new TemplateError(`the template ${template} has no ${KEY_PLACEHOLDER}`);
      },
    };
  }

  const prefix = local.slice(0, first);
  const suffix = local.slice(first + KEY_PLACEHOLDER.length);
  const lowerPrefix = prefix.toLowerCase();
  const lowerSuffix = suffix.toLowerCase();
  const mailbox = mailboxLocal.length > 0 ? `${mailboxLocal}@${domain}` : null;

  return {
    template,
    domain: lowerDomain,
    hasKey: true,
    mailbox,
    match: (address) => {
      const split = splitAddress(address);
      if (!split) return isBarePostmaster(address) ? { kind: 'postmaster' } : { kind: 'no_domain' };
      if (comparable(split.domain) !== lowerDomain) return { kind: 'foreign_domain', domain: split.domain };
      const lowerLocal = split.local.toLowerCase();
      // Before keys: with a catch-all template (`%{key}@domain`) postmaster would read as a key.
      if (lowerLocal === POSTMASTER) return { kind: 'postmaster' };
      if (
        split.local.length > prefix.length + suffix.length &&
        lowerLocal.startsWith(lowerPrefix) &&
        lowerLocal.endsWith(lowerSuffix)
      ) {
        return { kind: 'key', key: split.local.slice(prefix.length, split.local.length - suffix.length) };
      }
      if (mailbox !== null && lowerLocal === mailboxLocal.toLowerCase()) return { kind: 'mailbox' };
      return { kind: 'no_match' };
    },
    format: (key) => `${prefix}${key}${suffix}@${domain}`,
  };
}

/** The prefix before `%{key}` without the sub-address separator it ends with, as the mailbox has it. */
function withoutSeparator(prefix: string): string {
  return prefix.length > 0 && SEPARATORS.includes(prefix.at(-1) as string) ? prefix.slice(0, -1) : prefix;
}

/**
 * RFC 5321 §4.5.1 requires every SMTP server to take mail for postmaster, in any case, at its domain
 * or with none (§4.1.1.3).
 */
const POSTMASTER = 'postmaster';

function isBarePostmaster(address: string): boolean {
  const bare = address.startsWith('<') && address.endsWith('>') ? address.slice(1, -1) : address;
  return bare.toLowerCase() === POSTMASTER;
}

/**
 * Splits at the last `@`, tolerating one pair of angle brackets around the address. A quoted local
 * part is unquoted: `"incoming+key"@example.com` is the same mailbox as `incoming+key@example.com`
 * (RFC 5321 §4.1.2), as Postfix takes it.
 */
export function splitAddress(address: string): { local: string; domain: string } | null {
  const bare = address.startsWith('<') && address.endsWith('>') ? address.slice(1, -1) : address;
  const at = bare.lastIndexOf('@');
  if (at <= 0 || at === bare.length - 1) return null;
  const local = bare.slice(0, at);
  const unquoted = local.length > 2 && local.startsWith('"') && local.endsWith('"') ? local.slice(1, -1).replace(/\\(.)/g, '$1') : local;
  return { local: unquoted, domain: bare.slice(at + 1) };
}

/**
 * The address as a log line may show it: a key is a credential (a reply key, or a user's token in a
 * new-issue address), so only its first four characters are kept. Other addresses stay as they are.
 * @example redactedAddress(compileTemplate('incoming+%{key}@example.com'), 'incoming+0123456789abcdef@example.com') // 'incoming+0123…@example.com'
 */
export function redactedAddress(template: AddressTemplate, address: string): string {
  const match = template.match(address);
  if (match.kind !== 'key') return address;
  return (match.serviceDesk && template.serviceDesk ? template.serviceDesk : template).format(`${match.key.slice(0, 4)}…`);
}
