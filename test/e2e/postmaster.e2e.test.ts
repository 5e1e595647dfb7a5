// Mail to postmaster over real TCP: RFC 5321 §4.5.1 requires every mail server to take it. intake
// keeps it for the operator (status ignored, reason data.postmaster), logs it, and routes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTCOMES } from '../../src/errors.js';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { SmtpClient } from '../helpers/smtp-client.js';
import { startServer, template, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
beforeAll(async () => {
  // A low guess limit: were postmaster counted as a guessed key, the client would be shut out at once.
  server = await startServer({ INTAKE_UNKNOWN_RECIPIENT_LIMIT: '4' });
});
afterAll(async () => {
  await server?.stop();
});

const kept = OUTCOMES['data.postmaster'];

describe('postmaster', () => {
  it('takes <Postmaster> and postmaster at its domain, in any case, from a null sender too, and keeps the message with the reason', async () => {
    const { client } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.30' });
    await client.command('EHLO mta.client.test');
    expect((await client.command('MAIL FROM:<>')).line).toBe('250 2.1.0 Accepted');
    expect((await client.command('RCPT TO:<Postmaster>')).line).toBe('250 2.1.5 Accepted');
    expect((await client.command('RCPT TO:<PostMaster@EXAMPLE.com>')).line).toBe('250 2.1.5 Accepted');
    const [, data] = await client.data('From: MAILER-DAEMON@mta.client.test\r\nTo: postmaster@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce-1@mta.client.test>\r\n\r\nThis is the mail system at host mta.client.test.\r\n');
    await client.quit();
    const id = Number(/inbound message (\d+)\)$/.exec(data.line)?.[1]);
    expect(data.line).toBe(`250 ${kept.dsn} ${kept.text} (inbound message ${id})`);
    const row = server.store.sqlite.prepare('select status, reason_code, mail_from, smtp_reply from inbound_messages where id = ?').get(id);
    expect(row).toEqual({ status: 'ignored', reason_code: 'data.postmaster', mail_from: '', smtp_reply: data.line });
    const deliveries = server.store.sqlite.prepare('select recipient, status, reason_code from deliveries where inbound_message_id = ? order by id').all(id);
    expect(deliveries).toEqual([
      { recipient: 'Postmaster', status: 'ignored', reason_code: 'data.postmaster' },
      { recipient: 'PostMaster@EXAMPLE.com', status: 'ignored', reason_code: 'data.postmaster' },
    ]);
    const running = server;
    await expect.poll(() => running.logs.some((line) => line.includes('"code":"data.postmaster"') && line.includes(`"inboundMessageId":${id}`))).toBe(true);
    expect(server.store.sqlite.prepare('select count(*) as n from notes').get()).toEqual({ n: 0 });
  });

  it('keeps what it cannot use as sent: text longer than any item may hold, which a key would have refused', async () => {
    const text = `${'Too long for any note. '.repeat(50_000)}\r\n`;
    const raw = `From: someone@client.test\r\nTo: postmaster@example.com\r\nSubject: Long\r\nMessage-ID: <long-1@client.test>\r\n\r\n${text}`;
    const { client } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.31' });
    await client.command('EHLO client.test');
    await client.command('MAIL FROM:<someone@client.test>');
    expect((await client.command('RCPT TO:<postmaster@example.com>')).code).toBe(250);
    const [, data] = await client.data(raw);
    await client.quit();
    expect(data.line).toMatch(new RegExp(`^250 ${kept.dsn} ${kept.text} \\(inbound message \\d+\\)$`));
    const id = Number(/inbound message (\d+)\)$/.exec(data.line)?.[1]);
    expect(server.store.sqlite.prepare('select status, reason_code from inbound_messages where id = ?').get(id)).toEqual({ status: 'ignored', reason_code: 'data.postmaster' });
    expect(server.repos.inbound.rawOf(id)?.toString('utf8')).toBe(raw);
  });

  it('never counts the RCPT as a guessed key: more than the limit of them, and an unknown key is still refused at once', async () => {
    const { client } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.32' });
    await client.command('EHLO client.test');
    // More than the guess limit (4): each would have counted towards being shut out.
    for (let i = 0; i < 6; i++) {
      expect((await client.command('MAIL FROM:<someone@client.test>')).code).toBe(250);
      expect((await client.command('RCPT TO:<postmaster@example.com>')).line).toBe('250 2.1.5 Accepted');
      expect((await client.command('RSET')).code).toBe(250);
    }
    await client.command('MAIL FROM:<someone@client.test>');
    const started = Date.now();
    expect((await client.command(`RCPT TO:<${template.format('e'.repeat(32))}>`)).line).toMatch(/^550 5\.1\.1 /);
    expect(Date.now() - started).toBeLessThan(900);
    await client.quit();
  });

  it('counts each message kept for it as one unknown recipient, so a client cannot store without end; beside the mailbox address too', async () => {
    const { client } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.33' });
    await client.command('EHLO client.test');
    const replies: string[] = [];
    for (let i = 0; i < 4 && !client.isClosed; i++) {
      await client.command('MAIL FROM:<someone@client.test>');
      await client.command('RCPT TO:<postmaster@example.com>');
      // The mailbox address with a key that leads nowhere: postmaster's copy must not hide the guess.
      await client.command(`RCPT TO:<${template.mailbox}>`);
      const [, data] = await client.data(replyMessage({ from: 'someone@client.test', to: template.format(i.toString(16).padStart(32, 'f')), body: `Message ${i}.` }));
      replies.push(data.line);
    }
    expect(replies.slice(0, 3).every((line) => line.startsWith(`250 ${kept.dsn} ${kept.text}`))).toBe(true);
    expect(replies[3]).toBe('421 4.7.0 Too many unknown recipients from your address, try again later');
    await expect.poll(() => client.isClosed).toBe(true);
    const again = await SmtpClient.connect(server.port, { localAddress: '127.0.0.33' });
    expect(again.greeting.line).toBe('421 4.7.0 Too many unknown recipients from your address, try again later');
  });

  it('counts a message kept for it from a client that hangs up right after its final dot', async () => {
    // The session is closed before the message is stored: its address must be known all the same.
    for (let i = 0; i < 4; i++) {
      const { client } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.35' });
      await client.command('EHLO client.test');
      await client.command('MAIL FROM:<someone@client.test>');
      await client.command('RCPT TO:<postmaster@example.com>');
      expect((await client.command('DATA')).code).toBe(354);
      client.write(`From: someone@client.test\r\nTo: postmaster@example.com\r\nSubject: Hit and run ${i}\r\nMessage-ID: <hit-and-run-${i}@client.test>\r\n\r\nGone before the reply.\r\n.\r\n`);
      client.destroy();
    }
    const running = server;
    const rows = () => (running.store.sqlite.prepare("select count(*) as n from inbound_messages where remote_address = '127.0.0.35'").get() as { n: number }).n;
    await expect.poll(rows, { timeout: 15_000 }).toBe(4);
    await expect.poll(() => running.logs.some((l) => l.includes('client shut out: too many unknown recipients') && l.includes('"remoteAddress":"127.0.0.35"')), { timeout: 15_000 }).toBe(true);
    const again = await SmtpClient.connect(server.port, { localAddress: '127.0.0.35' });
    expect(again.greeting.line).toBe('421 4.7.0 Too many unknown recipients from your address, try again later');
  });

  it('counts a guess through the mailbox address even when a live key beside it is processed', async () => {
    const world = seedReplyWorld(server.repos);
    const live = template.format(world.key);
    const { client } = await SmtpClient.connect(server.port, { localAddress: '127.0.0.34' });
    await client.command('EHLO client.test');
    const replies: string[] = [];
    for (let i = 0; i < 4 && !client.isClosed; i++) {
      await client.command(`MAIL FROM:<${world.user.email}>`);
      await client.command(`RCPT TO:<${live}>`);
      await client.command(`RCPT TO:<${template.mailbox}>`);
      // Its headers name only a key that leads nowhere: the mailbox address's copy is refused data.no_key.
      const [, data] = await client.data(replyMessage({ from: world.user.email, to: template.format(i.toString(16).padStart(32, 'c')), body: `Guess ${i}.` }));
      replies.push(data.line);
    }
    expect(replies.slice(0, 3).every((line) => /^250 2\.6\.0 Message accepted as inbound message \d+$/.test(line))).toBe(true);
    expect(replies[3]).toBe('421 4.7.0 Too many unknown recipients from your address, try again later');
  });

  it('beside a key, the key is processed as ever and postmaster keeps its copy', async () => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    await client.command(`MAIL FROM:<${world.user.email}>`);
    expect((await client.command(`RCPT TO:<${to}>`)).code).toBe(250);
    expect((await client.command('RCPT TO:<postmaster@example.com>')).code).toBe(250);
    const [, data] = await client.data(replyMessage({ from: world.user.email, to, body: 'For the issue, copied to postmaster.' }));
    await client.quit();
    expect(data.line).toMatch(/^250 2\.6\.0 Message accepted as inbound message \d+$/);
    const id = Number(/(\d+)$/.exec(data.line)?.[1]);
    const deliveries = server.store.sqlite.prepare('select recipient, status, reason_code from deliveries where inbound_message_id = ? order by id').all(id);
    expect(deliveries).toEqual([
      { recipient: to, status: 'processed', reason_code: null },
      { recipient: 'postmaster@example.com', status: 'ignored', reason_code: 'data.postmaster' },
    ]);
    expect(server.store.sqlite.prepare('select body from notes where noteable_id = ?').all(world.issue.id)).toEqual([{ body: 'For the issue, copied to postmaster.' }]);
  });
});
