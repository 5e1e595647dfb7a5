// A seeded fuzz run over the whole ingest path (the RCPT check, then ingest()), in process, with a
// real SQLite file: every generated message and envelope ends as a stored row with a status and, when
// refused, a reason, or as a refusal with a reason; never as any other exception.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openStore } from '../../src/db/client.js';
import { MailRejection } from '../../src/errors.js';
import { ingest, recordRefusals } from '../../src/ingest/ingest.js';
import { checkRecipient } from '../../src/ingest/recipient.js';
import { ingestDeps } from '../../src/ingest/deps.js';
import { issueNoteKey, newIssueKey, newMergeRequestKey, unsubscribeKey } from '../../src/address/keys.js';
import { seedReplyWorld } from '../helpers/seed.js';

const SEED = Number(process.env.FC_SEED ?? 20261126);
const RUNS = Number(process.env.FUZZ_RUNS ?? 400);

const database = join(mkdtempSync(join(tmpdir(), 'intake-fuzz-')), 'intake.sqlite');
// One member sends most of the cases to a few destinations: the sender rate would defer them after
// 20, and the handlers past it would go unfuzzed (its 451 is covered in test/e2e and "mail loops").
const config = loadConfig({ env: { INTAKE_DATABASE: database, INTAKE_ADDRESS: 'incoming+%{key}@example.com', INTAKE_HOSTNAME: 'intake.test', INTAKE_SENDER_RATE_LIMIT: '0' } });
const store = openStore(database);
const deps = await ingestDeps(config, store, pino({ level: 'silent' }));
const world = seedReplyWorld(deps.repos);
afterAll(() => store.close());

const text = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 400 }), fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 400 }), fc.constantFrom('', ' ', '=?utf-8?B?w6k=?=', '=?bogus?Q?x?=', '\u0000', '<>', '"'));
const { user, project, issue } = world;
// Every handler's live address: a message that gets past the checks is stored by one of them.
const liveAddresses = [
  world.key,
  unsubscribeKey(world.key),
  newIssueKey(project.path, project.id, user.incomingEmailToken),
  issueNoteKey(project.path, project.id, user.incomingEmailToken, issue.iid),
  newMergeRequestKey(project.path, project.id, user.incomingEmailToken),
].map((key) => `incoming+${key}@example.com`);
const liveAddress = fc.constantFrom(...liveAddresses);
const HANDLERS = ['reply', 'unsubscribe', 'new_issue', 'issue_note', 'new_merge_request'];
const address = fc.oneof(
  liveAddress,
  fc.constant('incoming@example.com'),
  fc.constant(world.user.email),
  fc.constantFrom('incoming+@example.com', 'incoming+x@example.com', '@', '', 'a@b', 'incoming+reply-0@EXAMPLE.COM', 'x@elsewhere.test'),
  fc.string({ maxLength: 40 }).map((s) => `incoming+${s}@example.com`),
);
const header = fc.oneof(
  fc.tuple(fc.constantFrom('From', 'To', 'Cc', 'Reply-To', 'Subject', 'Message-ID', 'In-Reply-To', 'References', 'Auto-Submitted', 'Precedence', 'Content-Type', 'Content-Transfer-Encoding', 'X-Random'), fc.oneof(text, address)),
  fc.tuple(fc.string({ maxLength: 20 }), text),
);
const contentType = fc.constantFrom('text/plain', 'text/html', 'multipart/mixed; boundary="b"', 'multipart/alternative', 'text/plain; charset=iso-2022-jp', 'application/octet-stream', 'message/rfc822');
// A part's headers: types, names and dispositions as clients send them, and as they break them (a
// Content-Type with no type once ended the writer thread).
const partHeaders = fc.constantFrom(
  'Content-Type: text/plain',
  'Content-Type: text/html; charset=utf-8',
  'Content-Type: text/plain\r\nContent-Disposition: inline; filename="server.log"',
  'Content-Type: application/pdf; name="a.pdf"\r\nContent-Disposition: attachment',
  'Content-Type: image/png; name="p.png"\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <p@x>',
  'Content-Type: message/rfc822',
  'Content-Disposition: attachment; filename="notes.txt"',
  'Content-Type:',
  'Content-Type: ; name="nameless.bin"',
  'Content-Type: (comment only)\r\nContent-Disposition: attachment',
  '',
);
const body = fc.oneof(
  text,
  fc.array(fc.tuple(partHeaders, text), { maxLength: 6 }).map((parts) => parts.map(([h, p]) => `--b\r\n${h}\r\n\r\n${p}\r\n`).join('') + '--b--\r\n'),
  fc.constantFrom('> quoted only', '/close\n/label ~bug', '<p>html <b>x</b></p>', 'Reply\n\nOn Tue, someone wrote:\n> old'),
);
const anyMessage = fc.tuple(fc.array(header, { maxLength: 40 }), fc.option(contentType), body, fc.boolean()).map(([headers, type, content, crlf]) => {
  const lines = [...headers.map(([k, v]) => `${k}: ${v}`), ...(type ? [`Content-Type: ${type}`] : []), '', content];
  return Buffer.from(lines.join(crlf ? '\r\n' : '\n'), 'utf8');
});
// From the member a notification was sent to, with a unique Message-ID: what passes the checks and is
// stored, with generated headers, text and structure around it.
const wordy = fc.oneof(fc.string({ minLength: 1, maxLength: 200 }), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 200 }));
let sequence = 0;
const memberMessage = fc
  .tuple(liveAddress, fc.option(wordy), fc.array(header, { maxLength: 8 }), fc.option(contentType), fc.oneof(body, wordy), fc.boolean())
  .map(([to, subject, extra, type, content, crlf]) => {
    const lines = [
      `From: Jake <${user.email}>`,
      `To: ${to}`,
      ...(subject === null ? [] : [`Subject: ${subject.replace(/[\r\n]/g, ' ')}`]),
      `Message-ID: <fuzz-${++sequence}@client.test>`,
      ...extra.map(([k, v]) => `${k}: ${v}`),
      ...(type ? [`Content-Type: ${type}`] : []),
      '',
      content,
    ];
    return Buffer.from(lines.join(crlf ? '\r\n' : '\n'), 'utf8');
  });
