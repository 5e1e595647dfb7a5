// reference-server: the design the issue measured as its reference point, for the benchmark to run in
// the same run: smtp-server, mailparser's simpleParser and one better-sqlite3 insert per message (WAL,
// synchronous=FULL), 250 once the insert returns. Stores into the file named by argv[2]; prints its port.
import Database from 'better-sqlite3';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { BASELINE_OPTIONS, serveBaseline } from './baseline.js';

const file = process.argv[2];
if (!file) throw new Error('usage: reference-server.ts DATABASE');
const db = new Database(file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec('CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, message_id TEXT, sender TEXT, subject TEXT, body TEXT, raw BLOB)');
const insert = db.prepare('INSERT INTO messages (message_id, sender, subject, body, raw) VALUES (?, ?, ?, ?, ?)');

const server = new SMTPServer({
  ...BASELINE_OPTIONS,
  onData(stream, _session, callback) {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', async () => {
      if (stream.sizeExceeded) return callback(Object.assign(new Error('Message exceeds the size limit'), { responseCode: 552 }));
      const raw = Buffer.concat(chunks);
      try {
        const mail = await simpleParser(raw);
        insert.run(mail.messageId ?? null, mail.from?.text ?? null, mail.subject ?? null, mail.text ?? '', raw);
        callback();
      } catch (error) {
        callback(error as Error);
      }
    });
  },
});
serveBaseline(server, () => db.close());
