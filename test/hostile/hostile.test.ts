// Hostile input over real TCP. Each case gets a specific reply and never a crash, and a normal client
// in a session of its own (127.0.0.1) is served throughout. Abusers come from other loopback
// addresses (127.0.0.2 and up), as separate clients would.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../bench/load.js';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { SmtpClient } from '../helpers/smtp-client.js';
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
    INTAKE_UNKNOWN_RECIPIENT_LIMIT: '10',
    INTAKE_UNKNOWN_RECIPIENT_BLOCK_MS: '60000',
  });
  world = seedReplyWorld(server.repos);
  to = template.format(world.key);
});

afterAll(async () => {
  expect(server.logs.filter((l) => /"level":(50|60)/.test(l) && !l.includes('could not store')), 'no error logged').toEqual([]);
  await server?.stop();
});

let sequence = 0;
const reply = (body: string, headers: string[] = []) =>
  Buffer.from(replyMessage({ from: world.user.email, to, body, messageId: `<hostile-${++sequence}@client.test>`, headers }).replace(/\r?\n/g, '\r\n'));

/**
 * Runs `attack` while a normal client sends a reply every 100 ms in its own session, opened before
 * the attack; every one of them must be accepted.
 */
async function servedThroughout(attack: () => Promise<void>): Promise<void> {
  const normal = await Session.open(server.port);
  await normal.hello('normal.client.test');
  let stop = false;
  const outcomes: string[] = [];
  const loop = (async () => {
    while (!stop) {
      const outcome = await normal.send({ from: world.user.email, to, data: reply('Normal mail during an attack.') });
      outcomes.push(outcome.kind === 'accepted' ? 'accepted' : JSON.stringify(outcome));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    await attack();
  } finally {
    stop = true;
    await loop;
    normal.close();
  }
  expect(outcomes.length).toBeGreaterThan(0);
  expect(outcomes.filter((o) => o !== 'accepted')).toEqual([]);
}

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
    await servedThroughout(async () => {
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
      // Nothing more comes: no reply to a smuggled command.
      expect((await client.command('NOOP')).line).toMatch(/^250 /);
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
    await servedThroughout(async () => {
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

  it('idle and byte-a-second sessions are closed after the idle timeout with 421', async () => {
    await servedThroughout(async () => {
      const idle = await rawConnect('127.0.0.6');
      const started = Date.now();
      await idle.closed;
      expect(Date.now() - started).toBeGreaterThan(3000);
      expect(idle.received()).toMatch(/^220 .*\r\n421 4\.4\.2 Timeout/);
      // One byte a second never completes a command: the idle timer is about commands, not bytes.
      const slow = await rawConnect('127.0.0.6');
      const dribble = setInterval(() => slow.socket.write('E'), 1000);
      const slowStarted = Date.now();
      await slow.closed;
      clearInterval(dribble);
      expect(Date.now() - slowStarted).toBeLessThan(8000);
      expect(slow.received()).toMatch(/\r\n421 4\.4\.2 Timeout waiting for a complete command - closing connection\r\n$/);
    });
  });

  it('globally: past INTAKE_MAX_CLIENTS connections from many addresses, new ones get 421 and existing sessions go on', async () => {
    await servedThroughout(async () => {
      const crowd = [];
      for (let host = 10; host < 30; host++) crowd.push(...(await Promise.all(Array.from({ length: 10 }, () => rawConnect(`127.0.0.${host}`)))));
      const late = await rawConnect('127.0.0.31');
      await late.closed;
      expect(late.received()).toMatch(/^421 .*Too many connected clients/);
      for (const c of crowd) c.socket.destroy();
    });
  });
});

describe('oversize', () => {
  it('SIZE declared too large: 552 at MAIL', async () => {
    const { client } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.7' });
    await client.command('EHLO big.test');
    expect((await client.command(`MAIL FROM:<${world.user.email}> SIZE=${100 * 1024 * 1024}`)).line).toMatch(/^552 5\.3\.4 /);
    await client.quit();
  });

  it('a body over the limit: 552 after DATA, nothing processed, the session goes on', async () => {
    await servedThroughout(async () => {
      const messageId = `big-${++sequence}@client.test`;
      const { client } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.7' });
      await client.command('EHLO big.test');
      await client.command(`MAIL FROM:<${world.user.email}>`);
      await client.command(`RCPT TO:<${to}>`);
      const body = `From: ${world.user.email}\r\nMessage-ID: <${messageId}>\r\n\r\n${'y'.repeat(998)}\r\n`.repeat(1);
      const [, final] = await client.data(Buffer.from(body + `${'z'.repeat(76)}\r\n`.repeat(280_000)));
      expect(final.line).toBe('552 5.3.4 Error: message exceeds fixed maximum message size 20971520');
      expect((await client.command('NOOP')).code).toBe(250);
      await client.quit();
      expect(rowsWith(messageId)).toEqual([]);
    });
  });
});

describe('malformed messages, each answered and none breaking the server', () => {
  const cases: Record<string, () => Buffer> = {
    '100,000 headers': () => reply('Flooded.', Array.from({ length: 100_000 }, (_, i) => `X-Flood-${i}: ${i}`)),
    'a 10 MB header': () => reply('Huge header.', [`X-Huge: ${'h'.repeat(10 * 1024 * 1024)}`]),
    'lines of 1 MB': () => reply(`${'w'.repeat(1024 * 1024)}\n${'v'.repeat(1024 * 1024)}`),
    'MIME nested 1,000 deep': () => {
      let body = 'Content-Type: text/plain\r\n\r\nDeep reply.\r\n';
      for (let i = 0; i < 1000; i++) body = `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n${body}--b${i}--\r\n`;
      return Buffer.from(`From: ${world.user.email}\r\nTo: ${to}\r\nSubject: Re: deep\r\nMessage-ID: <deep-${++sequence}@client.test>\r\nMIME-Version: 1.0\r\n${body}`);
    },
    '10,000 parts': () => {
      const parts = Array.from({ length: 10_000 }, (_, i) => `--p\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`).join('');
      return Buffer.from(`From: ${world.user.email}\r\nTo: ${to}\r\nSubject: Re: parts\r\nMessage-ID: <parts-${++sequence}@client.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="p"\r\n\r\n${parts}--p--\r\n`);
    },
    'invalid charsets': () => reply('Odd charset.', ['Content-Type: text/plain; charset="x-no-such-charset"']),
    'NUL bytes': () => Buffer.concat([reply('Before NUL'), Buffer.from([0, 0, 0]), Buffer.from('\r\nafter\r\n')]),
    'only binary garbage': () => Buffer.from(Array.from({ length: 65536 }, (_, i) => (i * 7919 + 13) % 256).filter((b) => b !== 0x2e && b !== 0x0a && b !== 0x0d)),
  };

  it.each(Object.keys(cases))('%s', async (name) => {
    await servedThroughout(async () => {
      const { client } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.8' });
      await client.command('EHLO malformed.test');
      await client.command(`MAIL FROM:<${world.user.email}>`);
      expect((await client.command(`RCPT TO:<${to}>`)).code).toBe(250);
      const [, final] = await client.data((cases[name] as () => Buffer)());
      // A specific answer: accepted as a note, or refused with the reason that applies (2 MB of text is
      // more than a note may hold: 552).
      expect(final.line).toMatch(/^(250 2\.6\.0 Message accepted as inbound message \d+|55[02] 5\.\d\.\d .+)$/);
      expect((await client.command('NOOP')).code).toBe(250);
      await client.quit();
    });
  });
});

describe('key guessing', () => {
  it('is slowed, then cut off with 421 and shut out for a while; other senders are not affected', async () => {
    await servedThroughout(async () => {
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
      // The first five at once, the next ones a second later each.
      expect(Math.max(...times.slice(0, 5))).toBeLessThan(500);
      expect(times[8]).toBeGreaterThanOrEqual(3900);
      await expect.poll(() => client.isClosed).toBe(true);
      const again = await rawConnect('127.0.0.3');
      await again.closed;
      expect(again.received()).toBe('421 4.7.0 Too many unknown recipients from your address, try again later\r\n');
      expect(server.logs.some((l) => l.includes('client shut out: too many unknown recipients') && l.includes('127.0.0.3'))).toBe(true);
      // Someone else with one typo is answered at once.
      const { client: typo } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.9' });
      await typo.command('EHLO honest.test');
      await typo.command('MAIL FROM:<honest@sender.test>');
      const started = Date.now();
      expect((await typo.command(`RCPT TO:<${template.format('b'.repeat(32))}>`)).code).toBe(550);
      expect(Date.now() - started).toBeLessThan(500);
      await typo.quit();
    });
  });
});
