// assertWritable: SQLite opens a file it may not write read-only, silently; only a write tells.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { assertWritable, openStore } from '../../../src/db/client.js';
import { tempDir } from '../../helpers/server.js';

describe('assertWritable', () => {
  it('passes on a connection that can write, and leaves the database as it was', () => {
    const path = join(tempDir(), 'rw.sqlite');
    const store = openStore(path);
    const version = store.sqlite.pragma('user_version', { simple: true });
    expect(() => assertWritable(store.sqlite)).not.toThrow();
    expect(store.sqlite.pragma('user_version', { simple: true })).toBe(version);
    expect(store.sqlite.inTransaction).toBe(false);
    store.close();
  });

  it('throws on a read-only connection, where BEGIN IMMEDIATE alone succeeds', () => {
    const path = join(tempDir(), 'ro.sqlite');
    openStore(path).close();
    const readOnly = new Database(path, { readonly: true });
    expect(() => readOnly.exec('BEGIN IMMEDIATE; ROLLBACK;')).not.toThrow();
    expect(() => assertWritable(readOnly)).toThrow(/readonly/);
    expect(readOnly.inTransaction).toBe(false);
    readOnly.close();
  });
});
