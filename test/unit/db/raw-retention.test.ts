// pruneRaw(): drops the raw bytes of messages older than the cutoff, inline and chunked, on a real
// SQLite file, and leaves everything else of the row, and every newer or content-less row, as it was.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../../src/db/client.js';
import { CHUNK_BYTES } from '../../../src/db/chunks.js';
import { pruneCutoff, pruneRaw } from '../../../src/db/raw-retention.js';
import { createRepositories, type Repositories } from '../../../src/db/repositories.js';
import { tempDir } from '../../helpers/server.js';

const NOW = new Date('2026-11-27T12:00:00.000Z');
const daysAgo = (days: number) => new Date(NOW.getTime() - days * 86_400_000).toISOString();

let store: Store;
let repos: Repositories;
beforeEach(() => {
  store = openStore(join(tempDir(), 'intake.sqlite'));
  repos = createRepositories(store);
});
afterEach(() => store.close());

/** A stored message received `days` ago: inline, chunked (over 1 MiB) or refused before DATA (none). */
function stored(days: number, kind: 'inline' | 'chunked' | 'none', status: 'processed' | 'rejected' | 'failed' = 'processed') {
  const raw = kind === 'inline' ? Buffer.from(`Subject: ${days}\r\n\r\nbody\r\n`) : kind === 'chunked' ? Buffer.alloc(CHUNK_BYTES * 2 + 10, 0x61) : null;
  const id = repos.inbound.insert({
    receivedAt: daysAgo(days),
    ingress: 'smtp',
    mailFrom: 'a@example.com',
    rcptTo: ['incoming+x@example.com'],
    messageId: `m${days}-${kind}@example.com`,
    sha256: `sha-${days}-${kind}`,
    size: raw?.length ?? 0,
    raw: kind === 'inline' ? raw : null,
    status,
  });
  if (kind === 'chunked' && raw) repos.inbound.addRawChunks(id, [raw]);
  return { id, raw };
}

type Stored = ReturnType<typeof stored>;
/** Its raw message is still there, byte for byte (or it never had one). toEqual would compare 2 MiB byte by byte, slowly. */
function kept(m: Stored): boolean {
  const raw = repos.inbound.rawOf(m.id);
  return m.raw === null ? raw === null : raw !== null && raw.equals(m.raw);
}

describe('pruneRaw', () => {
  it('drops inline and chunked raw messages older than the cutoff, in steps, and keeps the rest of the row', async () => {
    const old = repos.transaction(() => [stored(400, 'inline'), stored(300, 'chunked'), stored(200, 'none', 'rejected'), stored(100, 'inline', 'failed'), stored(95, 'inline')]);
    const young = repos.transaction(() => [stored(89, 'inline'), stored(10, 'chunked'), stored(1, 'none')]);
    const expectedBytes = old.reduce((sum, m) => sum + (m.raw?.length ?? 0), 0);

    // A dry run counts, drops nothing.
    const dry = await pruneRaw(store, repos, { days: 90, now: NOW, dryRun: true, stepRows: 2 });
    expect(dry).toEqual({ cutoff: daysAgo(90), messages: 4, bytes: expectedBytes });
    for (const m of [...old, ...young]) expect(kept(m)).toBe(true);

    const result = await pruneRaw(store, repos, { days: 90, now: NOW, stepRows: 2 });
    expect(result).toEqual(dry);
    for (const m of old) {
      const row = repos.inbound.findById(m.id);
      expect(repos.inbound.rawOf(m.id)).toBeNull();
      // What it was, and what recognises a copy of it, stay.
      expect(row).toMatchObject({ raw: null, size: m.raw?.length ?? 0, sha256: expect.stringMatching(/^sha-/), messageId: expect.stringMatching(/^m/) });
      expect(row?.rawPrunedAt === null).toBe(m.raw === null);
    }
    expect(store.sqlite.prepare('select count(*) as n from inbound_message_chunks where inbound_message_id = ?').get(old[1]?.id)).toEqual({ n: 0 });
    for (const m of young) {
      expect(kept(m)).toBe(true);
      expect(repos.inbound.findById(m.id)?.rawPrunedAt).toBeNull();
    }
    // The next run starts after the newest row dropped, and finds nothing more.
    expect(repos.inbound.lastRawPruned()).toBe(old[4]?.id);
    expect(await pruneRaw(store, repos, { days: 90, now: NOW })).toEqual({ cutoff: daysAgo(90), messages: 0, bytes: 0 });
    // Time passes: the 89-day-old one is next, the rest stay.
    expect(await pruneRaw(store, repos, { days: 80, now: NOW })).toMatchObject({ messages: 1, bytes: young[0]?.raw?.length });
    expect(kept(young[1] as Stored)).toBe(true);
  });

  it('reads only from where the last pruning stopped up to the first row as new as the cutoff', async () => {
    repos.transaction(() => {
      for (let i = 0; i < 50; i++) stored(500 - i, 'inline');
      for (let i = 0; i < 50; i++) stored(50 - i * 0.1, 'inline');
    });
    const reads: number[] = [];
    const step = repos.inbound.pruneRawStep;
    repos.inbound.pruneRawStep = (options) => {
      const result = step(options);
      reads.push(result.last - options.after);
      return result;
    };
    expect(await pruneRaw(store, repos, { days: 90, now: NOW, stepRows: 20 })).toMatchObject({ messages: 50 });
    // 20 + 20 + 10: the third step stops at the first young row, without reading the 49 after it.
    expect(reads).toEqual([20, 20, 10]);
    reads.length = 0;
    expect(await pruneRaw(store, repos, { days: 90, now: NOW, stepRows: 20 })).toMatchObject({ messages: 0 });
    expect(reads).toEqual([0]);
  });

  it('ends a step early once it holds enough bytes, one message at least', async () => {
    const old = repos.transaction(() => [stored(400, 'chunked'), stored(300, 'inline'), stored(200, 'inline'), stored(150, 'chunked'), stored(100, 'inline')]);
    const steps: number[] = [];
    const step = repos.inbound.pruneRawStep;
    repos.inbound.pruneRawStep = (options) => {
      const result = step(options);
      steps.push(result.messages);
      return result;
    };
    // A step takes messages until it holds the step's bytes: a chunked one alone is over them; the two
    // small ones are not, so the next chunked one joins them.
    expect(await pruneRaw(store, repos, { days: 90, now: NOW, stepBytes: 1024 * 1024 })).toMatchObject({ messages: 5 });
    expect(steps).toEqual([1, 3, 1]);
    for (const m of old) expect(repos.inbound.rawOf(m.id)).toBeNull();
  });

  it('ends between steps when asked to stop, and the next run goes on from there', async () => {
    repos.transaction(() => {
      for (let i = 0; i < 30; i++) stored(500 - i, 'inline');
    });
    expect(await pruneRaw(store, repos, { days: 90, now: NOW, stepRows: 10, stop: () => true })).toMatchObject({ messages: 10 });
    expect(await pruneRaw(store, repos, { days: 90, now: NOW, stepRows: 10 })).toMatchObject({ messages: 20 });
  });

  it('puts the cutoff the given number of days before now, as received_at is written', () => {
    expect(pruneCutoff(30, NOW)).toBe('2026-10-28T12:00:00.000Z');
    const written = store.sqlite.prepare("select strftime('%Y-%m-%dT%H:%M:%fZ', 'now') as t").get() as { t: string };
    expect(written.t).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(pruneCutoff(0)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });
});
