// seed-replies: fills a bench database with what a million replies by mail leave behind, for the
// million-reply comparison. The rows are written by two worker threads into files of their own and
// copied in with SQLite's transfer of whole records; this module is also those workers' entry point.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { Worker, isMainThread, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { mintReplyKey } from '../../src/address/reply-key.js';
import { compileTemplate } from '../../src/address/template.js';
import { openStore } from '../../src/db/client.js';

const TABLES = ['sent_notifications', 'inbound_messages', 'notes', 'deliveries'];
const ISSUES = 1000;
/** Each worker's share of the rows, in ids from..to (1-based, `to` excluded). */
interface Part {
  file: string;
  ddl: string[];
  address: string;
  from: number;
  to: number;
  notificationBase: number;
}

/**
 * Adds what `count` replies received by mail leave behind: for each, the notification it answered
 * (its own reply key), the message row (Message-ID, sender, hash, reply), its delivery and its note,
 * spread over 1,000 issues. The messages' raw bytes are left out (NULL, as for a message refused
 * before DATA): they would add 2 GB and no index. Every index a new message writes to or looks up
 * then holds a million entries, as after a million replies: reply keys and Message-IDs in random
 * order, deliveries by message and notes by issue in the order mail adds them. The database is one
 * bench world (seedWorld): one project and user, its issue, and no message yet.
 */
export async function seedRepliesByMail(database: string, address: string, count: number): Promise<void> {
  const store = openStore(database);
  const { sqlite } = store;
  try {
    // Seeding only: nothing here need survive a crash (the bench syncs the file before any run).
    sqlite.pragma('cache_size = -262144');
    sqlite.pragma('synchronous = OFF');
    for (const table of ['inbound_messages', 'notes', 'deliveries']) {
      if (sqlite.prepare(`select count(*) from ${table}`).pluck().get() !== 0) throw new Error(`seedRepliesByMail: ${table} is not empty`);
    }
    sqlite.transaction(() => {
      const issue = sqlite.prepare("insert into issues (project_id, iid, title, author_id) values (1, ?, 'Seeded issue', 1)");
      for (let iid = 2; iid <= ISSUES; iid++) issue.run(iid);
    })();
    const ddl = TABLES.map((table) => sqlite.prepare("select sql from sqlite_master where type = 'table' and name = ?").pluck().get(table) as string);
    // The indexes of the four tables are built again after the rows: sorting a million entries once
    // is faster than a million inserts at random places. The pages of an index built so are full, as
    // after a VACUUM, where those of one grown at random are about two-thirds full: new entries then
    // split more pages, which can only make the large database slower.
    const indexes = sqlite
      .prepare(`select name, sql from sqlite_master where type = 'index' and sql is not null and tbl_name in (${TABLES.map(() => '?').join(', ')})`)
      .all(...TABLES) as { name: string; sql: string }[];
    for (const { name } of indexes) sqlite.exec(`drop index "${name}"`);
    const notificationBase = sqlite.prepare('select coalesce(max(id), 0) from sent_notifications').pluck().get() as number;
    // Two halves on two cores: inserting the rows is most of the work (SQLite's own, about 5 µs a
    // row, four rows a reply), copying a filled table record by record a small part of it.
    const half = Math.ceil(count / 2);
    const parts: Part[] = [0, 1].map((k) => ({ file: `${database}.part${k}`, ddl, address, from: 1 + k * half, to: 1 + Math.min(count, (k + 1) * half), notificationBase }));
    try {
      // Both settle before the part files go: one failing must not leave the other writing.
      const filled = await Promise.allSettled(parts.map(runPart));
      for (const result of filled) if (result.status === 'rejected') throw result.reason;
      // The transfer copies records without decoding them only while foreign keys are not enforced;
      // the rows refer to the world's project, user and issues, which exist. Out of WAL, pages added
      // past the end of the file are written once instead of twice (10 s → 6.5 s for the copy).
      sqlite.pragma('foreign_keys = OFF');
      if (sqlite.pragma('journal_mode = DELETE', { simple: true }) !== 'delete') throw new Error('seedRepliesByMail: the database did not leave WAL for the copy');
      for (const part of parts) {
        sqlite.prepare('attach ? as part').run(part.file);
        sqlite.transaction(() => {
          for (const table of TABLES) sqlite.exec(`insert into main.${table} select * from part.${table}`);
        })();
        sqlite.exec('detach part');
      }
      sqlite.pragma('foreign_keys = ON');
    } finally {
      for (const part of parts) rmSync(part.file, { force: true });
    }
    for (const { sql } of indexes) sqlite.exec(sql);
    sqlite.pragma('journal_mode = WAL');
  } finally {
    store.close();
  }
}

