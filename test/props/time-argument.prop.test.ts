// parseMoment, the --since/--until reader: the forms an operator writes, the ones it refuses, and
// properties over generated moments and strings. The seed is fixed and printed on failure; set FC_SEED to explore.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseMoment } from '../../src/time-argument.js';

const seed = Number(process.env.FC_SEED ?? 20261127);
const params = { seed, numRuns: 2_000 };
const NOW = new Date('2026-11-27T21:00:00.000Z');
const at = (value: string) => parseMoment(value, NOW)?.toISOString() ?? null;

describe('parseMoment', () => {
  it('reads ages back from now', () => {
    expect(at('90m')).toBe('2026-11-27T19:30:00.000Z');
    expect(at('36h')).toBe('2026-11-26T09:00:00.000Z');
    expect(at('7d')).toBe('2026-11-20T21:00:00.000Z');
    expect(at('2w')).toBe('2026-11-13T21:00:00.000Z');
    expect(at('30s')).toBe('2026-11-27T20:59:30.000Z');
    expect(at('0d')).toBe(NOW.toISOString());
  });

  it('reads dates and times as UTC unless they give an offset', () => {
    expect(at('2026-11-27')).toBe('2026-11-27T00:00:00.000Z');
    expect(at('2026-11-27T10:15')).toBe('2026-11-27T10:15:00.000Z');
    expect(at('2026-11-27 10:15:30')).toBe('2026-11-27T10:15:30.000Z');
    expect(at('2026-11-27 10:15:30.123')).toBe('2026-11-27T10:15:30.123Z');
    expect(at('2026-11-27T10:15:30.5Z')).toBe('2026-11-27T10:15:30.500Z');
    expect(at('2026-11-27T10:15+01:00')).toBe('2026-11-27T09:15:00.000Z');
    expect(at('2026-11-27T10:15-0530')).toBe('2026-11-27T15:45:00.000Z');
    expect(at('2024-02-29')).toBe('2024-02-29T00:00:00.000Z');
    // The years 0 to 99 are those years, not 1900 to 1999.
    expect(at('0050-06-01')).toBe('0050-06-01T00:00:00.000Z');
    expect(at('0000-01-01T00:00')).toBe('0000-01-01T00:00:00.000Z');
    expect(at('0000-01-01T00:00-00:01')).toBe('0000-01-01T00:01:00.000Z');
  });

  it('names no moment for what is not one', () => {
    for (const value of ['', 'yesterday', '7', 'd', '7 d', '-7d', '7y', '2026-02-30', '2025-02-29', '2026-13-01', '2026-11-27T24:00', '2026-11-27T10:60', '2026-11-27T10:15:61', '2026-11-27T10:15+24:00', '2026-11-27Z', '27/11/2026', '2026-11-27T10', '999999999w', '9999-12-31T23:59-00:01', '0000-01-01T00:00+00:01']) {
      expect(at(value), value).toBeNull();
    }
  });

  it('reads back any moment written as toISOString or as sqlite3 prints received_at', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('0000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }), (date) => {
        expect(parseMoment(date.toISOString(), NOW)?.getTime()).toBe(date.getTime());
        expect(parseMoment(date.toISOString().replace('T', ' ').replace('Z', ''), NOW)?.getTime()).toBe(date.getTime());
      }),
      params,
    );
  });

  it('reads an offset as the same moment in UTC', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1971-01-01T00:00:00Z'), max: new Date('9998-12-31T00:00:00Z'), noInvalidDate: true }),
        fc.integer({ min: -23 * 60 - 59, max: 23 * 60 + 59 }),
        (date, offsetMinutes) => {
          const local = new Date(date.getTime() + offsetMinutes * 60_000).toISOString().slice(0, 23);
          const abs = Math.abs(offsetMinutes);
          const zone = `${offsetMinutes < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
          expect(parseMoment(local + zone, NOW)?.getTime()).toBe(date.getTime());
        },
      ),
      params,
    );
  });

  it('never throws, and whatever it returns is a real moment in the years 0000 to 9999', () => {
    const near = fc.stringMatching(/^[0-9]{1,4}[-: T.Zsmhdw+]?[0-9]{0,2}[-: T.Z+]?[0-9]{0,2}[-: T.Z+]?[0-9]{0,4}$/);
    const age = fc.tuple(fc.integer({ min: 0, max: 999_999_999 }), fc.constantFrom('s', 'm', 'h', 'd', 'w')).map(([n, unit]) => `${n}${unit}`);
    const edge = fc.tuple(fc.constantFrom('0000-01-01T00:00', '9999-12-31T23:59'), fc.integer({ min: -23 * 60 - 59, max: 23 * 60 + 59 })).map(([at, minutes]) => {
      const abs = Math.abs(minutes);
      return `${at}${minutes < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
    });
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), near, age, edge), (value) => {
        const moment = parseMoment(value, NOW);
        if (moment === null) return;
        expect(Number.isNaN(moment.getTime())).toBe(false);
        // As received_at is written, so that text comparison is time order.
        expect(moment.toISOString()).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      }),
      params,
    );
  });
});
