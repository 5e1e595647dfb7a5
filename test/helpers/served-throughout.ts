// The hostile suite's bystander: a normal client that keeps sending replies in a session of its own
// while an attack runs, each of which must be answered 250 within a bound and be stored once.
import { expect } from 'vitest';
import { Session } from '../bench/load.js';
import type { RunningServer } from './server.js';
import { replyMessage } from './seed.js';

/** The longest the normal client's mail may wait for its reply during an attack. */
export const SERVED_WITHIN_MS = 1500;

export interface Bystander {
  server: RunningServer;
  /** A sender the reply key's recipient has verified. */
  from: string;
  /** The reply address it writes to. */
  to: string;
  /**
   * Between one reply and the next (100 ms). Where the sender rate is on (20 in a row, then one in 3
   * minutes by default), long enough for the attack to end before the client has sent 20.
   */
  intervalMs?: number;
}

let sequence = 0;

/**
 * Runs `attack` while the normal client sends a reply every intervalMs in a session opened before
 * the attack (from 127.0.0.1; attackers use other loopback addresses). Every reply must be accepted
 * within SERVED_WITHIN_MS, and each must then be in the database once, processed. Resolves with how
 * many were sent.
 */
export async function servedThroughout(bystander: Bystander, attack: () => Promise<void>): Promise<{ accepted: number }> {
  const { server, from, to } = bystander;
  const normal = await Session.open(server.port);
  await normal.hello('normal.client.test');
  let stop = false;
  const failures: string[] = [];
  const accepted: string[] = [];
  let slowestMs = 0;
  const loop = (async () => {
    while (!stop) {
      const messageId = `normal-${process.pid}-${++sequence}@client.test`;
      const data = Buffer.from(replyMessage({ from, to, body: 'Normal mail during an attack.', messageId: `<${messageId}>` }).replace(/\r?\n/g, '\r\n'));
      const sent = performance.now();
      const outcome = await normal.send({ from, to, data });
      slowestMs = Math.max(slowestMs, performance.now() - sent);
      if (outcome.kind === 'accepted') accepted.push(messageId);
      else failures.push(JSON.stringify(outcome));
      await new Promise((r) => setTimeout(r, bystander.intervalMs ?? 100));
    }
  })();
  try {
    await attack();
  } finally {
    stop = true;
    await loop;
    normal.close();
  }
  expect(failures, 'the normal client refused or deferred').toEqual([]);
  expect(accepted.length, 'the normal client was served').toBeGreaterThan(0);
  expect(slowestMs, 'the normal client waited').toBeLessThan(SERVED_WITHIN_MS);
  // What got 250 is there, once, as a note's message: the attack did not make the answers lie.
  const stored = server.store.sqlite.prepare("select message_id as id, count(*) as n from inbound_messages where message_id like 'normal-%' and status = 'processed' group by message_id").all() as { id: string; n: number }[];
  const counts = new Map(stored.map((row) => [row.id, row.n]));
  expect(accepted.filter((id) => counts.get(id) !== 1), 'accepted, and not stored once').toEqual([]);
  return { accepted: accepted.length };
}
