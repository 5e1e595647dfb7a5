// The committed migrations: they apply cleanly, set the pragmas intake relies on, and match schema.ts
// (a schema change without its generated migration fails here).
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS_FOLDER, openStore } from '../../src/db/client.js';
import { ROOT, tempDir } from '../helpers/server.js';

describe('migrations', () => {
  it('create the public tables in a new file, with WAL, synchronous=FULL and foreign keys on', () => {
    const store = openStore(join(tempDir(), 'a', 'b', 'intake.sqlite'));
    try {
      const tables = (store.sqlite.prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like '__drizzle%' order by name").all() as { name: string }[]).map((t) => t.name);
      expect(tables).toEqual([
        'attachment_chunks', 'attachments', 'deliveries', 'inbound_message_chunks', 'inbound_messages', 'issue_assignees', 'issue_email_participants', 'issue_emails', 'issue_labels',
        'issues', 'merge_requests', 'notes', 'project_members', 'projects', 'sent_notifications', 'subscriptions', 'user_emails', 'users',
      ]);
      expect(store.sqlite.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(store.sqlite.pragma('synchronous', { simple: true })).toBe(2);
      expect(store.sqlite.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(store.sqlite.pragma('busy_timeout', { simple: true })).toBe(5000);
    } finally {
      store.close();
    }
  });

  it('apply twice without harm', () => {
    const file = join(tempDir(), 'intake.sqlite');
    openStore(file).close();
    const store = openStore(file);
    expect(store.sqlite.prepare('select count(*) as n from __drizzle_migrations').get()).toEqual({ n: readdirSync(MIGRATIONS_FOLDER).filter((f) => f.endsWith('.sql')).length });
    store.close();
  });

  it('refuse bad values through CHECK constraints', () => {
    const store = openStore(':memory:');
    expect(() => store.sqlite.prepare("insert into projects (path, name, visibility) values ('a/b', 'b', 'secret')").run()).toThrow(/CHECK constraint failed: projects_visibility/);
    store.close();
  });

  it('are up to date with src/db/schema.ts', () => {
    const out = join(tempDir(), 'migrations');
    cpSync(MIGRATIONS_FOLDER, out, { recursive: true });
    // drizzle-kit prefixes --out with "./", so it has to be relative.
    const run = spawnSync('npx', ['--no-install', 'drizzle-kit', 'generate', '--dialect', 'sqlite', '--schema', 'src/db/schema.ts', '--out', relative(ROOT, out)], { cwd: ROOT, encoding: 'utf8' });
    expect(`${run.stdout}${run.stderr}`).toContain('No schema changes, nothing to migrate');
    expect(readdirSync(out).sort()).toEqual(readdirSync(MIGRATIONS_FOLDER).sort());
  });
});
