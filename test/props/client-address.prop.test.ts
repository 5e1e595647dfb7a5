// Property tests for clientKey: one client, one key, however its address is written; two addresses
// share a key exactly when they agree on the prefix; no input makes it throw.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalAddress, clientKey } from '../../src/smtp/client-address.js';

const seed = Number(process.env.FC_SEED ?? 20261126);
const params = { seed, numRuns: 500 };

const groups = fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 });
const prefix = fc.integer({ min: 1, max: 128 });
const toBig = (g: number[]) => g.reduce((n, x) => (n << 16n) | BigInt(x), 0n);
const full = (g: number[]) => g.map((x) => x.toString(16)).join(':');
const padded = (g: number[]) => g.map((x) => x.toString(16).padStart(4, '0').toUpperCase()).join(':');
/** The longest run of zero groups written as `::`, as people and programs write it. */
function compressed(g: number[]): string {
  let best = [-1, 0];
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > best[1]!) best = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  if (best[1]! < 2) return full(g);
  const hex = g.map((x) => x.toString(16));
  return `${hex.slice(0, best[0]).join(':')}::${hex.slice(best[0]! + best[1]!).join(':')}`;
}
// Not an IPv4-mapped address (::ffff:0:0/96), which is the IPv4 client it carries.
const ipv6 = groups.filter((g) => !(g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff));

describe('clientKey properties', () => {
  it('gives one key for every way of writing one IPv6 address', () => {
    fc.assert(
      fc.property(ipv6, prefix, (g, p) => {
        const key = clientKey(full(g), p);
        expect(clientKey(padded(g), p)).toBe(key);
        expect(clientKey(compressed(g), p)).toBe(key);
        expect(clientKey(`${compressed(g)}%eth0`, p)).toBe(key);
        expect(canonicalAddress(padded(g))).toBe(canonicalAddress(compressed(g)));
      }),
      params,
    );
  });

  it('gives two IPv6 addresses one key exactly when their first PREFIX bits agree', () => {
    fc.assert(
      fc.property(ipv6, ipv6, prefix, fc.boolean(), (a, other, p, near) => {
        // Half the time b shares a's network and differs only after it.
        const shift = BigInt(128 - p);
        const low = (1n << shift) - 1n;
        const bBig = near ? (toBig(a) & ~low) | (toBig(other) & low) : toBig(other);
        const b = Array.from({ length: 8 }, (_, i) => Number((bBig >> BigInt(16 * (7 - i))) & 0xffffn));
        fc.pre(!(b.slice(0, 5).every((x) => x === 0) && b[5] === 0xffff));
        const same = toBig(a) >> shift === bBig >> shift;
        expect(clientKey(compressed(a), p) === clientKey(full(b), p)).toBe(same);
      }),
      params,
    );
  });

  it('takes an IPv4-mapped address as its IPv4 address, and an IPv4 address as itself', () => {
    fc.assert(
      fc.property(fc.ipV4(), prefix, (v4, p) => {
        expect(clientKey(v4, p)).toBe(v4);
        expect(clientKey(`::ffff:${v4}`, p)).toBe(v4);
        expect(clientKey(`::FFFF:${v4}`, p)).toBe(v4);
        expect(canonicalAddress(`::ffff:${v4}`)).toBe(v4);
      }),
      params,
    );
  });

  it('never throws, and keeps what is not an IP address as it is', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.ipV6(), fc.ipV4Extended(), fc.constant('unknown')), prefix, (text, p) => {
        const key = clientKey(text, p);
        expect(typeof key).toBe('string');
        if (!/^[0-9a-f:.%]+$/i.test(text)) expect(key).toBe(text);
      }),
      params,
    );
  });
});
