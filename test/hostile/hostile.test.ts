// Hostile input over real TCP. Each case gets a specific reply and never a crash, and a normal client
// in a session of its own (127.0.0.1) is served throughout. Abusers come from other loopback
// addresses (127.0.0.2 and up), as separate clients would.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTCOMES, type OutcomeCode } from '../../src/errors.js';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { sendMail, SmtpClient } from '../helpers/smtp-client.js';
import { servedThroughout } from '../helpers/served-throughout.js';
import { startServer, template, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
let world: ReturnType<typeof seedReplyWorld>;
let to: string;

beforeAll(async () => {
  server = await startServer({
    INTAKE_MAX_MESSAGE_BYTES: String(20 * 1024 * 1024),
    INTAKE_MAX_CLIENTS: '200',
    INTAKE_MAX_CONNECTIONS_PER_IP: '10',
    INTAKE_SOCKET_TIMEOUT_MS: '4000',
    INTAKE_DATA_TIMEOUT_MS: '8000',
    INTAKE_UNKNOWN_RECIPIENT_LIMIT: '10',
    INTAKE_UNKNOWN_RECIPIENT_BLOCK_MS: '60000',
    // The normal client replies to one issue throughout, which the sender rate would take for a loop
    // ("mail loops" below has it on).
    INTAKE_SENDER_RATE_LIMIT: '0',
  });
  world = seedReplyWorld(server.repos);
  to = template.format(world.key);
});

afterAll(async () => {
  expect(server.logs.filter((l) => /"level":(50|60)/.test(l)), 'no error logged').toEqual([]);
  await server?.stop();
});

/** The reply line of an outcome, as sent. */
const replyLine = (code: OutcomeCode) => `${OUTCOMES[code].smtp} ${OUTCOMES[code].dsn} ${OUTCOMES[code].text}\r\n`;

let sequence = 0;
const reply = (body: string, headers: string[] = []) =>
  Buffer.from(replyMessage({ from: world.user.email, to, body, messageId: `<hostile-${++sequence}@client.test>`, headers }).replace(/\r?\n/g, '\r\n'));

/** The normal client of the SMTP cases, replying to the world's issue from its recipient. */
const bystander = () => ({ server, from: world.user.email, to });

const rowsWith = (messageId: string) =>
  server.store.sqlite.prepare('select status, reason_code from inbound_messages where message_id = ?').all(messageId) as { status: string; reason_code: string | null }[];
/** Rows from one client address (the normal client in parallel adds rows of its own from 127.0.0.1). */
const inboundCount = (remoteAddress: string) =>
  (server.store.sqlite.prepare('select count(*) as n from inbound_messages where remote_address = ?').get(remoteAddress) as { n: number }).n;

function rawConnect(localAddress: string): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: server.port, host: '127.0.0.1', localAddress });
    let text = '';
    socket.setEncoding('latin1').on('data', (c: string) => (text += c));
    socket.on('error', () => undefined);
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('connect', () => resolve({ socket, received: () => text, closed }));
    socket.once('error', reject);
  });
}

describe('SMTP smuggling: line ends that are not CRLF.CRLF never end the message', () => {
  const fakeEnds = { 'LF.LF': '\n.\n', 'CRLF.LF': '\r\n.\n', 'LF.CRLF': '\n.\r\n', 'CR.CR': '\r.\r', 'bare CR line': '\r\n.\r' };
  it.each(Object.entries(fakeEnds))('%s inside DATA is data: one message, one reply, no second transaction', async (_name, fakeEnd) => {
    await servedThroughout(bystander(), async () => {
      const { client } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.2' });
      const before = inboundCount('127.0.0.2');
      const messageId = `smuggle-${++sequence}@client.test`;
      await client.command('EHLO smuggler.test');
      await client.command(`MAIL FROM:<${world.user.email}>`);
      await client.command(`RCPT TO:<${to}>`);
      expect((await client.command('DATA')).code).toBe(354);
      const smuggled = `MAIL FROM:<evil@smuggler.test>\r\nRCPT TO:<${to}>\r\nDATA\r\nSubject: smuggled\r\n\r\nSMUGGLED BODY\r\n`;
      client.write(`From: ${world.user.email}\r\nTo: ${to}\r\nSubject: Re: x\r\nMessage-ID: <${messageId}>\r\n\r\nVisible reply.${fakeEnd}${smuggled}\r\n.\r\n`);
      const final = await client.read();
      expect(final.line).toMatch(/^250 2\.6\.0 Message accepted as inbound message \d+$/);
      // Nothing more comes: the next line is NOOP's own reply, not one to a smuggled command.
      expect((await client.command('NOOP')).line).toBe('250 2.0.0 OK');
      await client.quit();
      expect(inboundCount('127.0.0.2')).toBe(before + 1);
      expect(rowsWith(messageId)).toEqual([{ status: 'processed', reason_code: null }]);
      const note = server.store.sqlite.prepare('select body from notes where inbound_message_id = (select id from inbound_messages where message_id = ?)').get(messageId) as { body: string };
      expect(note.body).toContain('SMUGGLED BODY');
    });
  });
});

