// fixedLimit(): a LIMIT that is part of a prepared statement's SQL, not a bound parameter.
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { fixedLimit, openStore } from '../../../src/db/client.js';
import { users } from '../../../src/db/schema.js';
import { tempDir } from '../../helpers/server.js';

describe('fixedLimit', () => {
  it('writes the row count into the SQL, binds nothing for it, and limits the rows', () => {
    const store = openStore(join(tempDir(), 'intake.sqlite'));
    try {
      for (let i = 0; i < 5; i++) store.db.insert(users).values({ username: `u${i}`, name: `U${i}`, email: `u${i}@example.com`, incomingEmailToken: `t${i}` }).run();
      const query = store.db.select({ id: users.id }).from(users).where(sql`${users.id} > ${sql.placeholder('after')}`).limit(fixedLimit(2));
      const { sql: text, params } = query.toSQL();
      expect(text).toMatch(/ limit 2$/);
      expect(params).toEqual([{ name: 'after' }]);
      expect(query.prepare().all({ after: 0 })).toHaveLength(2);
      expect(query.prepare().all({ after: 4 })).toHaveLength(1);
    } finally {
      store.close();
    }
  });

  it('refuses anything but a row count', () => {
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 60]) expect(() => fixedLimit(bad)).toThrow(RangeError);
  });
});
