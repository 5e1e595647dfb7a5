// The room a message needs at MAIL FROM: the amount to keep free plus the size the client declared.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { freeBytes, shortfall } from '../../../src/smtp/free-space.js';

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
