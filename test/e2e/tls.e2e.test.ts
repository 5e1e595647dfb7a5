// TLS over real TCP: STARTTLS and the implicit-TLS listener with the configured certificate, TLS
// required before MAIL, a SIGHUP that swaps the certificate without dropping sessions, and clear
// errors for clients that do not speak TLS and for certificate files that cannot be used.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCertificate, type CertificateFiles } from '../helpers/certificates.js';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { SmtpClient } from '../helpers/smtp-client.js';
import { CLI, ROOT, cliEnv, startServer, tempDir, template, type RunningServer } from '../helpers/server.js';

const certDir = tempDir();
const first = writeCertificate(certDir, 'first', { commonName: 'mx.example.com' });
const second = writeCertificate(certDir, 'second', { commonName: 'mx.example.com' });
// The files the server is configured with; tests copy a certificate over them, as a renewal does.
const live: CertificateFiles = { certFile: join(certDir, 'live.crt'), keyFile: join(certDir, 'live.key'), fingerprint256: '' };
copyFileSync(first.certFile, live.certFile);
copyFileSync(first.keyFile, live.keyFile);

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({
    INTAKE_TLS_CERT_FILE: live.certFile,
    INTAKE_TLS_KEY_FILE: live.keyFile,
    INTAKE_REQUIRE_TLS: 'true',
    INTAKE_SMTPS_LISTEN: '127.0.0.1:0',
  });
});
afterAll(async () => {
  await server?.stop();
});

async function send(client: SmtpClient, world: ReturnType<typeof seedReplyWorld>, body: string) {
  await client.command('EHLO client.test');
  expect((await client.command(`MAIL FROM:<${world.user.email}>`)).code).toBe(250);
  expect((await client.command(`RCPT TO:<${template.format(world.key)}>`)).code).toBe(250);
  const [, reply] = await client.data(replyMessage({ from: world.user.email, to: template.format(world.key), body }));
  return reply;
}

const tlsOf = (line: string) =>
  (server.store.sqlite.prepare('select tls from inbound_messages where id = ?').get(Number(/inbound message (\d+)/.exec(line)?.[1])) as { tls: string | null }).tls;

async function waitForLog(text: string): Promise<string> {
  await expect.poll(() => server.logs.find((l) => l.includes(text)), { timeout: 10_000 }).toBeDefined();
  return server.logs.find((l) => l.includes(text)) as string;
}

describe('STARTTLS', () => {
  it('is offered with the configured certificate, required before MAIL, and recorded with the message', async () => {
    const world = seedReplyWorld(server.repos);
    const { client } = await SmtpClient.connect(server.port);
    try {
      const ehlo = await client.command('EHLO client.test');
      expect(ehlo.lines.map((l) => l.slice(4))).toContain('STARTTLS');
      expect((await client.command(`MAIL FROM:<${world.user.email}>`)).line).toBe('530 5.7.0 Must issue a STARTTLS command first');
      expect(await client.startTls()).toBe(first.fingerprint256);
      const reply = await send(client, world, 'Sent over TLS.');
      expect(reply.code).toBe(250);
      expect(tlsOf(reply.line)).toMatch(/^TLSv1\.[23] TLS_/);
    } finally {
      await client.quit();
    }
  });

  it('offers REQUIRETLS (RFC 8689) once encrypted, and takes a message that asks for it', async () => {
    const world = seedReplyWorld(server.repos);
    const { client } = await SmtpClient.connect(server.port);
    try {
      expect((await client.command('EHLO client.test')).lines.map((l) => l.slice(4))).not.toContain('REQUIRETLS');
      await client.startTls();
      expect((await client.command('EHLO client.test')).lines.map((l) => l.slice(4))).toContain('REQUIRETLS');
      expect((await client.command(`MAIL FROM:<${world.user.email}> REQUIRETLS`)).line).toBe('250 2.1.0 Accepted');
      expect((await client.command(`RCPT TO:<${template.format(world.key)}>`)).code).toBe(250);
      const [, reply] = await client.data(replyMessage({ from: world.user.email, to: template.format(world.key), body: 'Only over TLS, please.' }));
      expect(reply.code).toBe(250);
      expect(tlsOf(reply.line)).toMatch(/^TLSv1\.[23] /);
    } finally {
      await client.quit();
    }
  });

  it('is also served on the implicit-TLS listener', async () => {
    const world = seedReplyWorld(server.repos);
    const { client, greeting, fingerprint256 } = await SmtpClient.connectTls(server.ports.smtps as number);
    try {
      expect(fingerprint256).toBe(first.fingerprint256);
      expect(greeting.line).toBe('220 intake.test ESMTP intake');
      const ehlo = await client.command('EHLO client.test');
      expect(ehlo.lines.some((l) => l.includes('STARTTLS'))).toBe(false);
      const reply = await send(client, world, 'Sent over implicit TLS.');
      expect(reply.code).toBe(250);
      expect(tlsOf(reply.line)).toMatch(/^TLSv1\.[23] /);
    } finally {
      await client.quit();
    }
  });
});

