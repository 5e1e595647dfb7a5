// authenticate: who really sent a message: SPF for the client, DKIM signatures and DMARC for each From
// domain (mailauth), and whether INTAKE_AUTHENTICATION=enforce refuses it. Input: untrusted message and
// envelope. Side effects: DNS queries.
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { Readable } from 'node:stream';
import { dkimVerify, dmarc, spf, type DKIMResult, type DMARCResult, type SPFResult } from 'mailauth';
import { getDomain } from 'tldts';
import { headerBlock, type HeaderBlock, type HeaderLimits } from './header-block.js';
import { rawPieces, readAuthors, UnparsableMessageError, withoutLeadingEmptyLines, type RawMessage } from './parse.js';

export type AuthenticationMode = 'off' | 'record' | 'enforce';

/**
 * A header longer than this is not handed to mailauth, whose header parser takes time that grows with
 * the square of the lines of a folded header (16,000 lines: about 0.3 s, all of it without a pause for
 * the other sessions), and which verifies every signature, each perhaps over a hash of the whole body
 * of its own (`l=`): 3,640 of them took 43 s over 5 MB. Real mail has tens to a few hundred lines and a
 * few signatures (Postfix keeps 100 KB of a header).
 */
export const AUTHENTICATED_HEADER: HeaderLimits = {
  maxLines: 4000,
  maxBytes: 256 * 1024,
  maxSignatures: 10,
  maxAuthorFieldBytes: 8 * 1024,
  maxSignatureBytes: 32 * 1024,
  maxSignatureColons: 500,
  // intake's parser refuses a longer header (mailsplit's 1 MiB of header).
  scanBytes: 1024 * 1024,
};

/** What of a message mailauth hashes at a time, the SMTP thread serving other sessions in between. */
const HASH_SLICE_BYTES = 64 * 1024;

/** Distinct domains among the author's addresses past which none is checked: each costs a DMARC lookup or two. */
const MAX_AUTHOR_DOMAINS = 10;

/**
 * The share of the time allowed that lookups which cannot make DMARC pass may take, all together: the
 * keys of other domains' signatures, SPF of a MAIL FROM of another domain, PTR. Whoever runs those
 * domains can make them slow, and would otherwise run the check out of time: real mail that carries a
 * slow third party's signature would then be deferred (see Progress).
 */
const FOREIGN_SHARE = 0.25;

/** Why enforce mode refuses a message. */
export type AuthenticationRefusal =
  | { reason: 'dmarc'; domain: string }
  /** What of the header was past a limit, and is not read. */
  | { reason: 'header'; detail: string }
  /** The check did not finish, and this author's domain publishes p=reject: the sender tries again later. */
  | { reason: 'unfinished'; domain: string }
  /** More than one From field: intake reads the first, a reader of the message may be shown another. */
  | { reason: 'multiple_from'; fields: number };

/** What was found, as stored in inbound_messages (a structured clone crosses to the writer thread). */
export interface Authentication {
  /** SPF of the client for MAIL FROM (or HELO for the null sender); null when the client is not known. */
  spf: string | null;
  /** 'pass' if any signature verified, 'none' when there is none, else the first signature's result. */
  dkim: string;
  /** DMARC of the From domains (the worst of them); null without a From domain. */
  dmarc: string | null;
  /** The Authentication-Results header's value (RFC 8601) that says all of it, with this host as authserv-id. */
  results: string;
  /** Set when enforce mode refuses the message. */
  refusal: AuthenticationRefusal | null;
}

export interface AuthenticationRequest {
  raw: RawMessage;
  envelope: { mailFrom: string | null; remoteAddress?: string | null; helo?: string | null; relayed?: boolean };
}

export type Authenticator = (request: AuthenticationRequest) => Promise<Authentication>;

