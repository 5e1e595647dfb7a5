// Behind a relay: LMTP answers DATA once per recipient, and a trusted relay's XFORWARD, XCLIENT or
// PROXY header names the original client, which is what inbound_messages records. Real TCP throughout;
// 127.0.0.2 plays the trusted relay, 127.0.0.1 an untrusted client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { SmtpClient } from '../helpers/smtp-client.js';
import { startServer, template, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ INTAKE_LMTP_LISTEN: '127.0.0.1:0', INTAKE_TRUSTED_RELAYS: '127.0.0.2' });
});
afterAll(async () => {
  await server?.stop();
});

const idFrom = (line: string) => Number(/inbound message (\d+)/.exec(line)?.[1]);

function row(id: number) {
  return server.store.sqlite.prepare('select ingress, remote_address, helo, relay_address, tls, status from inbound_messages where id = ?').get(id);
}

describe('the LMTP listener', () => {
  it('greets as LMTP, wants LHLO, and answers DATA once per accepted recipient, in order', async () => {
    const alice = seedReplyWorld(server.repos);
    const bob = seedReplyWorld(server.repos);
    const { client, greeting } = await SmtpClient.connect(server.ports.lmtp as number);
    try {
      expect(greeting.line).toBe('220 intake.test LMTP intake');
      expect((await client.command('EHLO relay.test')).code).toBe(500);
      expect((await client.command('LHLO relay.test')).code).toBe(250);
      expect((await client.command(`MAIL FROM:<${alice.user.email}>`)).code).toBe(250);
      expect((await client.command(`RCPT TO:<${template.format(alice.key)}>`)).line).toBe('250 2.1.5 Accepted');
      expect((await client.command(`RCPT TO:<${template.format('0'.repeat(32))}>`)).line).toMatch(/^550 5\.1\.1 We couldn't figure out what the email is in reply to/);
      expect((await client.command(`RCPT TO:<${template.format(bob.key)}>`)).line).toBe('250 2.1.5 Accepted');
      // From is Alice's address: a reply for her notification is a note, one for Bob's is not his.
      const message = replyMessage({ from: alice.user.email, to: template.format(alice.key), body: 'Agreed, ship it.' });
      const [go, first] = await client.data(message);
      expect(go.code).toBe(354);
      const [second] = await client.readMany(1);
      expect(first.line).toMatch(/^250 2\.6\.0 Message accepted as inbound message \d+$/);
      expect(second?.line).toBe(
        "550 5.7.1 We couldn't figure out what user corresponds to the email. Please create your comment through the web interface.",
      );
      const id = idFrom(first.line);
      expect(row(id)).toMatchObject({ ingress: 'lmtp', status: 'processed' });
      const deliveries = server.repos.inbound.deliveriesOf(id).map((d) => [d.recipient, d.stage, d.status, d.reasonCode]);
      expect(deliveries).toEqual([
        [template.format('0'.repeat(32)), 'rcpt', 'rejected', 'rcpt.unknown_reply_key'],
        [template.format(alice.key), 'data', 'processed', null],
        [template.format(bob.key), 'data', 'rejected', 'data.sender_not_verified'],
      ]);
    } finally {
      await client.quit();
    }
  });
  it('owes a reply to every RCPT it accepted, a repeated or differently cased one too (RFC 2033 §4.2), as many for a message too big', async () => {
    const alice = seedReplyWorld(server.repos);
    const to = template.format(alice.key);
    const shouting = to.replace(/^incoming/, 'INCOMING').replace(/example\.com$/, 'EXAMPLE.COM');
    const { client } = await SmtpClient.connect(server.ports.lmtp as number);
    try {
      expect((await client.command('LHLO relay.test')).code).toBe(250);
      expect((await client.command(`MAIL FROM:<${alice.user.email}>`)).code).toBe(250);
      for (const rcpt of [to, to, shouting]) expect((await client.command(`RCPT TO:<${rcpt}>`)).line).toBe('250 2.1.5 Accepted');
      const [go, first] = await client.data(replyMessage({ from: alice.user.email, to, body: 'Said three times, stored once.' }));
      expect(go.code).toBe(354);
      const rest = await client.readMany(2);
      const id = idFrom(first.line);
      expect([first, ...rest].map((reply) => reply.line)).toEqual([
        `250 2.6.0 Message accepted as inbound message ${id}`,
        `250 2.6.0 Message accepted as inbound message ${id}`,
        `250 2.6.0 Already received, nothing new created (inbound message ${id})`,
      ]);
      // In step: the next reply is the next command's.
      expect((await client.command('NOOP')).line).toBe('250 2.0.0 OK');
      const deliveries = server.repos.inbound.deliveriesOf(id).map((d) => [d.recipient, d.status]);
      expect(deliveries).toEqual([
        [to, 'processed'],
        [shouting, 'duplicate'],
      ]);
    } finally {
      await client.quit();
    }
    const small = await startServer({ INTAKE_LMTP_LISTEN: '127.0.0.1:0', INTAKE_MAX_MESSAGE_BYTES: '10000', INTAKE_DATABASE: server.database });
    const { client: other } = await SmtpClient.connect(small.ports.lmtp as number);
    try {
      expect((await other.command('LHLO relay.test')).code).toBe(250);
      expect((await other.command(`MAIL FROM:<${alice.user.email}>`)).code).toBe(250);
      for (const rcpt of [to, to]) expect((await other.command(`RCPT TO:<${rcpt}>`)).code).toBe(250);
      const [go, first] = await other.data(replyMessage({ from: alice.user.email, to, body: 'x'.repeat(20000) }));
      expect(go.code).toBe(354);
      const [second] = await other.readMany(1);
      expect([first.line, second?.line]).toEqual(['552 5.3.4 Error: message exceeds fixed maximum message size 10000', '552 5.3.4 Error: message exceeds fixed maximum message size 10000']);
      expect((await other.command('NOOP')).line).toBe('250 2.0.0 OK');
    } finally {
      await other.quit();
      await small.stop();
    }
  });
});

describe('a trusted relay', () => {
  it('passes the original client on with XFORWARD (as Postfix does over LMTP), and it is recorded', async () => {
    const world = seedReplyWorld(server.repos);
    const { client } = await SmtpClient.connect(server.ports.lmtp as number, { localAddress: '127.0.0.2' });
    try {
      const lhlo = await client.command('LHLO postfix.relay.test');
      expect(lhlo.lines.map((l) => l.slice(4))).toContain('XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE');
      expect((await client.command('XFORWARD NAME=mail.sender.example ADDR=203.0.113.7 PORT=40000 HELO=mail.sender.example PROTO=ESMTP')).code).toBe(250);
      expect((await client.command(`MAIL FROM:<${world.user.email}>`)).code).toBe(250);
      expect((await client.command(`RCPT TO:<${template.format(world.key)}>`)).code).toBe(250);
      const [, reply] = await client.data(replyMessage({ from: world.user.email, to: template.format(world.key), body: 'Forwarded by a relay.' }));
      expect(row(idFrom(reply.line))).toEqual({
        ingress: 'lmtp',
        remote_address: '203.0.113.7',
        helo: 'mail.sender.example',
        relay_address: '127.0.0.2',
        tls: null,
        status: 'processed',
      });
      // Postfix reuses the connection; for mail no client sent (a local submission) it says so.
      expect((await client.command('XFORWARD ADDR=[UNAVAILABLE] NAME=[UNAVAILABLE] HELO=[UNAVAILABLE]')).code).toBe(250);
      expect((await client.command(`MAIL FROM:<${world.user.email}>`)).code).toBe(250);
      expect((await client.command(`RCPT TO:<${template.format(world.key)}>`)).code).toBe(250);
      const [, local] = await client.data(replyMessage({ from: world.user.email, to: template.format(world.key), body: 'Submitted on the relay itself.' }));
      expect(local.code).toBe(250);
      expect(row(idFrom(local.line))).toMatchObject({ remote_address: null, helo: null, relay_address: '127.0.0.2' });
    } finally {
      await client.quit();
    }
  });

  it('passes the original client on with XCLIENT over SMTP', async () => {
    const world = seedReplyWorld(server.repos);
    const { client } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.2' });
    try {
      expect((await client.command('EHLO relay.test')).lines.map((l) => l.slice(4))).toContain('XCLIENT NAME ADDR PORT PROTO HELO LOGIN');
      // XCLIENT starts the session over: a new greeting, then the relay's EHLO.
      expect((await client.command('XCLIENT ADDR=198.51.100.9 NAME=client.example HELO=client.example')).code).toBe(220);
      const ehlo = await client.command('EHLO relay.test');
      expect(ehlo.lines.some((l) => l.includes('XCLIENT'))).toBe(false);
      expect((await client.command(`MAIL FROM:<${world.user.email}>`)).code).toBe(250);
      expect((await client.command(`RCPT TO:<${template.format(world.key)}>`)).code).toBe(250);
      const [, reply] = await client.data(replyMessage({ from: world.user.email, to: template.format(world.key), body: 'Through XCLIENT.' }));
      expect(row(idFrom(reply.line))).toMatchObject({ ingress: 'smtp', remote_address: '198.51.100.9', helo: 'client.example', relay_address: '127.0.0.2' });
    } finally {
      await client.quit();
    }
  });

  it('is the only one allowed to: any other client is refused XCLIENT and XFORWARD, and not offered them', async () => {
    const { client } = await SmtpClient.connect(server.port);
    try {
      const ehlo = await client.command('EHLO spoofer.test');
      expect(ehlo.lines.some((l) => /XCLIENT|XFORWARD/.test(l))).toBe(false);
      expect((await client.command('XCLIENT ADDR=10.9.9.9')).code).toBe(550);
      expect((await client.command('XFORWARD ADDR=10.9.9.9')).code).toBe(550);
      // The session goes on as itself.
      expect((await client.command('MAIL FROM:<a@b.test>')).code).toBe(250);
    } finally {
      await client.quit();
    }
  });
});

describe('a proxy speaking PROXY protocol v1', () => {
  let proxied: RunningServer;
  beforeAll(async () => {
    proxied = await startServer({ INTAKE_PROXY_PROTOCOL_FROM: '127.0.0.1' });
  });
  afterAll(async () => {
    await proxied?.stop();
  });

  it('names the client in its header, which is recorded as the remote address', async () => {
    const world = seedReplyWorld(proxied.repos);
    const { client, greeting } = await SmtpClient.connect(proxied.port, { preface: 'PROXY TCP4 192.0.2.10 127.0.0.1 56324 25\r\n' });
    try {
      expect(greeting.code).toBe(220);
      await client.command('EHLO client.via.proxy');
      await client.command(`MAIL FROM:<${world.user.email}>`);
      await client.command(`RCPT TO:<${template.format(world.key)}>`);
      const [, reply] = await client.data(replyMessage({ from: world.user.email, to: template.format(world.key), body: 'Through a proxy.' }));
      expect(reply.code).toBe(250);
      const stored = proxied.store.sqlite.prepare('select remote_address, helo from inbound_messages where id = ?').get(idFrom(reply.line));
      expect(stored).toEqual({ remote_address: '192.0.2.10', helo: 'client.via.proxy' });
    } finally {
      await client.quit();
    }
  });

  it('must send the header: a connection from it that starts with SMTP instead is closed, and the server serves on', async () => {
    const { connect } = await import('node:net');
    const socket = connect(proxied.port, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1').on('data', (c: string) => (received += c));
    socket.write('EHLO not-a-proxy\r\n');
    await new Promise((resolve) => socket.once('close', resolve));
    expect(received).toBe('* BAD Invalid PROXY header\r\n');
    const { client, greeting } = await SmtpClient.connect(proxied.port, { localAddress: '127.0.0.2' });
    expect(greeting.code).toBe(220);
    await client.quit();
  });
});
