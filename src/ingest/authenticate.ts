// authenticate: who really sent a message: SPF for the client, DKIM signatures and DMARC for the From
// domain (mailauth), and whether INTAKE_AUTHENTICATION=enforce refuses it. Input: untrusted message and
// envelope. Side effects: DNS queries.
import { Resolver } from 'node:dns/promises';
import { Readable } from 'node:stream';
import { dkimVerify, dmarc, spf, type DKIMResult, type DMARCResult } from 'mailauth';
import { rawPieces, type RawMessage } from './parse.js';

export type AuthenticationMode = 'off' | 'record' | 'enforce';

/** What was found, as stored in inbound_messages (a structured clone crosses to the writer thread). */
export interface Authentication {
  /** SPF of the client for MAIL FROM (or HELO for the null sender); null when the client is not known. */
  spf: string | null;
  /** 'pass' if any signature verified, 'none' when there is none, else the first signature's result. */
  dkim: string;
  /** DMARC of the From domain; null without a From domain. */
  dmarc: string | null;
  /** The Authentication-Results header's value (RFC 8601) that says all of it, with this host as authserv-id. */
  results: string;
  /** Set when enforce mode refuses the message: the From domain, whose DMARC policy is reject. */
  refusedFor: string | null;
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

export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  // A quarter of the budget per try and two tries, so that one slow server leaves time for the rest.
  const dns = new Resolver({ timeout: Math.max(50, Math.floor(options.timeoutMs / 4)), tries: 2 });
  if (options.dnsServers.length > 0) dns.setServers(options.dnsServers);
  const resolver = (name: string, type: string) => dns.resolve(name, type) as Promise<string[] | string[][]>;
  return async (request) => {
    const input = Readable.from(rawPieces(request.raw));
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
    const checked = check(input, request.envelope, resolver, options).catch((error: unknown) => unfinished(options.hostname, `not checked: ${(error as Error)?.message ?? String(error)}`));
    try {
      return await Promise.race([checked, deadline]);
    } finally {
      clearTimeout(timer);
    }
  };
}

async function check(
  input: Readable,
  envelope: AuthenticationRequest['envelope'],
  resolver: (name: string, type: string) => Promise<string[] | string[][]>,
  options: AuthenticatorOptions,
): Promise<Authentication> {
  const sender = envelope.mailFrom || undefined;
  const client = clientForSpf(envelope);
  // Independent of each other: their queries go out together.
  const [dkim, spfResult] = await Promise.all([
    dkimVerify(input, { resolver, sender }),
    client ? spf({ sender, ip: client.ip, helo: client.helo ?? undefined, mta: options.hostname, resolver }) : null,
  ]);
  const passed = (dkim.results ?? []).filter((r) => r.status.result === 'pass');
  const dmarcResult =
    dkim.headerFrom && dkim.headerFrom.length > 0
      ? await dmarc({
          headerFrom: dkim.headerFrom,
          spfDomains: spfResult?.status.result === 'pass' ? [spfResult.domain] : [],
          dkimDomains: passed.map((r) => ({ id: r.id, domain: r.signingDomain, aligned: r.status.aligned, underSized: r.status.underSized })),
          resolver,
        })
      : false;
  const parts = [...(dkim.results ?? []).map((r) => r.info), ...(spfResult ? [spfResult.info] : []), ...(dmarcResult ? [dmarcResult.info] : [])];
  return {
    spf: spfResult?.status.result ?? null,
    dkim: dkimSummary(dkim.results ?? []),
    dmarc: dmarcResult ? dmarcResult.status.result : null,
    results: `${options.hostname}; ${parts.length > 0 ? parts.join('; ') : 'none'}`,
    refusedFor: dmarcResult && refusesFor(options.mode, dmarcResult) ? dmarcResult.domain : null,
  };
}

/**
 * The client whose address SPF judges, or null when it is not known: the SMTP client, the client a
 * trusted relay named with XCLIENT or XFORWARD, the one `intake deliver --client-address` names; never
 * a relay's own address (an LMTP client, a trusted relay that named no client).
 * @example clientForSpf({ remoteAddress: '192.0.2.1', helo: 'mx.example.org' }) // { ip: '192.0.2.1', helo: 'mx.example.org' }
 */
export function clientForSpf(envelope: AuthenticationRequest['envelope']): { ip: string; helo: string | null } | null {
  if (!envelope.remoteAddress || envelope.relayed) return null;
  return { ip: envelope.remoteAddress, helo: envelope.helo ?? null };
}

/**
 * Whether a DMARC result refuses the message: in enforce mode, a failure under a policy of reject
 * applied to all of the domain's mail (pct=100, the default). A smaller pct asks receivers to apply
 * it to a sample only; intake does not sample, so such mail is taken, as under quarantine.
 */
export function refusesFor(mode: AuthenticationMode, result: Pick<DMARCResult, 'status' | 'policy' | 'pct'>): boolean {
  return mode === 'enforce' && result.status.result === 'fail' && result.policy === 'reject' && (result.pct === undefined || result.pct >= 100);
}

function dkimSummary(results: DKIMResult[]): string {
  if (results.some((r) => r.status.result === 'pass')) return 'pass';
  return results[0]?.status.result ?? 'none';
}

function unfinished(hostname: string, why: string): Authentication {
  return { spf: 'temperror', dkim: 'temperror', dmarc: 'temperror', results: `${hostname}; none (${why})`, refusedFor: null };
}
