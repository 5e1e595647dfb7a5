// client: opens the SQLite file with the pragmas intake relies on and applies the committed migrations.
// Side effects: creates the database file and its folder, writes the schema.
import { closeSync, existsSync, fdatasync, fdatasyncSync, mkdirSync, openSync } from 'node:fs';
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
   * The same, begun for writing (BEGIN IMMEDIATE): it waits its turn for the write lock (busy_timeout)
   * before fn reads anything. A transaction that read first cannot wait (SQLite fails it at once with
   * SQLITE_BUSY), so one that reads and then writes beside `intake serve` must begin so.
   */
  writeTransaction<T>(fn: () => T): T;
  /**
   * Runs fn in a durable transaction shared with the other commits asked for in the same turn of the
   * event loop (group commit: one fsync for all of them), each in its own savepoint. Resolves once the
   * shared transaction has committed and is on disk; rejects with fn's error (its work undone, the
   * others kept), or with the database's error for all of them when the shared transaction itself
   * fails, or cannot be flushed (then it is committed, and nothing of it is promised). On a slow disk
   * the flush (fdatasync of the WAL) runs off this thread: while it waits for the disk, the next group
   * is already being stored; on a fast one it runs in place (see walFlusher). A batch of nothing but `durable: false` jobs
   * (records that promise nothing to anyone: refusals) is not waited for: still atomic, made durable
   * by the next flush.
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
  /**
   * Called once, when the disk first fails a flush (intake's of the WAL, or SQLite's own in any commit):
   * from then on every commit fails, since nothing more can be promised on this connection and a
   * checkpoint would copy the lost pages (see walFlusher). `intake serve` exits on it.
   */
  onFlushFailure?: (error: Error) => void;
}