export interface AuthenticatorOptions {
  mode: Exclude<AuthenticationMode, 'off'>;
  /** IP or IP:PORT of the resolvers to ask; empty for the system's (/etc/resolv.conf). */
  dnsServers: string[];
  /** The whole check of one message; past it, it counts as a temporary DNS error. */
  timeoutMs: number;
  /** The authserv-id of the Authentication-Results it records. */
  hostname: string;
}

type DnsLookup = (name: string, type: string) => Promise<string[] | string[][]>;

/**
 * Errors passed on as they are: no such name or record, and those that say a lookup may work later
 * (temperror). Any other says the name cannot be one (EBADNAME: a selector with a space in it) and is
 * passed on as no such name, or a forger's signature naming the From domain would count as temporary.
 */
const PASSED_ON_DNS = new Set(['ENOTFOUND', 'ENODATA', 'ETIMEOUT', 'ESERVFAIL', 'ECONNREFUSED', 'EREFUSED', 'ECANCELLED', 'EDESTRUCTION']);

export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  // A quarter of the budget for a query's first try (c-ares doubles it for the second).
  const dns = new Resolver({ timeout: Math.max(50, Math.floor(options.timeoutMs / 4)), tries: 2 });
  if (options.dnsServers.length > 0) dns.setServers(options.dnsServers);
  return async (request) => {
    const pieces = withoutLeadingEmptyLines(rawPieces(request.raw));
    const header = headerBlock(pieces, AUTHENTICATED_HEADER);
    const input = Readable.from(slices(pieces));
    const lookups = new Lookups(dns, options.timeoutMs * FOREIGN_SHARE);
    const progress: Progress = { rejecting: null };
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<Authentication>((resolve) => {
      timer = setTimeout(() => {
        // The message goes on to the writer, which takes its memory: nothing may read it after this.
        input.destroy();
        resolve(unfinished(options, progress, `DNS did not answer within ${options.timeoutMs} ms`));
      }, options.timeoutMs);
    });
    // A check that throws (a library's bug on some input) is one that did not finish.
    const checked = (
      header.fromFields > 1 && options.mode === 'enforce'
        ? checkClientOnly(`${header.fromFields} From fields`, { reason: 'multiple_from', fields: header.fromFields }, request.envelope, lookups, options)
        : header.over
          ? checkOverLimit(header, request.envelope, lookups, options, progress)
          : check(header, input, request.envelope, lookups, options, progress)
    ).catch(
      (error: unknown) => unfinished(options, progress, `not checked: ${(error as Error)?.message ?? String(error)}`),
    );
    try {
      return await Promise.race([checked, deadline]);
    } finally {
      lookups.finished = true;
      clearTimeout(timer);
      input.destroy();
    }
  };
}

/**
 * What is known before the check ends: an author's domain that publishes p=reject for all its mail.
 * A check that does not finish then defers the message rather than take it: a forger could slow it
 * down on purpose (its own domains' DNS), and a real sender tries again.
 */
interface Progress {
  rejecting: string | null;
}

