// A pipelining client sends the whole envelope in one write; every reply comes back in order.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { SmtpClient } from '../helpers/smtp-client.js';
import { startServer, template, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
beforeAll(async () => {
  server = await startServer();
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
