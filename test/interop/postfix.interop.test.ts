// intake behind a real Postfix (a private instance on loopback, configured with deploy/postfix's
// snippets), with swaks as the sending client: LMTP delivery, refusal at Postfix's RCPT through the
// policy service, no loss while intake is down, bounces carrying intake's reason, and pipe(8) delivery.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/db/client.js';
import { createRepositories } from '../../src/db/repositories.js';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { CLI, ROOT, startServer, template, type RunningServer } from '../helpers/server.js';
import { freePort, POSTFIX_INSTALLED, snippet, startPostfix, swaks, SWAKS_INSTALLED, type Postfix } from './postfix.js';

// `.ci/run` installs both; without them this suite cannot prove anything, so it fails rather than skips.
if (!POSTFIX_INSTALLED || !SWAKS_INSTALLED) throw new Error('the interop suite needs Debian\'s postfix and swaks (apt-get install postfix swaks)');

/** The sender's own mail server, where Postfix delivers bounces: every message it receives. */
async function startSink(): Promise<{ port: number; received: { to: string[]; raw: string }[]; close(): Promise<void> }> {
  const received: { to: string[]; raw: string }[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8') });
        callback();
      });
    },
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { port, received, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function messageFile(dir: string, text: string): string {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.eml`);
  writeFileSync(file, text.replace(/\r?\n/g, '\r\n'));
  return file;
}

describe('behind Postfix: LMTP and the policy service', () => {
  let lmtpPort: number;
  let policyPort: number;
  let database: string;
  let intake: RunningServer | null = null;
  let postfix: Postfix;
  let sink: Awaited<ReturnType<typeof startSink>>;
  const work = mkdtempSync(join(tmpdir(), 'intake-interop-'));

  // As deploy/intake.env would have it behind Postfix: no SMTP listener of its own.
  const startIntake = async () => {
    intake = await startServer({
      INTAKE_DATABASE: database,
      INTAKE_SMTP_LISTEN: '',
      INTAKE_LMTP_LISTEN: `127.0.0.1:${lmtpPort}`,
      INTAKE_POLICY_LISTEN: `127.0.0.1:${policyPort}`,
      INTAKE_TRUSTED_RELAYS: '127.0.0.1',
    });
    return intake;
  };

  beforeAll(async () => {
    [lmtpPort, policyPort] = [await freePort(), await freePort()];
    database = join(work, 'intake.sqlite');
    await startIntake();
    sink = await startSink();
    postfix = await startPostfix({
      mainCf: snippet('main.cf.lmtp', { 'incoming.example.com': 'example.com', '127.0.0.1:2424': `127.0.0.1:${lmtpPort}`, '127.0.0.1:2425': `127.0.0.1:${policyPort}` }),
      masterCf: '',
      defaultTransport: `smtp:[127.0.0.1]:${sink.port}`,
    });
  }, 60_000);

  afterAll(async () => {
    postfix?.stop();
    await intake?.stop();
    await sink?.close();
    rmSync(work, { recursive: true, force: true });
  });

  const notesOf = (server: RunningServer, issueId: number) =>
    server.store.sqlite.prepare("select body, inbound_message_id from notes where noteable_type = 'Issue' and noteable_id = ?").all(issueId) as { body: string; inbound_message_id: number }[];

  it('1. a good key relayed through Postfix becomes a note, with the original client recorded', async () => {
    const server = intake as RunningServer;
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const file = messageFile(work, replyMessage({ from: world.user.email, to, body: 'Relayed by Postfix.' }));
    const sent = swaks(['--port', String(postfix.port), '--helo', 'client.sender.test', '--from', world.user.email, '--to', to, '--data', `@${file}`]);
    expect(sent.output).toMatch(/<- {2}250 2\.0\.0 Ok: queued as \w+/);
    await expect.poll(() => notesOf(server, world.issue.id).length, { timeout: 30_000 }).toBe(1);
    const [note] = notesOf(server, world.issue.id);
    expect(note?.body).toBe('Relayed by Postfix.');
    const row = server.store.sqlite.prepare('select ingress, remote_address, helo, relay_address, status from inbound_messages where id = ?').get(note?.inbound_message_id);
    expect(row).toEqual({ ingress: 'lmtp', remote_address: '127.0.0.1', helo: 'client.sender.test', relay_address: '127.0.0.1', status: 'processed' });
    // Postfix logs the delivery when intake's reply reaches it, just after the commit the note came with.
    await expect
      .poll(() => postfix.log(), { timeout: 10_000 })
      .toMatch(new RegExp(`to=<${to.replace(/[+.]/g, '\\$&')}>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${lmtpPort}, .*status=sent \\(250 2\\.6\\.0 Message accepted as inbound message \\d+\\)`));
  });

  it('1b. mail submitted on the relay itself (sendmail, no SMTP client) becomes a note too, recorded as from the relay', async () => {
    const server = intake as RunningServer;
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    postfix.sendmail(world.user.email, to, replyMessage({ from: world.user.email, to, body: 'From a cron job on the relay.' }));
    await expect.poll(() => notesOf(server, world.issue.id).length, { timeout: 30_000 }).toBe(1);
    const row = server.store.sqlite.prepare('select ingress, remote_address, helo, relay_address from inbound_messages where id = ?').get(notesOf(server, world.issue.id)[0]?.inbound_message_id);
    // Postfix forwards no client for it (there is none): the relay itself is the client on record.
    expect(row).toEqual({ ingress: 'lmtp', remote_address: '127.0.0.1', helo: 'relay.test', relay_address: null });
  });

  it('2. an unknown key is refused by Postfix at RCPT with intake\'s reason, and nothing is queued', async () => {
    const server = intake as RunningServer;
    const to = template.format('a'.repeat(32));
    const sent = swaks(['--port', String(postfix.port), '--from', 'someone@sender.test', '--to', to]);
    expect(sent.status).not.toBe(0);
    expect(sent.output).toContain(
      `<** 554 5.1.1 <${to}>: Recipient address rejected: We couldn't figure out what the email is in reply to. Please create your comment through the web interface.`,
    );
    expect(postfix.queue()).not.toContain(to);
    expect(postfix.log()).toContain(`NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 554 5.1.1 <${to}>`);
    const row = server.store.sqlite.prepare("select status, reason_code, remote_address from inbound_messages where ingress = 'policy' and rcpt_to = ?").get(JSON.stringify([to]));
    expect(row).toEqual({ status: 'rejected', reason_code: 'rcpt.unknown_reply_key', remote_address: '127.0.0.1' });
  });

  it('3. intake stopped: Postfix accepts and queues; intake back and the queue flushed: the note exists once', async () => {
    const world = seedReplyWorld((intake as RunningServer).repos);
    const to = template.format(world.key);
    expect(await (intake as RunningServer).stop()).toBe(0);
    intake = null;
    const file = messageFile(work, replyMessage({ from: world.user.email, to, body: 'Sent while intake was down.' }));
    const sent = swaks(['--port', String(postfix.port), '--from', world.user.email, '--to', to, '--data', `@${file}`]);
    expect(sent.output).toMatch(/<- {2}250 2\.0\.0 Ok: queued as \w+/);
    await expect.poll(() => postfix.log(), { timeout: 30_000 }).toMatch(new RegExp(`to=<${to.replace(/[+.]/g, '\\$&')}>.*status=deferred \\(connect to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${lmtpPort}: Connection refused\\)`));
    expect(postfix.queue()).toContain(to);
    // Nothing reached the database meanwhile.
    const offline = openStore(database, { migrate: false });
    const before = offline.sqlite.prepare("select count(*) as n from notes where noteable_type = 'Issue' and noteable_id = ?").get(world.issue.id) as { n: number };
    offline.close();
    expect(before.n).toBe(0);
    const server = await startIntake();
    postfix.flush();
    await expect.poll(() => notesOf(server, world.issue.id).length, { timeout: 30_000 }).toBe(1);
    await expect.poll(() => postfix.queue(), { timeout: 30_000 }).toMatch(/Mail queue is empty/);
    // Once more, after the queue is empty: still exactly one note, one processed delivery.
    await new Promise((r) => setTimeout(r, 2000));
    expect(notesOf(server, world.issue.id).map((n) => n.body)).toEqual(['Sent while intake was down.']);
    const deliveries = server.store.sqlite.prepare("select count(*) as n from deliveries where recipient = ? and status = 'processed'").get(to) as { n: number };
    expect(deliveries.n).toBe(1);
  });

  it('4. a message intake refuses for its content comes back from Postfix as a bounce carrying the reason', async () => {
    const server = intake as RunningServer;
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const file = messageFile(work, replyMessage({ from: world.user.email, to, body: '> nothing but a quote' }));
    const sent = swaks(['--port', String(postfix.port), '--from', 'bounce-me@sender.test', '--to', to, '--data', `@${file}`]);
    expect(sent.output).toMatch(/<- {2}250 2\.0\.0 Ok: queued/);
    await expect.poll(() => sink.received.filter((m) => m.to.includes('bounce-me@sender.test')).length, { timeout: 30_000 }).toBe(1);
    const bounce = await simpleParser(sink.received.find((m) => m.to.includes('bounce-me@sender.test'))?.raw ?? '');
    expect(bounce.subject).toBe('Undelivered Mail Returned to Sender');
    const text = bounce.text?.replace(/\s+/g, ' ') ?? '';
    expect(text).toContain(`<${to}>: host 127.0.0.1[127.0.0.1] said: 550 5.6.0 It appears that the email is blank. Make sure your reply is at the top of the email, we can't process inline replies.`);
    expect(notesOf(server, world.issue.id)).toEqual([]);
  });
});

