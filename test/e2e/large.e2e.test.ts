// Large messages over real TCP: a message over 1 MiB is stored in pieces and given back byte for byte,
// a large attachment likewise, and text longer than an item may hold is refused with its reason.
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { sendMail } from '../helpers/smtp-client.js';
import { CLI, startServer, template, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
let world: ReturnType<typeof seedReplyWorld>;
let to: string;

beforeAll(async () => {
  server = await startServer();
  world = seedReplyWorld(server.repos);
  to = template.format(world.key);
});

afterAll(async () => {
  await server?.stop();
});

async function send(message: Buffer) {
  return (await sendMail(server.port, { from: world.user.email, to: [to], message })).data;
}

/** Test messages are written with \n; on the wire every line ends with CRLF. */
function crlf(text: string): Buffer {
  return Buffer.from(text.replace(/\r?\n/g, '\r\n'));
}

function idOf(line: string): number {
  return Number(/inbound message (\d+)/.exec(line)?.[1]);
}

/** A reply of a text and one file: its part's headers and content as sent. */
function withFile(messageId: string, text: string, fileHeaders: string[], content: string): Buffer {
  return Buffer.from(
    [
      `From: ${world.user.email}`,
      `To: ${to}`,
      'Subject: Re: measurements',
      `Message-ID: ${messageId}`,
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain; charset=utf-8',
      '',
      text,
      '--b',
      ...fileHeaders,
      '',
      content,
      '--b--',
      '',
    ].join('\r\n'),
  );
}

/** A reply carrying one base64 attachment. */
function withAttachment(file: Buffer, messageId: string): Buffer {
  const base64 = file.toString('base64').replace(/(.{76})/g, '$1\r\n');
  return withFile(messageId, 'The measurements are attached.', ['Content-Type: application/octet-stream; name="data.bin"', 'Content-Disposition: attachment; filename="data.bin"', 'Content-Transfer-Encoding: base64'], base64);
}

describe('large messages', () => {
  it('a 3 MB attachment is stored in 1 MiB pieces, and the message and the file come back byte for byte', async () => {
    const file = Buffer.from(Array.from({ length: 3 * 1024 * 1024 + 12345 }, (_, i) => (i * 7919 + (i >> 10)) % 256));
    const message = withAttachment(file, '<large-attachment@client.test>');
    const data = await send(message);
    expect(data.line).toMatch(/^250 2\.6\.0 Message accepted as inbound message \d+$/);
    const id = idOf(data.line);
    const db = server.store.sqlite;

    const row = db.prepare('select raw, size, sha256 from inbound_messages where id = ?').get(id) as { raw: Buffer | null; size: number; sha256: string };
    expect(row.raw).toBeNull();
    expect(row.size).toBe(message.length);
    const pieces = db.prepare('select seq, length(data) as bytes from inbound_message_chunks where inbound_message_id = ? order by seq').all(id) as { seq: number; bytes: number }[];
    expect(pieces.map((p) => p.seq)).toEqual([...Array(Math.ceil(message.length / (1024 * 1024))).keys()]);
    expect(pieces.slice(0, -1).every((p) => p.bytes === 1024 * 1024)).toBe(true);
    expect(server.repos.inbound.rawOf(id)?.equals(message)).toBe(true);
    expect(row.sha256).toBe(createHash('sha256').update(message).digest('hex'));
    // `intake show --raw` is how an operator gets it back.
    const shown = execFileSync(process.execPath, [CLI, 'show', String(id), '--raw'], { env: server.env, maxBuffer: 64 * 1024 * 1024 });
    expect(shown.equals(message)).toBe(true);

    const attachment = db.prepare("select id, size, sha256, content from attachments where inbound_message_id = ? and filename = 'data.bin'").get(id) as { id: number; size: number; sha256: string; content: Buffer | null };
    expect(attachment.size).toBe(file.length);
    expect(attachment.content).toBeNull();
    expect(attachment.sha256).toBe(createHash('sha256').update(file).digest('hex'));
    const stored = Buffer.concat((db.prepare('select data from attachment_chunks where attachment_id = ? order by seq').all(attachment.id) as { data: Buffer }[]).map((c) => c.data));
    expect(stored.equals(file)).toBe(true);
    const note = db.prepare('select body from notes where inbound_message_id = ?').get(id) as { body: string };
    expect(note.body).toContain(`[data.bin](attachment:${attachment.id})`);
  });

  it('a large message refused for its sender is run again from its pieces once the address is verified', async () => {
    const other = seedReplyWorld(server.repos);
    const otherTo = template.format(other.key);
    const file = Buffer.alloc(2 * 1024 * 1024, 0x61);
    const message = Buffer.from(
      withAttachment(file, '<large-unverified@client.test>').toString('latin1').replace(`From: ${world.user.email}`, 'From: new-address@client.test').replace(`To: ${to}`, `To: ${otherTo}`),
      'latin1',
    );
    const { data } = await sendMail(server.port, { from: 'new-address@client.test', to: [otherTo], message });
    expect(data.code).toBe(550);
    const id = (server.store.sqlite.prepare("select id from inbound_messages where message_id = 'large-unverified@client.test'").get() as { id: number }).id;
    expect(server.store.sqlite.prepare('select raw is null as chunked from inbound_messages where id = ?').get(id)).toEqual({ chunked: 1 });
    server.repos.users.addEmail({ userId: other.user.id, email: 'new-address@client.test', verified: true });

    const again = spawnSync(process.execPath, [CLI, 'reprocess', String(id)], { env: server.env, encoding: 'utf8' });
    expect(again.stdout, again.stdout + again.stderr).toMatch(/^status\s+processed$/m);
    const attachment = server.store.sqlite.prepare('select id, size, content from attachments where inbound_message_id = ?').get(id) as { id: number; size: number; content: Buffer | null };
    expect(attachment).toMatchObject({ size: file.length, content: null });
    const stored = Buffer.concat((server.store.sqlite.prepare('select data from attachment_chunks where attachment_id = ? order by seq').all(attachment.id) as { data: Buffer }[]).map((c) => c.data));
    expect(stored.equals(file)).toBe(true);
  });

  it('a small attachment stays in its row', async () => {
    const file = Buffer.from('a small file\n');
    const data = await send(withAttachment(file, '<small-attachment@client.test>'));
    const id = idOf(data.line);
    const attachment = server.store.sqlite.prepare('select id, content from attachments where inbound_message_id = ?').get(id) as { id: number; content: Buffer };
    expect(attachment.content.equals(file)).toBe(true);
    expect(server.store.sqlite.prepare('select count(*) as n from attachment_chunks where attachment_id = ?').get(attachment.id)).toEqual({ n: 0 });
    expect(server.store.sqlite.prepare('select raw is not null as inline from inbound_messages where id = ?').get(id)).toEqual({ inline: 1 });
  });

  it('text just under 1,000,000 characters becomes a note', async () => {
    const body = `Long line: ${'y'.repeat(999_000)}`;
    const data = await send(crlf(replyMessage({ from: world.user.email, to, body, messageId: '<just-under@client.test>' })));
    expect(data.line).toMatch(/^250 2\.6\.0 Message accepted/);
    const note = server.store.sqlite.prepare('select length(body) as n from notes where inbound_message_id = ?').get(idOf(data.line)) as { n: number };
    expect(note.n).toBe(body.length);
  });

  it('a text file of 4.5 MB sent inline with a name (as Apple Mail sends files) is stored as a file, not refused as text', async () => {
    const log = Buffer.from('2026-11-30 00:00:00 worker: job done\n'.repeat(Math.ceil((4.5 * 1024 * 1024) / 37)));
    const message = withFile(
      '<inline-log@client.test>',
      'The server log is attached.',
      ['Content-Type: text/plain; charset=utf-8; name="server.log"', 'Content-Disposition: inline; filename="server.log"'],
      log.toString('utf8').replace(/\n/g, '\r\n'),
    );
    expect(message.length).toBeGreaterThan(4_000_000);
    const data = await send(message);
    expect(data.line).toMatch(/^250 2\.6\.0 Message accepted/);
    const id = idOf(data.line);
    expect(server.store.sqlite.prepare('select filename, size from attachments where inbound_message_id = ?').all(id)).toEqual([{ filename: 'server.log', size: log.length + log.toString('utf8').split('\n').length - 1 }]);
    expect((server.store.sqlite.prepare('select body from notes where inbound_message_id = ?').get(id) as { body: string }).body).toMatch(/^The server log is attached\.\n\n\[server\.log\]\(attachment:\d+\)$/);
  });

  it.each([
    ['over 1,000,000 characters once decoded', 1_100_000, /\(11\d{5} characters of text; items hold at most 1000000 characters\)$/],
    ['a text part of 5 MB, refused before it is decoded', 5 * 1024 * 1024, /\(a text\/plain part of \d+ bytes; text parts are read up to 4000000 bytes\)$/],
  ])('text %s is refused with 552 5.3.4, and the message is kept', async (_label, length, detail) => {
    const body = 'The log follows. '.repeat(Math.ceil(length / 17)).slice(0, length).replace(/(.{76})/g, '$1\n');
    const message = crlf(replyMessage({ from: world.user.email, to, body, messageId: `<too-long-${length}@client.test>` }));
    const data = await send(message);
    expect(data.line).toBe('552 5.3.4 Message text too long for an issue or a note; send the text as an attachment');
    const row = server.store.sqlite.prepare("select id, status, reason_code, reason from inbound_messages where message_id = ?").get(`too-long-${length}@client.test`) as { id: number; status: string; reason_code: string; reason: string };
    expect(row).toMatchObject({ status: 'rejected', reason_code: 'data.text_too_long' });
    expect(row.reason, row.reason).toMatch(detail);
    expect(server.repos.inbound.rawOf(row.id)?.equals(message)).toBe(true);
    expect(server.store.sqlite.prepare('select count(*) as n from notes where inbound_message_id = ?').get(row.id)).toEqual({ n: 0 });
  });
});