/** The message in slices with a pause after each, so that hashing 25 MB does not hold the thread for a second. */
async function* slices(pieces: readonly Buffer[]): AsyncGenerator<Buffer> {
  for (const piece of pieces) {
    for (let at = 0; at < piece.length; at += HASH_SLICE_BYTES) {
      yield piece.subarray(at, at + HASH_SLICE_BYTES);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

/**
 * A header past the limits: not handed to mailauth. Refused in enforce mode when an author's domain
 * publishes p=reject, which the domain's owner asked for and a forger could otherwise get by with a
 * large enough header; when its author cannot even be read cheaply (a From field past its limit), in
 * any case.
 */
async function checkOverLimit(
  header: HeaderBlock,
  envelope: AuthenticationRequest['envelope'],
  lookups: Lookups,
  options: AuthenticatorOptions,
  progress: Progress,
): Promise<Authentication> {
  const over = overLimit(header);
  const refusal = { reason: 'header' as const, detail: over };
  if (options.mode !== 'enforce') return checkClientOnly(over, null, envelope, lookups, options);
  if (!header.complete || header.authorFieldBytes > AUTHENTICATED_HEADER.maxAuthorFieldBytes) return checkClientOnly(over, refusal, envelope, lookups, options);
  let domains: string[];
  try {
    domains = authorDomains(await readAuthors(authorHeader(header)));
  } catch (error) {
    if (!(error instanceof UnparsableMessageError)) throw error;
    return checkClientOnly('header unparsable', null, envelope, lookups, options);
  }
  if (domains.length > MAX_AUTHOR_DOMAINS) return checkClientOnly(over, refusal, envelope, lookups, options);
  await Promise.all(probePolicies(domains, lookups, progress));
  return checkClientOnly(over, progress.rejecting ? refusal : null, envelope, lookups, options);
}

/** The From and Sender fields alone, as a header: reading the others (40,000 addresses in To) costs more than any check. */
function authorHeader(header: HeaderBlock): Buffer {
  return Buffer.concat([...header.authorFields, Buffer.from('\r\n')]);
}

/** The domains DMARC is asked about: of the author as intake reads it, From's addresses, else Sender's. */
function authorDomains(authors: { from: string[]; sender: string | null }): string[] {
  const claimed = authors.from.length > 0 ? authors.from : authors.sender ? [authors.sender] : [];
  return [...new Set(claimed.map(domainOf).filter((domain) => domain !== ''))];
}

/** Asks each domain's DMARC policy; one of reject for all its mail is noted in progress as soon as it is known. */
function probePolicies(domains: string[], lookups: Lookups, progress: Progress): Promise<void>[] {
  return domains.map((domain) =>
    dmarc({ headerFrom: [`postmaster@${domain}`], spfDomains: [], dkimDomains: [], resolver: lookups.own }).then(
      (policy) => {
        if (policy && rejectsAll(policy)) progress.rejecting ??= policy.domain;
      },
      () => undefined,
    ),
  );
}

/** What a header past the limits is refused for, as the reason will say. */
function overLimit(block: HeaderBlock): string {
  const limits = AUTHENTICATED_HEADER;
  if (block.signatures > limits.maxSignatures) return `${block.signatures} signatures, over ${limits.maxSignatures}`;
  if (block.authorFieldBytes > limits.maxAuthorFieldBytes) return `a From or Sender field of ${block.authorFieldBytes} bytes, over ${limits.maxAuthorFieldBytes}`;
  if (block.signatureBytes > limits.maxSignatureBytes) return `${block.signatureBytes} bytes of signature fields, over ${limits.maxSignatureBytes}`;
  if (block.signatureColons > limits.maxSignatureColons) return `${block.signatureColons} colons in signature fields (names signed), over ${limits.maxSignatureColons}`;
  if (!block.complete) return `over ${limits.scanBytes} bytes`;
  if (block.lines > limits.maxLines) return `${block.lines} lines, over ${limits.maxLines}`;
  return `${block.bytes} bytes, over ${limits.maxBytes}`;
}

/** One message's DNS lookups: those that can decide DMARC, and the others, which share a budget. */
class Lookups {
  /** Once the message has been answered, what is still being worked out asks DNS nothing more. */
  finished = false;
  private readonly foreignUntil: number;

  constructor(
    private readonly dns: Resolver,
    foreignBudgetMs: number,
  ) {
    this.foreignUntil = Date.now() + foreignBudgetMs;
  }

  readonly own: DnsLookup = async (name, type) => {
    if (this.finished) throw dnsError('ECANCELLED', 'the message was answered already');
    try {
      return (await this.dns.resolve(name, type)) as string[] | string[][];
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      throw PASSED_ON_DNS.has(code) ? error : dnsError('ENOTFOUND', `${name}: ${code || (error as Error).message}`);
    }
  };

  readonly foreign: DnsLookup = (name, type) => {
    const left = this.foreignUntil - Date.now();
    if (left <= 0) return Promise.reject(dnsError('ETIMEOUT', `${name}: not asked, out of time for other domains`));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(dnsError('ETIMEOUT', `${name}: out of time for other domains`)), left);
    });
    return Promise.race([this.own(name, type), late]).finally(() => clearTimeout(timer));
  };
}