describe('behind Postfix: pipe(8) runs intake deliver', () => {
  let postfix: Postfix;
  let work: string;
  let database: string;
  let configFile: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'intake-pipe-'));
    chmodSync(work, 0o755);
    // pipe(8) runs the command as an unprivileged user (never root), who must reach the program and
    // write the database. A checkout under /root is out of its reach: then it runs a copy.
    let cli = CLI;
    if (spawnSync('runuser', ['-u', 'nobody', '--', 'test', '-r', CLI]).status !== 0) {
      const copy = join(work, 'intake');
      for (const part of ['dist', 'node_modules', 'migrations', 'package.json']) cpSync(join(ROOT, part), join(copy, part), { recursive: true });
      cli = join(copy, 'dist/cli.js');
    }
    const dataDir = join(work, 'data');
    mkdirSync(dataDir);
    database = join(dataDir, 'intake.sqlite');
    configFile = join(work, 'intake.env');
    writeFileSync(configFile, `INTAKE_DATABASE=${database}\nINTAKE_ADDRESS=incoming+%{key}@example.com\nINTAKE_HOSTNAME=intake.test\n`);
    openStore(database).close();
    chownSync(dataDir, 65534, 65534);
    chownSync(database, 65534, 65534);
    postfix = await startPostfix({
      mainCf: snippet('main.cf.pipe', { 'incoming.example.com': 'example.com' }),
      masterCf: snippet('master.cf.pipe', { 'user=intake': 'user=nobody', '/usr/bin/node /opt/intake/dist/cli.js': `${process.execPath} ${cli}`, '/etc/intake/intake.env': configFile }),
      defaultTransport: 'discard:',
    });
  }, 60_000);

  afterAll(() => {
    postfix?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('5. stores the mail, as the pipe user, and Postfix logs it delivered', async () => {
    const store = openStore(database, { migrate: false });
    try {
      const repos = createRepositories(store);
      const world = seedReplyWorld(repos);
      const to = template.format(world.key);
      const file = messageFile(work, replyMessage({ from: world.user.email, to, body: 'Through pipe(8).' }));
      const sent = swaks(['--port', String(postfix.port), '--helo', 'client.sender.test', '--from', world.user.email, '--to', to, '--data', `@${file}`]);
      expect(sent.output).toMatch(/<- {2}250 2\.0\.0 Ok: queued/);
      const notes = () => store.sqlite.prepare("select body from notes where noteable_type = 'Issue' and noteable_id = ?").all(world.issue.id);
      await expect.poll(notes, { timeout: 30_000 }).toEqual([{ body: 'Through pipe(8).' }]);
      const row = store.sqlite.prepare("select ingress, mail_from, rcpt_to, status from inbound_messages where ingress = 'pipe'").get();
      expect(row).toEqual({ ingress: 'pipe', mail_from: world.user.email, rcpt_to: JSON.stringify([to]), status: 'processed' });
      await expect.poll(() => postfix.log(), { timeout: 10_000 }).toMatch(/relay=intake, .*status=sent \(delivered via intake service \(intake: \S+: 250 2\.6\.0 Message accepted/);
      // An unknown key: pipe(8) reads exit 67 and bounces with intake's reason (to the discard here).
      const unknown = template.format('b'.repeat(32));
      swaks(['--port', String(postfix.port), '--from', 'x@sender.test', '--to', unknown]);
      await expect.poll(() => postfix.log(), { timeout: 30_000 }).toMatch(
        /status=bounced \(.*We couldn't figure out what the email is in reply to/,
      );
    } finally {
      store.close();
    }
  });
});
