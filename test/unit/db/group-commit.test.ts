// Group commit on a real SQLite file: a commit resolves only once the WAL is flushed after it, in
// place on a fast disk, in the thread pool on a slow one (the next groups committed meanwhile share
// the next flush); a failed flush is the database's error.
// fs.fdatasync and fdatasyncSync are wrapped (not replaced): the test decides when each flush finishes.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { committedAnyway, openStore, PROBE_EVERY, type Store } from '../../../src/db/client.js';
import { tempDir } from '../../helpers/server.js';

const realFdatasync = fs.fdatasync;
const realFdatasyncSync = fs.fdatasyncSync;
/** Flushes handed to the thread pool, each finished when the test says. */
let flushes: { path: string; finish(error?: NodeJS.ErrnoException): void }[];
/** Flushes done in place, and how long each is made to take (a slow disk), or an instant one. */
let inPlace: string[];
let diskMs: number;
let instantDisk: boolean;
let store: Store;
let path: string;

beforeEach(() => {
  flushes = [];
  inPlace = [];
  diskMs = 0;
  instantDisk = false;
  fs.fdatasync = ((fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => {
    flushes.push({
      path: fs.readlinkSync(`/proc/self/fd/${fd}`),
      finish: (error?: NodeJS.ErrnoException) => (error ? callback(error) : realFdatasync(fd, callback)),
    });
  }) as typeof fs.fdatasync;
  fs.fdatasyncSync = (fd: number) => {
    inPlace.push(fs.readlinkSync(`/proc/self/fd/${fd}`));
    if (diskMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, diskMs);
    if (!instantDisk) realFdatasyncSync(fd);
  };
  syncBuiltinESMExports();
  path = join(tempDir(), 'group.sqlite');
  store = openStore(path);
});

afterEach(() => {
  fs.fdatasync = realFdatasync;
  fs.fdatasyncSync = realFdatasyncSync;
  syncBuiltinESMExports();
  store.close();
});

/** A first commit on a disk whose flush takes 5 ms: from the next one on, flushes go to the thread pool. */
async function onSlowDisk(): Promise<void> {
  diskMs = 5;
  await store.commit(insertUser('warm'));
  expect(inPlace).toEqual([`${path}-wal`]);
  diskMs = 0;
}

const turn = () => new Promise((resolve) => setImmediate(resolve));
const settled = (promise: Promise<unknown>) => {
  const state = { done: false };
  promise.then(
    () => (state.done = true),
    () => (state.done = true),
  );
  return state;
};
const insertUser = (name: string) => () => store.sqlite.prepare("insert into users (username, name, email, incoming_email_token) values (?, ?, ?, ?)").run(name, name, `${name}@example.com`, `glimt-${name}`);

describe('group commit', () => {
  it('flushes the WAL in place, before answering, while the disk is fast', async () => {
    for (const name of ['a', 'b', 'c']) await store.commit(insertUser(name));
    expect(inPlace).toEqual([`${path}-wal`, `${path}-wal`, `${path}-wal`]);
    expect(flushes).toHaveLength(0);
  });

  it('on a slow disk answers a commit only after the WAL is flushed, and commits the next group while that flush runs', async () => {
    await onSlowDisk();
    const first = store.commit(insertUser('first'));
    const firstDone = settled(first);
    await turn();
    await turn();
    expect(flushes.map((f) => f.path)).toEqual([`${path}-wal`]);
    expect(firstDone.done).toBe(false);
    // Committed (another connection sees it), not yet promised.
    const other = new Database(path, { readonly: true });
    const count = (names: string) => (other.prepare(`select count(*) as n from users where username in (${names})`).get() as { n: number }).n;
    expect(count("'first'")).toBe(1);

    // The next groups are stored while the disk works, and wait for a flush begun after them.
    const second = store.commit(insertUser('second'));
    await turn();
    const third = store.commit(insertUser('third'));
    const laterDone = settled(Promise.all([second, third]));
    await turn();
    await turn();
    expect(count("'second', 'third'")).toBe(2);
    expect(flushes).toHaveLength(1);
    flushes[0]?.finish();
    await first;
    // One flush serves both.
    await expect.poll(() => flushes.length).toBe(2);
    expect(laterDone.done).toBe(false);
    flushes[1]?.finish();
    await Promise.all([second, third]);
    expect(flushes).toHaveLength(2);
    other.close();
  });

  it('fails every commit of a group whose flush fails, as the database error SQLite would give (451, or 452 when full)', async () => {
    await onSlowDisk();
    const lost = store.commit(insertUser('lost'));
    await expect.poll(() => flushes.length).toBe(1);
    flushes[0]?.finish(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    const lostError = await lost.catch((error: unknown) => error);
    expect(lostError).toMatchObject({ code: 'SQLITE_IOERR_FSYNC' });
    // Its transaction had committed: what was counted for it is not to be given back.
    expect(committedAnyway(lostError)).toBe(true);
    // Linux forgets a failed flush's pages: a later flush could succeed without them. Nothing more is
    // promised on this connection, flushed or not; and nothing of such a commit is in the database.
    const afterError = await store.commit(insertUser('after')).catch((error: unknown) => error);
    expect(afterError).toMatchObject({ code: 'SQLITE_IOERR_FSYNC' });
    expect(committedAnyway(afterError)).toBe(false);
    expect(store.sqlite.prepare("select username from users where username in ('lost', 'after')").pluck().all()).toEqual(['lost']);
    expect(flushes).toHaveLength(1);
    store.close();
    path = join(tempDir(), 'full.sqlite');
    inPlace = [];
    store = openStore(path);
    await onSlowDisk();
    const full = store.commit(insertUser('full'));
    await expect.poll(() => flushes.length).toBe(2);
    flushes[1]?.finish(Object.assign(new Error('ENOSPC: no space left on device, fdatasync'), { code: 'ENOSPC' }));
    await expect(full).rejects.toMatchObject({ code: 'SQLITE_FULL' });
  });

  it('times the disk alone: one flush in PROBE_EVERY is done in place, so a slow one stays in the thread pool and a fast one comes back', async () => {
    await onSlowDisk();
    /** Commits one row; a flush handed to the thread pool finishes after `lateMs` (a busy event loop). */
    const commitOne = async (name: string, lateMs: number): Promise<'pool' | 'in place'> => {
      const before = { pool: flushes.length, inPlace: inPlace.length };
      const done = store.commit(insertUser(name));
      const state = settled(done);
      for (let turns = 0; !state.done && flushes.length === before.pool; turns++) {
        if (turns > 1000) throw new Error('the commit neither finished nor handed a flush over');
        await turn();
      }
      if (flushes.length > before.pool) {
        await new Promise((resolve) => setTimeout(resolve, lateMs));
        flushes.at(-1)?.finish();
      }
      await done;
      return inPlace.length > before.inPlace ? 'in place' : 'pool';
    };
    // Still slow: the probes find it so, and the flushes stay in the thread pool.
    diskMs = 5;
    const slow: string[] = [];
    for (let i = 0; i < 2 * PROBE_EVERY; i++) slow.push(await commitOne(`slow${i}`, 0));
    expect(slow.filter((how) => how === 'in place')).toHaveLength(2);
    expect(slow[PROBE_EVERY - 1]).toBe('in place');
    expect(slow.at(-1)).toBe('in place');
    // Fast again, while the writer is too busy to hear of a flush for 2 ms: timed there, the disk would
    // seem slow for ever; the probes find it fast, and every flush is done in place again.
    // An instant disk: the machine's own, busy with other work, could take longer than 0.75 ms.
    diskMs = 0;
    instantDisk = true;
    const fast: string[] = [];
    for (let i = 0; i < 20 * PROBE_EVERY && (fast.length < 10 || fast.slice(-10).some((how) => how === 'pool')); i++) fast.push(await commitOne(`fast${i}`, 2));
    expect(fast.slice(-10)).toEqual(Array(10).fill('in place'));
    expect(fast.length).toBeLessThan(10 * PROBE_EVERY);
  });

  it('does not wait for the disk for records that promise nothing (durable: false)', async () => {
    await store.commit(insertUser('refusal'), { durable: false });
    expect(flushes).toHaveLength(0);
    expect(inPlace).toHaveLength(0);
  });

  it('fails the group when a flush in place fails, and tells onFlushFailure once', async () => {
    store.close();
    const told: Error[] = [];
    store = openStore(path, { onFlushFailure: (error) => told.push(error) });
    await store.commit(insertUser('kept'));
    expect(told).toEqual([]);
    fs.fdatasyncSync = () => {
      throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    };
    syncBuiltinESMExports();
    await expect(store.commit(insertUser('lost'))).rejects.toMatchObject({ code: 'SQLITE_IOERR_FSYNC' });
    await expect(store.commit(insertUser('after'))).rejects.toMatchObject({ code: 'SQLITE_IOERR_FSYNC' });
    expect(told).toHaveLength(1);
    expect(told[0]).toMatchObject({ code: 'SQLITE_IOERR_FSYNC', message: expect.stringMatching(/^flushing .*-wal: EIO: i\/o error, fdatasync$/) });
  });

  it.each([true, false])('takes SQLite reporting a failed fsync in any commit, a refusal record\'s too, as a failed flush (group commit %s): nothing more is committed', async (groupCommit) => {
    store.close();
    const told: Error[] = [];
    store = openStore(path, { groupCommit, onFlushFailure: (error) => told.push(error) });
    // As SQLite's own fsync (the WAL header after a restart, an autocheckpoint) fails inside COMMIT.
    const failedSync = () => {
      throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_FSYNC' });
    };
    await expect(store.commit(failedSync, { durable: false })).rejects.toMatchObject({ code: 'SQLITE_IOERR_FSYNC' });
    expect(told).toHaveLength(1);
    await expect(store.commit(insertUser('promised'))).rejects.toMatchObject({ code: 'SQLITE_IOERR_FSYNC' });
    await expect(store.commit(insertUser('refusal'), { durable: false })).rejects.toMatchObject({ code: 'SQLITE_IOERR_FSYNC' });
    expect(told).toHaveLength(1);
    expect(store.sqlite.prepare("select count(*) as n from users where username in ('promised', 'refusal')").get()).toEqual({ n: 0 });
  });

  it('on close, flushes in place for the commits waiting on a flush under way, without opening the WAL again', async () => {
    await onSlowDisk();
    const first = store.commit(insertUser('first'));
    await expect.poll(() => flushes.length).toBe(1);
    const second = store.commit(insertUser('second'));
    await turn();
    await turn();
    store.close();
    expect(inPlace).toEqual([`${path}-wal`, `${path}-wal`]);
    flushes[0]?.finish();
    await Promise.all([first, second]);
    expect(flushes).toHaveLength(1);
    store = openStore(path);
  });

  it('flushes what is still queued before the connection closes, without waiting for the thread pool', async () => {
    await onSlowDisk();
    const queued = store.commit(insertUser('last'));
    store.close();
    await queued;
    expect(flushes).toHaveLength(0);
    const reopened = new Database(path, { readonly: true });
    expect(reopened.prepare("select count(*) as n from users where username = 'last'").get()).toEqual({ n: 1 });
    reopened.close();
    store = openStore(path);
  });
});