function dnsError(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

async function check(
  header: HeaderBlock,
  input: Readable,
  envelope: AuthenticationRequest['envelope'],
  lookups: Lookups,
  options: AuthenticatorOptions,
  progress: Progress,
): Promise<Authentication> {
  let authors: { from: string[]; sender: string | null };
  try {
    authors = await readAuthors(authorHeader(header));
  } catch (error) {
    if (!(error instanceof UnparsableMessageError)) throw error;
    // Refused as unparsable whatever is found here.
    return checkClientOnly('header unparsable', null, envelope, lookups, options);
  }
  // DMARC is asked for the domains intake takes the author from, read as intake reads them (a
  // reading of its own could differ: a group, an encoded address, a quoted @).
  const fromDomains = authorDomains(authors);
  if (fromDomains.length > MAX_AUTHOR_DOMAINS) {
    const over = `${fromDomains.length} author domains, over ${MAX_AUTHOR_DOMAINS}`;
    return checkClientOnly(over, options.mode === 'enforce' ? { reason: 'header', detail: over } : null, envelope, lookups, options);
  }
  // Each author's domain's policy, asked at once: known by the deadline, it decides what an unfinished check does.
  void probePolicies(fromDomains, lookups, progress);
  const ours = (domain: string) => fromDomains.some((from) => sameOrganization(from, domain));
  const keyLookup: DnsLookup = (name, type) => {
    const signer = /\._domainkey\.(.+)$/i.exec(name)?.[1];
    return signer !== undefined && ours(signer) ? lookups.own(name, type) : lookups.foreign(name, type);
  };
  // Independent of each other: their queries go out together.
  const [dkim, spfResult] = await Promise.all([
    dkimVerify(input, { resolver: keyLookup, sender: envelope.mailFrom || undefined }).catch((error: unknown) => ({ failed: (error as Error)?.message ?? String(error) })),
    checkSpf(envelope, ours, lookups, options),
  ]);
  // mailauth threw on a signature (a time past year 275760): none of them counts as passed.
  const signatures = 'failed' in dkim ? [] : (dkim.results ?? []);
  // A signature of part of the body (l=) vouches for none of what follows it, which may be anything.
  const dkimDomains = signatures
    .filter((r) => r.status.result === 'pass' && !r.status.underSized)
    .map((r) => ({ id: r.id, domain: r.signingDomain, aligned: r.status.aligned, underSized: r.status.underSized }));
  const spfDomains = spfResult?.status.result === 'pass' ? [spfResult.domain] : [];
  // And those of any other From field, which intake does not read (mailparser takes the first) but a
  // reader of the stored message might: RFC 5322 allows one.
  const domains = [...new Set([...fromDomains, ...('failed' in dkim ? [] : (dkim.headerFrom ?? [])).map(domainOf).filter((domain) => domain !== '')])];
  const dmarcResults = (
    await Promise.all(domains.map((domain) => dmarc({ headerFrom: [`postmaster@${domain}`], spfDomains, dkimDomains, resolver: lookups.own })))
  ).filter((r): r is DMARCResult => Boolean(r));
  const found: Checked = {
    spf: spfResult ? { result: spfResult.status.result, domain: spfResult.domain } : null,
    dkim: signatures.map((r) => ({ result: r.status.result, domain: r.signingDomain ?? '' })),
  };
  const refused = dmarcResults.find((r) => refusesFor(options.mode, r, found));
  const dkimInfo = 'failed' in dkim ? [`dkim=permerror (not verified: ${dkim.failed.replace(/[()\\]/g, '')})`] : signatures.map((r) => r.info);
  const parts = [...dkimInfo, ...(spfResult ? [spfResult.info] : []), ...dmarcResults.map((r) => r.info)];
  return {
    spf: found.spf?.result ?? null,
    dkim: 'failed' in dkim ? 'permerror' : dkimSummary(signatures),
    dmarc: worst(dmarcResults.map((r) => r.status.result)),
    results: `${options.hostname}; ${parts.length > 0 ? parts.join('; ') : 'none'}`,
    refusal: refused ? { reason: 'dmarc', domain: refused.domain } : null,
  };
}

/** A header not read (past the limits, unparsable): SPF, which needs none of it, and nothing else. */
async function checkClientOnly(
  why: string,
  refusal: AuthenticationRefusal | null,
  envelope: AuthenticationRequest['envelope'],
  lookups: Lookups,
  options: AuthenticatorOptions,
): Promise<Authentication> {
  // Only for the record, so on the budget of lookups that decide nothing.
  const spfResult = await checkSpf(envelope, () => false, lookups, options);
  const note = why === 'header unparsable' ? why : `header not read: ${why}`;
  return {
    spf: spfResult?.status.result ?? null,
    dkim: 'permerror',
    dmarc: 'permerror',
    results: `${options.hostname}; dkim=permerror (${note})${spfResult ? `; ${spfResult.info}` : ''}; dmarc=permerror (${note})`,
    refusal,
  };
}

/**
 * SPF for the client, or null when it is not known. Its lookups are the author's (`ours`) when the
 * domain it judges (MAIL FROM's, or HELO's for the null sender) could make DMARC pass; else they go on
 * the budget of the others. The sender's domain and HELO name go in their xn-- form (mailauth takes no
 * other; it takes a MAIL FROM without @ for a domain). A PTR lookup that fails is no match (RFC 7208
 * 5.5): the reverse zone is the client's, and mailauth would make its failure a temperror of the
 * sender's SPF.
 */
function checkSpf(envelope: AuthenticationRequest['envelope'], ours: (domain: string) => boolean, lookups: Lookups, options: AuthenticatorOptions): Promise<SPFResult> | null {
  const client = clientForSpf(envelope);
  if (!client) return null;
  const mailFrom = envelope.mailFrom || null;
  const at = mailFrom ? mailFrom.lastIndexOf('@') : -1;
  const domain = mailFrom ? asciiDomain(mailFrom.slice(at + 1)) : null;
  const sender = mailFrom ? (at === -1 ? domain : `${mailFrom.slice(0, at)}@${domain}`) : undefined;
  const helo = client.helo.startsWith('[') ? client.helo : asciiDomain(client.helo);
  const lookup = ours(domain ?? (helo.startsWith('[') ? '' : helo)) ? lookups.own : lookups.foreign;
  const resolver: DnsLookup = (name, type) => (type === 'PTR' ? lookups.foreign(name, type).catch(() => []) : lookup(name, type));
  return spf({ sender: sender ?? undefined, ip: client.ip, helo, mta: options.hostname, resolver });
}

/**
 * The client whose address SPF judges, or null when it is not known: the SMTP client, the client a
 * trusted relay named with XCLIENT or XFORWARD, the one `intake deliver --client-address` names; never
 * a relay's own address (an LMTP client, a trusted relay that named no client). Without a HELO name,
 * or with an address for one, the address literal (`[192.0.2.1]`), as mailauth's authenticate() does.
 * @example clientForSpf({ mailFrom: '', remoteAddress: '192.0.2.1', helo: 'mx.example.org' }) // { ip: '192.0.2.1', helo: 'mx.example.org' }
 */
export function clientForSpf(envelope: AuthenticationRequest['envelope']): { ip: string; helo: string } | null {
  const ip = envelope.remoteAddress;
  if (!ip || envelope.relayed) return null;
  const helo = envelope.helo || ip;
  return { ip, helo: isIP(helo) ? `[${helo}]` : helo };
}

/** What SPF (null: not asked) and each DKIM signature found, and for which domain. */
export interface Checked {
  spf: { result: string; domain: string } | null;
  dkim: { result: string; domain: string }[];
}

/**
 * Whether a DMARC result refuses the message: in enforce mode, a failure under a policy of reject
 * applied to all of the domain's mail (pct=100, the default; a smaller pct asks for a sample, and
 * intake does not sample, so such mail is taken, as under quarantine). Not when the failure may be
 * ours rather than the sender's: SPF could not be asked (the client behind a relay is not known, and a
 * domain may send with SPF alone), or SPF or a signature that could have passed for the From domain (of
 * the same organizational domain) could not be looked up (temperror). Lookups of other domains'
 * records do not count: whoever runs a domain can make them fail at will.
 */
export function refusesFor(mode: AuthenticationMode, result: Pick<DMARCResult, 'status' | 'policy' | 'pct' | 'domain' | 'rr'>, found: Checked): boolean {
  if (mode !== 'enforce' || result.status.result !== 'fail') return false;
  if (!rejectsAll(result)) return false;
  if (!found.spf) return false;
  const couldHavePassed = (check: { result: string; domain: string }) => check.result === 'temperror' && sameOrganization(check.domain, result.domain);
  return !couldHavePassed(found.spf) && !found.dkim.some(couldHavePassed);
}

/** A policy of reject for all of the domain's mail. */
function rejectsAll(result: Pick<DMARCResult, 'policy' | 'pct' | 'rr'>): boolean {
  return String(result.policy ?? '').trim().toLowerCase() === 'reject' && percentage(result) >= 100;
}

/**
 * The share of mail a DMARC policy applies to: its pct, 100 when absent or not a number from 0 to 100
 * (mailauth reads `pct=abc` as 0, which would leave the policy unapplied).
 */
function percentage(result: Pick<DMARCResult, 'pct' | 'rr'>): number {
  if (result.rr === undefined) return result.pct ?? 100;
  const tag = /(?:^|;)\s*pct\s*=\s*([^;]*)/i.exec(result.rr)?.[1]?.trim();
  return tag !== undefined && /^\d{1,3}$/.test(tag) && Number(tag) <= 100 ? Number(tag) : 100;
}

/** Relaxed DMARC alignment (RFC 7489 3.1): the same organizational domain, by the public suffix list. */
export function sameOrganization(a: string, b: string): boolean {
  const organization = (domain: string) => {
    const bare = asciiDomain(domain);
    return getDomain(bare, { allowPrivateDomains: true }) ?? bare;
  };
  return a !== '' && b !== '' && organization(a) === organization(b);
}

/** A domain as DNS has it: lower case, no final dot, an internationalised one in its xn-- form. */
function asciiDomain(domain: string): string {
  const bare = domain.trim().replace(/\.$/, '');
  return (domainToASCII(bare) || bare).toLowerCase();
}

const SEVERITY = ['fail', 'temperror', 'permerror', 'neutral', 'none', 'pass'];

/** The one DMARC result stored for several From domains: a failure of any, else the least good. */
function worst(results: string[]): string | null {
  if (results.length === 0) return null;
  return [...results].sort((a, b) => rank(a) - rank(b))[0] as string;
}

function rank(result: string): number {
  const at = SEVERITY.indexOf(result);
  return at === -1 ? SEVERITY.length - 2 : at;
}

function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? '' : asciiDomain(address.slice(at + 1));
}

function dkimSummary(results: DKIMResult[]): string {
  if (results.some((r) => r.status.result === 'pass')) return 'pass';
  return results[0]?.status.result ?? 'none';
}

function unfinished(options: AuthenticatorOptions, progress: Progress, why: string): Authentication {
  const refusal = options.mode === 'enforce' && progress.rejecting ? { reason: 'unfinished' as const, domain: progress.rejecting } : null;
  return { spf: 'temperror', dkim: 'temperror', dmarc: 'temperror', results: `${options.hostname}; none (${why})`, refusal };
}
