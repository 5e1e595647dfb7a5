// casefold, the case-insensitive match of `intake messages --from/--to`, in JavaScript and as the SQL
// function every connection has: beyond ASCII, and Greek sigma whatever its place in the word.
import { describe, expect, it } from 'vitest';
import { casefold, openStore } from '../../../src/db/client.js';

describe('casefold', () => {
  it('folds what SQLite lower() leaves, and final sigma as any sigma', () => {
    expect(casefold('JÖRG@Bücher.example')).toBe('jörg@bücher.example');
    expect(casefold('ΟΔΥΣ')).toBe(casefold('οδυσσευσ'.slice(0, 4)));
    const store = openStore(':memory:');
    try {
      const found = (haystack: string, piece: string) => store.sqlite.prepare('select instr(casefold(?), ?) > 0 as found').get(haystack, casefold(piece)) as { found: number };
      expect(store.sqlite.prepare("select lower('JÖRG') as ascii").get()).toEqual({ ascii: 'jÖrg' });
      expect(found('JÖRG@Bücher.example', 'jörg@BÜCHER')).toEqual({ found: 1 });
      expect(found('ΟΔΥΣΣΕΥΣ@example.gr', 'ΟΔΥΣ')).toEqual({ found: 1 });
      expect(found('ΟΔΥΣΣΕΥΣ@example.gr', 'οδυς')).toEqual({ found: 1 });
      expect(found('someone@example.gr', 'ΟΔΥΣ')).toEqual({ found: 0 });
      expect(store.sqlite.prepare('select casefold(null) as v').get()).toEqual({ v: null });
    } finally {
      store.close();
    }
  });
});
