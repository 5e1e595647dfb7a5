// client: opens the SQLite file with the pragmas intake relies on and applies the committed migrations.
// Side effects: creates the database file and its folder, writes the schema.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { sql, type Placeholder } from 'drizzle-orm';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import * as schema from './schema.js';

export type Db = BetterSQLite3Database<typeof schema>;

export interface Store {
  readonly sqlite: Database.Database;
  readonly db: Db;
  /** Runs fn in one durable transaction now; nested calls become savepoints. */
  transaction<T>(fn: () => T): T;
  /**
   * Runs fn in a durable transaction shared with the other commits asked for in the same turn of the
   * event loop (group commit: one fsync for all of them), each in its own savepoint. Resolves once the
   * shared transaction has committed; rejects with fn's error (its work undone, the others kept), or
   * with the database's error for all of them when the shared transaction itself fails. A batch of
   * nothing but `durable: false` jobs (records that promise nothing to anyone: refusals) commits
   * without waiting for the disk (synchronous=NORMAL): still atomic, made durable by the next commit.
   */
  commit<T>(fn: () => T, options?: { durable?: boolean }): Promise<T>;
  close(): void;
}

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../migrations', import.meta.url));

export interface OpenOptions {
  /** Apply pending migrations (the default, for every command); false for a connection that must not (the writer thread's, opened after the main thread's). */
  migrate?: boolean;
  busyTimeoutMs?: number;
  /** Share one transaction among the commits of one event-loop turn (default); false: one each. */
  groupCommit?: boolean;
  /** After migrating, refuse every write on this connection (PRAGMA query_only): another one writes. */
  queryOnly?: boolean;
}

interface CommitJob {
  fn: () => unknown;
  durable: boolean;
  resolve(value: unknown): void;
  reject(error: unknown): void;
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
    if (options.queryOnly) sqlite.pragma('query_only = ON');
    const queue: CommitJob[] = [];
    let scheduled = false;
    // One wrapper for every call: better-sqlite3 builds four closures per transaction() (a few µs each
    // time, three times a message). Nested, it is a savepoint.
    const wrapper = sqlite.transaction((fn: () => unknown) => fn());
    const inTransaction = wrapper as <T>(fn: () => T) => T;
    const beginImmediate = wrapper.immediate as (fn: () => void) => void;
    // Prepared once: a refusal is recorded this way for every unknown recipient. It waits for a lock
    // as long as any write: the record of a refusal is promised too.
    const light = prepared(() => ({
      enter: [sqlite.prepare('PRAGMA synchronous = NORMAL')],
      leave: [sqlite.prepare('PRAGMA synchronous = FULL')],
    }));
    const lightly = <T>(fn: () => T): T => {
      light().enter.forEach((statement) => statement.run());
      try {
        return fn();
      } finally {
        light().leave.forEach((statement) => statement.run());
      }
    };
    const flush = () => {
      scheduled = false;
      const batch = queue.splice(0);
      const outcomes: { ok: boolean; value: unknown }[] = [];
      const run = () =>
        beginImmediate(() => {
          for (const job of batch) {
            try {
              outcomes.push({ ok: true, value: inTransaction(job.fn) });
            } catch (error) {
              // The database failing is everyone's failure; a job's own error is only its own.
              if (isTransientDbError(error)) throw error;
              outcomes.push({ ok: false, value: error });
            }
          }
        });
      try {
        if (batch.some((job) => job.durable)) run();
        else lightly(run);
      } catch (error) {
        for (const job of batch) job.reject(error);
        return;
      }
      batch.forEach((job, i) => (outcomes[i]?.ok ? job.resolve(outcomes[i]?.value) : job.reject(outcomes[i]?.value)));
    };
    const group = options.groupCommit !== false;
    return {
      sqlite,
      db,
      transaction: (fn) => inTransaction(fn),
      commit: <T>(fn: () => T, { durable = true } = {}) =>
        new Promise<T>((resolve, reject) => {
          queue.push({ fn, durable, resolve: resolve as (value: unknown) => void, reject });
          if (!group) return flush();
          if (!scheduled) {
            scheduled = true;
            setImmediate(flush);
          }
        }),
      close: () => {
        if (queue.length > 0) flush();
        sqlite.close();
      },
    };
  } catch (error) {
    sqlite.close();
    throw error;
  }
}

/**
 * A statement prepared on first use and kept: the hot queries skip drizzle's query building and
 * SQLite's parsing on every call, and a database that cannot prepare it fails that call, not startup.
 */
export function prepared<T>(make: () => T): () => T {
  let statement: T | undefined;
  return () => (statement ??= make());
}

/**
 * A LIMIT written into a prepared statement's SQL instead of bound (drizzle binds numbers): a bound
 * LIMIT makes SQLite plan the statement again at every call, which measured 20 µs in the writer.
 */
export function fixedLimit(rows: number): number {
  if (!Number.isSafeInteger(rows) || rows < 0) throw new RangeError(`not a row count: ${rows}`);
  return sql.raw(String(rows)) as unknown as number;
}

/**
 * Prepared statements for inserts and updates that are called with a few fixed sets of columns: one
 * statement per set (the keys given, in order), made on first use, so callers keep passing objects.
 */
export function preparedByColumns<T>(make: (columns: string[]) => T): (values: object) => T {
  const made = new Map<string, T>();
  return (values) => {
    const columns = Object.keys(values).filter((column) => (values as Record<string, unknown>)[column] !== undefined);
    const shape = columns.join(',');
    let statement = made.get(shape);
    if (!statement) {
      // A caller building column sets from input would grow this without end: keep it bounded.
      if (made.size >= 64) made.clear();
      statement = make(columns);
      made.set(shape, statement);
    }
    return statement;
  };
}

/** The placeholders for preparedByColumns: `{ column: sql.placeholder(column) }`. */
export function placeholders(columns: string[]): Record<string, Placeholder> {
  return Object.fromEntries(columns.map((column) => [column, sql.placeholder(column)]));
}

/**
 * Throws unless this connection can write. SQLite opens a file it may not write read-only without a
 * word, and takes a write lock on it (BEGIN IMMEDIATE) all the same: only a write finds out.
 */
export function assertWritable(sqlite: Database.Database): void {
  const version = Number(sqlite.pragma('user_version', { simple: true }));
  sqlite.exec('BEGIN IMMEDIATE');
  try {
    // Writes the header with the value it has: nothing changes, and nothing is kept.
    sqlite.pragma(`user_version = ${version}`);
  } finally {
    sqlite.exec('ROLLBACK');
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

/** The disk or the database is full (SQLITE_FULL, or ENOSPC under an I/O error). */
export function isDiskFullError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_FULL' || (typeof code === 'string' && code.startsWith('SQLITE_IOERR') && /no space|disk is full|database or disk is full/i.test(String((error as Error).message)));
}

export function isUniqueConstraintError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
