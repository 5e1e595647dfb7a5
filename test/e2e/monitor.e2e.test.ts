// The monitoring listener of `intake serve` (INTAKE_HTTP_LISTEN) over real HTTP: /metrics counts what
// the SMTP dialogue did, recipient by recipient and only once committed; /health answers 200 while
// mail can be taken and 503 naming why not (a disk under INTAKE_MIN_FREE_BYTES, a server stopping).
import { spawnSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { sendMail, SmtpClient } from '../helpers/smtp-client.js';
import { CLI, startServer, template, type RunningServer } from '../helpers/server.js';

type Sample = { name: string; labels: Record<string, string>; value: number };

function samples(text: string): Sample[] {
  const found: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    found.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return found;
}

/** The value of the one sample named so whose labels include these, or undefined. */
function value(all: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const matching = all.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (matching.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${matching.length} samples`);
  return matching[0]?.value;
}

async function get(server: RunningServer, path: string, init?: RequestInit) {
  const response = await fetch(`http://127.0.0.1:${server.ports.http}${path}`, init);
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
}

describe('monitoring listener', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ INTAKE_HTTP_LISTEN: '127.0.0.1:0' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('counts what the SMTP dialogue did: messages and their recipients as committed, refusals as answered', async () => {
    const before = samples((await get(server, '/metrics')).text);
    expect(value(before, 'intake_last_message_timestamp_seconds')).toBe(0);
    expect(value(before, 'intake_store_seconds_count')).toBe(0);

    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const email = world.user.email;
    const processed = await sendMail(server.port, { from: email, to: [to], message: replyMessage({ from: email, to, body: 'Counted.' }) });
    expect(processed.data.code).toBe(250);
    // One message, one recipient processed and one refused at RCPT.
    const mixed = await sendMail(server.port, { from: email, to: [to, 'incoming+nope@example.com'], message: replyMessage({ from: email, to, body: 'Counted too.' }) });
    expect(mixed.data.code).toBe(250);
    const blank = await sendMail(server.port, { from: email, to: [to], message: replyMessage({ from: email, to, body: '' }) });
    expect(blank.data.code).toBe(550);
    // Refused for a parameter, then made good: the refusal was answered, and counts; the row goes.
    const { client: fixer } = await SmtpClient.connect(server.port);
    await fixer.command('EHLO client.test');
    await fixer.command(`MAIL FROM:<${email}>`);
    expect((await fixer.command(`RCPT TO:<${to}> FOO=BAR`)).code).toBe(555);
    expect((await fixer.command(`RCPT TO:<${to}>`)).code).toBe(250);
    expect((await fixer.command('DATA')).code).toBe(354);
    expect((await fixer.command(`${replyMessage({ from: email, to, body: 'Fixed.' }).replace(/\n/g, '\r\n')}\r\n.`)).code).toBe(250);
    await fixer.quit();
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    await client.command('MAIL FROM:<stranger@elsewhere.test>');
    expect((await client.command('RCPT TO:<incoming+unknown@example.com>')).code).toBe(550);

    const scraped = await get(server, '/metrics');
    expect(scraped.status).toBe(200);
    expect(scraped.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    const after = samples(scraped.text);
    expect(value(after, 'intake_messages_total', { ingress: 'smtp', status: 'processed' })).toBe(3);
    expect(value(after, 'intake_messages_total', { ingress: 'smtp', status: 'rejected' })).toBe(1);
    expect(value(after, 'intake_deliveries_total', { stage: 'data', status: 'processed', reason: '' })).toBe(3);
    expect(value(after, 'intake_deliveries_total', { stage: 'data', status: 'rejected', reason: 'data.blank' })).toBe(1);
    expect(value(after, 'intake_refusals_total', { stage: 'rcpt', reason: 'rcpt.unknown_key' })).toBe(2);
    expect(value(after, 'intake_refusals_total', { stage: 'rcpt', reason: 'rcpt.unsupported_parameter' })).toBe(1);
    expect(value(after, 'intake_store_seconds_count')).toBe(4);
    expect(value(after, 'intake_store_seconds_bucket', { le: '+Inf' })).toBe(4);
    expect(samples(scraped.text).filter((x) => x.name === 'intake_messages_not_stored_total').every((x) => x.value === 0)).toBe(true);
    expect(Date.now() / 1000 - value(after, 'intake_last_message_timestamp_seconds')!).toBeLessThan(60);
    // The rows say the same: three processed and one refused (blank); the 555 left none.
    const rows = server.store.sqlite.prepare("select stage, status, coalesce(reason_code, '') as reason, count(*) as n from deliveries group by 1, 2, 3 order by 1, 2, 3").all();
    expect(rows).toEqual([
      { stage: 'data', status: 'processed', reason: '', n: 3 },
      { stage: 'data', status: 'rejected', reason: 'data.blank', n: 1 },
      { stage: 'rcpt', status: 'rejected', reason: 'rcpt.unknown_key', n: 2 },
    ]);
    // The session still open.
    expect(value(after, 'intake_sessions', { listener: 'smtp' })).toBe(1);
    await client.quit();
    const closed = samples((await get(server, '/metrics')).text);
    expect(value(closed, 'intake_sessions', { listener: 'smtp' })).toBe(0);
    expect(value(closed, 'intake_database_free_bytes')).toBeGreaterThan(0);
    expect(value(closed, 'intake_database_bytes', { file: 'database' })).toBeGreaterThan(0);
    expect(value(closed, 'intake_writer_restarts_total')).toBe(0);
    expect(value(closed, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(value(closed, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('answers /health 200 with what each check found', async () => {
    const health = await get(server, '/health');
    expect(health.status).toBe(200);
    expect(health.type).toBe('application/json');
    const report = JSON.parse(health.text) as { status: string; checks: Record<string, { ok: boolean; detail: string }> };
    expect(report.status).toBe('ok');
    expect(report.checks.writer).toMatchObject({ ok: true, detail: expect.stringMatching(/^answered in \d+ ms, the database takes writes$/) });
    expect(report.checks.disk).toMatchObject({ ok: true, detail: expect.stringMatching(/^[\d.]+ [KMGTP]?B free$/) });
    const head = await fetch(`http://127.0.0.1:${server.ports.http}/health`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(20);
    expect(head.headers.get('server')).toBe('intake');
  });

  it('is found by `intake check`, which tells it from another program', () => {
    const check = (listen: string) => spawnSync(process.execPath, [CLI, 'check'], { env: { ...server.env, INTAKE_HTTP_LISTEN: listen }, encoding: 'utf8' });
    const ours = check(`127.0.0.1:${server.ports.http}`);
    expect(ours.stdout).toContain(`ok    http_listen: 127.0.0.1:${server.ports.http} is in use, answered: 200 ok\n`);
    expect(ours.status).toBe(0);
    const smtp = check(`127.0.0.1:${server.port}`);
    expect(smtp.stdout).toContain(`FAIL  http_listen: 127.0.0.1:${server.port} is in use by another program\n`);
    expect(smtp.status).toBe(1);
  });

  it('answers only GET and HEAD of its two paths', async () => {
    expect(await get(server, '/')).toMatchObject({ status: 404, text: 'not found: this listener answers GET /health and GET /metrics\n' });
    expect(await get(server, '/healthz')).toMatchObject({ status: 404 });
    expect(await get(server, '/metrics', { method: 'POST', body: 'x' })).toMatchObject({ status: 405, text: 'POST not allowed: GET /metrics\n' });
  });
});

describe('refusals that leave no row', () => {
  it('are counted by stage and code: a connection over the limit, a MAIL FROM refused, a guesser shut out and back, a session timed out', async () => {
    const server = await startServer({ INTAKE_HTTP_LISTEN: '127.0.0.1:0', INTAKE_MAX_CONNECTIONS_PER_IP: '1', INTAKE_SOCKET_TIMEOUT_MS: '1000', INTAKE_UNKNOWN_RECIPIENT_LIMIT: '1' });
    try {
      const counted = async () =>
        samples((await get(server, '/metrics')).text)
          .filter((s) => s.name === 'intake_refusals_total' && s.value > 0)
          .map((s) => [s.labels.stage, s.labels.reason, s.value])
          .sort();
      const { client } = await SmtpClient.connect(server.port);
      await client.command('EHLO client.test');
      const { greeting } = await SmtpClient.connect(server.port);
      expect(greeting.line).toMatch(/^421 4\.7\.0 /);
      expect((await client.command('MAIL FROM:<a@example.net> FOO=BAR')).code).toBe(555);
      // Accepted: not counted.
      expect((await client.command('MAIL FROM:<a@example.net>')).code).toBe(250);
      expect(await counted()).toEqual([
        ['connect', 'connect.too_many_connections', 1],
        ['mail', 'mail.unsupported_parameter', 1],
      ]);
      // An unknown key reaches the limit of one: the client is shut out, and refused when it comes back.
      expect((await client.command('RCPT TO:<incoming+nope@example.com>')).code).toBe(421);
      const { greeting: back } = await SmtpClient.connect(server.port);
      expect(back.line).toMatch(/^421 /);
      // Another client, left idle: cut after a second of silence (checked each second).
      const { client: idle } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.2' });
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline && !(await counted()).some(([stage]) => stage === 'session')) await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await counted()).toEqual([
        ['connect', 'connect.blocked', 1],
        ['connect', 'connect.too_many_connections', 1],
        ['mail', 'mail.unsupported_parameter', 1],
        ['rcpt', 'rcpt.unknown_key', 1],
        ['session', 'session.command_timeout', 1],
      ]);
      await idle.quit().catch(() => undefined);
    } finally {
      await server.stop();
    }
  });

  it('start at 0 for the series the alerting rules watch, so that the first one after a start alerts', async () => {
    const server = await startServer({ INTAKE_HTTP_LISTEN: '127.0.0.1:0' });
    try {
      const all = samples((await get(server, '/metrics')).text);
      expect(value(all, 'intake_messages_not_stored_total', { ingress: 'smtp', reason: 'data.store_failed' })).toBe(0);
      expect(value(all, 'intake_messages_not_stored_total', { ingress: 'lmtp', reason: 'data.disk_full' })).toBe(0);
      expect(value(all, 'intake_deliveries_total', { stage: 'process', status: 'failed', reason: 'process.internal' })).toBe(0);
      expect(value(all, 'intake_refusals_total', { stage: 'connect', reason: 'connect.blocked' })).toBe(0);
      expect(value(all, 'intake_refusals_total', { stage: 'rcpt', reason: 'rcpt.unknown_reply_key' })).toBe(0);
    } finally {
      await server.stop();
    }
  });
});

describe('/health when mail cannot be taken', () => {
  it('is 503 naming a disk under INTAKE_MIN_FREE_BYTES, which MAIL FROM refuses', async () => {
    const server = await startServer({ INTAKE_HTTP_LISTEN: '127.0.0.1:0', INTAKE_MIN_FREE_BYTES: String(10 ** 15) });
    try {
      const health = await get(server, '/health');
      expect(health.status).toBe(503);
      const report = JSON.parse(health.text) as { status: string; checks: Record<string, { ok: boolean; detail: string }> };
      expect(report.status).toBe('failing');
      expect(report.checks.writer!.ok).toBe(true);
      expect(report.checks.disk).toMatchObject({ ok: false, detail: expect.stringMatching(/^[\d.]+ [KMGTP]?B free, under the 1.0 PB INTAKE_MIN_FREE_BYTES keeps: MAIL FROM is refused 452 4\.3\.1$/) });
      const { client } = await SmtpClient.connect(server.port);
      await client.command('EHLO client.test');
      expect((await client.command('MAIL FROM:<a@example.net>')).line).toMatch(/^452 4\.3\.1 /);
      await client.quit();
    } finally {
      await server.stop();
    }
  });

  it('is 503 naming a database another program holds locked, as DATA then gets 451', async () => {
    const server = await startServer({ INTAKE_HTTP_LISTEN: '127.0.0.1:0' });
    try {
      const world = seedReplyWorld(server.repos);
      const to = template.format(world.key);
      server.store.sqlite.exec('BEGIN IMMEDIATE');
      try {
        // Ten checkers at once share one look at the lock, each of which holds the writer up to 1 s.
        const started = Date.now();
        const checks = await Promise.all(Array.from({ length: 10 }, () => get(server, '/health')));
        expect(Date.now() - started).toBeLessThan(3000);
        for (const health of checks) {
          expect(health.status).toBe(503);
          const report = JSON.parse(health.text) as { status: string; checks: Record<string, { ok: boolean; detail: string }> };
          expect(report.status).toBe('failing');
          expect(report.checks.writer).toEqual({ ok: false, detail: 'the database does not take writes (database is locked): messages get 451 4.3.0 meanwhile' });
        }
        const sent = await sendMail(server.port, { from: world.user.email, to: [to], message: replyMessage({ from: world.user.email, to, body: 'Locked out.' }) });
        expect(sent.data.line).toMatch(/^451 4\.3\.0 /);
      } finally {
        server.store.sqlite.exec('ROLLBACK');
      }
      expect((await get(server, '/health')).status).toBe(200);
    } finally {
      await server.stop();
    }
  });

  it('is 503 `stopping` while messages in progress finish after SIGTERM', async () => {
    const server = await startServer({ INTAKE_HTTP_LISTEN: '127.0.0.1:0', INTAKE_SHUTDOWN_TIMEOUT_MS: '5000' });
    try {
      const world = seedReplyWorld(server.repos);
      const to = template.format(world.key);
      const { client } = await SmtpClient.connect(server.port);
      await client.command('EHLO client.test');
      await client.command(`MAIL FROM:<${world.user.email}>`);
      await client.command(`RCPT TO:<${to}>`);
      expect((await client.command('DATA')).code).toBe(354);
      process.kill(server.pid, 'SIGTERM');
      const deadline = Date.now() + 5000;
      let health = await get(server, '/health');
      while (health.status === 200 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        health = await get(server, '/health');
      }
      expect(health.status).toBe(503);
      expect((JSON.parse(health.text) as { status: string }).status).toBe('stopping');
      // The message in progress is still taken.
      const done = await client.command(`${replyMessage({ from: world.user.email, to, body: 'Just in time.' }).replace(/\n/g, '\r\n')}\r\n.`);
      expect(done.code).toBe(250);
      await client.quit().catch(() => undefined);
      expect(await server.exited).toBe(0);
    } finally {
      await server.stop();
    }
  });
});

describe('the monitoring listener under idle connections', () => {
  it('serves a few at once and closes those that say nothing, so they cannot hold the descriptors mail needs', async () => {
    const server = await startServer({ INTAKE_HTTP_LISTEN: '127.0.0.1:0' });
    const sockets: Socket[] = [];
    try {
      const closedAt: number[] = [];
      const started = Date.now();
      for (let i = 0; i < 40; i++) {
        const socket = connect({ port: server.ports.http!, host: '127.0.0.1' });
        socket.on('error', () => undefined);
        socket.on('close', () => closedAt.push(Date.now() - started));
        sockets.push(socket);
      }
      // Past 32 at once, refused at once.
      await expect.poll(() => closedAt.length, { timeout: 2000 }).toBeGreaterThanOrEqual(8);
      expect(closedAt.length).toBe(8);
      // The rest are closed after 10 s of silence.
      await expect.poll(() => closedAt.length, { timeout: 15_000, interval: 200 }).toBe(40);
      expect(Math.max(...closedAt)).toBeLessThan(13_000);
      expect((await get(server, '/health')).status).toBe(200);
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.stop();
    }
  }, 30_000);
});
