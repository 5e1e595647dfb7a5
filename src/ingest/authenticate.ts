// authenticate: who really sent a message: SPF for the client, DKIM signatures and DMARC for each From
// domain (mailauth), and whether INTAKE_AUTHENTICATION=enforce refuses it. Input: untrusted message and
// envelope. Side effects: DNS queries.
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import { dkimVerify, dmarc, spf, type DKIMResult, type DMARCResult, type SPFResult } from 'mailauth';
import { getDomain } from 'tldts';
import { headerBlock, type HeaderLimits } from './header-block.js';
import { rawPieces, type RawMessage } from './parse.js';

export type AuthenticationMode = 'off' | 'record' | 'enforce';

/**
 * A header longer than this is not handed to mailauth, whose header parser takes time that grows with
 * the square of the lines of a folded header (16,000 lines: about 0.3 s, all of it without a pause for
 * the other sessions). Real mail has tens to a few hundred lines (Postfix keeps 100 KB of a header).
 */
export const AUTHENTICATED_HEADER: HeaderLimits = { maxLines: 4000, maxBytes: 256 * 1024 };

/** Why enforce mode refuses a message. */
export type AuthenticationRefusal =
  | { reason: 'dmarc'; domain: string }
  | { reason: 'header'; lines: number; bytes: number };

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

export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  // A quarter of the budget for a query's first try (c-ares doubles it for the second).
  const dns = new Resolver({ timeout: Math.max(50, Math.floor(options.timeoutMs / 4)), tries: 2 });
  if (options.dnsServers.length > 0) dns.setServers(options.dnsServers);
  return async (request) => {
    const pieces = rawPieces(request.raw);
    const header = headerBlock(pieces, AUTHENTICATED_HEADER);
    const input = Readable.from(pieces);
    let finished = false;
    // Once the message has been answered, what is still being worked out asks DNS nothing more.
    const lookup: DnsLookup = (name, type) =>
      finished ? Promise.reject(Object.assign(new Error('the message was answered already'), { code: 'ECANCELLED' })) : (dns.resolve(name, type) as Promise<string[] | string[][]>);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<Authentication>((resolve) => {
      timer = setTimeout(() => {
        // The message goes on to the writer, which takes its memory: nothing may read it after this.
        input.destroy();
        resolve(unfinished(options.hostname, `DNS did not answer within ${options.timeoutMs} ms`));
      }, options.timeoutMs);
    });
    // A check that throws (a library's bug on some input) must not cost the message: it is taken, and
    // the record says why nothing was found.
    const checked = (header.over ? checkClientOnly(header, request.envelope, lookup, options) : check(input, request.envelope, lookup, options)).catch((error: unknown) =>
      unfinished(options.hostname, `not checked: ${(error as Error)?.message ?? String(error)}`),
    );
    try {
      return await Promise.race([checked, deadline]);
    } finally {
      finished = true;
      clearTimeout(timer);
      input.destroy();
    }
  };
}

