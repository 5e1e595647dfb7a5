// ClientLimits with a clock of the test's own: connections per address, the tarpit, the shut-out.
import { describe, expect, it } from 'vitest';
import { ClientLimits } from '../../../src/smtp/client-limits.js';

function limits(now: { t: number }) {
  return new ClientLimits({ maxConnectionsPerIp: 2, unknownRecipientLimit: 6, unknownRecipientWindowMs: 60_000, blockMs: 30_000, exempt: ['10.0.0.1'] }, () => now.t);
}

describe('ClientLimits', () => {
  it('admits connections per address up to the limit, and again once one is released', () => {
    const l = limits({ t: 0 });
    expect(l.admit('192.0.2.1')).toEqual({ ok: true });
    expect(l.admit('192.0.2.1')).toEqual({ ok: true });
    expect(l.admit('192.0.2.1')).toEqual({ ok: false, reason: 'too_many_connections' });
    expect(l.admit('192.0.2.2')).toEqual({ ok: true });
    l.release('192.0.2.1');
    expect(l.admit('192.0.2.1')).toEqual({ ok: true });
  });

  it('lets the first half of the unknown recipients through at once, slows the rest, then shuts the address out', () => {
    const now = { t: 0 };
    const l = limits(now);
    const verdicts = Array.from({ length: 6 }, () => l.unknownRecipient('192.0.2.9'));
    expect(verdicts.map((v) => [v.delayMs, v.shutOut])).toEqual([
      [0, false],
      [0, false],
      [0, false],
      [1000, false],
      [2000, false],
      [0, true],
    ]);
    expect(l.admit('192.0.2.9')).toEqual({ ok: false, reason: 'blocked', retryAfterMs: 30_000 });
    expect(l.isBlocked('192.0.2.9')).toBe(true);
    expect(l.admit('192.0.2.8')).toEqual({ ok: true });
    now.t = 30_001;
    expect(l.admit('192.0.2.9')).toEqual({ ok: true });
    expect(l.unknownRecipient('192.0.2.9')).toEqual({ delayMs: 0, shutOut: false, count: 1 });
  });

  it('forgets unknown recipients older than the window', () => {
    const now = { t: 0 };
    const l = limits(now);
    for (let i = 0; i < 5; i++) l.unknownRecipient('192.0.2.7');
    now.t = 61_000;
    expect(l.unknownRecipient('192.0.2.7')).toEqual({ delayMs: 0, shutOut: false, count: 1 });
  });

  it('does not limit exempt addresses (trusted relays)', () => {
    const l = limits({ t: 0 });
    for (let i = 0; i < 10; i++) expect(l.admit('10.0.0.1').ok).toBe(true);
    for (let i = 0; i < 10; i++) expect(l.unknownRecipient('10.0.0.1').shutOut).toBe(false);
  });
});
