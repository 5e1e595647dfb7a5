// chunked() and inline(): how content over 1 MiB is cut for the *_chunks tables.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CHUNK_BYTES, chunked, inline } from '../../../src/db/chunks.js';

const seed = Number(process.env.FC_SEED ?? 20261126);

describe('chunked', () => {
  it('re-cuts pieces of any sizes into full pieces and a shorter last one, losing and adding nothing', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 12 }), fc.integer({ min: 1, max: 17 }), (arrays, size) => {
        const pieces = arrays.map((a) => Buffer.from(a));
        const out = [...chunked(pieces, size)];
        expect(Buffer.concat(out).equals(Buffer.concat(pieces))).toBe(true);
        expect(out.every((c) => c.length > 0 && c.length <= size)).toBe(true);
        expect(out.slice(0, -1).every((c) => c.length === size)).toBe(true);
      }),
      { seed, numRuns: 300 },
    );
  });

  it('hands a piece that is already the right size over without copying it', () => {
    const piece = Buffer.alloc(CHUNK_BYTES, 7);
    const [only] = [...chunked([piece])];
    expect(only?.buffer).toBe(piece.buffer);
  });

  it('keeps content of up to 1 MiB in its row, joined; larger content goes to chunks', () => {
    expect(inline([Buffer.from('ab'), Buffer.from('c')], 3)?.toString()).toBe('abc');
    expect(inline([Buffer.alloc(CHUNK_BYTES)], CHUNK_BYTES)).not.toBeNull();
    expect(inline([Buffer.alloc(CHUNK_BYTES), Buffer.alloc(1)], CHUNK_BYTES + 1)).toBeNull();
  });
});
