// RCPT TO over real TCP: every refusal comes in the dialogue, with its exact reply line, and leaves a row.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rcptReply, SmtpClient } from '../helpers/smtp-client.js';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { startServer, template, type RunningServer } from '../helpers/server.js';
import { MAX_SENDER_CHARS } from '../../src/smtp/lenient-sender.js';

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ INTAKE_MAX_RECIPIENTS: '3', INTAKE_MAX_REFUSED_RECIPIENTS: '6' });
});
afterAll(async () => {
  await server?.stop();
});

const rcpt = (address: string) => rcptReply(server.port, address);

const UNKNOWN_REPLY_KEY =
  "550 5.1.1 We couldn't figure out what the email is in reply to. Please create your comment through the web interface.";
const UNKNOWN_KEY = "550 5.1.1 We couldn't figure out what the email is for. Please create your issue or comment through the web interface.";
const NO_PROJECT = "550 5.7.1 We couldn't find the project. Please check if there's any typo.";

describe('RCPT TO', () => {
  it('greets with the configured hostname and advertises the extensions', async () => {
    const { client, greeting } = await SmtpClient.connect(server.port);
    const ehlo = await client.command('EHLO client.test');
    await client.quit();
    expect(greeting.line).toBe('220 intake.test ESMTP intake');
    expect(ehlo.lines.map((l) => l.slice(4))).toEqual(
      expect.arrayContaining(['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'SIZE 26214400']),
    );
    expect(ehlo.lines.some((l) => /AUTH|STARTTLS|DSN/.test(l))).toBe(false);
  });

  it('accepts a live reply key in both GitLab forms', async () => {
    const world = seedReplyWorld(server.repos);
    expect(await rcpt(template.format(world.key))).toBe('250 2.1.5 Accepted');
    const legacy = server.repos.transaction(() =>
      server.repos.notifications.create({
        replyKey: '59d8df8370b7e95c5a49fbf86aeb2c93',
        projectId: world.project.id,
        recipientId: world.user.id,
        noteableType: 'Issue',
        noteableId: world.issue.id,
      }),
    );
    expect(await rcpt(template.format(legacy.replyKey))).toBe('250 2.1.5 Accepted');
  });

  it('accepts a partitioned key without its namespace suffix, and compares the domain case-insensitively', async () => {
    const world = seedReplyWorld(server.repos);
    const stem = world.key.split('-').slice(0, 2).join('-');
    expect(await rcpt(`incoming+${stem}@EXAMPLE.com`)).toBe('250 2.1.5 Accepted');
  });

  it('accepts a key in a quoted local part: the same mailbox (RFC 5321 §4.1.2)', async () => {
    const world = seedReplyWorld(server.repos);
    expect(await rcpt(`"${template.format(world.key).replace('@', '"@')}`)).toBe('250 2.1.5 Accepted');
  });

  it('takes mail for an internationalised domain, sent in its ASCII form (which smtp-server turns into Unicode) or in Unicode', async () => {
    const idn = await startServer({ INTAKE_DATABASE: server.database, INTAKE_ADDRESS: 'incoming+%{key}@exämple.com' });
    try {
      const world = seedReplyWorld(server.repos);
      for (const domain of ['xn--exmple-cua.com', 'XN--EXMPLE-CUA.COM', 'exämple.com']) {
        const to = `incoming+${world.key}@${domain}`;
        const { client } = await SmtpClient.connect(idn.port);
        try {
          await client.command('EHLO client.test');
          expect((await client.command(`MAIL FROM:<${world.user.email}>${domain.startsWith('ex') ? ' SMTPUTF8' : ''}`)).code).toBe(250);
          expect((await client.command(`RCPT TO:<${to}>`)).line).toBe('250 2.1.5 Accepted');
          const [, stored] = await client.data(replyMessage({ from: world.user.email, to, body: `Sent to ${domain}.` }));
          expect(stored.line).toMatch(/^250 2\.6\.0 Message accepted as inbound message \d+$/);
        } finally {
          await client.quit();
        }
      }
      const notes = server.store.sqlite.prepare("select body from notes where body like 'Sent to %' order by id").all();
      expect(notes).toEqual([{ body: 'Sent to xn--exmple-cua.com.' }, { body: 'Sent to XN--EXMPLE-CUA.COM.' }, { body: 'Sent to exämple.com.' }]);
    } finally {
      await idn.stop();
    }
  });

  it('refuses another domain with 550 5.7.1: we are not a relay', async () => {
    expect(await rcpt('someone@elsewhere.org')).toBe('550 5.7.1 Relay access denied: this server only accepts mail for its own domain');
  });

  it('refuses a recipient without a domain (postmaster aside, see postmaster.e2e) as a syntax error: smtp-server itself answers 501 5.1.3', async () => {
    expect(await rcpt('someone')).toBe('501 5.1.3 Error: Bad recipient address syntax');
  });

  it('takes senders Postfix takes that strict RFC 5321 syntax would not, stores them as sent, and still parses recipients strictly', async () => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const longest = `${'a'.repeat(64)}.@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(56)}.jp`;
    expect(longest).toHaveLength(MAX_SENDER_CHARS);
    const { client } = await SmtpClient.connect(server.port);
    try {
      await client.command('EHLO client.test');
      for (const sender of ['taro.@docomo.ne.jp', 'hanako..sato@ezweb.ne.jp', '.ilo@example.com', 'jake@adventuretime.ooo.', longest]) {
        expect((await client.command(`MAIL FROM:<${sender}>`)).line, sender).toBe('250 2.1.0 Accepted');
        expect((await client.command(`RCPT TO:<${to}>`)).code).toBe(250);
        const [, data] = await client.data(replyMessage({ from: 'taro.@docomo.ne.jp', to, body: `From ${sender}.` }));
        // Stored, and refused for what it is (the sender is not the notification's recipient), not for its syntax.
        expect(data.line).toMatch(/^550 5\.7\.1 /);
        const row = server.repos.inbound.list({ limit: 100 }).find((r) => r.mailFrom === sender);
        expect(row, sender).toMatchObject({ status: 'rejected', reasonCode: 'data.sender_not_verified' });
      }
      // What is no address, or longer than a path may be, or hides characters, is still refused.
      for (const sender of ['no-domain', `a${longest}`, 'two@at@example.com', '@example.com', 'taro@', 'ta\u200bro@docomo.ne.jp']) {
        expect((await client.command(`MAIL FROM:<${sender}>`)).line, sender).toBe('501 5.1.7 Error: Bad sender address syntax');
      }
      // Recipients are not loosened: the same defects in RCPT TO are refused as before, and recorded nowhere.
      const rows = server.repos.inbound.list({ limit: 1000 }).length;
      expect((await client.command('MAIL FROM:<taro.@docomo.ne.jp>')).code).toBe(250);
      for (const recipient of [`${to.replace('@', '.@')}`, `incoming..x@example.com`, `${to}.`]) {
        expect((await client.command(`RCPT TO:<${recipient}>`)).line, recipient).toBe('501 5.1.3 Error: Bad recipient address syntax');
      }
      await client.command('RSET');
      expect(server.repos.inbound.list({ limit: 1000 })).toHaveLength(rows);
    } finally {
      await client.quit();
    }
  });

  it('refuses an address of our domain that does not match the template with 550 5.1.1', async () => {
    expect(await rcpt('someone@example.com')).toBe('550 5.1.1 No such address here: addresses look like the configured template');
  });

  it('accepts the mailbox address itself: its mail is routed by the headers', async () => {
    expect(await rcpt('incoming@example.com')).toBe('250 2.1.5 Accepted');
  });

  it('refuses an unknown key with the text GitLab gives the handler the key looks made for', async () => {
    const world = seedReplyWorld(server.repos);
    expect(await rcpt('incoming+0123456789abcdef0123456789abcdef@example.com')).toBe(UNKNOWN_REPLY_KEY);
    expect(await rcpt('incoming+0123456789abcdef0123456789abcdef-unsubscribe@example.com')).toBe(UNKNOWN_REPLY_KEY);
    expect(await rcpt('incoming+nokey@example.com')).toBe(UNKNOWN_KEY);
    // Upper case is not a reply key; what is left is a Service Desk alias reading, for no project.
    expect(await rcpt(template.format(world.key.toUpperCase()))).toBe(NO_PROJECT);
  });

  it('refuses a key whose issue was deleted', async () => {
    const world = seedReplyWorld(server.repos);
    server.repos.transaction(() => server.repos.issuables.deleteIssue(world.issue.id));
    expect(await rcpt(template.format(world.key))).toBe(
      '550 5.1.1 The thread you are replying to no longer exists, perhaps it was deleted? If you believe this is in error, contact a staff member.',
    );
  });

  it('refuses the key of a blocked user', async () => {
    const world = seedReplyWorld(server.repos);
    server.repos.transaction(() => server.repos.users.setState(world.user.id, 'blocked'));
    expect(await rcpt(template.format(world.key))).toBe(
      '550 5.7.1 Your account has been blocked. If you believe this is in error, contact a staff member.',
    );
    // The key is a live credential: the log line keeps four characters of it.
    const logged = () => server.logs.find((line) => line.includes('recipient refused') && line.includes('rcpt.user_blocked'));
    await expect.poll(logged).toBeDefined();
    expect(logged()).not.toContain(world.key);
    expect(logged()).toContain(`incoming+${world.key.slice(0, 4)}…@example.com`);
  });

  it('refuses a user who cannot see the private project, without revealing it exists', async () => {
    const world = seedReplyWorld(server.repos, { accessLevel: null });
    expect(await rcpt(template.format(world.key))).toBe(NO_PROJECT);
  });

  it('refuses a guest replying on a confidential issue', async () => {
    const world = seedReplyWorld(server.repos, { accessLevel: 10, confidential: true });
    server.repos.transaction(() => server.store.sqlite.prepare('update issues set author_id = null where id = ?').run(world.issue.id));
    expect(await rcpt(template.format(world.key))).toBe(
      '550 5.7.1 You are not allowed to perform this action. If you believe this is in error, contact a staff member.',
    );
  });

  it('accepts a non-member on a public project', async () => {
    const world = seedReplyWorld(server.repos, { accessLevel: null, visibility: 'public' });
    expect(await rcpt(template.format(world.key))).toBe('250 2.1.5 Accepted');
  });

  it('caps recipients per message with 452 4.5.3 and goes on with the session', async () => {
    const keys = [1, 2, 3, 4].map(() => template.format(seedReplyWorld(server.repos).key));
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    await client.command('MAIL FROM:<jake@adventuretime.ooo>');
    const replies = [];
    for (const key of keys) replies.push((await client.command(`RCPT TO:<${key}>`)).line);
    const again = await client.command(`RCPT TO:<${keys[0]}>`);
    const noop = await client.command('NOOP');
    await client.quit();
    expect(replies).toEqual(['250 2.1.5 Accepted', '250 2.1.5 Accepted', '250 2.1.5 Accepted', '452 4.5.3 Too many recipients for one message, send the rest in another message']);
    // A repeat counts too, as in Postfix: repeating one address cannot grow a transaction without end.
    expect(again.line).toBe('452 4.5.3 Too many recipients for one message, send the rest in another message');
    expect(noop.code).toBe(250);
  });

  it('past the cap, records the first recipient sent back (452) and only answers the rest, so a long pipeline costs the row nothing', async () => {
    const world = seedReplyWorld(server.repos);
    // Its own key first: the other two belong to other people, and are refused at DATA (sender not verified).
    const keys = [world.key, seedReplyWorld(server.repos).key, seedReplyWorld(server.repos).key].map((key) => template.format(key));
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    await client.command(`MAIL FROM:<${world.user.email}>`);
    for (const key of keys) expect((await client.command(`RCPT TO:<${key}>`)).code).toBe(250);
    const overshoot = Array.from({ length: 5 }, (_, i) => template.format(`over${i}`));
    for (const address of overshoot) expect((await client.command(`RCPT TO:<${address}>`)).line).toMatch(/^452 4\.5\.3 /);
    const [, data] = await client.data(replyMessage({ from: world.user.email, to: keys[0] as string, body: 'Capped.', messageId: '<capped-1@client.test>' }));
    await client.quit();
    expect(data.code).toBe(250);
    const row = server.repos.inbound.list({ limit: 100 }).find((r) => r.messageId === 'capped-1@client.test')!;
    expect(row.rcptTo).toEqual([...keys, overshoot[0]]);
    const deliveries = server.repos.inbound.deliveriesOf(row.id).map((d) => [d.recipient, d.reasonCode]);
    expect(deliveries.filter(([, code]) => code === 'rcpt.too_many')).toEqual([[overshoot[0], 'rcpt.too_many']]);
    expect(deliveries).toHaveLength(4);
  });

  it('records a transaction refused at RCPT as a rejected message, with one delivery row per recipient', async () => {
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    await client.command('MAIL FROM:<spammer@bad.example>');
    await client.command('RCPT TO:<incoming+guess1@example.com>');
    await client.command('RCPT TO:<victim@elsewhere.org>');
    await client.command('RSET');
    await client.quit();
    const find = () => server.repos.inbound.list({ limit: 100 }).find((r) => r.mailFrom === 'spammer@bad.example');
    await expect.poll(find).toBeDefined();
    const row = find()!;
    expect(row).toMatchObject({
      status: 'rejected',
      reasonCode: 'rcpt.unknown_key',
      mailFrom: 'spammer@bad.example',
      rcptTo: ['incoming+guess1@example.com', 'victim@elsewhere.org'],
      remoteAddress: '127.0.0.1',
      helo: 'client.test',
      size: 0,
    });
    expect(server.repos.inbound.deliveriesOf(row.id).map((d) => [d.stage, d.reasonCode])).toEqual([
      ['rcpt', 'rcpt.unknown_key'],
      ['rcpt', 'rcpt.relay_denied'],
    ]);
  });

  it('records the refusal of a transaction while another program holds the database, with every recipient given', async () => {
    const world = seedReplyWorld(server.repos);
    const valid = template.format(world.key);
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    await client.command('MAIL FROM:<locked@client.test>');
    // Longer than the writer's one-second busy timeout: the record is tried again.
    server.store.sqlite.exec('BEGIN IMMEDIATE');
    const released = new Promise<void>((resolve) =>
      setTimeout(() => {
        server.store.sqlite.exec('COMMIT');
        resolve();
      }, 2500),
    );
    try {
      expect((await client.command('RCPT TO:<incoming+guess2@example.com>')).code).toBe(550);
      // Keys are case-sensitive: the same key in other letters is another recipient.
      expect((await client.command(`RCPT TO:<${valid.toUpperCase().replace('@EXAMPLE.COM', '@example.com')}>`)).code).toBe(550);
      // Accepted after the refusals, and the transaction ends before DATA: the row still names it.
      expect((await client.command(`RCPT TO:<${valid}>`)).code).toBe(250);
      expect((await client.command('RSET')).code).toBe(250);
    } finally {
      await released;
      await client.quit();
    }
    // No polling: RSET was answered once the row was written.
    const row = server.repos.inbound.list({ limit: 100 }).find((r) => r.mailFrom === 'locked@client.test');
    expect(row).toMatchObject({ status: 'rejected', reasonCode: 'rcpt.unknown_key' });
    expect(row?.rcptTo).toEqual(['incoming+guess2@example.com', valid.toUpperCase().replace('@EXAMPLE.COM', '@example.com'), valid]);
  });

  it('marks the refusals\' row with the 451 when the message of the same transaction cannot be stored', async () => {
    const world = seedReplyWorld(server.repos);
    const valid = template.format(world.key);
    const { client } = await SmtpClient.connect(server.port);
    const row = () => server.repos.inbound.list({ limit: 100 }).find((r) => r.mailFrom === 'deferred@client.test');
    try {
      await client.command('EHLO client.test');
      await client.command('MAIL FROM:<deferred@client.test>');
      expect((await client.command('RCPT TO:<incoming+guess3@example.com>')).code).toBe(550);
      expect((await client.command(`RCPT TO:<${valid}>`)).code).toBe(250);
      await expect.poll(row).toMatchObject({ status: 'rejected', smtpReply: expect.stringMatching(/^550 /) });
      server.store.sqlite.exec('BEGIN IMMEDIATE');
      try {
        const [, final] = await client.data(replyMessage({ from: world.user.email, to: valid, body: 'Locked out for now.' }));
        expect(final.line).toBe('451 4.3.0 Temporary failure storing the message, please try again later');
      } finally {
        server.store.sqlite.exec('COMMIT');
      }
    } finally {
      await client.quit();
    }
    // The sender will come back; the row no longer says that a 550 was all it got.
    await expect.poll(row, { timeout: 8000 }).toMatchObject({ reasonCode: 'data.store_failed', smtpReply: '451 4.3.0 Temporary failure storing the message, please try again later' });
  });

  it('records a recipient refused again in the same transaction once', async () => {
    const { client } = await SmtpClient.connect(server.port);
    try {
      await client.command('EHLO client.test');
      await client.command('MAIL FROM:<again@client.test>');
      for (const domain of ['example.com', 'EXAMPLE.COM', 'example.com']) expect((await client.command(`RCPT TO:<incoming+guess4@${domain}>`)).code).toBe(550);
      expect((await client.command('RSET')).code).toBe(250);
    } finally {
      await client.quit();
    }
    const row = server.repos.inbound.list({ limit: 100 }).find((r) => r.mailFrom === 'again@client.test');
    expect(row?.rcptTo).toEqual(['incoming+guess4@example.com']);
    expect(server.repos.inbound.deliveriesOf(row!.id).map((d) => [d.recipient, d.reasonCode])).toEqual([['incoming+guess4@example.com', 'rcpt.unknown_key']]);
  });

  it('keeps one row for a recipient both refused and accepted in one transaction: the row of what became of it', async () => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const ids: number[] = [];
    for (const [sender, order] of [['twice-a@client.test', ['', ' NOTIFY=NEVER']], ['twice-b@client.test', [' FOO=1', ' BAR=2', '']], ['twice-c@client.test', [' NOTIFY=NEVER', ' NOTIFY=NEVER', '']]] as const) {
      const { client } = await SmtpClient.connect(server.port);
      try {
        await client.command('EHLO client.test');
        await client.command(`MAIL FROM:<${sender}>`);
        for (const parameters of order) await client.command(`RCPT TO:<${to}>${parameters}`);
        const [, stored] = await client.data(replyMessage({ from: world.user.email, to, body: `From ${sender}.` }));
        expect(stored.line).toMatch(/^250 2\.6\.0 Message accepted as inbound message \d+$/);
        ids.push(Number(/(\d+)$/.exec(stored.line)![1]));
      } finally {
        await client.quit();
      }
    }
    for (const id of ids) {
      expect(server.repos.inbound.deliveriesOf(id).map((d) => [d.recipient, d.stage, d.status])).toEqual([[to, 'data', 'processed']]);
      expect(server.repos.inbound.findById(id)).toMatchObject({ status: 'processed', reasonCode: null });
    }
    /** One transaction of these RCPTs (each with the code it must get), ended by RSET; its row. */
    const abandoned = async (sender: string, rcpts: [string, number][]) => {
      const { client } = await SmtpClient.connect(server.port);
      try {
        await client.command('EHLO client.test');
        await client.command(`MAIL FROM:<${sender}>`);
        for (const [command, code] of rcpts) expect((await client.command(`RCPT TO:<${command}`)).code).toBe(code);
        expect((await client.command('RSET')).code).toBe(250);
      } finally {
        await client.quit();
      }
      const found = server.repos.inbound.list({ limit: 100 }).find((r) => r.mailFrom === sender)!;
      return { row: found, deliveries: server.repos.inbound.deliveriesOf(found.id).map((d) => [d.recipient, d.reasonCode, d.reason]) };
    };
    // Refused twice, for two reasons, then the transaction ends: one row, of the later refusal, and the
    // message row says it.
    const guess = template.format('0'.repeat(32));
    const twice = await abandoned('twice-d@client.test', [[`${guess}> NOTIFY=NEVER`, 555], [`${guess}>`, 550]]);
    expect(twice.deliveries.map(([recipient, code]) => [recipient, code])).toEqual([[guess, 'rcpt.unknown_reply_key']]);
    expect(twice.row).toMatchObject({ status: 'rejected', reasonCode: 'rcpt.unknown_reply_key', smtpReply: `550 5.1.1 ${twice.deliveries[0]![2]}` });
    // Refused, then accepted, then the transaction ends without a message: the refusal is what happened.
    const ended = await abandoned('twice-e@client.test', [[`${to}> FOO=1`, 555], [`${to}>`, 250]]);
    expect(ended.deliveries.map(([recipient, code]) => [recipient, code])).toEqual([[to, 'rcpt.unsupported_parameter']]);
    expect(ended.row).toMatchObject({ status: 'rejected', reasonCode: 'rcpt.unsupported_parameter', rcptTo: [to] });
  });

  it('closes a session past INTAKE_MAX_REFUSED_RECIPIENTS refused recipients with 421 4.7.0, whatever the reason', async () => {
    const { client } = await SmtpClient.connect(server.port);
    const lines: string[] = [];
    try {
      await client.command('EHLO client.test');
      await client.command('MAIL FROM:<refused@client.test>');
      // Refusals no key-guessing limit counts: parameters, then another transaction's relay refusals.
      for (let i = 0; i < 4; i++) lines.push((await client.command(`RCPT TO:<r${i}@example.com> X=1`)).line);
      await client.command('RSET');
      await client.command('MAIL FROM:<refused@client.test>');
      for (let i = 0; i < 3 && !client.isClosed; i++) lines.push((await client.command(`RCPT TO:<r${i}@example.com> Y=2`)).line);
    } finally {
      await client.quit();
    }
    expect(lines.slice(0, 6).every((line) => line.startsWith('555 5.5.4 '))).toBe(true);
    expect(lines[6]).toBe('421 4.7.0 Too many refused recipients in this session, closing connection');
    await expect.poll(() => client.isClosed).toBe(true);
    // The second transaction's row says how the session ended; the first one's was ended by RSET.
    await expect.poll(() => server.repos.inbound.list({ limit: 100 }).find((r) => r.mailFrom === 'refused@client.test')?.reasonCode).toBe('rcpt.too_many_refused');
    expect(server.repos.inbound.list({ limit: 100 }).filter((r) => r.mailFrom === 'refused@client.test').map((r) => r.smtpReply)).toEqual([
      '421 4.7.0 Too many refused recipients in this session, closing connection',
      '555 5.5.4 Unsupported RCPT TO parameter X',
    ]);
  });

  it('refuses parameters of extensions it does not offer with 555 5.5.4, and goes on with the session', async () => {
    const world = seedReplyWorld(server.repos);
    const { client } = await SmtpClient.connect(server.port);
    try {
      await client.command('EHLO client.test');
      // RFC 5321 4.1.1.11: a parameter the server does not know is refused, not ignored.
      expect((await client.command('MAIL FROM:<params@client.test> FOO=BAR')).line).toBe('555 5.5.4 Unsupported MAIL FROM parameter FOO');
      expect((await client.command('MAIL FROM:<params@client.test> RET=HDRS')).line).toBe('555 5.5.4 Unsupported MAIL FROM parameter RET');
      // REQUIRETLS is offered on encrypted sessions only (tls.e2e); without TLS smtp-server refuses it.
      expect((await client.command('MAIL FROM:<params@client.test> REQUIRETLS')).line).toBe('530 5.7.0 REQUIRETLS not permitted on non-TLS connections');
      await client.command('RSET');
      // What EHLO advertised is taken.
      expect((await client.command('MAIL FROM:<params@client.test> SIZE=2000 BODY=8BITMIME SMTPUTF8')).line).toBe('250 2.1.0 Accepted');
      expect((await client.command(`RCPT TO:<${template.format(world.key)}> NOTIFY=SUCCESS,FAILURE`)).line).toBe('555 5.5.4 Unsupported RCPT TO parameter NOTIFY');
      expect((await client.command(`RCPT TO:<${template.format(world.key)}>`)).line).toBe('250 2.1.5 Accepted');
      expect((await client.command('RSET')).code).toBe(250);
    } finally {
      await client.quit();
    }
    // RSET waited for the refusal's row.
    const row = server.repos.inbound.list({ limit: 100 }).find((r) => r.mailFrom === 'params@client.test');
    expect(row).toMatchObject({ status: 'rejected', reasonCode: 'rcpt.unsupported_parameter', reason: 'Unsupported RCPT TO parameter NOTIFY' });
    expect(row?.rcptTo).toEqual([template.format(world.key)]);
  });

  it('refuses a Unicode local part without SMTPUTF8 with 553 5.6.7, as Postfix does (RFC 6531), and takes it with', async () => {
    const world = seedReplyWorld(server.repos);
    const key = template.format(world.key);
    const { client } = await SmtpClient.connect(server.port);
    try {
      await client.command('EHLO client.test');
      expect((await client.command('MAIL FROM:<jörg@client.test>')).line).toBe('553 5.6.7 Must declare SMTPUTF8 to send unicode address');
      // A refused MAIL's SMTPUTF8 does not carry over to the next one (smtp-server keeps it in the envelope).
      expect((await client.command('MAIL FROM:<a@client.test> SMTPUTF8 RET=FULL')).code).toBe(555);
      expect((await client.command('MAIL FROM:<jörg@client.test>')).line).toBe('553 5.6.7 Must declare SMTPUTF8 to send unicode address');
      // An xn-- domain is ASCII as sent (smtp-server hands it over in Unicode): no SMTPUTF8 needed.
      expect((await client.command('MAIL FROM:<utf8@xn--exmple-cua.com>')).line).toBe('250 2.1.0 Accepted');
      expect((await client.command(`RCPT TO:<${key.replace('incoming', 'incöming')}>`)).line).toBe('553 5.6.7 Must declare SMTPUTF8 to send unicode address');
      expect((await client.command(`RCPT TO:<${key}>`)).line).toBe('250 2.1.5 Accepted');
      expect((await client.command('RSET')).code).toBe(250);
      expect((await client.command('MAIL FROM:<jörg@client.test> SMTPUTF8')).line).toBe('250 2.1.0 Accepted');
      expect((await client.command(`RCPT TO:<${key.replace('incoming', 'incöming')}>`)).line).toBe('550 5.1.1 No such address here: addresses look like the configured template');
    } finally {
      await client.quit();
    }
    const row = server.repos.inbound.list({ limit: 100 }).find((r) => r.mailFrom === 'utf8@exämple.com');
    expect(row).toMatchObject({ status: 'rejected', reasonCode: 'rcpt.utf8_undeclared' });
    // A refused MAIL starts no transaction, so no row: the log names the outcome, once for each.
    const running = server;
    await expect.poll(() => running.logs.filter((line) => line.includes('"code":"mail.utf8_undeclared"') && line.includes('jörg@client.test')).length).toBe(2);
  });

  it('answers 451 4.3.0 while the database cannot be read, and accepts again afterwards', async () => {
    const world = seedReplyWorld(server.repos);
    // The table intake reads is taken away under it, as a damaged or half-restored database would be.
    server.store.sqlite.exec('ALTER TABLE sent_notifications RENAME TO sent_notifications_away');
    try {
      expect(await rcpt(template.format(world.key))).toBe('451 4.3.0 Temporary failure looking up the recipient, please try again later');
    } finally {
      server.store.sqlite.exec('ALTER TABLE sent_notifications_away RENAME TO sent_notifications');
    }
    expect(await rcpt(template.format(world.key))).toBe('250 2.1.5 Accepted');
  });
});