async function check(input: Readable, envelope: AuthenticationRequest['envelope'], lookup: DnsLookup, options: AuthenticatorOptions): Promise<Authentication> {
  const sender = envelope.mailFrom || undefined;
  // Independent of each other: their queries go out together.
  const [dkim, spfResult] = await Promise.all([dkimVerify(input, { resolver: lookup, sender }), checkSpf(envelope, lookup, options)]);
  const signatures = dkim.results ?? [];
  const dkimDomains = signatures
    .filter((r) => r.status.result === 'pass')
    .map((r) => ({ id: r.id, domain: r.signingDomain, aligned: r.status.aligned, underSized: r.status.underSized }));
  const spfDomains = spfResult?.status.result === 'pass' ? [spfResult.domain] : [];
  // One result per From domain: mailauth gives none for a From of several addresses (RFC 7489 6.6.1
  // leaves that to the receiver), which would let a forger add a second address to get by.
  const fromDomains = [...new Map((dkim.headerFrom ?? []).map((address) => [domainOf(address), address])).values()];
  const dmarcResults = (await Promise.all(fromDomains.map((address) => dmarc({ headerFrom: [address], spfDomains, dkimDomains, resolver: lookup })))).filter(
    (r): r is DMARCResult => Boolean(r),
  );
  const found: Checked = {
    spf: spfResult ? { result: spfResult.status.result, domain: spfResult.domain } : null,
    dkim: signatures.map((r) => ({ result: r.status.result, domain: r.signingDomain ?? '' })),
  };
  const refused = dmarcResults.find((r) => refusesFor(options.mode, r, found));
  const parts = [...signatures.map((r) => r.info), ...(spfResult ? [spfResult.info] : []), ...dmarcResults.map((r) => r.info)];
  return {
    spf: found.spf?.result ?? null,
    dkim: dkimSummary(signatures),
    dmarc: worst(dmarcResults.map((r) => r.status.result)),
    results: `${options.hostname}; ${parts.length > 0 ? parts.join('; ') : 'none'}`,
    refusal: refused ? { reason: 'dmarc', domain: refused.domain } : null,
  };
}

/** A header too long to read: SPF, which needs none of it, and nothing else. */
async function checkClientOnly(header: { lines: number; bytes: number }, envelope: AuthenticationRequest['envelope'], lookup: DnsLookup, options: AuthenticatorOptions): Promise<Authentication> {
  const spfResult = await checkSpf(envelope, lookup, options);
  const why = `header of over ${AUTHENTICATED_HEADER.maxLines} lines or ${AUTHENTICATED_HEADER.maxBytes} bytes not read`;
  return {
    spf: spfResult?.status.result ?? null,
    dkim: 'permerror',
    dmarc: 'permerror',
    results: `${options.hostname}; dkim=permerror (${why})${spfResult ? `; ${spfResult.info}` : ''}; dmarc=permerror (${why})`,
    // Else a forger could get by enforce with a long enough header.
    refusal: options.mode === 'enforce' ? { reason: 'header', lines: header.lines, bytes: header.bytes } : null,
  };
}

function checkSpf(envelope: AuthenticationRequest['envelope'], lookup: DnsLookup, options: AuthenticatorOptions): Promise<SPFResult> | null {
  const client = clientForSpf(envelope);
  if (!client) return null;
  return spf({ sender: envelope.mailFrom || undefined, ip: client.ip, helo: client.helo, mta: options.hostname, resolver: lookup });
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
export function refusesFor(mode: AuthenticationMode, result: Pick<DMARCResult, 'status' | 'policy' | 'pct' | 'domain'>, found: Checked): boolean {
  if (mode !== 'enforce' || result.status.result !== 'fail') return false;
  if (String(result.policy ?? '').trim().toLowerCase() !== 'reject' || (result.pct !== undefined && result.pct < 100)) return false;
  if (!found.spf) return false;
  const couldHavePassed = (check: { result: string; domain: string }) => check.result === 'temperror' && sameOrganization(check.domain, result.domain);
  return !couldHavePassed(found.spf) && !found.dkim.some(couldHavePassed);
}

/** Relaxed DMARC alignment (RFC 7489 3.1): the same organizational domain, by the public suffix list. */
export function sameOrganization(a: string, b: string): boolean {
  const organization = (domain: string) => {
    const bare = domain.trim().toLowerCase().replace(/\.$/, '');
    return getDomain(bare, { allowPrivateDomains: true }) ?? bare;
  };
  return a !== '' && b !== '' && organization(a) === organization(b);
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
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

function dkimSummary(results: DKIMResult[]): string {
  if (results.some((r) => r.status.result === 'pass')) return 'pass';
  return results[0]?.status.result ?? 'none';
}

function unfinished(hostname: string, why: string): Authentication {
  return { spf: 'temperror', dkim: 'temperror', dmarc: 'temperror', results: `${hostname}; none (${why})`, refusal: null };
}
