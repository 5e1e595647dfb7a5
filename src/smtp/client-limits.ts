// client-limits: what one client may do: connections at once, and unknown recipients before it is
// slowed down and then shut out for a while (key guessing). A client is an IPv4 address or an IPv6
// network (client-address.ts). Pure bookkeeping in memory; no I/O.
import { canonicalAddress, clientKey } from './client-address.js';

export interface ClientLimitSettings {
  maxConnectionsPerIp: number;
  /** Unknown recipients allowed per window before the client is shut out. */
  unknownRecipientLimit: number;
  unknownRecipientWindowMs: number;
  /** How long a client that hit the limit is refused at connect. */
  blockMs: number;
  /** Addresses the limits do not apply to (trusted relays pass many senders' mail). */
  exempt: readonly string[];
  /** An IPv6 client is counted as its network of this many bits (128: each address on its own). */
  ipv6PrefixLength: number;
}

export type Admission = { ok: true } | { ok: false; reason: 'too_many_connections' | 'blocked'; retryAfterMs?: number };

export interface UnknownRecipientVerdict {
  /** Answer this RCPT only after this long (a tarpit for guessers; 0 for an honest typo). */
  delayMs: number;
  /** The limit is reached: answer 421 and close; new connections are refused for blockMs. */
  shutOut: boolean;
  /** Unknown recipients in the window so far, this one included. */
  count: number;
}

/** The first refusals are free; from half the limit on, each waits a second more, up to 5 s. */
const FREE_FRACTION = 0.5;
const DELAY_STEP_MS = 1000;
const MAX_DELAY_MS = 5000;
/** Clients remembered at most; the oldest are forgotten first (bounded memory under a flood). */
const MAX_TRACKED = 100_000;

export class ClientLimits {
  private readonly connections = new Map<string, number>();
  private readonly unknown = new Map<string, number[]>();
  private readonly blockedUntil = new Map<string, number>();
  private readonly exempt: ReadonlySet<string>;

  constructor(
    private readonly settings: ClientLimitSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.exempt = new Set(settings.exempt.map(canonicalAddress));
  }

  /** What a client address is counted as: itself, or its IPv6 network (for the logs too). */
  clientOf(address: string): string {
    return clientKey(address, this.settings.ipv6PrefixLength);
  }

  /** A new connection from address: admitted (and counted until release) or refused. */
  admit(address: string): Admission {
    if (this.isExempt(address)) return { ok: true };
    const client = this.clientOf(address);
    const until = this.blockedUntil.get(client);
    if (until !== undefined) {
      if (until > this.now()) return { ok: false, reason: 'blocked', retryAfterMs: until - this.now() };
      this.blockedUntil.delete(client);
    }
    const open = this.connections.get(client) ?? 0;
    if (open >= this.settings.maxConnectionsPerIp) return { ok: false, reason: 'too_many_connections' };
    this.connections.set(client, open + 1);
    return { ok: true };
  }

  /** address was shut out and still is (for the policy service, which sees no connections). */
  isBlocked(address: string): boolean {
    const until = this.blockedUntil.get(this.clientOf(address));
    return until !== undefined && until > this.now() && !this.isExempt(address);
  }

  release(address: string): void {
    if (this.isExempt(address)) return;
    const client = this.clientOf(address);
    const open = (this.connections.get(client) ?? 0) - 1;
    if (open > 0) this.connections.set(client, open);
    else this.connections.delete(client);
  }

  /** address named a recipient that does not exist. */
  unknownRecipient(address: string): UnknownRecipientVerdict {
    if (this.isExempt(address)) return { delayMs: 0, shutOut: false, count: 0 };
    const client = this.clientOf(address);
    const now = this.now();
    const since = now - this.settings.unknownRecipientWindowMs;
    // Oldest first: only the front can have left the window.
    let times = this.unknown.get(client) ?? [];
    let expired = 0;
    while (expired < times.length && (times[expired] as number) <= since) expired++;
    if (expired > 0) times = times.slice(expired);
    times.push(now);
    this.unknown.delete(client);
    this.unknown.set(client, times);
    if (this.unknown.size > MAX_TRACKED) this.unknown.delete(this.unknown.keys().next().value as string);
    const limit = this.settings.unknownRecipientLimit;
    if (times.length >= limit) {
      this.blockedUntil.set(client, now + this.settings.blockMs);
      if (this.blockedUntil.size > MAX_TRACKED) this.blockedUntil.delete(this.blockedUntil.keys().next().value as string);
      this.unknown.delete(client);
      return { delayMs: 0, shutOut: true, count: times.length };
    }
    const free = Math.floor(limit * FREE_FRACTION);
    const delayMs = times.length <= free ? 0 : Math.min(MAX_DELAY_MS, (times.length - free) * DELAY_STEP_MS);
    return { delayMs, shutOut: false, count: times.length };
  }

  /** A trusted relay's address (the address itself, not its network): the limits are not for it. */
  isExempt(address: string): boolean {
    return this.exempt.size > 0 && this.exempt.has(canonicalAddress(address));
  }
}
