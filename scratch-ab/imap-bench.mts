// Drain a folder of N replies, then latency of single appended messages (IDLE -> note).
import { startDovecot } from '../test/interop/dovecot.ts';
import { startServer, template } from '../test/helpers/server.ts';
import { replyMessage, seedReplyWorld } from '../test/helpers/seed.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const N = Number(process.env.N ?? 500);
const dovecot = await startDovecot({ intake: 'pw' });
const mailbox = await dovecot.client('intake');
const database = join(mkdtempSync(join(tmpdir(), 'ib-')), 'intake.sqlite');
// Seed through a first intake run (migrations), then stop it.
let server = await startServer({ INTAKE_DATABASE: database });
const world = seedReplyWorld(server.repos);
const to = template.format(world.key);
await server.stop();
const msg = (i: number) => Buffer.from(['Return-Path: <' + world.user.email + '>', 'Delivered-To: ' + to, replyMessage({ from: world.user.email, to: 'incoming@example.com', body: `Reply ${i} ` + 'lorem ipsum dolor sit amet '.repeat(60) })].join('\n').replace(/\r?\n/g, '\r\n'));
for (let i = 0; i < N; i++) await mailbox.append('INBOX', msg(i));
const t0 = Date.now();
server = await startServer({ INTAKE_DATABASE: database, INTAKE_SMTP_LISTEN: '', INTAKE_IMAP_HOST: '127.0.0.1', INTAKE_IMAP_PORT: String(dovecot.port), INTAKE_IMAP_TLS: 'none', INTAKE_IMAP_USER: 'intake', INTAKE_IMAP_PASSWORD: 'pw', INTAKE_SENDER_RATE_LIMIT: '0', INTAKE_LOG_LEVEL: 'warn' });
const notes = () => (server.store.sqlite.prepare('select count(*) n from notes').get() as { n: number }).n;
while (notes() < N && Date.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 20));
const drain = Date.now() - t0;
console.log(JSON.stringify({ messages: N, size: msg(0).length, drainMs: drain, perSecond: Math.round((N / drain) * 1000), notes: notes() }));
const lat: number[] = [];
for (let i = 0; i < 20; i++) {
  await new Promise((r) => setTimeout(r, 1500));
  const before = notes();
  const t = performance.now();
  await mailbox.append('INBOX', msg(N + i));
  while (notes() === before && performance.now() - t < 20_000) await new Promise((r) => setTimeout(r, 2));
  lat.push(performance.now() - t);
}
lat.sort((a, b) => a - b);
console.log(JSON.stringify({ latencyMs: { min: Math.round(lat[0]!), p50: Math.round(lat[10]!), max: Math.round(lat[19]!) } }));
const left = await mailbox.status('INBOX', { messages: true });
console.log(JSON.stringify({ leftInFolder: left.messages }));
await server.stop();
await mailbox.logout();
await dovecot.stop();
