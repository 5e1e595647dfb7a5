// What a supervisor sees: SIGTERM stops new connections, tells idle sessions 421, lets a message
// being received finish (bounded), closes the database cleanly and exits 0.
import { copyFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/db/client.js';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { SmtpClient } from '../helpers/smtp-client.js';
import { startServer, template } from '../helpers/server.js';

const refused = (port: number) =>
  new Promise<string>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });

describe('SIGTERM', () => {
  it('lets the message in DATA finish with 250 and then says 421, sends idle sessions 421 at once, refuses new ones, exits 0 with the database closed', async () => {
    const server = await startServer({ INTAKE_SHUTDOWN_TIMEOUT_MS: '10000' });
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const { client: busy } = await SmtpClient.connect(server.port);
    const { client: piping } = await SmtpClient.connect(server.port);
    const { client: idle } = await SmtpClient.connect(server.port);
    await idle.command('EHLO idle.test');
    const message = replyMessage({ from: world.user.email, to, body: 'Sent while the server stops.' }).replace(/\n/g, '\r\n');
    const other = replyMessage({ from: world.user.email, to, body: 'Sent too.' }).replace(/\n/g, '\r\n');
    for (const [client, text] of [[busy, message], [piping, other]] as const) {
      await client.command('EHLO busy.test');
      await client.command(`MAIL FROM:<${world.user.email}>`);
      await client.command(`RCPT TO:<${to}>`);
      expect((await client.command('DATA')).code).toBe(354);
      client.write(text.slice(0, 100));
    }
    // The test lets go of the database so that intake's close is the last one (which removes the WAL).
    server.store.close();
    process.kill(server.pid, 'SIGTERM');
    expect(await idle.read()).toMatchObject({ line: '421 4.3.2 Service shutting down, please try again later' });
    await expect.poll(() => idle.isClosed).toBe(true);
    expect(await refused(server.port)).toBe('ECONNREFUSED');
    // Its message answered, a session is told at once, in intake's words; one that pipelined a command
    // behind its message is answered so for that command, once.
    busy.write(`${message.slice(100)}.\r\n`);
    piping.write(`${other.slice(100)}.\r\nNOOP\r\n`);
    for (const client of [busy, piping]) {
      expect((await client.read()).line).toMatch(/^250 2\.6\.0 Message accepted as inbound message \d+$/);
      expect((await client.read()).line).toBe('421 4.3.2 Service shutting down, please try again later');
      await expect.poll(() => client.isClosed).toBe(true);
      await expect(client.read()).rejects.toThrow('connection closed while waiting for a reply; got ""');
    }
    expect(await server.exited).toBe(0);
    expect(server.logs.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
    expect(existsSync(`${server.database}-wal`)).toBe(false);
    const store = openStore(server.database, { migrate: false });
    try {
      expect(store.sqlite.pragma('integrity_check', { simple: true })).toBe('ok');
      const notes = store.sqlite.prepare("select body from notes where noteable_type = 'Issue' and noteable_id = ? order by body").all(world.issue.id);
      expect(notes).toEqual([{ body: 'Sent too.' }, { body: 'Sent while the server stops.' }]);
    } finally {
      store.close();
      await server.stop();
    }
  });

  it('cuts a message that does not finish within the grace period: nothing is acknowledged or stored', async () => {
    const server = await startServer({ INTAKE_SHUTDOWN_TIMEOUT_MS: '1000' });
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO slow.test');
    await client.command(`MAIL FROM:<${world.user.email}>`);
    await client.command(`RCPT TO:<${to}>`);
    await client.command('DATA');
    client.write('Subject: never finished\r\n\r\nstill typing');
    const started = Date.now();
    process.kill(server.pid, 'SIGTERM');
    expect(await server.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    // Cut in intake's words (smtp-server's own timer, which would say its own, comes later).
    expect((await client.read()).line).toBe('421 4.3.2 Service shutting down, please try again later');
    await expect.poll(() => client.isClosed).toBe(true);
    const stored = server.store.sqlite.prepare("select count(*) as n from inbound_messages where status = 'processed'").get() as { n: number };
    expect(stored.n).toBe(0);
    await server.stop();
  });

  it('a second SIGTERM stops at once (exit 1)', async () => {
    const server = await startServer({ INTAKE_SHUTDOWN_TIMEOUT_MS: '60000' });
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO slow.test');
    await client.command('MAIL FROM:<a@b.test>');
    await client.command(`RCPT TO:<${template.format(seedReplyWorld(server.repos).key)}>`);
    await client.command('DATA');
    process.kill(server.pid, 'SIGTERM');
    await expect.poll(() => server.logs.some((l) => l.includes('"msg":"stopping'))).toBe(true);
    process.kill(server.pid, 'SIGTERM');
    expect(await server.exited).toBe(1);
    await client.quit();
    await server.stop();
  });
});

describe('a restart after kill -9', () => {
  it('checkpoints the WAL the killed run left into the database before it says it is ready', async () => {
    const first = await startServer();
    const world = seedReplyWorld(first.repos);
    const to = template.format(world.key);
    const { client } = await SmtpClient.connect(first.port);
    await client.command('EHLO client.test');
    for (let i = 0; i < 5; i++) {
      await client.command(`MAIL FROM:<${world.user.email}>`);
      await client.command(`RCPT TO:<${to}>`);
      await client.command('DATA');
      expect((await client.command(`${replyMessage({ from: world.user.email, to, body: `Reply ${i}.` }).replace(/\n/g, '\r\n')}.`)).code).toBe(250);
    }
    // No connection of the test's left open: the next start is the first to open the database again.
    first.store.close();
    process.kill(first.pid, 'SIGKILL');
    await first.exited;
    const wal = `${first.database}-wal`;
    expect(statSync(wal).size, 'the WAL the killed run left').toBeGreaterThan(0);
    const second = await startServer({ INTAKE_DATABASE: first.database });
    try {
      const line = second.logs.find((l) => l.includes('WAL checkpointed into the database at start'));
      expect(JSON.parse(line ?? '{}')).toMatchObject({ level: 30, frames: expect.any(Number) });
      expect(JSON.parse(line ?? '{}').frames).toBeGreaterThan(0);
      expect(second.logs.findIndex((l) => l.includes('"msg":"ready"'))).toBeGreaterThan(second.logs.indexOf(line as string));
      // The database file alone, without its WAL, now holds what the killed run stored.
      const alone = join(second.dir, 'alone.sqlite');
      copyFileSync(second.database, alone);
      const copy = new Database(alone, { readonly: true });
      try {
        const notes = copy.prepare('select body from notes where noteable_id = ? order by id').all(world.issue.id);
        expect(notes).toEqual([0, 1, 2, 3, 4].map((i) => ({ body: `Reply ${i}.` })));
      } finally {
        copy.close();
      }
    } finally {
      await second.stop();
      await first.stop();
    }
  });
});
