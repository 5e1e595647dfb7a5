// The writer thread of `intake serve` (the built dist/ingest/writer.js) dying: what it held gets a 451,
// another thread starts, and mail handed over meanwhile is stored by it. The thread is ended from
// outside, through the inspector protocol (process.exit evaluated in the worker): no test hook in the product.
import { existsSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openStore, type Store } from '../../src/db/client.js';
import { createRepositories } from '../../src/db/repositories.js';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { ROOT, template, tempDir } from '../helpers/server.js';

const { startWriter } = (await import(join(ROOT, 'dist/ingest/writer.js'))) as typeof import('../../src/ingest/writer.js');

const inspector = new Session();
let store: Store | undefined;

afterAll(() => {
  inspector.disconnect();
  store?.close();
});

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('writer thread', () => {
  it('is started again when it dies: what it held gets 451, what is sent meanwhile is stored by the new one', async () => {
    const database = join(tempDir(), 'intake.sqlite');
    store = openStore(database);
    const repos = createRepositories(store);
    const world = seedReplyWorld(repos);
    const to = template.format(world.key);
    const logs: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(line) });
    const config = loadConfig({ env: { INTAKE_DATABASE: database, INTAKE_ADDRESS: 'incoming+%{key}@example.com', INTAKE_HOSTNAME: 'intake.test' } });

    const workers: string[] = [];
    inspector.connect();
    inspector.on('NodeWorker.attachedToWorker', (message) => workers.push(message.params.sessionId));
    await inspector.post('NodeWorker.enable', { waitForDebuggerOnStart: false });

    // What /metrics is told (monitor/metrics.ts), as it happened.
    const observed: string[] = [];
    const writer = await startWriter(config, logger, {
      ingested: (_ingress, _seconds, outcome) => observed.push('result' in outcome ? `stored ${outcome.result.status}` : `not stored ${outcome.code}`),
      refused: () => observed.push('refused'),
      restarted: () => observed.push('restarted'),
    });
    const reply = (n: number) => ({
      raw: Buffer.from(replyMessage({ from: world.user.email, to, body: `Reply ${n}.`, messageId: `<restart-${n}@client.test>` }).replace(/\r?\n/g, '\r\n')),
      ingress: 'smtp' as const,
      envelope: { mailFrom: world.user.email, rcptTo: [to] },
    });
    try {
      expect((await writer.ingest(reply(1))).status).toBe('processed');
      await until(() => workers.length === 1, 'the inspector to attach to the writer thread');

      // The thread is held busy for a second and then exits: a message handed over in that second is
      // never answered by it. It marks a file first, so that the message goes only once it is held.
      const held = join(dirname(database), 'held');
      const exit = `process.getBuiltinModule('node:fs').writeFileSync(${JSON.stringify(held)}, ''); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000); process.exit(70)`;
      void inspector.post('NodeWorker.sendMessageToWorker', {
        sessionId: workers[0] as string,
        message: JSON.stringify({ id: 1, method: 'Runtime.evaluate', params: { expression: exit } }),
      });
      await until(() => existsSync(held), 'the writer thread to be held');
      await expect(writer.ingest(reply(3))).rejects.toMatchObject({ code: 'data.store_failed', responseCode: 451 });
      await until(() => logs.some((line) => line.includes('writer thread stopped; starting another')), 'the writer thread to stop');
      expect(JSON.parse(logs.find((line) => line.includes('writer thread stopped')) as string)).toMatchObject({ level: 50, exitCode: 70 });
      // /health's question waits for the next thread, like mail.
      let pingAnswered = false;
      const pinged = writer.ping().then(() => (pingAnswered = true));
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(pingAnswered).toBe(false);

      // Handed over while no thread runs: it waits for the next one (started after a second).
      const started = Date.now();
      const second = await writer.ingest(reply(2));
      expect(second.status).toBe('processed');
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(workers).toHaveLength(2);
      expect(await pinged).toBe(true);
      expect((await writer.ingest(reply(3))).status).toBe('processed');
      expect(observed).toEqual(['stored processed', 'restarted', 'not stored data.store_failed', 'stored processed', 'stored processed']);
      expect(repos.notes.findById(second.deliveries[0]?.targetId as number)?.body).toBe('Reply 2.');
    } finally {
      await writer.close();
    }
    const bodies = store.sqlite.prepare('select body from notes where noteable_id = ? order by id').pluck().all(world.issue.id);
    expect(bodies).toEqual(['Reply 1.', 'Reply 2.', 'Reply 3.']);
  });
});
