// The IMAP fetcher against a real Dovecot (a private instance on loopback): mail put into the folder
// becomes notes, over implicit TLS, STARTTLS and in clear; new mail is fetched as IDLE announces it; a message is
// deleted, moved or flagged only once stored, fetched once across restarts, and a server that goes away
// or refuses the login is tried again without stopping intake.
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue } from '../helpers/metrics.js';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { cliEnv, runCli, startServer, tempDir, template, type RunningServer } from '../helpers/server.js';
import { DOVECOT_INSTALLED, startDovecot, type Dovecot } from './dovecot.js';
import { freePort } from './postfix.js';

// `.ci/run` installs it; without it this suite cannot prove anything, so it fails rather than skips.
if (!DOVECOT_INSTALLED) throw new Error("the IMAP suite needs Debian's dovecot-imapd (apt-get install dovecot-imapd)");

const USER = 'intake';
const PASSWORD = 'fetch-secret';

interface Row {
  id: number;
  ingress: string;
  status: string;
  reason_code: string | null;
  smtp_reply: string;
  mail_from: string | null;
  rcpt_to: string;
  fetched_from: string | null;
  sha256: string | null;
}

describe('the IMAP fetcher against Dovecot', () => {
  let dovecot: Dovecot;
  let mailbox: ImapFlow;
  const running: RunningServer[] = [];

  beforeAll(async () => {
    dovecot = await startDovecot({ [USER]: PASSWORD });
    mailbox = await dovecot.client(USER);
  }, 60_000);

  afterAll(async () => {
    for (const server of running) await server.stop();
    await mailbox?.logout().catch(() => undefined);
    await dovecot?.stop();
  });

  /** intake with the fetcher only (no SMTP listener), as for a mailbox it cannot be the MX of. */
  const startIntake = async (settings: Record<string, string> = {}) => {
    const server = await startServer({
      INTAKE_SMTP_LISTEN: '',
      INTAKE_IMAP_HOST: '127.0.0.1',
      INTAKE_IMAP_PORT: String(dovecot.port),
      INTAKE_IMAP_TLS: 'none',
      INTAKE_IMAP_USER: USER,
      INTAKE_IMAP_PASSWORD: PASSWORD,
      // Long: what is fetched quickly was announced by IDLE, not found by a periodic search.
      INTAKE_IMAP_CHECK_INTERVAL_MS: '600000',
      ...settings,
    });
    running.push(server);
    return server;
  };
  /** A database of the test's own, kept across its restarts (a server's own folder goes when it stops). */
  const newDatabase = () => join(mkdtempSync(join(tmpdir(), 'intake-imap-')), 'intake.sqlite');
  const stopIntake = async (server: RunningServer) => {
    expect(await server.stop()).toBe(0);
    running.splice(running.indexOf(server), 1);
  };

  const rowsOf = (server: RunningServer) => server.store.sqlite.prepare("select * from inbound_messages where ingress = 'imap' order by id").all() as Row[];
  const notesOf = (server: RunningServer, issueId: number) =>
    server.store.sqlite.prepare("select body, inbound_message_id from notes where noteable_type = 'Issue' and noteable_id = ?").all(issueId) as { body: string; inbound_message_id: number }[];
  /** The folder's messages: UID, flags and Message-ID. */
  const folder = async (path = 'INBOX') => {
    const lock = await mailbox.getMailboxLock(path);
    try {
      // The server tells a session of expunges by others only between commands of its own.
      await mailbox.noop();
      const found: { uid: number; flags: string[]; messageId: string | undefined }[] = [];
      if ((mailbox.mailbox as { exists: number }).exists === 0) return found;
      for await (const m of mailbox.fetch('1:*', { uid: true, flags: true, envelope: true })) found.push({ uid: m.uid, flags: [...(m.flags ?? [])], messageId: m.envelope?.messageId });
      return found;
    } finally {
      lock.release();
    }
  };
  /** Puts a message into the folder as a delivery agent would, Return-Path and Delivered-To first. */
  const deliver = async (raw: string, options: { returnPath?: string; deliveredTo?: string; path?: string } = {}) => {
    const head = [`Return-Path: <${options.returnPath ?? 'sender@client.test'}>`, ...(options.deliveredTo ? [`Delivered-To: ${options.deliveredTo}`] : [])];
    const bytes = Buffer.from([...head, raw].join('\n').replace(/\r?\n/g, '\r\n'));
    await mailbox.append(options.path ?? 'INBOX', bytes);
    return bytes;
  };
  const emptyInbox = async () => {
    const lock = await mailbox.getMailboxLock('INBOX');
    try {
      if ((mailbox.mailbox as { exists: number }).exists > 0) await mailbox.messageDelete('1:*');
    } finally {
      lock.release();
    }
  };
  const reply = (server: RunningServer, body: string) => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const messageId = `<${Math.random().toString(36).slice(2)}@client.test>`;
    return { world, to, messageId, raw: replyMessage({ from: world.user.email, to: 'incoming@example.com', body, messageId }) };
  };

  it('1. over implicit TLS: a reply in the folder becomes a note, stored byte for byte, and is deleted once stored', async () => {
    await emptyInbox();
    const server = await startIntake({ INTAKE_IMAP_PORT: String(dovecot.tlsPort), INTAKE_IMAP_TLS: 'implicit', NODE_EXTRA_CA_CERTS: dovecot.certFile });
    const { world, to, raw } = reply(server, 'Fetched over IMAPS.');
    const bytes = await deliver(raw, { deliveredTo: to, returnPath: world.user.email });
    await expect.poll(() => notesOf(server, world.issue.id).length, { timeout: 20_000 }).toBe(1);
    expect(notesOf(server, world.issue.id)[0]?.body).toBe('Fetched over IMAPS.');
    const [row] = rowsOf(server);
    expect(row).toMatchObject({ ingress: 'imap', status: 'processed', mail_from: world.user.email, rcpt_to: JSON.stringify(['incoming@example.com']) });
    expect(row?.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(row?.fetched_from).toMatch(new RegExp(`^imap://intake@127\\.0\\.0\\.1:${dovecot.tlsPort}/INBOX;UIDVALIDITY=\\d+/;UID=\\d+$`));
    // Routed by Delivered-To, as GitLab reads the mailbox's mail.
    const delivery = server.store.sqlite.prepare('select recipient, source, key, status from deliveries where inbound_message_id = ?').get(row?.id);
    expect(delivery).toEqual({ recipient: 'incoming@example.com', source: 'Delivered-To', key: world.key, status: 'processed' });
    await expect.poll(() => folder(), { timeout: 10_000 }).toEqual([]);
    await stopIntake(server);
  });

  it('2. new mail is fetched as IDLE announces it, not at the next periodic search (the password read from a file)', async () => {
    await emptyInbox();
    const passwordFile = join(mkdtempSync(join(tmpdir(), 'intake-imap-')), 'password');
    writeFileSync(passwordFile, `${PASSWORD}\n`);
    const server = await startIntake({ INTAKE_IMAP_PASSWORD: '', INTAKE_IMAP_PASSWORD_FILE: passwordFile });
    await expect.poll(() => server.logs.some((l) => l.includes('IMAP folder opened')), { timeout: 10_000 }).toBe(true);
    // Past the first search, into IDLE.
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const n of [1, 2, 3]) {
      const { world, to, raw } = reply(server, `Announced by IDLE, ${n}.`);
      const sent = Date.now();
      await deliver(raw, { deliveredTo: to });
      await expect.poll(() => notesOf(server, world.issue.id).length, { timeout: 10_000 }).toBe(1);
      // The check interval is 10 minutes: only the announcement can have fetched it this soon.
      expect(Date.now() - sent).toBeLessThan(8000);
    }
    await expect.poll(() => folder(), { timeout: 10_000 }).toEqual([]);
    await stopIntake(server);
  });

  it('3. a message that names no live key is refused with a row, and deleted as done with (no bounce to send)', async () => {
    await emptyInbox();
    const server = await startIntake();
    const to = template.format('a'.repeat(32));
    await deliver(replyMessage({ from: 'someone@client.test', to: 'incoming@example.com', body: 'Nobody sent this key.' }), { deliveredTo: to });
    await expect.poll(() => rowsOf(server).length, { timeout: 20_000 }).toBe(1);
    expect(rowsOf(server)[0]).toMatchObject({ status: 'rejected', smtp_reply: expect.stringMatching(/^5\d\d /) });
    await expect.poll(() => folder(), { timeout: 10_000 }).toEqual([]);
    await stopIntake(server);
  });

  it('4. seen: stored messages are flagged and left; a restart fetches none again, and delete then removes them without storing them twice', async () => {
    await emptyInbox();
    const database = newDatabase();
    let server = await startIntake({ INTAKE_IMAP_AFTER: 'seen', INTAKE_DATABASE: database });
    const a = reply(server, 'Kept and flagged, one.');
    const b = reply(server, 'Kept and flagged, two.');
    const c = reply(server, 'Read by a person first.');
    await deliver(a.raw, { deliveredTo: a.to });
    await deliver(b.raw, { deliveredTo: b.to });
    await expect.poll(async () => (await folder()).map((m) => m.flags.includes('\\Seen')), { timeout: 20_000 }).toEqual([true, true]);
    expect(rowsOf(server).map((r) => r.status)).toEqual(['processed', 'processed']);
    await stopIntake(server);

    // A person marks one unread again, and mail read before intake saw it is fetched all the same.
    const uids = (await folder()).map((m) => m.uid);
    let lock = await mailbox.getMailboxLock('INBOX');
    await mailbox.messageFlagsRemove(String(uids[0]), ['\\Seen'], { uid: true });
    lock.release();
    await deliver(c.raw, { deliveredTo: c.to });
    lock = await mailbox.getMailboxLock('INBOX');
    await mailbox.messageFlagsAdd('*', ['\\Seen']);
    lock.release();

    server = await startIntake({ INTAKE_IMAP_AFTER: 'seen', INTAKE_DATABASE: database });
    await expect.poll(() => notesOf(server, c.world.issue.id).length, { timeout: 20_000 }).toBe(1);
    // The first two are known by their row: not fetched again.
    expect(rowsOf(server)).toHaveLength(3);
    expect(notesOf(server, a.world.issue.id)).toHaveLength(1);
    await stopIntake(server);

    // What a crash between the commit and the delete would leave: stored messages still in the folder.
    server = await startIntake({ INTAKE_IMAP_AFTER: 'delete', INTAKE_DATABASE: database });
    await expect.poll(() => folder(), { timeout: 20_000 }).toEqual([]);
    expect(rowsOf(server)).toHaveLength(3);
    await stopIntake(server);
  });

  it('4b. delete: a stored message left flagged \\Deleted (the server refused the EXPUNGE after it) is deleted at the next check; one someone else flagged is left alone', async () => {
    await emptyInbox();
    const database = newDatabase();
    let server = await startIntake({ INTAKE_IMAP_AFTER: 'seen', INTAKE_DATABASE: database });
    const stored = reply(server, 'Stored, then its delete half done.');
    const theirs = reply(server, 'Flagged by someone else before intake saw it.');
    await deliver(stored.raw, { deliveredTo: stored.to });
    await expect.poll(async () => (await folder()).map((m) => m.flags.includes('\\Seen')), { timeout: 20_000 }).toEqual([true]);
    await stopIntake(server);
    await deliver(theirs.raw, { deliveredTo: theirs.to });
    // What a STORE that went through and an EXPUNGE the server refused leave: \Deleted, still there.
    const lock = await mailbox.getMailboxLock('INBOX');
    await mailbox.messageFlagsAdd('1:*', ['\\Deleted']);
    lock.release();
    server = await startIntake({ INTAKE_IMAP_AFTER: 'delete', INTAKE_DATABASE: database });
    await expect.poll(async () => (await folder()).map((m) => m.messageId), { timeout: 20_000 }).toEqual([theirs.messageId]);
    expect(rowsOf(server)).toHaveLength(1);
    await stopIntake(server);
  });

  it('5. move, over STARTTLS: a stored message goes to INTAKE_IMAP_MOVE_TO, created when missing', async () => {
    await emptyInbox();
    const server = await startIntake({ INTAKE_IMAP_AFTER: 'move', INTAKE_IMAP_MOVE_TO: 'Processed', INTAKE_IMAP_TLS: 'starttls', NODE_EXTRA_CA_CERTS: dovecot.certFile });
    const { world, to, raw, messageId } = reply(server, 'Moved once stored.');
    await deliver(raw, { deliveredTo: to });
    await expect.poll(() => notesOf(server, world.issue.id).length, { timeout: 20_000 }).toBe(1);
    await expect.poll(() => folder(), { timeout: 10_000 }).toEqual([]);
    expect((await folder('Processed')).map((m) => m.messageId)).toContain(messageId);
    await stopIntake(server);
  });

  it('6. too big: refused with a row and left in the folder (its bytes are nowhere else), and not fetched again after a restart', async () => {
    await emptyInbox();
    const database = newDatabase();
    let server = await startIntake({ INTAKE_MAX_MESSAGE_BYTES: '3072', INTAKE_DATABASE: database });
    const { to, raw } = reply(server, 'x'.repeat(4000));
    const after = reply(server, 'Behind the big one.');
    await deliver(raw, { deliveredTo: to });
    await deliver(after.raw, { deliveredTo: after.to });
    // The one behind it is not held up.
    await expect.poll(() => notesOf(server, after.world.issue.id).length, { timeout: 20_000 }).toBe(1);
    expect(rowsOf(server)).toHaveLength(2);
    expect(rowsOf(server)[0]).toMatchObject({ status: 'rejected', reason_code: 'data.too_big', smtp_reply: expect.stringMatching(/^552 5\.3\.4 /), sha256: null });
    await expect.poll(async () => (await folder()).length, { timeout: 10_000 }).toBe(1);
    await stopIntake(server);
    server = await startIntake({ INTAKE_MAX_MESSAGE_BYTES: '3072', INTAKE_DATABASE: database });
    await expect.poll(() => server.logs.some((l) => l.includes('IMAP folder opened')), { timeout: 10_000 }).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(rowsOf(server)).toHaveLength(2);
    expect(await folder()).toHaveLength(1);
    await stopIntake(server);
    await emptyInbox();
  });

  it('7. deferred (4xx, the sender rate): left in the folder with its row, and fetched again (after a restart here) and stored once', async () => {
    await emptyInbox();
    const database = newDatabase();
    let server = await startIntake({ INTAKE_SENDER_RATE_LIMIT: '1', INTAKE_DATABASE: database });
    const { world, to } = reply(server, 'unused');
    const first = replyMessage({ from: world.user.email, to: 'incoming@example.com', body: 'First of two.' });
    const second = replyMessage({ from: world.user.email, to: 'incoming@example.com', body: 'Second of two.' });
    await deliver(first, { deliveredTo: to });
    await deliver(second, { deliveredTo: to });
    await expect.poll(() => rowsOf(server).length, { timeout: 20_000 }).toBe(2);
    expect(rowsOf(server).map((r) => r.smtp_reply.slice(0, 3))).toEqual(['250', '451']);
    await expect.poll(async () => (await folder()).length, { timeout: 10_000 }).toBe(1);
    await stopIntake(server);
    // The sender rate is counted from intake's start.
    server = await startIntake({ INTAKE_SENDER_RATE_LIMIT: '1', INTAKE_DATABASE: database });
    await expect.poll(() => notesOf(server, world.issue.id).map((n) => n.body), { timeout: 20_000 }).toEqual(['First of two.', 'Second of two.']);
    await expect.poll(() => folder(), { timeout: 10_000 }).toEqual([]);
    await stopIntake(server);
  });

  it('8. the server goes away and comes back: intake connects again (metrics say so) and fetches what arrived', async () => {
    await emptyInbox();
    const httpPort = await freePort();
    const server = await startIntake({ INTAKE_HTTP_LISTEN: `127.0.0.1:${httpPort}` });
    const metric = (name: string) => metricValue(httpPort, name);
    await expect.poll(() => metric('intake_imap_connected'), { timeout: 10_000 }).toBe(1);
    expect(await metric('intake_imap_last_check_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
    await mailbox.logout();
    await dovecot.stop();
    try {
      await expect.poll(() => metric('intake_imap_connected'), { timeout: 10_000 }).toBe(0);
    } finally {
      // Up again even if the above failed: the tests after this one need it.
      await dovecot.start();
      mailbox = await dovecot.client(USER);
    }
    const { world, to, raw } = reply(server, 'Sent while the fetcher was away.');
    await deliver(raw, { deliveredTo: to });
    await expect.poll(() => notesOf(server, world.issue.id).length, { timeout: 30_000 }).toBe(1);
    expect(await metric('intake_imap_connected')).toBe(1);
    expect(server.logs.some((l) => l.includes('IMAP connection lost or refused'))).toBe(true);
    await stopIntake(server);
  });

  it('9. a wrong password: intake keeps running and tries again, slower each time, saying why', async () => {
    const server = await startIntake({ INTAKE_IMAP_PASSWORD: 'not-the-password' });
    // Dovecot waits 2 s and more before each refusal of a client that failed already.
    await expect.poll(() => server.logs.filter((l) => l.includes('IMAP connection lost or refused')).length, { timeout: 30_000 }).toBeGreaterThanOrEqual(2);
    const waits = server.logs.filter((l) => l.includes('IMAP connection lost or refused')).map((l) => JSON.parse(l) as { retryInMs: number; err: string });
    expect(waits.slice(0, 2).map((w) => w.retryInMs)).toEqual([1000, 2000]);
    expect(waits[0]?.err).toMatch(/\[AUTHENTICATIONFAILED\] Authentication failed/);
    expect(server.logs.some((l) => l.includes('IMAP folder opened'))).toBe(false);
    await stopIntake(server);
  });

  it('10. intake check logs in and asks about the folders, changing nothing; a wrong password fails it in the server\'s words', async () => {
    await emptyInbox();
    await deliver(replyMessage({ from: 'a@client.test', to: 'incoming@example.com', body: 'Left alone.' }));
    const settings = {
      INTAKE_DATABASE: join(tempDir(), 'intake.sqlite'),
      INTAKE_SMTP_LISTEN: '',
      INTAKE_ADDRESS: 'incoming+%{key}@example.com',
      INTAKE_IMAP_HOST: '127.0.0.1',
      INTAKE_IMAP_PORT: String(dovecot.tlsPort),
      INTAKE_IMAP_USER: USER,
      INTAKE_IMAP_PASSWORD: PASSWORD,
      INTAKE_IMAP_AFTER: 'move',
      INTAKE_IMAP_MOVE_TO: 'Checked',
      NODE_EXTRA_CA_CERTS: dovecot.certFile,
    };
    const good = await runCli(['check'], cliEnv(settings));
    expect(good.stdout).toContain(`ok    imap: ${USER}@127.0.0.1:${dovecot.tlsPort} logged in (implicit); INBOX holds 1 messages; Checked is created at the first move\n`);
    expect(good.status).toBe(0);
    expect(await folder()).toHaveLength(1);
    await expect(mailbox.status('Checked', { messages: true })).rejects.toThrow("Mailbox doesn't exist: Checked");

    const wrong = await runCli(['check'], cliEnv({ ...settings, INTAKE_IMAP_PASSWORD: 'not-the-password' }));
    expect(wrong.status).toBe(1);
    expect(wrong.stdout).toMatch(/^FAIL {2}imap: .*\[AUTHENTICATIONFAILED\] Authentication failed/m);
  });
});