interface CommitJob {
  fn: () => unknown;
  durable: boolean;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * Makes a folder and its missing parents, one at a time: Node's `recursive` retries for ever a folder
 * the file system refuses with ENOENT (under /proc), where this fails with that error.
 */
function makeFolder(folder: string): void {
  const missing: string[] = [];
  for (let dir = folder; !existsSync(dir) && dirname(dir) !== dir; dir = dirname(dir)) missing.unshift(dir);
  for (const dir of missing) {
    try {
      mkdirSync(dir);
    } catch (error) {
      // Made meanwhile by another process starting on the same folder.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
}

/**
 * Opens (creating when missing) the database. WAL with synchronous=FULL: a committed transaction
 * survives a power cut, which is what a 250 promises. commit() keeps that promise with a flush of its
 * own (walFlusher) instead of SQLite's.
 */
export function openStore(path: string, options: OpenOptions = {}): Store {
  if (path !== ':memory:') makeFolder(dirname(path));
  const sqlite = new Database(path);
  try {
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    sqlite.pragma(`busy_timeout = ${busyTimeoutMs}`);
    // SQLite's lower() folds ASCII only: `messages --from JÖRG` must find jörg@ too.
    sqlite.function('casefold', { deterministic: true }, (value: unknown) => (typeof value === 'string' ? casefold(value) : value) as string | null);
    const db = drizzle(sqlite, { schema });
    if (options.migrate !== false) migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
    if (options.queryOnly) sqlite.pragma('query_only = ON');
    const queue: CommitJob[] = [];
    let scheduled = false;
    let closing = false;
    // One wrapper for every call: better-sqlite3 builds four closures per transaction() (a few µs each
    // time, three times a message). Nested, it is a savepoint.
    const wrapper = sqlite.transaction((fn: () => unknown) => fn());
    const inTransaction = wrapper as <T>(fn: () => T) => T;
    const beginImmediate = wrapper.immediate as <T>(fn: () => T) => T;
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
    // Once the disk has failed a flush, its own (walFlusher) or SQLite's (synchronous=FULL), nothing
    // more is promised on this connection: the pages it lost could leave a hole before any later commit.
    let flushFailure: Error | null = null;
    const flushFailed = (error: Error) => {
      if (!flushFailure) {
        flushFailure = error;
        options.onFlushFailure?.(error);
      }
    };
    const flush = () => {
      scheduled = false;
      const batch = queue.splice(0);
      // After close() committed the queue itself, the turn scheduled for it finds nothing to do, on a
      // connection that is closed: no BEGIN is tried there.
      if (batch.length === 0) return;
      const durable = batch.some((job) => job.durable);
      // Refusal records too: their commits could run a WAL autocheckpoint, which would copy the failed
      // flush's pages into the database file unchecked (see serve.ts). Their rows are in the log.
      if (flushFailure) {
        for (const job of batch) job.reject(flushFailure);
        return;
      }
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
        // Grouped, the commit only writes the WAL (synchronous=NORMAL); the flush comes after, below.
        if (durable && (!walFlush || closing)) run();
        else lightly(run);
      } catch (error) {
        // SQLite's own fsyncs run in any commit (the WAL header after a restart, an autocheckpoint), and
        // Linux reports a failed write-back once: a later fsync of the WAL would succeed without it.
        if ((error as { code?: unknown }).code === 'SQLITE_IOERR_FSYNC') flushFailed(error as Error);
        for (const job of batch) job.reject(error);
        return;
      }
      const settle = () => batch.forEach((job, i) => (outcomes[i]?.ok ? job.resolve(outcomes[i]?.value) : job.reject(outcomes[i]?.value)));
      if (!durable || !walFlush || closing) return settle();
      // Committed, not flushed: nothing is promised, but the work is in the WAL (see committedAnyway).
      const fail = (error: unknown) => {
        // Its own object: the flush's error is also what later commits are refused with, uncommitted.
        const committed = Object.assign(new Error((error as Error)?.message ?? String(error), { cause: error }), { code: (error as { code?: unknown })?.code });
        COMMITTED_UNFLUSHED.add(committed);
        batch.forEach((job) => job.reject(committed));
      };
      let flushed: Promise<void> | null;
      try {
        flushed = walFlush.flush();
      } catch (error) {
        return fail(error);
      }
      if (!flushed) return settle();
      flushed.then(settle, fail);
    };
    const group = options.groupCommit !== false;
    // A file in WAL mode, grouped: commits are flushed by one fdatasync of the WAL each (walFlusher).
    // SQLite puts the WAL next to the file it opened (a symlink followed), which database_list names.
    const opened = (sqlite.pragma('database_list') as { name: string; file: string }[]).find((d) => d.name === 'main')?.file;
    const walFlush = group && opened && sqlite.pragma('journal_mode', { simple: true }) === 'wal' ? walFlusher(`${opened}-wal`, flushFailed) : null;
    return {
      sqlite,
      db,
      transaction: (fn) => inTransaction(fn),
      writeTransaction: (fn) => beginImmediate(fn),
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
        // What is still queued commits as synchronous=FULL does: durable before the connection closes.
        closing = true;
        if (queue.length > 0) flush();
        walFlush?.close();
        sqlite.close();
      },
    };
  } catch (error) {
    sqlite.close();
    throw error;
  }
}

/**
 * Text in one case for searching, beyond ASCII: lower case, with Greek final sigma as any other sigma
 * (toLowerCase writes ς at the end of a word, so a piece ending in Σ would miss σ inside an address).
 */
export function casefold(text: string): string {
  return text.toLowerCase().replace(/ς/g, 'σ');
}

const COMMITTED_UNFLUSHED = new WeakSet<Error>();

/**
 * Whether commit() rejected with this error after its transaction had committed (the flush of the WAL,
 * or opening the WAL for it, failed): the sender is told 451, but what it did is in the database and
 * a copy sent again is recognised. Whatever was counted for it must not be given back.
 */
export function committedAnyway(error: unknown): boolean {
  return error instanceof Error && COMMITTED_UNFLUSHED.has(error);
}

/**
 * Makes what has been committed to a WAL durable: fdatasync of the WAL file. SQLite in WAL mode with
 * synchronous=NORMAL writes a commit's pages to the WAL and does not flush them (it does flush the WAL
 * before a checkpoint copies it back, the database after, and the WAL's header when it starts over);
 * a flush of the WAL after the commit makes that commit as durable as synchronous=FULL would.
 * On a slow disk the flush runs in libuv's thread pool, and the committing thread goes on parsing and
 * committing what comes meanwhile; on a fast one it runs in place (flush() returns null), since
 * handing it over costs more than it frees.
 */
function walFlusher(walPath: string, onFailure?: (error: Error) => void): { flush(): Promise<void> | null; close(): void } {
  let fd: number | null = null;
  let running: Promise<void> | null = null;
  let next: Promise<void> | null = null;
  let closeWhenIdle = false;
  // How long a flush takes the disk, on average, timed only in place: in the thread pool the time would
  // include the wait for this thread's event loop, and a busy writer would seem to have a slow disk.
  // The first flush is done in place; while they go to the thread pool, one in PROBE_EVERY is too.
  let averageMs: number | null = null;
  let inPlace = true;
  let sinceProbe = 0;
  const measured = (ms: number, weight: number) => {
    averageMs = averageMs === null ? ms : averageMs + (ms - averageMs) * weight;
    // Apart, so that a disk near the line does not switch at every flush.
    if (inPlace && averageMs > ASYNC_FLUSH_FROM_MS) inPlace = false;
    else if (!inPlace && averageMs < IN_PLACE_FLUSH_BELOW_MS) inPlace = true;
  };
  const release = () => {
    // Never under a flush that is still running: by then the number could be another file's.
    if (closeWhenIdle && !running && fd !== null) {
      closeSync(fd);
      fd = null;
    }
  };
  // As SQLite reports a failed flush, so that it is a 451 (or a 452 when the disk is full).
  let broken: Error | null = null;
  const failure = (error: NodeJS.ErrnoException) => {
    broken ??= Object.assign(new Error(`flushing ${walPath}: ${error.message}`), { code: error.code === 'ENOSPC' ? 'SQLITE_FULL' : 'SQLITE_IOERR_FSYNC' });
    onFailure?.(broken);
    return broken;
  };
  return {
    flush() {
      // After a failed flush, Linux marks the lost pages clean: a later flush would succeed without
      // them, and recovery would drop every frame after the hole. Nothing more is promised on this
      // connection: `intake serve` exits (onFailure), and its restart recovers the WAL from the disk.
      if (broken) throw broken;
      // Closed: close() flushed everything committed on this connection.
      if (closeWhenIdle) return null;
      // Opened once the WAL exists (the first commit made it); the connection keeps it until closed.
      fd ??= openSync(walPath, 'r+');
      const file = fd;
      const probe = !inPlace && !running && ++sinceProbe >= PROBE_EVERY;
      if (inPlace || probe) {
        sinceProbe = 0;
        const started = performance.now();
        try {
          fdatasyncSync(file);
        } catch (error) {
          throw failure(error as NodeJS.ErrnoException);
        }
        // A probe is rarer than a flush: it counts for more.
        measured(performance.now() - started, probe ? PROBE_WEIGHT : 0.1);
        return null;
      }
      // A flush under way may have started before this commit's pages were written: the next one, begun
      // once it is done, serves every commit made meanwhile.
      if (running) {
        next ??= running.then(noop, noop).then(() => {
          next = null;
          return this.flush() ?? undefined;
        });
        return next;
      }
      running = new Promise<void>((resolve, reject) =>
        fdatasync(file, (error) => {
          running = null;
          release();
          if (error) reject(failure(error));
          else resolve();
        }),
      );
      return running;
    },
    close() {
      // Commits still waiting for a flush under way (or for the next one) are made durable here, so
      // that those waits end without opening the WAL again.
      if (fd !== null && running && !broken) {
        try {
          fdatasyncSync(fd);
        } catch (error) {
          failure(error as NodeJS.ErrnoException);
        }
      }
      closeWhenIdle = true;
      release();
    },
  };
}

/**
 * Past this average, a flush is handed to the thread pool; below the second, it is done in place
 * again. Measured with 20 sessions of 2 KB replies: at 0.27 ms a flush, in place did 7 % more; with
 * every flush 2 ms slower, the thread pool did 45 % more, and 2.6 times as much at 5 ms.
 */
const ASYNC_FLUSH_FROM_MS = 1.5;
const noop = () => undefined;
const IN_PLACE_FLUSH_BELOW_MS = 0.75;
/**
 * While flushes go to the thread pool, one in this many (when none is running) is done in place and
 * timed, with this weight in the average: a disk that is fast again is found within a few hundred
 * flushes, and on a slow one the writer waits for one flush in fifty (about 2 % of its time at 5 ms).
 */
export const PROBE_EVERY = 50;
const PROBE_WEIGHT = 0.3;

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
 * LIMIT makes SQLite plan the statement again at every call, which measured 25 µs in the writer (2.3 µs written in).
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

/**
 * Copies what the WAL holds into the database file, flushes it and starts the WAL over (RESTART,
 * waiting up to the busy timeout for readers). `intake serve` does it as it starts: after a crash or
 * a flush the disk failed, nothing it promises afterwards then sits in the WAL behind pages an earlier
 * process was told were written. `complete` is false when a reader in another process kept part of
 * the WAL; 0 frames after a clean stop (the last connection checkpointed and removed the WAL).
 */
export function checkpointWal(sqlite: Database.Database): { frames: number; complete: boolean } {
  const [result] = sqlite.pragma('wal_checkpoint(RESTART)') as { busy: number; log: number; checkpointed: number }[];
  if (!result || result.log < 0) return { frames: 0, complete: true };
  return { frames: result.log, complete: result.busy === 0 && result.checkpointed === result.log };
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
