// ClientLimits with a clock of the test's own: connections per address, the tarpit, the shut-out.
import { describe, expect, it } from 'vitest';
import { ClientLimits } from '../../../src/smtp/client-limits.js';

function limits(now: { t: number }, ipv6PrefixLength = 64) {
  return new ClientLimits(
    { maxConnectionsPerIp: 2, unknownRecipientLimit: 6, unknownRecipientWindowMs: 60_000, blockMs: 30_000, exempt: ['10.0.0.1', '2001:DB8:0:0::25'], ipv6PrefixLength },
    () => now.t,
  );
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

  it('counts an IPv6 client by its /64: a guesser cannot start afresh with another address of its network', () => {
    const now = { t: 0 };
    const l = limits(now);
    const verdicts = Array.from({ length: 6 }, (_, i) => l.unknownRecipient(`2001:db8:1:2::${(i + 1).toString(16)}`));
    expect(verdicts.map((v) => v.count)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(verdicts[5]?.shutOut).toBe(true);
    expect(l.admit('2001:db8:1:2:ffff:ffff:ffff:ffff')).toEqual({ ok: false, reason: 'blocked', retryAfterMs: 30_000 });
    expect(l.isBlocked('2001:DB8:1:2:0:0:0:77')).toBe(true);
    // The next /64 is somebody else.
    expect(l.admit('2001:db8:1:3::1')).toEqual({ ok: true });
    expect(l.clientOf('2001:db8:1:2::abcd')).toBe('2001:db8:1:2::/64');
  });

  it('counts connections by network too, and each IPv6 address on its own at a prefix of 128', () => {
    const by64 = limits({ t: 0 });
    expect(by64.admit('2001:db8::1').ok).toBe(true);
    expect(by64.admit('2001:db8::2').ok).toBe(true);
    expect(by64.admit('2001:db8::3')).toEqual({ ok: false, reason: 'too_many_connections' });
    by64.release('2001:db8::1');
    expect(by64.admit('2001:db8::3').ok).toBe(true);
    const by128 = limits({ t: 0 }, 128);
    for (let i = 1; i <= 5; i++) expect(by128.admit(`2001:db8::${i}`).ok).toBe(true);
  });

  it('takes an IPv4 client of a dual-stack listener (::ffff:a.b.c.d) as that IPv4 address', () => {
    const l = limits({ t: 0 });
    expect(l.admit('::ffff:192.0.2.44').ok).toBe(true);
    expect(l.admit('192.0.2.44').ok).toBe(true);
    expect(l.admit('::FFFF:192.0.2.44')).toEqual({ ok: false, reason: 'too_many_connections' });
  });

  it('exempts a relay however its address is written, and only that address, not its network', () => {
    const l = limits({ t: 0 });
    for (let i = 0; i < 10; i++) expect(l.unknownRecipient('2001:db8::25').shutOut).toBe(false);
    expect(l.isExempt('2001:0db8:0000::0025')).toBe(true);
    expect(l.isExempt('::ffff:10.0.0.1')).toBe(true);
    expect(l.isExempt('2001:db8::26')).toBe(false);
  });
});
