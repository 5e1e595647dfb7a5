// sender-rate: how many messages one sender may have processed for one destination, so that a loop
// (an auto-responder or another tracker that gets past the auto-generated checks) is slowed to a
// trickle instead of filling an issue. In memory, per process. Pure but for its own state.

export interface SenderRate {
  /**
   * Whether one more message from `sender` may be processed for `destination` now; `first` when it
   * may not and the one before it could (the refusals that follow it are worth no log line).
   */
  check(sender: string, destination: string, now?: number): { allowed: boolean; first: boolean };
  /** Counts a message processed for them. */
  record(sender: string, destination: string, now?: number): void;
  /** Takes back a record() whose message was not stored after all (its transaction did not commit). */
  refund(sender: string, destination: string, now?: number): void;
}

/** Past this many pairs (then twice as many as were left), those with a full allowance are forgotten. */
const SWEEP_FROM = 10_000;

interface Allowance {
  /** Messages that may be processed now; fractions accrue. */
  left: number;
  at: number;
  /** Refused since its last allowed message. */
  refusing: boolean;
}

/**
 * A token bucket per sender and destination: `limit` messages at once, then one each windowMs / limit
 * (so `limit` per window over time, and twice that at most in one window: the burst and what accrued
 * meanwhile); a limit of 0 allows everything. Memory and time
 * per message stay constant whatever the limit. Senders are compared without regard to case.
 * @example
 * const rate = createSenderRate({ limit: 1, windowMs: 60_000 });
 * rate.record('a@example.com', 'Issue:1', 0);
 * rate.check('A@example.com', 'Issue:1', 30_000); // { allowed: false, first: true }
 * rate.check('a@example.com', 'Issue:1', 60_000); // { allowed: true, first: false }
 */
export function createSenderRate(options: { limit: number; windowMs: number }): SenderRate {
  const { limit, windowMs } = options;
  const perMs = limit / windowMs;
  const pairs = new Map<string, Allowance>();
  let sweepAt = SWEEP_FROM;
  const pair = (sender: string, destination: string) => `${destination}\n${sender.toLowerCase()}`;
  /** The pair's allowance brought up to `now`; undefined when it is full (never used, or long ago). */
  const current = (key: string, now: number): Allowance | undefined => {
    const allowance = pairs.get(key);
    if (!allowance) return undefined;
    // A clock set back gives nothing back, nor takes any.
    allowance.left = Math.min(limit, allowance.left + Math.max(0, now - allowance.at) * perMs);
    allowance.at = Math.max(allowance.at, now);
    return allowance;
  };
  return {
    check(sender, destination, now = Date.now()) {
      if (limit === 0) return { allowed: true, first: false };
      const allowance = current(pair(sender, destination), now);
      if (!allowance || allowance.left >= 1) {
        if (allowance) allowance.refusing = false;
        return { allowed: true, first: false };
      }
      const first = !allowance.refusing;
      allowance.refusing = true;
      return { allowed: false, first };
    },
    record(sender, destination, now = Date.now()) {
      if (limit === 0) return;
      const key = pair(sender, destination);
      const allowance = current(key, now) ?? { left: limit, at: now, refusing: false };
      allowance.left -= 1;
      pairs.set(key, allowance);
      if (pairs.size <= sweepAt) return;
      for (const [other, kept] of pairs) if (kept.left + (now - kept.at) * perMs >= limit) pairs.delete(other);
      // Not again until it has doubled: a sweep per message would cost as much as the pairs.
      sweepAt = Math.max(SWEEP_FROM, pairs.size * 2);
    },
    refund(sender, destination, now = Date.now()) {
      const allowance = current(pair(sender, destination), now);
      if (allowance) allowance.left = Math.min(limit, allowance.left + 1);
    },
  };
}
