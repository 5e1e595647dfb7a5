// Free space at MAIL FROM: below INTAKE_MIN_FREE_BYTES (plus a declared SIZE), 452 4.3.1 and nothing
// stored; the session goes on. The amount to keep is set around what this disk has free (the crash
// suite fills a tmpfs, as root, and checks the default there).
import { statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { SmtpClient } from '../helpers/smtp-client.js';
import { startServer, template, type RunningServer } from '../helpers/server.js';

const MB = 1024 * 1024;
const INSUFFICIENT = '452 4.3.1 Insufficient system storage, please try again later';
let server: RunningServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

/** What the file system of the tests' databases has free now (they live under tmpdir()). */
function freeBytes(): number {
  const stats = statfsSync(tmpdir());
  return stats.bavail * stats.bsize;
}

function refusalLogs(running: RunningServer) {
  return running.logs
    .filter((line) => line.includes('refused: too little free space for the database'))
    .map((line) => JSON.parse(line) as { level: number; code: string; mailFrom: string; freeBytes: number; neededBytes: number; refused: number });
}

describe('MAIL FROM on a disk short of room', () => {
  it('gets 452 4.3.1 while less than INTAKE_MIN_FREE_BYTES is free, logged with both numbers; the session goes on and nothing is stored', async () => {
    // More than any disk here has.
    server = await startServer({ INTAKE_MIN_FREE_BYTES: String(2 ** 52) });
    const world = seedReplyWorld(server.repos);
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    expect((await client.command(`MAIL FROM:<${world.user.email}>`)).line).toBe(INSUFFICIENT);
    // No transaction was started: RCPT needs a MAIL first.
    expect((await client.command(`RCPT TO:<${template.format(world.key)}>`)).code).toBe(503);
    expect((await client.command('NOOP')).line).toBe('250 2.0.0 OK');
    // Again: refused again, and not logged again within 10 s (the next line will count both).
    expect((await client.command(`MAIL FROM:<${world.user.email}>`)).line).toBe(INSUFFICIENT);
    await client.quit();
    // The service's log is written in batches, within 100 ms.
    const running = server;
    await expect.poll(() => refusalLogs(running).length).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(refusalLogs(server)).toHaveLength(1);
    const [logged] = refusalLogs(server);
    expect(logged).toMatchObject({ level: 40, code: 'mail.disk_full', mailFrom: world.user.email, neededBytes: 2 ** 52, refused: 1 });
    expect(logged?.freeBytes).toBeLessThan(2 ** 52);
    expect(logged?.freeBytes).toBeGreaterThan(0);
    expect(server.store.sqlite.prepare('select count(*) as n from inbound_messages').get()).toEqual({ n: 0 });
  });

  it('counts a declared SIZE: a message that would eat into the room to keep is refused, a small one is stored', async () => {
    // 500 MB below what is free: a 1,000 MB message would leave too little, a 2 KB one would not,
    // unless the machine frees or fills 500 MB meanwhile (the size limit caps SIZE at 1 GiB).
    const keep = freeBytes() - 500 * MB;
    expect(keep, 'the disk has over 500 MB free').toBeGreaterThan(0);
    server = await startServer({ INTAKE_MIN_FREE_BYTES: String(keep), INTAKE_MAX_MESSAGE_BYTES: String(1024 * MB) });
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    expect((await client.command(`MAIL FROM:<${world.user.email}> SIZE=${1000 * MB}`)).line).toBe(INSUFFICIENT);
    const running = server;
    await expect.poll(() => refusalLogs(running)[0]?.neededBytes).toBe(keep + 1000 * MB);
    expect((await client.command(`MAIL FROM:<${world.user.email}> SIZE=2048`)).code).toBe(250);
    expect((await client.command(`RCPT TO:<${to}>`)).code).toBe(250);
    const [, data] = await client.data(replyMessage({ from: world.user.email, to, body: 'Room enough for this one.' }));
    expect(data.code).toBe(250);
    await client.quit();
    expect(server.store.sqlite.prepare('select body from notes').all()).toEqual([{ body: 'Room enough for this one.' }]);
  });
});