describe('SIGHUP', () => {
  it('swaps the certificate for new sessions; a session already encrypted goes on', async () => {
    const world = seedReplyWorld(server.repos);
    const { client: old } = await SmtpClient.connect(server.port);
    try {
      expect(await old.startTls()).toBe(first.fingerprint256);
      copyFileSync(second.certFile, live.certFile);
      copyFileSync(second.keyFile, live.keyFile);
      process.kill(server.pid, 'SIGHUP');
      expect(await waitForLog('TLS certificate reloaded')).toContain(second.fingerprint256);
      const { client: fresh } = await SmtpClient.connect(server.port);
      await fresh.command('EHLO client.test');
      expect(await fresh.startTls()).toBe(second.fingerprint256);
      await fresh.quit();
      const implicit = await SmtpClient.connectTls(server.ports.smtps as number);
      expect(implicit.fingerprint256).toBe(second.fingerprint256);
      await implicit.client.quit();
      expect((await send(old, world, 'Still here after the reload.')).code).toBe(250);
    } finally {
      await old.quit();
    }
  });

  it('keeps the current certificate when the new files are broken, and says which file', async () => {
    writeFileSync(live.certFile, 'not a certificate\n');
    process.kill(server.pid, 'SIGHUP');
    const line = await waitForLog('TLS reload failed');
    expect(line).toContain(`${live.certFile}: not a PEM certificate`);
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    expect(await client.startTls()).toBe(second.fingerprint256);
    await client.quit();
    copyFileSync(second.certFile, live.certFile);
  });
});

