// Raw-message retention through the real programs: `intake prune` and `intake serve` with
// INTAKE_KEEP_RAW_DAYS drop old raw messages, keep their rows, and a copy sent again is still one note.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { sendMail } from '../helpers/smtp-client.js';
import { CLI, startServer, template, tempDir, type RunningServer } from '../helpers/server.js';

function intake(args: string[], env: NodeJS.ProcessEnv) {
  const result = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const running: RunningServer[] = [];
afterAll(async () => {
  for (const server of running) await server.stop();
});

describe('raw-message retention', () => {
  it('drops raw messages older than the retention with intake prune and in intake serve, keeping rows, notes and duplicate detection', async () => {
    const database = join(tempDir(), 'intake.sqlite');
    const first = await startServer({ INTAKE_DATABASE: database });
    running.push(first);
    const world = seedReplyWorld(first.repos);
    const to = template.format(world.key);
    const sent = ['old one', 'old two', 'new one'].map((body, i) => replyMessage({ from: world.user.email, to, body, messageId: `<retention-${i}@client.test>` }));
    for (const message of sent) expect((await sendMail(first.port, { from: world.user.email, to: [to], message })).data.code).toBe(250);
    const ids = first.repos.inbound.list({ limit: 10 }).map((row) => row.id).reverse();
    expect(ids).toHaveLength(3);
    // The first two were received 100 days ago.
    first.store.sqlite.prepare("update inbound_messages set received_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-100 days') where id in (?, ?)").run(ids[0], ids[1]);
    const oldBytes = ids.slice(0, 2).reduce((sum, id) => sum + (first.repos.inbound.rawOf(id)?.length ?? 0), 0);

    // No retention set and none given: nothing to prune by.
    const unset = intake(['prune'], first.env);
    expect(unset.status).toBe(1);
    expect(unset.stderr).toBe('intake: nothing to prune by: give --older-than DAYS, or set INTAKE_KEEP_RAW_DAYS\n');
    expect(intake(['prune', '--older-than', '0'], first.env).stderr).toMatch(/--older-than must be a positive whole number/);
    // A dry run, while the server runs, counts them and drops nothing.
    const dry = intake(['--json', 'prune', '--older-than', '90', '--dry-run'], first.env);
    expect(dry.status).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ messages: 2, bytes: oldBytes, dry_run: true });
    expect(ids.every((id) => first.repos.inbound.rawOf(id) !== null)).toBe(true);
    await first.stop();
    running.pop();

    // Started again with a retention of 90 days: it drops them at once, and logs it.
    const second = await startServer({ INTAKE_DATABASE: database, INTAKE_KEEP_RAW_DAYS: '90' });
    running.push(second);
    await expect.poll(() => second.repos.inbound.findById(ids[1] as number)?.rawPrunedAt).toMatch(/^\d{4}-/);
    await expect.poll(() => second.logs.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry.msg === 'raw messages older than INTAKE_KEEP_RAW_DAYS dropped')).toMatchObject({ messages: 2, bytes: oldBytes });
    for (const id of ids.slice(0, 2)) {
      expect(second.repos.inbound.rawOf(id)).toBeNull();
      expect(second.repos.inbound.findById(id)).toMatchObject({ status: 'processed', size: expect.any(Number), messageId: expect.stringMatching(/^retention-/) });
    }
    expect(second.repos.inbound.rawOf(ids[2] as number)?.toString()).toContain('new one');
    expect(second.repos.inbound.findById(ids[2] as number)?.rawPrunedAt).toBeNull();

    // What needs the raw message says it was dropped, and when.
    const show = intake(['show', '--raw', String(ids[0])], second.env);
    expect(show.status).toBe(1);
    expect(show.stderr).toMatch(new RegExp(`^intake: inbound message ${ids[0]} has no stored content: it was dropped at \\d{4}-.*, older than INTAKE_KEEP_RAW_DAYS`));
    expect(intake(['reprocess', String(ids[0])], second.env).stderr).toMatch(/has no stored content: it was dropped at/);
    // The row itself still shows.
    expect(JSON.parse(intake(['--json', 'show', String(ids[0])], second.env).stdout)).toMatchObject({ id: ids[0], status: 'processed', raw_pruned_at: expect.any(String) });

    // The same message sent again is still recognised: one note, not two.
    const notesBefore = second.store.sqlite.prepare('select count(*) as n from notes').get() as { n: number };
    const again = await sendMail(second.port, { from: world.user.email, to: [to], message: sent[0] as string });
    expect(again.data.line).toMatch(/^250 2\.6\.0 Already received, nothing new created \(inbound message \d+\)$/);
    expect(second.store.sqlite.prepare('select count(*) as n from notes').get()).toEqual(notesBefore);

    // Nothing is left to drop; the CLI says so while the server runs.
    const none = intake(['prune'], second.env);
    expect(none.status).toBe(0);
    expect(none.stdout).toMatch(/^dropped the raw bytes of 0 messages received before \d{4}-/);
  });
});
