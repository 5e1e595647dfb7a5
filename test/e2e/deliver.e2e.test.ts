// `intake deliver`, as pipe(8), procmail or a script runs it: the message on stdin, sysexits codes
// out (0 stored, 67 unknown recipient, 65 refused content, 75 try again), the reason on stderr.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/db/client.js';
import { createRepositories, type Repositories } from '../../src/db/repositories.js';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { CLI, cliEnv, tempDir, template } from '../helpers/server.js';

let env: NodeJS.ProcessEnv;
let store: Store;
let repos: Repositories;
beforeAll(() => {
  const database = join(tempDir(), 'intake.sqlite');
  env = cliEnv({ INTAKE_DATABASE: database, INTAKE_ADDRESS: 'incoming+%{key}@example.com', INTAKE_MAX_MESSAGE_BYTES: '65536' });
  store = openStore(database);
  repos = createRepositories(store);
});
afterAll(() => store?.close());

function deliver(args: string[], input: string | Buffer, extraEnv: Record<string, string> = {}): Promise<{ status: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'deliver', ...args], { env: { ...env, ...extraEnv } });
    let stderr = '';
    let stdout = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.on('close', (status) => resolve({ status, stderr, stdout }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

const inbound = (id: number) => store.sqlite.prepare('select ingress, mail_from, rcpt_to, status, reason_code from inbound_messages where id = ?').get(id);
const idIn = (text: string) => Number(/inbound message (\d+)/.exec(text)?.[1]);

describe('intake deliver', () => {
  it('stores a reply and exits 0, once: the same message again is a duplicate, still 0', async () => {
    const world = seedReplyWorld(repos);
    const to = template.format(world.key);
    const message = replyMessage({ from: world.user.email, to, body: 'Piped in.', messageId: '<piped-1@client.test>' });
    const result = await deliver(['--to', to, '--from', world.user.email], message);
    expect(result).toMatchObject({ status: 0, stdout: '' });
    expect(result.stderr).toMatch(new RegExp(`^intake: ${to.replace(/[+.]/g, '\\$&')}: 250 2\\.6\\.0 Message accepted as inbound message \\d+\\n$`));
    expect(inbound(idIn(result.stderr))).toEqual({ ingress: 'pipe', mail_from: world.user.email, rcpt_to: JSON.stringify([to]), status: 'processed', reason_code: null });
    const again = await deliver(['--to', to, '--from', world.user.email], message);
    expect(again.status).toBe(0);
    expect(again.stderr).toContain(': 250 2.6.0 Already received, nothing new created (inbound message ');
    const notes = store.sqlite.prepare("select body from notes where noteable_type = 'Issue' and noteable_id = ?").all(world.issue.id);
    expect(notes).toEqual([{ body: 'Piped in.' }]);
  });

  it('with --json, also prints the outcome as JSON on stdout: exit code, inbound message, replies', async () => {
    const world = seedReplyWorld(repos);
    const to = template.format(world.key);
    const unknown = template.format('d'.repeat(32));
    const result = await deliver(['--json', '--to', to, '--to', unknown, '--from', world.user.email], replyMessage({ from: world.user.email, to, body: 'Piped, in JSON.' }));
    expect(result.status).toBe(0);
    const printed = JSON.parse(result.stdout) as { exit_code: number; inbound_message_id: number; replies: string[] };
    expect(printed).toEqual({ exit_code: 0, inbound_message_id: expect.any(Number), replies: [expect.stringMatching(/^incoming\+d{32}@example\.com: 550 5\.1\.1 /), `${to}: 250 2.6.0 Message accepted as inbound message ${printed.inbound_message_id}`] });
    expect(inbound(printed.inbound_message_id)).toMatchObject({ status: 'processed' });
  });

  it('answers each recipient once: the same mailbox once, another case of its local part on its own', async () => {
    const world = seedReplyWorld(repos);
    const to = template.format(world.key);
    const shouting = to.replace(/^incoming/, 'INCOMING');
    const result = await deliver(['--json', '--to', to, '--to', to.replace('example.com', 'EXAMPLE.COM'), '--to', shouting, '--from', world.user.email], replyMessage({ from: world.user.email, to, body: 'Piped to three.' }));
    expect(result.status).toBe(0);
    const printed = JSON.parse(result.stdout) as { inbound_message_id: number; replies: string[] };
    expect(printed.replies).toEqual([
      `${to}: 250 2.6.0 Message accepted as inbound message ${printed.inbound_message_id}`,
      `${shouting}: 250 2.6.0 Already received, nothing new created (inbound message ${printed.inbound_message_id})`,
    ]);
  });

  it('takes mbox-style mail with a leading "From " line (procmail), and no --to: routed by its headers', async () => {
    const world = seedReplyWorld(repos);
    const to = template.format(world.key);
    const message = `From ${world.user.email} Thu Nov 26 10:00:00 2026\n${replyMessage({ from: world.user.email, to, body: 'From procmail.' })}`;
    const result = await deliver([], message);
    expect(result.status).toBe(0);
    expect(inbound(idIn(result.stderr))).toMatchObject({ ingress: 'pipe', mail_from: null, rcpt_to: JSON.stringify(['incoming@example.com']), status: 'processed' });
    const stored = store.sqlite.prepare('select raw from inbound_messages where id = ?').get(idIn(result.stderr)) as { raw: Buffer };
    expect(stored.raw.toString('utf8').startsWith('From: ')).toBe(true);
  });

  it('exits 67 (EX_NOUSER) for an unknown key, with the reason, and records the refusal', async () => {
    const to = template.format('c'.repeat(32));
    const result = await deliver(['--to', to, '--from', ''], replyMessage({ from: 'x@y.test', to, body: 'Hello?' }));
    expect(result.status).toBe(67);
    expect(result.stderr).toBe(`intake: ${to}: 550 5.1.1 We couldn't figure out what the email is in reply to. Please create your comment through the web interface.\n`);
    const row = store.sqlite.prepare("select mail_from, status, reason_code from inbound_messages where ingress = 'pipe' and rcpt_to = ?").get(JSON.stringify([to]));
    expect(row).toEqual({ mail_from: '', status: 'rejected', reason_code: 'rcpt.unknown_reply_key' });
  });

  it('exits 67 for a recipient with no domain (smtp-server refuses one in RCPT itself), and records it; postmaster is kept', async () => {
    const message = replyMessage({ from: 'x@y.test', to: 'someone', body: 'Hello?' });
    const result = await deliver(['--to', 'someone', '--from', 'x@y.test'], message);
    expect(result.status).toBe(67);
    expect(result.stderr).toBe('intake: someone: 501 5.1.3 Recipient address has no domain\n');
    const row = store.sqlite.prepare("select status, reason_code from inbound_messages where ingress = 'pipe' and rcpt_to = ?").get(JSON.stringify(['someone']));
    expect(row).toEqual({ status: 'rejected', reason_code: 'rcpt.no_domain' });
    const postmaster = await deliver(['--to', 'Postmaster', '--from', 'x@y.test'], message);
    expect(postmaster.status).toBe(0);
    expect(store.sqlite.prepare("select status, reason_code from inbound_messages where ingress = 'pipe' and rcpt_to = ?").get(JSON.stringify(['Postmaster']))).toEqual({ status: 'ignored', reason_code: 'data.postmaster' });
  });

  it('exits 65 (EX_DATAERR) for content it refuses: a blank reply, a message over the size limit', async () => {
    const world = seedReplyWorld(repos);
    const to = template.format(world.key);
    const blank = await deliver(['--to', to], replyMessage({ from: world.user.email, to, body: '> only a quote' }));
    expect(blank.status).toBe(65);
    expect(blank.stderr).toBe(`intake: ${to}: 550 5.6.0 It appears that the email is blank. Make sure your reply is at the top of the email, we can't process inline replies.\n`);
    const big = await deliver(['--to', to], replyMessage({ from: world.user.email, to, body: 'x'.repeat(70_000) }));
    expect(big.status).toBe(65);
    expect(big.stderr).toBe(`intake: ${to}: 552 5.3.4 Error: message exceeds fixed maximum message size 65536\n`);
  });

  it('exits 75 (EX_TEMPFAIL) when it cannot store now: the MTA keeps the mail and retries', async () => {
    const world = seedReplyWorld(repos);
    const to = template.format(world.key);
    const message = replyMessage({ from: world.user.email, to, body: 'Try later.' });
    const unopenable = await deliver(['--to', to], message, { INTAKE_DATABASE: '/etc/hostname/intake.sqlite' });
    expect(unopenable.status).toBe(75);
    expect(unopenable.stderr).toMatch(/^intake: cannot open the database \/etc\/hostname\/intake\.sqlite: /);
    const misconfigured = await deliver(['--to', to], message, { INTAKE_ADDRESS: 'no-at-sign' });
    expect(misconfigured.status).toBe(75);
    expect(misconfigured.stderr).toMatch(/^intake: invalid configuration:\n {2}INTAKE_ADDRESS: /);
    store.sqlite.exec('ALTER TABLE sent_notifications RENAME TO sent_notifications_away');
    try {
      const broken = await deliver(['--to', to], message);
      expect(broken.status).toBe(75);
      // After the error log line (JSON), the line pipe(8) shows in its deferral reason.
      expect(broken.stderr.endsWith(`\nintake: ${to}: 451 4.3.0 Temporary failure looking up the recipient, please try again later\n`)).toBe(true);
    } finally {
      store.sqlite.exec('ALTER TABLE sent_notifications_away RENAME TO sent_notifications');
    }
  });
});