function runPart(part: Part): Promise<void> {
  return new Promise((resolve, reject) => {
    // tsx's --import does not reach worker threads (privatenumber/tsx#354): the worker registers it
    // before it loads this module.
    const entry = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
    const worker = new Worker(entry, { eval: true, workerData: part });
    worker.once('error', reject);
    worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`a seeding worker exited with ${code}`))));
  });
}

/** One worker's rows, into a file of its own with the four tables as the database has them. */
function fillPart(part: Part): void {
  const template = compileTemplate(part.address);
  const sqlite = new Database(part.file);
  sqlite.pragma('journal_mode = OFF');
  sqlite.pragma('synchronous = OFF');
  sqlite.pragma('foreign_keys = OFF');
  sqlite.pragma('cache_size = -131072');
  for (const sql of part.ddl) sqlite.exec(sql);
  // Random bytes from a pool: one randomBytes() call per key cost most of the seeding time.
  let pool = randomBytes(1 << 20);
  let used = 0;
  const random = (bytes: number) => {
    if (used + bytes > pool.length) [pool, used] = [randomBytes(1 << 20), 0];
    used += bytes;
    return pool.subarray(used - bytes, used);
  };
  const hex = (bytes: number) => random(bytes).toString('hex');
  const notification = sqlite.prepare(
    "insert into sent_notifications (id, reply_key, project_id, recipient_id, noteable_type, noteable_id, in_reply_to_discussion_id) values (?, ?, 1, 1, 'Issue', ?, ?)",
  );
  // Each reply's message, delivery and note get the same id.
  const message = sqlite.prepare(
    "insert into inbound_messages (id, ingress, remote_address, helo, mail_from, rcpt_to, message_id, from_address, subject, size, sha256, status, handler, target_type, target_id, smtp_reply, processed_at) values (@id, 'smtp', '192.0.2.7', 'mail.sender.test', 'bench@sender.test', @rcptTo, @messageId, 'bench@sender.test', 'Re: Seeded issue', 2300, @sha256, 'processed', 'reply', 'Note', @id, '250 2.6.0 Message accepted as inbound message ' || @id, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
  );
  const note = sqlite.prepare(
    "insert into notes (id, project_id, noteable_type, noteable_id, author_id, body, discussion_id, inbound_message_id) values (@id, 1, 'Issue', @issueId, 1, @body, @discussionId, @id)",
  );
  const delivery = sqlite.prepare(
    "insert into deliveries (id, inbound_message_id, recipient, key, source, destination, stage, status, handler, target_type, target_id) values (@id, @id, @to, @key, 'envelope', @destination, 'data', 'processed', 'reply', 'Note', @id)",
  );
  const body = 'Seeded reply for the large-database benchmark. '.repeat(6);
  for (let done = part.from; done < part.to; done += 50_000) {
    sqlite.transaction(() => {
      for (let id = done; id < Math.min(part.to, done + 50_000); id++) {
        const issueId = 1 + ((id - 1) % ISSUES);
        const key = mintReplyKey(id, 1, random(16));
        const to = template.format(key);
        notification.run(part.notificationBase + id, key, issueId, `d${id - 1}`);
        message.run({ id, rcptTo: JSON.stringify([to]), messageId: `${hex(12)}@mail.sender.test`, sha256: hex(32) });
        note.run({ id, issueId, body, discussionId: `d${id - 1}` });
        delivery.run({ id, to, key, destination: `Issue:${issueId}` });
      }
    })();
  }
  sqlite.close();
}

if (!isMainThread) fillPart(workerData as Part);
