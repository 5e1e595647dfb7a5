// client: opens the SQLite file with the pragmas intake relies on and applies the committed migrations.
// Side effects: creates the database file and its folder, writes the schema.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import * as schema from './schema.js';

export type Db = BetterSQLite3Database<typeof schema>;

export interface Store {
  readonly sqlite: Database.Database;
  readonly db: Db;
  /**
   * Runs fn in one transaction; nested calls become savepoints. `durable: false` commits without
   * waiting for the disk (synchronous=NORMAL): still atomic, and made durable by the next durable
   * commit, for records that promise nothing to anyone (refusals).
   */
  transaction<T>(fn: () => T, options?: { durable?: boolean }): T;
  close(): void;
}

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../migrations', import.meta.url));

export interface OpenOptions {
  /** Apply pending migrations (serve, migrate); other commands refuse a database that is behind. */
  migrate?: boolean;
  busyTimeoutMs?: number;
}

/**
 * Opens (creating when missing) the database. WAL with synchronous=FULL: a committed transaction
 * survives a power cut, which is what a 250 promises.
 */
export function openStore(path: string, options: OpenOptions = {}): Store {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = new Database(path);
  try {
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    sqlite.pragma(`busy_timeout = ${busyTimeoutMs}`);
    const db = drizzle(sqlite, { schema });
    if (options.migrate !== false) migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
    return {
      sqlite,
      db,
      transaction: (fn, { durable = true } = {}) => {
        if (durable || sqlite.inTransaction) return sqlite.transaction(fn)();
        // Nor does it wait for a lock: better-sqlite3 blocks the event loop while it waits.
        sqlite.pragma('synchronous = NORMAL');
        sqlite.pragma('busy_timeout = 0');
        try {
          return sqlite.transaction(fn)();
        } finally {
          sqlite.pragma('synchronous = FULL');
          sqlite.pragma(`busy_timeout = ${busyTimeoutMs}`);
        }
      },
      close: () => sqlite.close(),
    };
  } catch (error) {
    sqlite.close();
    throw error;
  }
}

/** True for errors that mean "try again later" (locked, busy, full, I/O) rather than a bug. */
export function isTransientDbError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    typeof code === 'string' &&
    /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|READONLY|PROTOCOL|NOMEM|CORRUPT|NOTADB)/.test(code)
  );
}

export function isUniqueConstraintError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