describe('SIGHUP while starting', () => {
  it('means reload from the start of serve, before its commands have loaded: intake starts, not dies', async () => {
    const database = join(tempDir(), 'hup.sqlite');
    // The commands' import waits for this file (test/helpers/hold-commands.mjs): until it exists, the
    // process is where a certificate renewal's reload right after a restart would find it.
    const hold = join(tempDir(), 'go');
    const child = spawn(process.execPath, ['--import', join(ROOT, 'test/helpers/hold-commands.mjs'), CLI, 'serve'], {
      env: { ...cliEnv({ INTAKE_DATABASE: database, INTAKE_SMTP_LISTEN: '127.0.0.1:0' }), HOLD_INTAKE_COMMANDS_UNTIL: hold },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
    try {
      // SIGHUP is caught (signal 1: bit 0 of SigCgt in /proc) before the commands load; until then
      // its default action would end the process.
      const catchesHup = () => {
        const caught = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1];
        return caught !== undefined && (BigInt(`0x${caught}`) & 1n) !== 0n;
      };
      await expect.poll(catchesHup, { timeout: 10_000, interval: 5 }).toBe(true);
      for (let i = 0; i < 3; i++) {
        child.kill('SIGHUP');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(child.signalCode).toBeNull();
      expect(existsSync(database)).toBe(false);
      writeFileSync(hold, '');
      // And while serve() starts, up to ready.
      for (let i = 0; i < 400 && !out.includes('"msg":"ready"') && child.exitCode === null && child.signalCode === null; i++) {
        child.kill('SIGHUP');
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(child.signalCode).toBeNull();
      expect(out).toContain('"msg":"ready"');
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});

describe('the implicit-TLS listener under a flood of handshakes never made', () => {
  it('holds as many unfinished handshakes from one address as it may hold sessions; the next is closed at once, others are served', async () => {
    const limited = await startServer({ INTAKE_TLS_CERT_FILE: live.certFile, INTAKE_TLS_KEY_FILE: live.keyFile, INTAKE_SMTPS_LISTEN: '127.0.0.1:0', INTAKE_MAX_CONNECTIONS_PER_IP: '3' });
    const port = limited.ports.smtps as number;
    const silent = (localAddress: string) =>
      new Promise<{ socket: ReturnType<typeof connect>; closed: Promise<number> }>((resolve, reject) => {
        const socket = connect({ port, host: '127.0.0.1', localAddress });
        socket.on('error', () => undefined);
        const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now())));
        socket.once('connect', () => resolve({ socket, closed }));
        socket.once('error', reject);
      });
    try {
      // Three sockets that never begin their handshake: smtp-server holds each until its idle timeout.
      const idle = await Promise.all([1, 2, 3].map(() => silent('127.0.0.40')));
      const extra = await silent('127.0.0.40');
      const refusedAt = Date.now();
      expect((await extra.closed) - refusedAt).toBeLessThan(2000);
      await expect.poll(() => limited.logs.some((l) => l.includes('"code":"connect.too_many_connections"') && l.includes('"remoteAddress":"127.0.0.40"') && l.includes('TLS handshake'))).toBe(true);
      // Another address is greeted over TLS; so is this one once its sockets are gone.
      const other = await SmtpClient.connectTls(port, { localAddress: '127.0.0.41' });
      expect(other.greeting.code).toBe(220);
      await other.client.quit();
      for (const { socket } of idle) socket.destroy();
      await Promise.all(idle.map((c) => c.closed));
      // The server hears of the closes a moment after this side: until then it still refuses.
      let back: Awaited<ReturnType<typeof SmtpClient.connectTls>> | null = null;
      await expect.poll(async () => (back = await SmtpClient.connectTls(port, { localAddress: '127.0.0.40' }).catch(() => null)) !== null).toBe(true);
      expect(back!.greeting.code).toBe(220);
      // A finished handshake is a session, counted as one: three sessions, then the fourth is refused after its handshake, as ever.
      const more = await Promise.all([1, 2].map(() => SmtpClient.connectTls(port, { localAddress: '127.0.0.40' })));
      expect(more.map((m) => m.greeting.code)).toEqual([220, 220]);
      const fourth = await SmtpClient.connectTls(port, { localAddress: '127.0.0.40' });
      expect(fourth.greeting.line).toBe('421 4.7.0 Too many connections from your address, try again later');
      const refusals = () => limited.logs.map((l) => JSON.parse(l) as { msg: string; remoteAddress?: string }).filter((e) => e.remoteAddress === '127.0.0.40' && e.msg.startsWith('connection refused'));
      // Before the handshake (more than once if the server was slow to see the closes above), then after one.
      await expect.poll(() => [...new Set(refusals().map((e) => e.msg))]).toEqual(['connection refused before its TLS handshake', 'connection refused']);
      for (const session of [back!, ...more]) await session.client.quit();
    } finally {
      await limited.stop();
    }
  });
});

describe('clients that do not speak TLS', () => {
  it('a plain-text client on the implicit-TLS port is cut off and logged; the server serves on', async () => {
    const socket = connect(server.ports.smtps as number, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write('EHLO plain.client\r\n');
    await new Promise((resolve) => socket.once('close', resolve));
    const line = await waitForLog('"msg":"connection error"');
    expect(JSON.parse(line)).toMatchObject({ listener: 'smtps' });
    expect(line).toMatch(/wrong version number|http request|unknown protocol|packet length/i);
    const again = await SmtpClient.connectTls(server.ports.smtps as number);
    expect(again.greeting.code).toBe(220);
    await again.client.quit();
  });

  it('a client that says STARTTLS and then sends plain text is cut off; the server serves on', async () => {
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    expect((await client.command('STARTTLS')).code).toBe(220);
    client.write('MAIL FROM:<plain@client.test>\r\n');
    await expect.poll(() => client.isClosed, { timeout: 10_000 }).toBe(true);
    const next = await SmtpClient.connect(server.port);
    expect(next.greeting.code).toBe(220);
    await next.client.quit();
  });
});

describe('certificate files that cannot be used', () => {
  const run = (settings: Record<string, string>, command = 'serve') =>
    spawnSync(process.execPath, [CLI, command], {
      env: cliEnv({ INTAKE_DATABASE: join(tempDir(), 'db.sqlite'), INTAKE_SMTP_LISTEN: '127.0.0.1:0', ...settings }),
      encoding: 'utf8',
      timeout: 20_000,
    });

  it('a missing file stops serve with exit 78 and a line naming it', () => {
    const result = run({ INTAKE_TLS_CERT_FILE: join(certDir, 'missing.crt'), INTAKE_TLS_KEY_FILE: first.keyFile });
    expect(result.status).toBe(78);
    expect(result.stderr).toBe(`intake: ${join(certDir, 'missing.crt')}: cannot read the TLS certificate: no such file\n`);
  });

  it('a key of another certificate stops serve with exit 78', () => {
    const result = run({ INTAKE_TLS_CERT_FILE: first.certFile, INTAKE_TLS_KEY_FILE: second.keyFile });
    expect(result.status).toBe(78);
    expect(result.stderr).toBe(`intake: ${second.keyFile}: this key does not belong to the certificate in ${first.certFile}\n`);
  });

  it('an expired certificate fails `intake check`, with the date', () => {
    const expired = writeCertificate(certDir, 'expired', { notBefore: new Date('2025-01-01T00:00:00Z'), notAfter: new Date('2025-04-01T00:00:00Z') });
    const result = run({ INTAKE_TLS_CERT_FILE: expired.certFile, INTAKE_TLS_KEY_FILE: expired.keyFile }, 'check');
    expect(result.status).toBe(1);
    expect(result.stdout).toContain(`FAIL  tls: ${expired.certFile}: certificate expired on 2025-04-01T00:00:00.000Z\n`);
    const good = run({ INTAKE_TLS_CERT_FILE: first.certFile, INTAKE_TLS_KEY_FILE: first.keyFile }, 'check');
    expect(good.stdout).toMatch(/^ok {4}tls: CN=mx\.example\.com, key matches, expires \S+ \(in 29 days\)$/m);
  });
});

describe('intake check', () => {
  it('knows the running implicit-TLS listener for intake: it reads the banner after the handshake', () => {
    const ports = { smtp: server.port, smtps: server.ports.smtps as number };
    const result = spawnSync(process.execPath, [CLI, 'check'], {
      env: { ...server.env, INTAKE_SMTP_LISTEN: `127.0.0.1:${ports.smtp}`, INTAKE_SMTPS_LISTEN: `127.0.0.1:${ports.smtps}` },
      encoding: 'utf8',
    });
    expect(result.stdout).toContain(`ok    smtp_listen: 127.0.0.1:${ports.smtp} is in use, answered: 220 intake.test ESMTP intake\n`);
    expect(result.stdout).toContain(`ok    smtps_listen: 127.0.0.1:${ports.smtps} is in use, answered: 220 intake.test ESMTP intake\n`);
    expect(result.status).toBe(0);
  });
});
