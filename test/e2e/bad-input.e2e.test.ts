// Bad input over real TCP: each case gets a clear reply, the server keeps serving, and nothing already
// stored changes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { sendMail, SmtpClient } from '../helpers/smtp-client.js';
import { startServer, template, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
let world: ReturnType<typeof seedReplyWorld>;
let to: string;
let snapshot: unknown;

/** The rows stored before the bad input arrived (later valid messages may add rows of their own). */
function storedState(upTo = { note: Infinity, message: Infinity }) {
  const db = server.store.sqlite;
  return {
    notes: db.prepare('select id, body, author_id, noteable_id from notes where id <= ? order by id').all(upTo.note),
    issues: db.prepare('select id, title, state, description from issues where id = ?').all(world.issue.id),
    messages: db.prepare('select id, status, size, sha256, raw from inbound_messages where id <= ? order by id').all(upTo.message),
  };
}
let upTo: { note: number; message: number };

beforeAll(async () => {
  server = await startServer();
  world = seedReplyWorld(server.repos);
  to = template.format(world.key);
  const { data } = await sendMail(server.port, {
    from: world.user.email,
    to: [to],
    message: replyMessage({ from: world.user.email, to, body: 'A note that must survive.' }),
  });
  expect(data.code).toBe(250);
  const db = server.store.sqlite;
  upTo = {
    note: (db.prepare('select max(id) as id from notes').get() as { id: number }).id,
    message: (db.prepare('select max(id) as id from inbound_messages').get() as { id: number }).id,
  };
  snapshot = storedState(upTo);
});

afterAll(async () => {
  await server?.stop();
});

/** After each bad input: a normal reply in a new session is still served. */
async function stillServes(): Promise<void> {
  const other = seedReplyWorld(server.repos);
  const otherTo = template.format(other.key);
  const { data } = await sendMail(server.port, {
    from: other.user.email,
    to: [otherTo],
    message: replyMessage({ from: other.user.email, to: otherTo, body: 'Still here.' }),
  });
  expect(data.line).toMatch(/^250 2\.6\.0 Message accepted/);
  server.store.sqlite.prepare('delete from notes where noteable_id = ?').run(other.issue.id);
}

async function send(message: string | Buffer) {
  return (await sendMail(server.port, { from: world.user.email, to: [to], message })).data;
}

describe('bad input', () => {
  it('a 10 MB header block is refused as unparsable', async () => {
    const headers = Array.from({ length: 10 * 1024 }, (_, i) => `X-Filler-${i}: ${'h'.repeat(1000)}`).join('\r\n');
    const data = await send(Buffer.from(`${headers}\r\nFrom: ${world.user.email}\r\nTo: ${to}\r\n\r\nHeaders galore.\r\n`));
    expect(data.line).toBe('550 5.6.0 The message could not be parsed as an email');
    await stillServes();
  });

  it('a line of nearly 1 MB is taken as data (a longer one is more text than a note may hold)', async () => {
    const data = await send(replyMessage({ from: world.user.email, to, body: `Long line: ${'y'.repeat(990_000)}`, messageId: '<long-line@client.test>' }));
    expect(data.line).toMatch(/^250 2\.6\.0 Message accepted/);
    await stillServes();
  });

  it('NUL bytes and invalid UTF-8 do not break parsing or storage', async () => {
    const body = Buffer.concat([Buffer.from('Bytes: '), Buffer.from([0x00, 0xff, 0xfe, 0xc3, 0x28, 0x00]), Buffer.from(' end.')]);
    const head = Buffer.from(`From: ${world.user.email}\r\nTo: ${to}\r\nSubject: bytes\r\nMessage-ID: <bytes@client.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n`);
    const data = await send(Buffer.concat([head, body, Buffer.from('\r\n')]));
    expect(data.line).toMatch(/^250 2\.6\.0 Message accepted/);
    const id = Number(/inbound message (\d+)/.exec(data.line)?.[1]);
    expect(server.repos.inbound.findById(id)?.raw?.includes(Buffer.from([0x00, 0xff, 0xfe]))).toBe(true);
    await stillServes();
  });

  it('a non-MIME binary blob is refused: it has no sender to verify', async () => {
    const blob = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256).filter((b) => b !== 0x0a && b !== 0x0d && b !== 0x2e));
    const data = await send(blob);
    expect(data.line).toBe(
      "550 5.7.1 We couldn't figure out what user corresponds to the email. Please create your comment through the web interface.",
    );
    await stillServes();
  });

  it('a RCPT without a domain, and malformed addresses, get 501 and the session goes on', async () => {
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    await client.command(`MAIL FROM:<${world.user.email}>`);
    const replies = [];
    for (const bad of ['RCPT TO:<incoming+abc>', 'RCPT TO:<@>', 'RCPT TO:incoming+abc@@example.com', 'RCPT TO:<a b@example.com>']) {
      replies.push((await client.command(bad)).line);
    }
    const good = await client.command(`RCPT TO:<${to}>`);
    await client.quit();
    for (const reply of replies) expect(reply).toMatch(/^5\d\d 5\.\d\.\d+ /);
    expect(replies[0]).toBe('501 5.1.3 Error: Bad recipient address syntax');
    expect(good.line).toBe('250 2.1.5 Accepted');
  });

  it('garbage commands get 500 and the session goes on', async () => {
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    const garbage = await client.command('\u00ff\u00fe HELLO?');
    const noop = await client.command('NOOP');
    await client.quit();
    expect(garbage.line).toMatch(/^500 5\.5\.2 /);
    expect(noop.line).toBe('250 2.0.0 OK');
  });

  it('commands out of order get 503 and a malformed parameter 501 (smtp-server\'s own), and the session still delivers', async () => {
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    const rcptFirst = await client.command(`RCPT TO:<${to}>`);
    const dataFirst = await client.command('DATA');
    const badSize = await client.command(`MAIL FROM:<${world.user.email}> SIZE=12abc`);
    const twice = await client.command(`MAIL FROM:<${world.user.email}> BODY=8BITMIME BODY=7BIT`);
    const mail = await client.command(`MAIL FROM:<${world.user.email}>`);
    const nested = await client.command(`MAIL FROM:<${world.user.email}>`);
    const rcpt = await client.command(`RCPT TO:<${to}>`);
    const [data, final] = await client.data(replyMessage({ from: world.user.email, to, body: 'After the refusals.' }));
    await client.quit();
    expect(rcptFirst.line).toMatch(/^503 5\.5\.1 Error: need MAIL command/);
    expect(dataFirst.line).toMatch(/^503 5\.5\.1 Error: need RCPT command/);
    expect(badSize.line).toMatch(/^501 5\.5\.4 Error: Bad message size syntax/);
    expect(twice.line).toMatch(/^501 5\.5\.4 Error: duplicate BODY parameter/);
    expect(mail.code).toBe(250);
    expect(nested.line).toMatch(/^503 5\.5\.1 Error: nested MAIL command/);
    expect(rcpt.code).toBe(250);
    expect(data.code).toBe(354);
    expect(final.line).toMatch(/^250 2\.6\.0 Message accepted/);
    const stored = server.store.sqlite.prepare("select body from notes where body like '%After the refusals.%'").all();
    expect(stored).toHaveLength(1);
  });

  it('1,250 RCPTs: the first 100 accepted (the default, the least RFC 5321 allows), the next 1,000 452 4.5.3 (send them again), then 421 and the session closed; no crash', async () => {
    const keys = Array.from({ length: 110 }, () => template.format(seedReplyWorld(server.repos).key));
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    await client.command(`MAIL FROM:<${world.user.email}>`);
    const commands = [...keys, ...Array.from({ length: 1140 }, (_, i) => `incoming+guess${i}@example.com`)].map((a) => `RCPT TO:<${a}>\r\n`);
    client.write(commands.join(''));
    const codes: number[] = [];
    // Until the server closes the connection (after the 421, the rest of the pipeline is not answered).
    for (let i = 0; i < commands.length; i++) {
      const reply = await client.read().catch(() => null);
      if (!reply) break;
      codes.push(reply.code);
    }
    await client.quit();
    expect(codes.slice(0, 100).every((c) => c === 250)).toBe(true);
    // Past INTAKE_MAX_RECIPIENTS every recipient is 452, unknown or not; 1,000 of them, as Postfix allows.
    expect(codes.slice(100, 1100).every((c) => c === 452)).toBe(true);
    expect(codes.slice(1100)).toEqual([421]);
    await stillServes();
  });

  it('left everything stored before unchanged', () => {
    expect(storedState(upTo)).toEqual(snapshot);
  });
});
