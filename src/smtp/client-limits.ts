// client-limits: what one client address may do: connections at once, and unknown recipients before it
// is slowed down and then shut out for a while (key guessing). Pure bookkeeping in memory; no I/O.

export interface ClientLimitSettings {
  maxConnectionsPerIp: number;
  /** Unknown recipients allowed per window before the client is shut out. */
  unknownRecipientLimit: number;
  unknownRecipientWindowMs: number;
  /** How long a client that hit the limit is refused at connect. */
  blockMs: number;
  /** Addresses the limits do not apply to (trusted relays pass many senders' mail). */
  exempt: readonly string[];
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

  constructor(
    private readonly settings: ClientLimitSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new connection from ip: admitted (and counted until release) or refused. */
  admit(ip: string): Admission {
    if (this.isExempt(ip)) return { ok: true };
    const until = this.blockedUntil.get(ip);
    if (until !== undefined) {
      if (until > this.now()) return { ok: false, reason: 'blocked', retryAfterMs: until - this.now() };
      this.blockedUntil.delete(ip);
    }
    const open = this.connections.get(ip) ?? 0;
    if (open >= this.settings.maxConnectionsPerIp) return { ok: false, reason: 'too_many_connections' };
    this.connections.set(ip, open + 1);
    return { ok: true };
  }

  /** ip was shut out and still is (for the policy service, which sees no connections). */
  isBlocked(ip: string): boolean {
    const until = this.blockedUntil.get(ip);
    return until !== undefined && until > this.now() && !this.isExempt(ip);
  }

  release(ip: string): void {
    if (this.isExempt(ip)) return;
    const open = (this.connections.get(ip) ?? 0) - 1;
    if (open > 0) this.connections.set(ip, open);
    else this.connections.delete(ip);
  }

  /** ip named a recipient that does not exist. */
  unknownRecipient(ip: string): UnknownRecipientVerdict {
    if (this.isExempt(ip)) return { delayMs: 0, shutOut: false, count: 0 };
    const now = this.now();
    const since = now - this.settings.unknownRecipientWindowMs;
    // Oldest first: only the front can have left the window.
    let times = this.unknown.get(ip) ?? [];
    let expired = 0;
    while (expired < times.length && (times[expired] as number) <= since) expired++;
    if (expired > 0) times = times.slice(expired);
    times.push(now);
    this.unknown.delete(ip);
    this.unknown.set(ip, times);
    if (this.unknown.size > MAX_TRACKED) this.unknown.delete(this.unknown.keys().next().value as string);
    const limit = this.settings.unknownRecipientLimit;
    if (times.length >= limit) {
      this.blockedUntil.set(ip, now + this.settings.blockMs);
      if (this.blockedUntil.size > MAX_TRACKED) this.blockedUntil.delete(this.blockedUntil.keys().next().value as string);
      this.unknown.delete(ip);
      return { delayMs: 0, shutOut: true, count: times.length };
    }
    const free = Math.floor(limit * FREE_FRACTION);
    const delayMs = times.length <= free ? 0 : Math.min(MAX_DELAY_MS, (times.length - free) * DELAY_STEP_MS);
    return { delayMs, shutOut: false, count: times.length };
  }

  /** A trusted relay's address: the limits are not for it. */
  isExempt(ip: string): boolean {
    return this.settings.exempt.includes(ip);
  }
}