const message = fc.oneof(anyMessage, memberMessage);
const envelope = fc.record({
  mailFrom: fc.oneof(fc.constant(''), fc.constant(null), fc.constant(user.email), fc.constant(user.email), address),
  rcptTo: fc.oneof(fc.array(address, { minLength: 1, maxLength: 4 }), fc.array(liveAddress, { minLength: 1, maxLength: 2 })),
});

describe('ingest fuzz', () => {
  it(`${RUNS} generated messages and envelopes: a row or a refusal with a reason, never an exception`, async () => {
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(message, envelope, async (raw, env) => {
        const accepted: string[] = [];
        const refused = [];
        for (const recipient of env.rcptTo) {
          try {
            checkRecipient(recipient, deps);
            accepted.push(recipient);
          } catch (error) {
            expect(error).toBeInstanceOf(MailRejection);
            expect((error as MailRejection).reason.length).toBeGreaterThan(0);
            refused.push({ recipient, rejection: error as MailRejection });
          }
        }
        const full = { mailFrom: env.mailFrom, rcptTo: accepted, recipients: env.rcptTo };
        const refusalRow = await recordRefusals({ ingress: 'pipe', envelope: full, refused, inboundMessageId: null }, deps);
        if (accepted.length === 0) {
          // Refused at RCPT, every recipient: the row says so, with the first refusal's reason, and
          // each recipient has its own refusal.
          const row = deps.repos.inbound.findById(refusalRow as number);
          expect(row).toMatchObject({ status: 'rejected', reasonCode: refused[0]?.rejection.code });
          expect(row?.reason ?? '').not.toBe('');
          const deliveries = deps.repos.inbound.deliveriesOf(refusalRow as number);
          expect(deliveries.map((d) => [d.recipient, d.stage, d.status, d.reasonCode])).toEqual(refused.map((r) => [r.recipient, 'rcpt', 'rejected', r.rejection.code]));
          seen.set('refused at RCPT', (seen.get('refused at RCPT') ?? 0) + 1);
          return;
        }
        const result = await ingest({ raw, ingress: 'pipe', envelope: full, inboundMessageId: refusalRow }, deps);
        const row = deps.repos.inbound.findById(result.inboundMessageId);
        expect(row?.status).toBe(result.status);
        expect(['processed', 'rejected', 'ignored', 'duplicate', 'failed']).toContain(result.status);
        if (result.status !== 'processed') expect(row?.reason ?? '').not.toBe('');
        expect(result.reply.message).toMatch(/^[245]\.\d+\.\d+ /);
        // A bug would be 'failed' (kept for reprocess): the fuzz must not find any.
        expect(result.status).not.toBe('failed');
        for (const delivery of result.deliveries) {
          seen.set(delivery.status, (seen.get(delivery.status) ?? 0) + 1);
          if (delivery.status !== 'processed') continue;
          seen.set(`by ${delivery.handler}`, (seen.get(`by ${delivery.handler}`) ?? 0) + 1);
          if (delivery.targetId === null) continue;
          // What was stored is there, as a handler wrote it.
          if (delivery.targetType === 'Note') expect(deps.repos.notes.findById(delivery.targetId)?.body).toBeTypeOf('string');
          if (delivery.targetType === 'Issue' || delivery.targetType === 'MergeRequest') expect(deps.repos.issuables.findNoteable(delivery.targetType, delivery.targetId)).toBeDefined();
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    expect(store.sqlite.pragma('integrity_check', { simple: true })).toBe('ok');
    process.stderr.write(`ingest fuzz: ${RUNS} cases (seed ${SEED}): ${[...seen].map(([what, n]) => `${n} ${what}`).join(', ')}\n`);
    // The run reached every handler, each stored something, and some mail was refused and some ignored.
    const count = (key: string) => seen.get(key) ?? 0;
    expect(count('processed'), JSON.stringify([...seen])).toBeGreaterThanOrEqual(RUNS / 10);
    // Each handler gets a tenth of the member's mail or so: in a run shortened with FUZZ_RUNS, one may get none.
    if (RUNS >= 200) for (const handler of HANDLERS) expect(count(`by ${handler}`), `${handler}: ${JSON.stringify([...seen])}`).toBeGreaterThan(0);
    expect(count('rejected')).toBeGreaterThan(0);
    expect(count('ignored')).toBeGreaterThan(0);
  });
});
