// A pipelining client sends the whole envelope in one write; every reply comes back in order.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { SmtpClient } from '../helpers/smtp-client.js';
import { startServer, template, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
beforeAll(async () => {
  // The tests here name a dozen unknown keys from one address; past half the allowance each refusal
  // would wait (key guessing), and replies would come apart for that reason alone.
  server = await startServer({ INTAKE_UNKNOWN_RECIPIENT_LIMIT: '100' });
});
afterAll(async () => {
  await server?.stop();
});

it('answers a pipelined MAIL, RCPTs and DATA in order, and takes two messages in one session', async () => {
  const a = seedReplyWorld(server.repos);
  const b = seedReplyWorld(server.repos);
  const { client } = await SmtpClient.connect(server.port);
  await client.command('EHLO client.test');
  const replies: string[] = [];
  for (const world of [a, b]) {
    const to = template.format(world.key);
    client.write(`MAIL FROM:<${world.user.email}>\r\nRCPT TO:<incoming+nope@example.com>\r\nRCPT TO:<${to}>\r\nDATA\r\n`);
    for (let i = 0; i < 4; i++) replies.push((await client.read()).line);
    client.write(`${replyMessage({ from: world.user.email, to, body: `Pipelined ${world.issue.id}.` }).replace(/\n/g, '\r\n')}.\r\n`);
    replies.push((await client.read()).line);
  }
  await client.quit();
  expect(replies.map((r) => r.slice(0, 9))).toEqual(['250 2.1.0', '550 5.1.1', '250 2.1.5', '354 End d', '250 2.6.0', '250 2.1.0', '550 5.1.1', '250 2.1.5', '354 End d', '250 2.6.0']);
  for (const world of [a, b]) {
    expect(server.store.sqlite.prepare('select body from notes where noteable_id = ?').all(world.issue.id)).toEqual([{ body: `Pipelined ${world.issue.id}.` }]);
  }
});

/** A raw connection that keeps every chunk as it arrived, to see how replies are packed. */
async function rawSession(port: number): Promise<{ socket: Socket; chunks: string[]; next(): Promise<string> }> {
  const socket = connect(port, '127.0.0.1');
  const chunks: string[] = [];
  let wake: (() => void) | null = null;
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    chunks.push(chunk);
    wake?.();
  });
  const next = async () => {
    while (chunks.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    return chunks.shift() as string;
  };
  await next();
  socket.write('EHLO client.test\r\n');
  await next();
  return { socket, chunks, next };
}

it('answers commands pipelined in one write with one packet, as Postfix does', async () => {
  const world = seedReplyWorld(server.repos);
  const { socket, next } = await rawSession(server.port);
  socket.write(`MAIL FROM:<${world.user.email}>\r\nRCPT TO:<${template.format(world.key)}>\r\nDATA\r\n`);
  const first = await next();
  expect(first.split('\r\n').filter(Boolean).map((line) => line.slice(0, 3))).toEqual(['250', '250', '354']);
  socket.end('.\r\nQUIT\r\n');
});

it('answers a refused RCPT at once, and ends the transaction only once its row is written', async () => {
  const world = seedReplyWorld(server.repos);
  const { socket, next } = await rawSession(server.port);
  for (let i = 0; i < 8; i++) {
    const to = `incoming+${'e'.repeat(31)}${i.toString(16)}@example.com`;
    socket.write(`MAIL FROM:<${world.user.email}>\r\nRCPT TO:<${to}>\r\n`);
    let replies = '';
    while (replies.split('\r\n').filter(Boolean).length < 2) replies += await next();
    expect(replies).toMatch(/^250 .*\r\n550 5\.1\.1 /);
    // Every other round DATA ends it: with no recipient left it is refused, after the row too.
    const ending = i % 2 === 0 ? 'RSET' : 'DATA';
    socket.write(`${ending}\r\n`);
    expect(await next()).toMatch(ending === 'RSET' ? /^250 / : /^503 5\.5\.1 /);
    // No waiting here: the reply came after the row was committed.
    const row = server.store.sqlite.prepare("select r.status, r.reason_code from deliveries r where r.recipient = ? and r.stage = 'rcpt'").get(to);
    expect(row).toEqual({ status: 'rejected', reason_code: 'rcpt.unknown_reply_key' });
    if (ending === 'DATA') {
      socket.write('RSET\r\n');
      expect(await next()).toMatch(/^250 /);
    }
  }
  socket.end('QUIT\r\n');
});

it('answers a pipelined transaction refused at RCPT with one packet, once its row is written', async () => {
  const world = seedReplyWorld(server.repos);
  const { socket, next } = await rawSession(server.port);
  const to = `incoming+${'d'.repeat(32)}@example.com`;
  socket.write(`MAIL FROM:<${world.user.email}>\r\nRCPT TO:<${to}>\r\nDATA\r\n`);
  // The MAIL and RCPT replies wait for DATA's, which waits for the refusal's row: one packet, not two.
  const first = await next();
  expect(first.split('\r\n').filter(Boolean).map((line) => line.slice(0, 9))).toEqual(['250 2.1.0', '550 5.1.1', '503 5.5.1']);
  const row = server.store.sqlite.prepare("select r.status, r.reason_code from deliveries r where r.recipient = ? and r.stage = 'rcpt'").get(to);
  expect(row).toEqual({ status: 'rejected', reason_code: 'rcpt.unknown_reply_key' });
  socket.write('RSET\r\n');
  expect(await next()).toMatch(/^250 /);
  socket.end('QUIT\r\n');
});

// RFC 2920 has the client wait for 354 before the body; a script that does not must still be served.
it('serves whole transactions, bodies included, sent in one write without waiting for 354', async () => {
  const worlds = [seedReplyWorld(server.repos), seedReplyWorld(server.repos), seedReplyWorld(server.repos)];
  const { socket, next } = await rawSession(server.port);
  const transactions = worlds.map((world) => {
    const to = template.format(world.key);
    return `MAIL FROM:<${world.user.email}>\r\nRCPT TO:<${to}>\r\nDATA\r\n${replyMessage({ from: world.user.email, to, body: `Unwaited ${world.issue.id}.` }).replace(/\n/g, '\r\n')}.\r\n`;
  });
  socket.write(`${transactions.join('')}NOOP\r\n`);
  let replies = '';
  while (!/^250 2\.0\.0 OK\r\n/m.test(replies)) replies += await next();
  socket.end('QUIT\r\n');
  expect(replies.split('\r\n').filter(Boolean).map((line) => line.slice(0, 9))).toEqual([
    ...worlds.flatMap(() => ['250 2.1.0', '250 2.1.5', '354 End d', '250 2.6.0']),
    '250 2.0.0',
  ]);
  for (const world of worlds) {
    expect(server.store.sqlite.prepare('select body from notes where noteable_id = ?').all(world.issue.id)).toEqual([{ body: `Unwaited ${world.issue.id}.` }]);
  }
});
