// The room a message needs at MAIL FROM: the amount to keep free plus the size the client declared.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { freeBytes, freeSpaceGauge, shortfall } from '../../../src/smtp/free-space.js';

describe('shortfall', () => {
  it('is what is needed when less is free, null when enough is, or when nothing is to be kept or declared', () => {
    expect(shortfall(1000, 800, 300)).toEqual({ free: 1000, needed: 1100 });
    expect(shortfall(1100, 800, 300)).toBeNull();
    expect(shortfall(0, 1, 0)).toEqual({ free: 0, needed: 1 });
    // Nothing kept: a declared size must still fit.
    expect(shortfall(100, 0, 200)).toEqual({ free: 100, needed: 200 });
    expect(shortfall(0, 0, 0)).toBeNull();
  });

  it('property: refused exactly when free < keep + declared', () => {
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.nat(), (free, keep, declared) => {
        const result = shortfall(free, keep, declared);
        return free < keep + declared ? result !== null && result.free === free && result.needed === keep + declared : result === null;
      }),
      { seed: Number(process.env.FC_SEED ?? 20261126), numRuns: 1000 },
    );
  });
});

describe('freeBytes', () => {
  it('is the free space of the file system a path is on, null for a path that does not exist', () => {
    expect(freeBytes(process.cwd())).toBeGreaterThan(0);
    expect(freeBytes('/no/such/folder/intake.sqlite')).toBeNull();
  });
});

describe('freeSpaceGauge', () => {
  const GiB = 1024 ** 3;

  it('asks again after 250 ms, or at once when the last reading was within a GiB of what is needed', () => {
    let clock = 0;
    let free: number | null = 5 * GiB;
    let reads = 0;
    const gauge = freeSpaceGauge(
      () => (reads++, free),
      () => clock,
    );
    expect(gauge(100)).toBe(5 * GiB);
    free = 4 * GiB;
    clock = 249;
    expect(gauge(100)).toBe(5 * GiB);
    expect(reads).toBe(1);
    // Close to the edge: every call reads.
    expect(gauge(4.5 * GiB)).toBe(4 * GiB);
    expect(gauge(3.5 * GiB)).toBe(4 * GiB);
    expect(reads).toBe(3);
    clock = 600;
    free = null;
    expect(gauge(0)).toBeNull();
    // Unknown is asked again.
    free = 2 * GiB;
    expect(gauge(0)).toBe(2 * GiB);
    expect(reads).toBe(5);
  });

  it('property: an answer is the file system now, or a reading under 250 ms old with a GiB more than needed', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ wait: fc.nat(400), needed: fc.nat(3 * GiB), free: fc.option(fc.nat(6 * GiB), { nil: null }) }), { maxLength: 50 }),
        (steps) => {
          let clock = 0;
          let free: number | null = null;
          const readings: { at: number; free: number | null }[] = [];
          const gauge = freeSpaceGauge(
            () => (readings.push({ at: clock, free }), free),
            () => clock,
          );
          for (const step of steps) {
            clock += step.wait;
            free = step.free;
            const answer = gauge(step.needed);
            const last = readings.at(-1);
            if (last?.at === clock && last.free === free && answer === free) continue;
            if (!(answer !== null && last !== undefined && answer === last.free && clock - last.at < 250 && answer >= step.needed + GiB)) return false;
          }
          return true;
        },
      ),
      { seed: Number(process.env.FC_SEED ?? 20261129), numRuns: 500 },
    );
  });
});