describe('slowloris', () => {
  it('per address: the 11th idle connection from one address gets 421 4.7.0; other addresses still connect', async () => {
    await servedThroughout(bystander(), async () => {
      const idle = await Promise.all(Array.from({ length: 10 }, () => rawConnect('127.0.0.4')));
      await expect.poll(() => idle.every((c) => c.received().startsWith('220 '))).toBe(true);
      const extra = await rawConnect('127.0.0.4');
      await extra.closed;
      expect(extra.received()).toBe('421 4.7.0 Too many connections from your address, try again later\r\n');
      const other = await SmtpClient.connect(server.port, { localAddress: '127.0.0.5' });
      expect(other.greeting.code).toBe(220);
      await other.client.quit();
      for (const c of idle) c.socket.destroy();
    });
  });

  it('idle and byte-a-second sessions (a hundred at once) are closed after the idle timeout with 421', async () => {
    await servedThroughout(bystander(), async () => {
      const idle = await rawConnect('127.0.0.6');
      const started = Date.now();
      await idle.closed;
      expect(Date.now() - started).toBeGreaterThan(3000);
      // intake's own reply, not smtp-server's idle timer's (421 4.4.2 Timeout - closing connection).
      expect(idle.received().startsWith('220 ')).toBe(true);
      expect(idle.received().endsWith(`\r\n${replyLine('session.command_timeout')}`)).toBe(true);
      // One byte a second never completes a command: the idle timer is about commands, not bytes.
      // A hundred of them at once, from ten addresses, are all cut at the same deadline.
      const slow = await Promise.all(Array.from({ length: 100 }, (_, i) => rawConnect(`127.0.0.${50 + (i % 10)}`)));
      const dribble = setInterval(() => slow.forEach((c) => c.socket.write('E')), 1000);
      const slowStarted = Date.now();
      await Promise.all(slow.map((c) => c.closed));
      clearInterval(dribble);
      expect(Date.now() - slowStarted).toBeLessThan(8000);
      expect(slow.filter((c) => !c.received().startsWith('220 ') || !c.received().endsWith(`\r\n${replyLine('session.command_timeout')}`))).toEqual([]);
    });
  });

  it('a slow message that arrives within the DATA deadline is stored, and its time is not held against the session', async () => {
    await servedThroughout(bystander(), async () => {
      const { client } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.80' });
      await client.command('EHLO slow.test');
      await client.command(`MAIL FROM:<${world.user.email}>`);
      await client.command(`RCPT TO:<${to}>`);
      expect((await client.command('DATA')).code).toBe(354);
      client.write(`From: ${world.user.email}\r\nTo: ${to}\r\nSubject: Re: slow\r\nMessage-ID: <slow-${++sequence}@client.test>\r\n\r\n`);
      // Longer than the 4 s command timeout, shorter than the 8 s DATA deadline.
      for (let i = 0; i < 10; i++) {
        client.write(`A slow line ${i}.\r\n`);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      client.write('.\r\n');
      expect((await client.read()).line).toMatch(/^250 2\.6\.0 Message accepted/);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      expect((await client.command('NOOP')).code).toBe(250);
      await client.quit();
    });
  });

  it('a message trickled a line at a time is cut at the DATA deadline with 421, and nothing is stored', async () => {
    await servedThroughout(bystander(), async () => {
      // Each line completes, so the command deadline never fires: only the deadline of DATA does.
      const trickle = await Promise.all(Array.from({ length: 20 }, (_, i) => rawConnect(`127.0.0.${70 + (i % 5)}`)));
      const before = trickle.map((_, i) => inboundCount(`127.0.0.${70 + (i % 5)}`));
      await expect.poll(() => trickle.every((c) => c.received().startsWith('220 '))).toBe(true);
      // Before DATA is sent: the server's deadline starts later, so the time measured is never short of it.
      const started = Date.now();
      for (const c of trickle) c.socket.write(`EHLO trickle.test\r\nMAIL FROM:<${world.user.email}>\r\nRCPT TO:<${to}>\r\nDATA\r\n`);
      await expect.poll(() => trickle.every((c) => c.received().includes('\r\n354 '))).toBe(true);
      const drip = setInterval(() => trickle.forEach((c) => c.socket.write('still coming\r\n')), 500);
      await Promise.all(trickle.map((c) => c.closed));
      clearInterval(drip);
      expect(Date.now() - started).toBeGreaterThan(7000);
      expect(trickle.filter((c) => !/^220 [^]*\r\n354 /.test(c.received()) || !c.received().endsWith(replyLine('session.data_timeout')))).toEqual([]);
      expect(trickle.map((_, i) => inboundCount(`127.0.0.${70 + (i % 5)}`))).toEqual(before);
      // The log reaches this process through a pipe, after the clients saw their connections close.
      await expect.poll(() => server.logs.filter((l) => l.includes('"code":"session.data_timeout"')).length).toBe(20);
    });
  });

  it('a message that stops arriving half-way is cut once nothing more of it came for the idle timeout, with 421, and nothing is stored', async () => {
    await servedThroughout(bystander(), async () => {
      const stalled = await rawConnect('127.0.0.76');
      const before = inboundCount('127.0.0.76');
      await expect.poll(() => stalled.received().startsWith('220 ')).toBe(true);
      stalled.socket.write(`EHLO stall.test\r\nMAIL FROM:<${world.user.email}>\r\nRCPT TO:<${to}>\r\nDATA\r\n`);
      await expect.poll(() => stalled.received().includes('\r\n354 ')).toBe(true);
      stalled.socket.write(`From: ${world.user.email}\r\nTo: ${to}\r\nSubject: Re: stalled\r\n\r\nHalf of a reply, and then`);
      const silent = Date.now();
      await stalled.closed;
      // The 4 s idle timeout, not the 8 s DATA deadline; intake's own reply, not smtp-server's idle
      // timer's (421 4.4.2 Timeout - closing connection, which would come 2 s later).
      expect(Date.now() - silent).toBeGreaterThan(2900);
      expect(Date.now() - silent).toBeLessThan(7500);
      expect(stalled.received().endsWith(`\r\n${replyLine('session.data_timeout')}`)).toBe(true);
      expect(inboundCount('127.0.0.76')).toBe(before);
      await expect.poll(() => server.logs.some((l) => l.includes('"code":"session.data_timeout"') && l.includes('"remoteAddress":"127.0.0.76"'))).toBe(true);
    });
  });

  it('a burst past twice INTAKE_MAX_CLIENTS is refused with intake\'s 421 4.3.2 by every refusal, smtp-server\'s backstop too', async () => {
    // smtp-server refuses past its own limit (twice intake's) before intake hears of the connection,
    // with a reply of its own that has no enhanced code; thirty at once reach it.
    const small = await startServer({ INTAKE_MAX_CLIENTS: '5' });
    try {
      const burst = await Promise.all(
        Array.from(
          { length: 30 },
          (_, i) =>
            new Promise<{ socket: Socket; received: () => string }>((resolve, reject) => {
              const socket = connect({ port: small.port, host: '127.0.0.1', localAddress: `127.0.1.${i + 1}` });
              let text = '';
              socket.setEncoding('latin1').on('data', (c: string) => (text += c));
              socket.on('error', () => undefined);
              socket.once('connect', () => resolve({ socket, received: () => text }));
              socket.once('error', reject);
            }),
        ),
      );
      await expect.poll(() => burst.every((c) => c.received().includes('\r\n'))).toBe(true);
      const firstLines = burst.map((c) => c.received().split('\r\n')[0] as string);
      expect(firstLines.filter((l) => !l.startsWith('220 ') && l !== replyLine('connect.too_many_clients').trimEnd())).toEqual([]);
      expect(firstLines.filter((l) => l.startsWith('220 ')).length).toBeLessThanOrEqual(5);
      // Each refusal logged, smtp-server's (before the greeting's delay) as intake's.
      const refused = firstLines.filter((l) => !l.startsWith('220 ')).length;
      const logged = () => small.logs.filter((l) => l.includes('"code":"connect.too_many_clients"'));
      await expect.poll(() => logged().length).toBe(refused);
      expect(logged().filter((l) => l.includes('"before":"greeting"')).length).toBeGreaterThan(0);
      for (const c of burst) c.socket.destroy();
    } finally {
      await small.stop();
    }
  });

  it('globally: hundreds of idle connections fill INTAKE_MAX_CLIENTS, the next gets 421, the idle ones time out, and the normal session goes on', async () => {
    await servedThroughout(bystander(), async () => {
      // 199 from 20 addresses, and the normal client: 200 connected.
      const crowd: Awaited<ReturnType<typeof rawConnect>>[] = [];
      for (let host = 10; host < 30; host++) crowd.push(...(await Promise.all(Array.from({ length: host === 29 ? 9 : 10 }, () => rawConnect(`127.0.0.${host}`)))));
      await expect.poll(() => crowd.filter((c) => c.received().startsWith('220 ')).length, { timeout: 10_000 }).toBe(199);
      const late = await rawConnect('127.0.0.31');
      await late.closed;
      expect(late.received()).toBe('421 4.3.2 Too many connected clients, try again in a moment\r\n');
      await expect.poll(() => server.logs.some((l) => l.includes('connect.too_many_clients') && l.includes('127.0.0.31'))).toBe(true);
      // Nobody in the crowd says anything: each is closed at the idle timeout, and room is made.
      await Promise.all(crowd.map((c) => c.closed));
      // intake's own reply to each (as to the one idle session above), not smtp-server's idle timer's.
      expect(crowd.filter((c) => !c.received().endsWith(`\r\n${replyLine('session.command_timeout')}`))).toEqual([]);
      const after = await SmtpClient.connect(server.port, { localAddress: '127.0.0.31' });
      expect(after.greeting.code).toBe(220);
      await after.client.quit();
    });
  }, 30_000);
});

describe('oversize', () => {
  it('SIZE declared too large: 552 at MAIL, and the session goes on', async () => {
    await servedThroughout(bystander(), async () => {
      const { client } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.7' });
      await client.command('EHLO big.test');
      expect((await client.command(`MAIL FROM:<${world.user.email}> SIZE=${100 * 1024 * 1024}`)).line).toBe('552 5.3.4 Error: message exceeds fixed maximum message size 20971520');
      expect((await client.command(`MAIL FROM:<${world.user.email}> SIZE=1000`)).code).toBe(250);
      await client.quit();
    });
  });

  it('a body over the limit: 552 after DATA, nothing processed, the session goes on', async () => {
    await servedThroughout(bystander(), async () => {
      const messageId = `big-${++sequence}@client.test`;
      const before = inboundCount('127.0.0.7');
      const { client } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.7' });
      await client.command('EHLO big.test');
      await client.command(`MAIL FROM:<${world.user.email}>`);
      await client.command(`RCPT TO:<${to}>`);
      const body = `From: ${world.user.email}\r\nMessage-ID: <${messageId}>\r\n\r\n${'y'.repeat(998)}\r\n`.repeat(1);
      const [, final] = await client.data(Buffer.from(body + `${'z'.repeat(76)}\r\n`.repeat(280_000)));
      expect(final.line).toBe('552 5.3.4 Error: message exceeds fixed maximum message size 20971520');
      expect((await client.command('NOOP')).code).toBe(250);
      await client.quit();
      // One row says it was refused as too big; the body was never kept, so nothing could be made of it.
      expect(inboundCount('127.0.0.7')).toBe(before + 1);
      const row = server.store.sqlite.prepare("select id, status, reason_code, message_id, raw, size from inbound_messages where remote_address = '127.0.0.7' order by id desc limit 1").get() as { id: number; status: string; reason_code: string; message_id: string | null; raw: Buffer | null; size: number };
      expect(row).toMatchObject({ status: 'rejected', reason_code: 'data.too_big', message_id: null, raw: null });
      expect(row.size).toBeGreaterThan(20_971_520);
      expect(server.store.sqlite.prepare('select status, reason_code from deliveries where inbound_message_id = ?').all(row.id)).toEqual([{ status: 'rejected', reason_code: 'data.too_big' }]);
      expect(server.store.sqlite.prepare('select count(*) as n from notes where inbound_message_id = ?').get(row.id)).toEqual({ n: 0 });
      expect(server.store.sqlite.prepare('select count(*) as n from inbound_message_chunks where inbound_message_id = ?').get(row.id)).toEqual({ n: 0 });
      expect(rowsWith(messageId)).toEqual([]);
    });
  });
});

describe('malformed messages, each answered and none breaking the server', () => {
  const unparsable = { line: /^550 5\.6\.0 The message could not be parsed as an email$/, status: 'rejected', reasonCode: 'data.unparsable' };
  const accepted = { line: /^250 2\.6\.0 Message accepted as inbound message \d+$/, status: 'processed', reasonCode: null };
  const headers = (subject: string, extra = '') => `From: ${world.user.email}\r\nTo: ${to}\r\nSubject: Re: ${subject}\r\nMessage-ID: <${subject}-${++sequence}@client.test>\r\nMIME-Version: 1.0\r\n${extra}`;
  // What each gets, and the row it leaves. mailsplit bounds a header block at 1 MiB and a message at
  // 1,000 parts; past that the message cannot be read, and is refused as such.
  const cases: Record<string, { make: () => Buffer; line: RegExp; status: string; reasonCode: string | null; note?: string }> = {
    '100,000 headers': { make: () => reply('Flooded.', Array.from({ length: 100_000 }, (_, i) => `X-Flood-${i}: ${i}`)), ...unparsable },
    'a 10 MB header': { make: () => reply('Huge header.', [`X-Huge: ${'h'.repeat(10 * 1024 * 1024)}`]), ...unparsable },
    'two text lines of 1 MB (more than a note holds)': {
      make: () => reply(`${'w'.repeat(1024 * 1024)}\n${'v'.repeat(1024 * 1024)}`),
      line: /^552 5\.3\.4 Message text too long for an issue or a note; send the text as an attachment$/,
      status: 'rejected',
      reasonCode: 'data.text_too_long',
    },
    'a line of 1 MB in an attachment': {
      make: () => Buffer.from(`${headers('att', 'Content-Type: multipart/mixed; boundary="q"\r\n')}\r\n--q\r\nContent-Type: text/plain\r\n\r\nSee the log.\r\n--q\r\nContent-Type: application/octet-stream; name="log.bin"\r\nContent-Disposition: attachment; filename="log.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.alloc(786_432, 7).toString('base64')}\r\n--q--\r\n`),
      ...accepted,
    },
    'MIME nested 1,000 deep': {
      make: () => {
        let body = 'Content-Type: text/plain\r\n\r\nDeep reply.\r\n';
        for (let i = 0; i < 1000; i++) body = `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n${body}--b${i}--\r\n`;
        return Buffer.from(`${headers('deep')}${body}`);
      },
      ...unparsable,
    },
    '10,000 parts': {
      make: () => {
        const parts = Array.from({ length: 10_000 }, (_, i) => `--p\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`).join('');
        return Buffer.from(`${headers('parts', 'Content-Type: multipart/mixed; boundary="p"\r\n')}\r\n${parts}--p--\r\n`);
      },
      ...unparsable,
    },
    // 8-bit Latin-1 text under a label no decoder knows: read as Windows-1252, as if it had none.
    'invalid charsets': {
      make: () =>
        Buffer.concat([
          Buffer.from(`${headers('charset', 'Content-Type: text/plain; charset="x-no-such-charset"\r\nContent-Transfer-Encoding: 8bit\r\n')}\r\n`),
          Buffer.from('Caf\xe9 cr\xe8me, s\xfbrement.\r\n', 'latin1'),
        ]),
      ...accepted,
      note: 'Café crème, sûrement.',
    },
    // mailsplit gives such a part no type at all; reading it once ended the writer thread.
    'a part whose Content-Type names no type': {
      make: () => Buffer.from(`${headers('typeless', 'Content-Type: multipart/mixed; boundary="t"\r\n')}\r\n--t\r\nContent-Type: text/plain\r\n\r\nSee the file.\r\n--t\r\nContent-Type:\r\nContent-Disposition: attachment\r\n\r\nWhat is this?\r\n--t--\r\n`),
      ...accepted,
    },
    'NUL bytes in the body': { make: () => Buffer.concat([reply('Before NUL'), Buffer.from([0, 0, 0]), Buffer.from('\r\nafter\r\n')]), ...accepted },
    'NUL bytes in headers': { make: () => Buffer.from(`${headers('nul', 'X-Nul: a\u0000b\r\n')}\r\nBody after a header with NUL.\r\n`, 'latin1'), ...accepted },
    // Every byte value, CR, LF and dots included (dot-stuffed like any message): no From the
    // notification's recipient has verified, so not a reply anyone may make.
    'only binary garbage': {
      make: () => {
        let x = 20261126;
        return Buffer.from(Array.from({ length: 262_144 }, () => ((x = (x * 1103515245 + 12345) & 0x7fffffff) >> 16) & 255));
      },
      line: /^550 5\.7\.1 We couldn't figure out what user corresponds to the email\. /,
      status: 'rejected',
      reasonCode: 'data.sender_not_verified',
    },
  };
  const lastRow = () =>
    server.store.sqlite.prepare("select status, reason_code as reasonCode from inbound_messages where remote_address = '127.0.0.8' order by id desc limit 1").get() as { status: string; reasonCode: string | null };
  const lastNote = () =>
    (server.store.sqlite.prepare("select body from notes where inbound_message_id = (select max(id) from inbound_messages where remote_address = '127.0.0.8')").get() as { body: string } | undefined)?.body;

  it.each(Object.keys(cases))('%s', async (name) => {
    const { make, line, status, reasonCode, note } = cases[name] as (typeof cases)[string];
    await servedThroughout(bystander(), async () => {
      const before = inboundCount('127.0.0.8');
      const { client } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.8' });
      await client.command('EHLO malformed.test');
      await client.command(`MAIL FROM:<${world.user.email}>`);
      expect((await client.command(`RCPT TO:<${to}>`)).code).toBe(250);
      const [, final] = await client.data(make());
      expect(final.line).toMatch(line);
      expect((await client.command('NOOP')).code).toBe(250);
      await client.quit();
      expect(inboundCount('127.0.0.8')).toBe(before + 1);
      expect(lastRow()).toEqual({ status, reasonCode });
      if (note) expect(lastNote()).toBe(note);
    });
  });
});

describe('mail loops', () => {
  it("an auto-responder without auto-reply headers answering every note gets 20 in, then 451 4.7.1; the issue's other writers are not held up", async () => {
    // The defaults: 20 in a row, then one every 3 minutes.
    const looped = await startServer({});
    try {
      const w = seedReplyWorld(looped.repos);
      const key = `${'e'.repeat(31)}1`;
      const colleague = looped.repos.transaction(() => {
        const user = looped.repos.users.create({ username: 'colleague', name: 'Colleague', email: 'colleague@adventuretime.ooo', incomingEmailToken: 'glimt-colleague' });
        looped.repos.projects.setMember({ projectId: w.project.id, userId: user.id, accessLevel: 30 });
        looped.repos.notifications.create({ replyKey: key, projectId: w.project.id, recipientId: user.id, noteableType: 'Issue', noteableId: w.issue.id });
        return user;
      });
      const to = template.format(w.key);
      const replies: string[] = [];
      // Meanwhile the colleague answers on the same issue every 2 s (the loop takes about 6 s here; 20 in
      // a row would be past the sender rate for the colleague too): every answer is taken, at once.
      const { accepted } = await servedThroughout({ server: looped, from: colleague.email, to: template.format(key), intervalMs: 2000 }, async () => {
        const { client } = await SmtpClient.connect(looped.port, { localAddress: '127.0.0.14' });
        await client.command('EHLO responder.test');
        for (let i = 0; i < 100; i++) {
          await client.command(`MAIL FROM:<${w.user.email}>`);
          await client.command(`RCPT TO:<${to}>`);
          const [, reply] = await client.data(replyMessage({ from: w.user.email, to, body: `I am away until Monday. (${i})` }));
          replies.push(reply.line);
        }
        await client.quit();
      });
      expect(replies.slice(0, 20).every((line) => line.startsWith('250 2.6.0 Message accepted'))).toBe(true);
      expect(new Set(replies.slice(20))).toEqual(new Set(['451 4.7.1 Too many messages from you to this address lately, please try again later']));
      const notesBy = (authorId: number) => (looped.store.sqlite.prepare("select count(*) as n from notes where noteable_type = 'Issue' and noteable_id = ? and author_id = ?").get(w.issue.id, authorId) as { n: number }).n;
      expect(notesBy(w.user.id)).toBe(20);
      // One log line for the run of refusals, and every refusal in its row.
      expect(looped.logs.filter((line) => line.includes('"code":"data.sender_rate"'))).toHaveLength(1);
      expect(looped.store.sqlite.prepare("select count(*) as n from inbound_messages where reason_code = 'data.sender_rate'").get()).toEqual({ n: 80 });
      // And after the loop, one more from the colleague is taken.
      const other = await sendMail(looped.port, { from: colleague.email, to: [template.format(key)], message: replyMessage({ from: colleague.email, to: template.format(key), body: 'Back on topic.' }) });
      expect(other.data.line).toMatch(/^250 2\.6\.0 Message accepted/);
      expect(notesBy(colleague.id)).toBe(accepted + 1);
    } finally {
      await looped.stop();
    }
  });
});

describe('key guessing', () => {
  it('is slowed, then cut off with 421 and shut out for a while; other senders are not affected', async () => {
    await servedThroughout(bystander(), async () => {
      const { client } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.3' });
      await client.command('EHLO guesser.test');
      await client.command('MAIL FROM:<guesser@evil.test>');
      const times: number[] = [];
      const lines: string[] = [];
      for (let i = 0; i < 10; i++) {
        const started = Date.now();
        lines.push((await client.command(`RCPT TO:<${template.format(`${i.toString(16).padStart(32, 'a')}`)}>`)).line);
        times.push(Date.now() - started);
      }
      expect(lines.slice(0, 9).every((l) => l.startsWith("550 5.1.1 We couldn't figure out what the email is in reply to."))).toBe(true);
      expect(lines[9]).toBe('421 4.7.0 Too many unknown recipients from your address, try again later');
      // The first five at once, the next ones a second later each (under 900 ms is at once: the
      // slowing starts at a whole second, and the attack loads this machine meanwhile).
      expect(Math.max(...times.slice(0, 5))).toBeLessThan(900);
      expect(times[8]).toBeGreaterThanOrEqual(3900);
      await expect.poll(() => client.isClosed).toBe(true);
      const again = await rawConnect('127.0.0.3');
      await again.closed;
      expect(again.received()).toBe('421 4.7.0 Too many unknown recipients from your address, try again later\r\n');
      expect(server.logs.some((l) => l.includes('client shut out: too many unknown recipients') && l.includes('127.0.0.3'))).toBe(true);
      const refused = () => server.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.msg === 'connection refused' && e.remoteAddress === '127.0.0.3');
      await expect.poll(refused).toEqual([expect.objectContaining({ level: 40, code: 'connect.blocked', client: '127.0.0.3' })]);
      // The row says what the client was told last (421), each recipient why it was unknown.
      const row = () => server.store.sqlite.prepare("select id, status, reason_code, smtp_reply from inbound_messages where mail_from = 'guesser@evil.test'").get() as { id: number } | undefined;
      await expect.poll(row).toMatchObject({ status: 'rejected', reason_code: 'rcpt.too_many_unknown', smtp_reply: '421 4.7.0 Too many unknown recipients from your address, try again later' });
      const reasons = server.store.sqlite.prepare('select distinct reason_code from deliveries where inbound_message_id = ?').all(row()!.id);
      expect(reasons).toEqual([{ reason_code: 'rcpt.unknown_reply_key' }]);
      const slowed = () => server.logs.filter((l) => l.includes('unknown recipient: answer slowed') && l.includes('127.0.0.3')).map((l) => (JSON.parse(l) as { delayMs: number }).delayMs);
      await expect.poll(slowed).toEqual([1000, 2000, 3000, 4000]);
      // Someone else with one typo is answered at once.
      const { client: typo } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.9' });
      await typo.command('EHLO honest.test');
      await typo.command('MAIL FROM:<honest@sender.test>');
      const started = Date.now();
      expect((await typo.command(`RCPT TO:<${template.format('b'.repeat(32))}>`)).code).toBe(550);
      expect(Date.now() - started).toBeLessThan(900);
      await typo.quit();
    });
  });

  it('counts a key named only in the headers of mail to the mailbox address as a guess too', async () => {
    const guarded = await startServer({ INTAKE_UNKNOWN_RECIPIENT_LIMIT: '4', INTAKE_UNKNOWN_RECIPIENT_BLOCK_MS: '60000', INTAKE_SENDER_RATE_LIMIT: '0' });
    const guardedWorld = seedReplyWorld(guarded.repos);
    try {
      await servedThroughout({ server: guarded, from: guardedWorld.user.email, to: template.format(guardedWorld.key) }, async () => {
        const mailbox = template.mailbox as string;
        const { client } = await SmtpClient.connect(guarded.port, { localAddress: '127.0.0.11' });
        await client.command('EHLO header-guesser.test');
        const replies: string[] = [];
        const times: number[] = [];
        for (let i = 1; i <= 4 && !client.isClosed; i++) {
          await client.command('MAIL FROM:<guesser@evil.test>');
          expect((await client.command(`RCPT TO:<${mailbox}>`)).code).toBe(250);
          const started = Date.now();
          const [, reply] = await client.data(replyMessage({ from: 'guesser@evil.test', to: template.format(i.toString(16).padStart(32, 'd')), body: `Guess ${i}.` }));
          times.push(Date.now() - started);
          replies.push(reply.line);
        }
        expect(replies.slice(0, 3).every((l) => l.startsWith('550 5.1.1 '))).toBe(true);
        expect(replies[3]).toBe('421 4.7.0 Too many unknown recipients from your address, try again later');
        expect(Math.max(times[0]!, times[1]!)).toBeLessThan(900);
        expect(times[2]).toBeGreaterThanOrEqual(1000);
        await expect.poll(() => client.isClosed).toBe(true);
        const again = await SmtpClient.connect(guarded.port, { localAddress: '127.0.0.11' });
        expect(again.greeting.line).toBe('421 4.7.0 Too many unknown recipients from your address, try again later');
        expect(guarded.logs.some((l) => l.includes('client shut out: too many unknown recipients') && l.includes('"stage":"data"'))).toBe(true);
        // The last row says what the client was told; its recipient, why the message was refused.
        const last = guarded.store.sqlite.prepare("select id, status, reason_code, smtp_reply from inbound_messages where mail_from = 'guesser@evil.test' order by id desc").all() as { id: number }[];
        expect(last).toHaveLength(4);
        expect(last[0]).toMatchObject({ status: 'rejected', reason_code: 'rcpt.too_many_unknown', smtp_reply: '421 4.7.0 Too many unknown recipients from your address, try again later' });
        expect(guarded.store.sqlite.prepare('select reason_code from deliveries where inbound_message_id = ?').all(last[0]!.id)).toEqual([{ reason_code: 'data.no_key' }]);
        expect(last.slice(1).map((r) => (r as unknown as { reason_code: string }).reason_code)).toEqual(['data.no_key', 'data.no_key', 'data.no_key']);
        // Somebody else's stray mail to the mailbox address is refused at once, as before.
        const { client: other } = await SmtpClient.connect(guarded.port, { localAddress: '127.0.0.12' });
        await other.command('EHLO stray.test');
        await other.command('MAIL FROM:<stray@sender.test>');
        await other.command(`RCPT TO:<${mailbox}>`);
        const started = Date.now();
        const [, stray] = await other.data(replyMessage({ from: 'stray@sender.test', to: mailbox, body: 'Hello?' }));
        expect(stray.line).toMatch(/^550 5\.1\.1 /);
        expect(Date.now() - started).toBeLessThan(900);
        await other.quit();
      });
    } finally {
      await guarded.stop();
    }
  });

  it('lets a client that was shut out in again once INTAKE_UNKNOWN_RECIPIENT_BLOCK_MS has passed', async () => {
    const blockMs = 2000;
    const guarded = await startServer({ INTAKE_UNKNOWN_RECIPIENT_LIMIT: '3', INTAKE_UNKNOWN_RECIPIENT_BLOCK_MS: String(blockMs), INTAKE_SENDER_RATE_LIMIT: '0' });
    const guardedWorld = seedReplyWorld(guarded.repos);
    const valid = template.format(guardedWorld.key);
    try {
      await servedThroughout({ server: guarded, from: guardedWorld.user.email, to: valid }, async () => {
        const { client } = await SmtpClient.connect(guarded.port, { localAddress: '127.0.0.15' });
        await client.command('EHLO forgetful.test');
        await client.command(`MAIL FROM:<${guardedWorld.user.email}>`);
        const lines: string[] = [];
        for (let i = 1; i <= 3; i++) lines.push((await client.command(`RCPT TO:<${template.format(i.toString(16).padStart(32, 'f'))}>`)).line);
        const shutOut = Date.now();
        expect(lines[2]).toBe('421 4.7.0 Too many unknown recipients from your address, try again later');
        await expect.poll(() => client.isClosed).toBe(true);
        const during = await SmtpClient.connect(guarded.port, { localAddress: '127.0.0.15' });
        expect(during.greeting.line).toBe('421 4.7.0 Too many unknown recipients from your address, try again later');
        await new Promise((r) => setTimeout(r, Math.max(0, shutOut + blockMs + 200 - Date.now())));
        // The block has run out: the same address is greeted, and its reply to a live key is taken.
        const after = await SmtpClient.connect(guarded.port, { localAddress: '127.0.0.15' });
        expect(after.greeting.code).toBe(220);
        await after.client.command('EHLO forgetful.test');
        await after.client.command(`MAIL FROM:<${guardedWorld.user.email}>`);
        expect((await after.client.command(`RCPT TO:<${valid}>`)).code).toBe(250);
        const [, stored] = await after.client.data(replyMessage({ from: guardedWorld.user.email, to: valid, body: 'Sorry, I mistyped.' }));
        expect(stored.line).toMatch(/^250 2\.6\.0 Message accepted/);
        await after.client.quit();
      });
    } finally {
      await guarded.stop();
    }
  });

  it('counts an IPv6 guesser by its /64: a new address of the same network is no fresh start', async () => {
    // IPv6 over 127.0.0.1 only: a proxy on this host names each client in a PROXY header.
    const proxied = await startServer({ INTAKE_PROXY_PROTOCOL_FROM: '127.0.0.1', INTAKE_UNKNOWN_RECIPIENT_LIMIT: '4', INTAKE_UNKNOWN_RECIPIENT_BLOCK_MS: '60000' });
    try {
      const proxiedWorld = seedReplyWorld(proxied.repos);
      const from = (address: string) => SmtpClient.connect(proxied.port, { preface: `PROXY TCP6 ${address} ::1 40000 25\r\n` });
      const guess = async (address: string, i: number) => {
        const { client, greeting } = await from(address);
        expect(greeting.code).toBe(220);
        await client.command('EHLO rotating.test');
        await client.command('MAIL FROM:<guesser@evil.test>');
        const { line } = await client.command(`RCPT TO:<${template.format(i.toString(16).padStart(32, 'c'))}>`);
        if (!client.isClosed) await client.quit().catch(() => undefined);
        return line;
      };
      // One unknown key from each of four addresses of 2001:db8:bad:1::/64: the fourth reaches the limit.
      const lines = [];
      for (let i = 1; i <= 4; i++) lines.push(await guess(`2001:db8:bad:1::${i}`, i));
      expect(lines.slice(0, 3).every((l) => l.startsWith('550 5.1.1 '))).toBe(true);
      expect(lines[3]).toBe('421 4.7.0 Too many unknown recipients from your address, try again later');
      // A fifth address of that network is turned away at connect.
      const { greeting: refused } = await from('2001:db8:bad:1:ffff:ffff:ffff:fffe');
      expect(refused.line).toBe('421 4.7.0 Too many unknown recipients from your address, try again later');
      expect(proxied.logs.some((l) => l.includes('client shut out: too many unknown recipients') && l.includes('"client":"2001:db8:bad:1::/64"'))).toBe(true);
      // The next /64 is somebody else, and its mail is taken.
      const { client, greeting } = await from('2001:db8:bad:2::1');
      expect(greeting.code).toBe(220);
      await client.command('EHLO neighbour.test');
      await client.command(`MAIL FROM:<${proxiedWorld.user.email}>`);
      expect((await client.command(`RCPT TO:<${template.format(proxiedWorld.key)}>`)).code).toBe(250);
      await client.quit();
    } finally {
      await proxied.stop();
    }
  });
});
