// imap bench: `npm run bench:imap`. The IMAP fetcher against a private Dovecot (root, Debian's
// dovecot-imapd): how fast it drains a folder of replies, and how long a new message takes from APPEND to
// its note, beside how long Dovecot itself takes to announce it to an IDLE client. Bounded; 127.0.0.1 only.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { startServer, template } from '../helpers/server.js';
import { DOVECOT_INSTALLED, startDovecot } from '../interop/dovecot.js';

const MESSAGES = Number(process.env.BENCH_IMAP_MESSAGES ?? 500);
const SINGLES = 20;
const DEADLINE_MS = 120_000;

if (!DOVECOT_INSTALLED) throw new Error("bench:imap needs Debian's dovecot-imapd (apt-get install dovecot-imapd)");
const dir = mkdtempSync(join(tmpdir(), 'intake-bench-imap-'));
const dovecot = await startDovecot({ intake: 'bench' });
const mailbox = await dovecot.client('intake');
const database = join(dir, 'intake.sqlite');
try {
  // A first start creates the database, to seed a thread to reply to.
  let server = await startServer({ INTAKE_DATABASE: database });
  const world = seedReplyWorld(server.repos);
  const to = template.format(world.key);
  await server.stop();
  const message = (n: number) =>
    Buffer.from(
      [`Return-Path: <${world.user.email}>`, `Delivered-To: ${to}`, replyMessage({ from: world.user.email, to: 'incoming@example.com', body: `Reply ${n}. ${'Lorem ipsum dolor sit amet. '.repeat(60)}` })]
        .join('\n')
        .replace(/\r?\n/g, '\r\n'),
    );
  for (let n = 0; n < MESSAGES; n++) await mailbox.append('INBOX', message(n));

  const started = Date.now();
  server = await startServer({
    INTAKE_DATABASE: database,
    INTAKE_SMTP_LISTEN: '',
    INTAKE_IMAP_HOST: '127.0.0.1',
    INTAKE_IMAP_PORT: String(dovecot.port),
    INTAKE_IMAP_TLS: 'none',
    INTAKE_IMAP_USER: 'intake',
    INTAKE_IMAP_PASSWORD: 'bench',
    INTAKE_SENDER_RATE_LIMIT: '0',
  });
  const notes = () => (server.store.sqlite.prepare('select count(*) as n from notes').get() as { n: number }).n;
  while (notes() < MESSAGES && Date.now() - started < DEADLINE_MS) await new Promise((resolve) => setTimeout(resolve, 10));
  const drainMs = Date.now() - started;
  const drained = notes();

  const latency: number[] = [];
  for (let n = 0; n < SINGLES; n++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const before = notes();
    const t = performance.now();
    await mailbox.append('INBOX', message(MESSAGES + n));
    while (notes() === before && performance.now() - t < 20_000) await new Promise((resolve) => setTimeout(resolve, 2));
    latency.push(performance.now() - t);
  }
  // The delete follows the commit the note came with: a moment later.
  let left = -1;
  for (let i = 0; i < 50 && left !== 0; i++) {
    const status = await mailbox.status('INBOX', { messages: true });
    left = status === false ? -1 : (status.messages ?? -1);
    if (left !== 0) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await server.stop();

  // Dovecot's own part: APPEND to the EXISTS an IDLE client of its hears.
  const idler = new ImapFlow({ host: '127.0.0.1', port: dovecot.port, secure: false, doSTARTTLS: false, auth: { user: 'intake', pass: 'bench' }, logger: false, autoIdleDelay: 100 });
  await idler.connect();
  await idler.mailboxOpen('INBOX');
  let heard: () => void = () => {};
  idler.on('exists', () => heard());
  const announce: number[] = [];
  for (let n = 0; n < SINGLES; n++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const t = performance.now();
    const exists = new Promise<void>((resolve) => (heard = resolve));
    await mailbox.append('INBOX', Buffer.from('Subject: ping\r\n\r\nping\r\n'));
    await Promise.race([exists, new Promise((resolve) => setTimeout(resolve, 20_000))]);
    announce.push(performance.now() - t);
  }
  await idler.logout();

  const stats = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return { min: Math.round(sorted[0] ?? 0), p50: Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0), max: Math.round(sorted[sorted.length - 1] ?? 0) };
  };
  const result = {
    drain: { messages: MESSAGES, bytes: message(0).length, stored: drained, ms: drainMs, perSecond: Math.round((drained / drainMs) * 1000) },
    appendToNoteMs: stats(latency),
    dovecotAnnounceMs: stats(announce),
    leftInFolder: left,
  };
  console.log(JSON.stringify(result));
  console.log(`drain: ${drained}/${MESSAGES} replies of ${result.drain.bytes} B in ${drainMs} ms (${result.drain.perSecond}/s); APPEND to note: p50 ${result.appendToNoteMs.p50} ms (min ${result.appendToNoteMs.min}, max ${result.appendToNoteMs.max}), of which Dovecot announcing it to IDLE: p50 ${result.dovecotAnnounceMs.p50} ms; left in the folder: ${left}`);
} finally {
  await mailbox.logout().catch(() => undefined);
  await dovecot.stop();
  rmSync(dir, { recursive: true, force: true });
}
