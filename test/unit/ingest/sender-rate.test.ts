// createSenderRate(): a token bucket per sender and destination, checked with explicit times.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createSenderRate } from '../../../src/ingest/sender-rate.js';

const seed = Number(process.env.FC_SEED ?? 20261127);

describe('the sender rate', () => {
  it('allows the limit in a row, then one each window / limit, per sender (in any case) and destination', () => {
    const rate = createSenderRate({ limit: 3, windowMs: 3000 });
    for (let i = 0; i < 3; i++) {
      expect(rate.check('a@example.com', 'Issue:1', 0)).toEqual({ allowed: true, first: false });
      rate.record('a@example.com', 'Issue:1', 0);
    }
    expect(rate.check('A@EXAMPLE.COM', 'Issue:1', 0)).toEqual({ allowed: false, first: true });
    expect(rate.check('a@example.com', 'Issue:1', 999)).toEqual({ allowed: false, first: false });
    // Others are not held up: another sender, another destination.
    expect(rate.check('b@example.com', 'Issue:1', 0).allowed).toBe(true);
    expect(rate.check('a@example.com', 'Issue:2', 0).allowed).toBe(true);
    // One accrues each second.
    expect(rate.check('a@example.com', 'Issue:1', 1000)).toEqual({ allowed: true, first: false });
    rate.record('a@example.com', 'Issue:1', 1000);
    expect(rate.check('a@example.com', 'Issue:1', 1500)).toEqual({ allowed: false, first: true });
    // After a whole window the allowance is full again, and no more than full.
    expect(rate.check('a@example.com', 'Issue:1', 100_000).allowed).toBe(true);
    for (let i = 0; i < 3; i++) rate.record('a@example.com', 'Issue:1', 100_000);
    expect(rate.check('a@example.com', 'Issue:1', 100_000).allowed).toBe(false);
  });

  it('takes back a record whose message was not stored, never past a full allowance', () => {
    const rate = createSenderRate({ limit: 2, windowMs: 2000 });
    rate.record('a@example.com', 'Issue:1', 0);
    rate.record('a@example.com', 'Issue:1', 0);
    expect(rate.check('a@example.com', 'Issue:1', 0).allowed).toBe(false);
    rate.refund('A@example.com', 'Issue:1', 0);
    expect(rate.check('a@example.com', 'Issue:1', 0).allowed).toBe(true);
    rate.record('a@example.com', 'Issue:1', 0);
    expect(rate.check('a@example.com', 'Issue:1', 0).allowed).toBe(false);
    // Refunds beyond what was spent give no more than the limit.
    for (let i = 0; i < 5; i++) rate.refund('a@example.com', 'Issue:1', 0);
    rate.record('a@example.com', 'Issue:1', 0);
    rate.record('a@example.com', 'Issue:1', 0);
    expect(rate.check('a@example.com', 'Issue:1', 0).allowed).toBe(false);
    // A pair never recorded has nothing to take back.
    rate.refund('b@example.com', 'Issue:1', 0);
    expect(rate.check('b@example.com', 'Issue:1', 0).allowed).toBe(true);
  });

  it('allows everything with a limit of 0', () => {
    const rate = createSenderRate({ limit: 0, windowMs: 1000 });
    for (let i = 0; i < 100; i++) rate.record('a@example.com', 'Issue:1', 0);
    expect(rate.check('a@example.com', 'Issue:1', 0)).toEqual({ allowed: true, first: false });
  });

  it('gives nothing back when the clock is set back', () => {
    const rate = createSenderRate({ limit: 1, windowMs: 1000 });
    rate.record('a@example.com', 'Issue:1', 10_000);
    expect(rate.check('a@example.com', 'Issue:1', 5000).allowed).toBe(false);
    expect(rate.check('a@example.com', 'Issue:1', 10_999).allowed).toBe(false);
    expect(rate.check('a@example.com', 'Issue:1', 11_000).allowed).toBe(true);
  });

  it('still limits the pairs within their window when there are many (past 10,000 the full ones are swept)', () => {
    const rate = createSenderRate({ limit: 1, windowMs: 1000 });
    for (let i = 0; i < 10_000; i++) rate.record(`s${i}@example.com`, 'Issue:1', 0);
    rate.record('late@example.com', 'Issue:1', 500);
    // The sweep ran at the 10,001st pair: the first 10,000 were still within their window, and are kept.
    expect(rate.check('s1@example.com', 'Issue:1', 600).allowed).toBe(false);
    rate.record('later@example.com', 'Issue:1', 5000);
    expect(rate.check('late@example.com', 'Issue:1', 1000).allowed).toBe(false);
  });

  it('lets at most twice the limit through in any window, the limit and the rate over a run, and all of a sender within the rate (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 100, max: 5000 }), fc.array(fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 1000, max: 5000 })), { maxLength: 200 }), (limit, windowMs, gaps) => {
        const rate = createSenderRate({ limit, windowMs });
        const processed: number[] = [];
        let now = 0;
        for (const gap of gaps) {
          now += gap;
          if (rate.check('a@example.com', 'Issue:1', now).allowed) {
            rate.record('a@example.com', 'Issue:1', now);
            processed.push(now);
          }
        }
        // In any window of windowMs, at most twice the limit: the burst, and what accrues meanwhile.
        for (let i = 0; i < processed.length; i++) {
          const inWindow = processed.filter((t) => t >= (processed[i] as number) && t < (processed[i] as number) + windowMs).length;
          expect(inWindow).toBeLessThanOrEqual(2 * limit);
        }
        // Over the whole run, no more than the burst and the rate allow.
        expect(processed.length).toBeLessThanOrEqual(limit + Math.floor((now * limit) / windowMs) + 1);
        // Nothing is refused while the sender keeps to the rate: each gap at least windowMs / limit.
        if (gaps.every((gap) => gap * limit >= windowMs)) expect(processed).toHaveLength(gaps.length);
      }),
      { seed, numRuns: 300 },
    );
  });
});
