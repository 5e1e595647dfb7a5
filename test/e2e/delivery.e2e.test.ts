// DATA over real TCP: a reply becomes a note only after it is committed; mail that cannot be used is
// refused in the dialogue with GitLab's reason; auto-generated and repeated mail creates nothing.
import { createHash } from 'node:crypto';
import { mintReplyKey } from '../../src/address/reply-key.js';
import { OUTCOMES } from '../../src/errors.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { sendMail, SmtpClient } from '../helpers/smtp-client.js';
import { startServer, template, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ INTAKE_MAX_MESSAGE_BYTES: String(256 * 1024), INTAKE_MAX_ATTACHMENT_BYTES: '1000' });
});
afterAll(async () => {
  await server?.stop();
});

function notesOf(issueId: number) {
  return server.store.sqlite
    .prepare("select author_id, body, discussion_id, inbound_message_id from notes where noteable_type = 'Issue' and noteable_id = ? order by id")
    .all(issueId) as { author_id: number; body: string; discussion_id: string; inbound_message_id: number }[];
}

function inbound(id: number) {
  return server.repos.inbound.findById(id)!;
}

function idFrom(line: string): number {
  return Number(/inbound message (\d+)/.exec(line)?.[1]);
}

describe('a reply by email', () => {
  it('becomes a note by the notification recipient, trimmed of the quote and signature', async () => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const { rcpt, data } = await sendMail(server.port, {
      from: world.user.email,
      to: [to],
      message: replyMessage({
        from: `Jake <${world.user.email}>`,
        to,
        body: 'I could not disagree more.\n\nSee you tomorrow.\n\n-- \nJake\n\nOn Tue, Nov 24, 2026 at 9:00 AM, GitLab <gitlab@example.com> wrote:\n> Squeaky widgets\n> are squeaky',
      }),
    });
    expect(rcpt.map((r) => r.line)).toEqual(['250 2.1.5 Accepted']);
    expect(data.line).toMatch(/^250 2\.6\.0 Message accepted as inbound message \d+$/);
    expect(notesOf(world.issue.id)).toEqual([
      {
        author_id: world.user.id,
        body: 'I could not disagree more.\n\nSee you tomorrow.\n\n<details><summary>...</summary>\n\n--\nJake\n\nOn Tue, Nov 24, 2026 at 9:00 AM, GitLab <gitlab@example.com> wrote:\n> Squeaky widgets\n> are squeaky\n\n</details>',
        discussion_id: 'd1',
        inbound_message_id: idFrom(data.line),
      },
    ]);
    expect(inbound(idFrom(data.line))).toMatchObject({
      status: 'processed',
      ingress: 'smtp',
      handler: 'reply',
      targetType: 'Note',
      mailFrom: world.user.email,
      rcptTo: [to],
      fromAddress: world.user.email,
      subject: 'Re: Squeaky widgets',
      smtpReply: data.line,
      reasonCode: null,
    });
    expect(inbound(idFrom(data.line)).raw?.toString()).toContain('I could not disagree more.');
  });

  it('takes Reply-To before From, and accepts a verified secondary address', async () => {
    const world = seedReplyWorld(server.repos);
    server.repos.transaction(() => server.repos.users.addEmail({ userId: world.user.id, email: 'Jake.Work@Example.org', verified: true }));
    const to = template.format(world.key);
    const { data } = await sendMail(server.port, {
      from: 'bounces@lists.example',
      to: [to],
      message: replyMessage({ from: 'someone@else.example', to, body: 'From my work address.', headers: ['Reply-To: jake.work@example.org'] }),
    });
    expect(data.code).toBe(250);
    expect(notesOf(world.issue.id).map((n) => n.body)).toEqual(['From my work address.']);
  });

  it('refuses a sender who is not a verified address of the recipient with 550 5.7.1, storing nothing but the record', async () => {
    const world = seedReplyWorld(server.repos);
    server.repos.transaction(() => server.repos.users.addEmail({ userId: world.user.id, email: 'unverified@example.org', verified: false }));
    const to = template.format(world.key);
    for (const from of ['mallory@evil.example', 'unverified@example.org']) {
      const { data } = await sendMail(server.port, { from, to: [to], message: replyMessage({ from, to, body: 'Let me in.' }) });
      expect(data.line).toBe(
        "550 5.7.1 We couldn't figure out what user corresponds to the email. Please create your comment through the web interface.",
      );
    }
    expect(notesOf(world.issue.id)).toEqual([]);
    const row = server.repos.inbound.list({ limit: 1 })[0]!;
    expect(row).toMatchObject({ status: 'rejected', reasonCode: 'data.sender_not_verified', fromAddress: 'unverified@example.org' });
  });

  it('refuses a reply that is blank once trimmed with 550 5.6.0', async () => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const { data } = await sendMail(server.port, {
      from: world.user.email,
      to: [to],
      message: replyMessage({ from: world.user.email, to, body: '\n\nOn Tue, Nov 24, 2026, GitLab wrote:\n> only the quote' }),
    });
    expect(data.line).toBe(
      "550 5.6.0 It appears that the email is blank. Make sure your reply is at the top of the email, we can't process inline replies.",
    );
    expect(notesOf(world.issue.id)).toEqual([]);
  });

  it('checks the user again at DATA: blocked after RCPT is refused then', async () => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    await client.command(`MAIL FROM:<${world.user.email}>`);
    expect((await client.command(`RCPT TO:<${to}>`)).line).toBe('250 2.1.5 Accepted');
    server.repos.transaction(() => server.repos.users.setState(world.user.id, 'blocked'));
    const [, data] = await client.data(replyMessage({ from: world.user.email, to, body: 'Am I blocked?' }));
    await client.quit();
    expect(data.line).toBe('550 5.7.1 Your account has been blocked. If you believe this is in error, contact a staff member.');
    expect(notesOf(world.issue.id)).toEqual([]);
  });

  it.each([
    ['a null sender (bounce)', '', []],
    ['Auto-Submitted: auto-replied', 'jake', ['Auto-Submitted: auto-replied']],
    ['X-Autoreply: yes', 'jake', ['X-Autoreply: yes']],
    ['Precedence: bulk', 'jake', ['Precedence: bulk']],
    ['Precedence: auto_reply', 'jake', ['Precedence: auto_reply']],
    ['X-Autorespond', 'jake', ['X-Autorespond: Vacation']],
  ])('accepts and ignores auto-generated mail: %s', async (_name, sender, headers) => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const { data } = await sendMail(server.port, {
      from: sender === '' ? '' : world.user.email,
      to: [to],
      message: replyMessage({ from: world.user.email, to, body: 'I am out of the office.', headers }),
    });
    expect(data.line).toMatch(/^250 2\.6\.0 Auto-generated message accepted and ignored \(inbound message \d+\)$/);
    expect(notesOf(world.issue.id)).toEqual([]);
    expect(inbound(idFrom(data.line))).toMatchObject({ status: 'ignored', reasonCode: 'data.auto_generated' });
  });

  // Reports that come with a person's address as the sender: an Outlook read receipt and a bounce
  // relayed by a server that rewrites the envelope. Either would become a note, and the notification
  // it starts could loop.
  it.each([
    ['a read receipt (MDN)', 'disposition-notification', 'Content-Type: message/disposition-notification\n\nReporting-UA: client.test\nFinal-Recipient: rfc822;{to}\nDisposition: automatic-action/MDN-sent-automatically; displayed', 'multipart/report: disposition-notification'],
    ['a delivery failure report (DSN)', 'delivery-status', 'Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.client.test\n\nFinal-Recipient: rfc822; {to}\nAction: failed\nStatus: 5.1.1', 'multipart/report: delivery-status'],
  ])('accepts and ignores %s sent from a real address', async (_name, reportType, report, reason) => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const message = [
      `From: ${world.user.email}`,
      `To: ${to}`,
      'Subject: Read: Squeaky widgets',
      'MIME-Version: 1.0',
      `Content-Type: multipart/report; report-type=${reportType}; boundary="r"`,
      '',
      '--r',
      'Content-Type: text/plain',
      '',
      'Your message was read on Thursday.',
      '--r',
      report.replaceAll('{to}', to),
      '--r--',
      '',
    ].join('\n');
    const { data } = await sendMail(server.port, { from: world.user.email, to: [to], message });
    expect(data.line).toMatch(/^250 2\.6\.0 Auto-generated message accepted and ignored \(inbound message \d+\)$/);
    expect(notesOf(world.issue.id)).toEqual([]);
    expect(inbound(idFrom(data.line))).toMatchObject({ status: 'ignored', reasonCode: 'data.auto_generated' });
    const deliveries = server.store.sqlite.prepare('select reason from deliveries where inbound_message_id = ?').all(idFrom(data.line));
    expect(deliveries).toEqual([{ reason: `Auto-generated message accepted and ignored (${reason})` }]);
  });

  it('stores nothing from a message cut off during DATA, and logs it', async () => {
    const world = seedReplyWorld(server.repos);
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    await client.command('MAIL FROM:<cut@client.test>');
    await client.command(`RCPT TO:<${template.format(world.key)}>`);
    expect((await client.command('DATA')).code).toBe(354);
    client.write('From: cut@client.test\r\nSubject: half\r\n\r\nThe first half of a');
    await new Promise((resolve) => setTimeout(resolve, 100));
    client.destroy();
    await expect.poll(() => server.logs.some((l) => l.includes('message cut off: the connection closed during DATA') && l.includes('"mailFrom":"cut@client.test"'))).toBe(true);
    expect(server.store.sqlite.prepare("select count(*) as n from inbound_messages where mail_from = 'cut@client.test'").get()).toEqual({ n: 0 });
    expect(notesOf(world.issue.id)).toEqual([]);
  });

  it('still takes mail marked Auto-Submitted: no', async () => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const { data } = await sendMail(server.port, {
      from: world.user.email,
      to: [to],
      message: replyMessage({ from: world.user.email, to, body: 'A person wrote this.', headers: ['Auto-Submitted: no (written by a person)'] }),
    });
    expect(data.code).toBe(250);
    expect(notesOf(world.issue.id).map((n) => n.body)).toEqual(['A person wrote this.']);
  });

  it('creates one note when the same message is delivered twice', async () => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const message = replyMessage({ from: world.user.email, to, body: 'Only once, please.', messageId: '<once@client.test>' });
    const first = await sendMail(server.port, { from: world.user.email, to: [to], message });
    const second = await sendMail(server.port, { from: world.user.email, to: [to], message });
    expect(first.data.line).toMatch(/^250 2\.6\.0 Message accepted/);
    expect(second.data.line).toMatch(/^250 2\.6\.0 Already received, nothing new created \(inbound message \d+\)$/);
    expect(notesOf(world.issue.id).map((n) => n.body)).toEqual(['Only once, please.']);
    expect(inbound(idFrom(second.data.line))).toMatchObject({ status: 'duplicate', reasonCode: 'data.duplicate' });
  });

  it('still finds the stored copy behind any number of refused ones with the same Message-ID', async () => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const messageId = 'reused@client.test';
    // A client that reuses its Message-ID: 1,200 earlier rows with it (refused, blank replies).
    server.store.sqlite.transaction(() => {
      const insert = server.store.sqlite.prepare("insert into inbound_messages (ingress, mail_from, rcpt_to, message_id, from_address, size, status, reason_code) values ('smtp', ?, '[]', ?, ?, 10, 'rejected', 'data.blank')");
      for (let i = 0; i < 1200; i++) insert.run(world.user.email, messageId, world.user.email);
    })();
    const message = replyMessage({ from: world.user.email, to, body: 'Once, even so.', messageId: `<${messageId}>` });
    const first = await sendMail(server.port, { from: world.user.email, to: [to], message });
    expect(first.data.line).toMatch(/^250 2\.6\.0 Message accepted/);
    for (let i = 0; i < 2; i++) expect((await sendMail(server.port, { from: world.user.email, to: [to], message })).data.line).toMatch(/^250 2\.6\.0 Already received/);
    expect(notesOf(world.issue.id).map((n) => n.body)).toEqual(['Once, even so.']);
  });

  it('takes a Message-ID as a copy only from the same sender: reusing someone else\'s squats nothing', async () => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    server.repos.transaction(() => server.repos.users.addEmail({ userId: world.user.id, email: 'other@client.test', verified: true }));
    const messageId = '<known-in-advance@client.test>';
    const first = await sendMail(server.port, { from: 'other@client.test', to: [to], message: replyMessage({ from: 'other@client.test', to, body: 'Sent first, by another sender.', messageId }) });
    expect(first.data.line).toMatch(/^250 2\.6\.0 Message accepted/);
    const genuine = replyMessage({ from: world.user.email, to, body: 'The genuine one.', messageId });
    expect((await sendMail(server.port, { from: world.user.email, to: [to], message: genuine })).data.line).toMatch(/^250 2\.6\.0 Message accepted/);
    expect((await sendMail(server.port, { from: world.user.email, to: [to], message: genuine })).data.line).toMatch(/^250 2\.6\.0 Already received/);
    expect(notesOf(world.issue.id).map((n) => n.body)).toEqual(['Sent first, by another sender.', 'The genuine one.']);
  });

  it('creates one note when one message reaches the same issue through two of its recipients', async () => {
    const world = seedReplyWorld(server.repos);
    const other = server.repos.transaction(() =>
      server.repos.notifications.create({ replyKey: mintReplyKey(2, world.project.id), projectId: world.project.id, recipientId: world.user.id, noteableType: 'Issue', noteableId: world.issue.id, inReplyToDiscussionId: 'd2' }),
    );
    const [toA, toB] = [template.format(world.key), template.format(other.replyKey)];
    const { data } = await sendMail(server.port, { from: world.user.email, to: [toA, toB], message: replyMessage({ from: world.user.email, to: `${toA}, ${toB}`, body: 'Both keys, one issue.' }) });
    expect(data.line).toMatch(/^250 2\.6\.0 Message accepted/);
    expect(notesOf(world.issue.id).map((n) => n.body)).toEqual(['Both keys, one issue.']);
    expect(server.repos.inbound.deliveriesOf(idFrom(data.line)).map((d) => [d.recipient, d.status, d.reasonCode])).toEqual([
      [toA, 'processed', null],
      [toB, 'duplicate', 'data.duplicate'],
    ]);
  });

  it('recognises a repeated message without a Message-ID by its bytes', async () => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const message = `From: ${world.user.email}\nTo: ${to}\nSubject: no id\n\nNo Message-ID here.\n`;
    await sendMail(server.port, { from: world.user.email, to: [to], message });
    const second = await sendMail(server.port, { from: world.user.email, to: [to], message });
    expect(second.data.line).toMatch(/^250 2\.6\.0 Already received/);
    expect(notesOf(world.issue.id)).toHaveLength(1);
  });

  it('answers one DATA for several keys: 250 when one succeeds, each recipient recorded', async () => {
    const a = seedReplyWorld(server.repos);
    const b = seedReplyWorld(server.repos);
    const toA = template.format(a.key);
    const toB = template.format(b.key);
    const { rcpt, data } = await sendMail(server.port, {
      from: a.user.email,
      to: [toA, toB, 'incoming+nope@example.com'],
      message: replyMessage({ from: a.user.email, to: `${toA}, ${toB}`, body: 'To both.' }),
    });
    expect(rcpt.map((r) => r.code)).toEqual([250, 250, 550]);
    expect(data.code).toBe(250);
    expect(notesOf(a.issue.id).map((n) => n.body)).toEqual(['To both.']);
    expect(notesOf(b.issue.id)).toEqual([]);
    const id = idFrom(data.line);
    expect(server.repos.inbound.deliveriesOf(id).map((d) => [d.recipient, d.stage, d.status, d.reasonCode])).toEqual([
      ['incoming+nope@example.com', 'rcpt', 'rejected', 'rcpt.unknown_key'],
      [toA, 'data', 'processed', null],
      [toB, 'data', 'rejected', 'data.sender_not_verified'],
    ]);
    expect(inbound(id)).toMatchObject({ status: 'processed', reasonCode: 'rcpt.unknown_key' });
  });

  it('turns a reply to a merge request notification into a note on the merge request', async () => {
    const world = seedReplyWorld(server.repos, { accessLevel: 20 });
    const mr = server.repos.transaction(() => {
      const row = server.repos.issuables.createMergeRequest({ projectId: world.project.id, authorId: world.user.id, title: 'Oil', sourceBranch: 'oil', targetBranch: 'main' });
      const notification = server.repos.notifications.create({ replyKey: mintReplyKey(1, world.project.id), projectId: world.project.id, recipientId: world.user.id, noteableType: 'MergeRequest', noteableId: row.id });
      return { row, notification };
    });
    const to = template.format(mr.notification.replyKey);
    const { data } = await sendMail(server.port, { from: world.user.email, to: [to], message: replyMessage({ from: world.user.email, to, body: 'LGTM.\n\n> diff' }) });
    expect(data.code).toBe(250);
    expect(server.store.sqlite.prepare("select noteable_type, body from notes where noteable_type = 'MergeRequest' and noteable_id = ?").all(mr.row.id)).toEqual([{ noteable_type: 'MergeRequest', body: 'LGTM.' }]);
    server.repos.transaction(() => server.repos.projects.setMember({ projectId: world.project.id, userId: world.user.id, accessLevel: 10 }));
    const guest = await sendMail(server.port, { from: world.user.email, to: [to], message: replyMessage({ from: world.user.email, to, body: 'As a guest.' }) });
    expect(guest.rcpt[0]?.line).toBe('550 5.7.1 You are not allowed to perform this action. If you believe this is in error, contact a staff member.');
  });

  it('stores attachments of a reply with the note', async () => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const message = [
      `From: ${world.user.email}`,
      `To: ${to}`,
      'Subject: Re: logs',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Log attached.',
      '--b1',
      'Content-Type: text/plain; name="build.log"',
      'Content-Disposition: attachment; filename="build.log"',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('line 1\nline 2\n').toString('base64'),
      '--b1--',
      '',
    ].join('\n');
    const { data } = await sendMail(server.port, { from: world.user.email, to: [to], message });
    expect(data.code).toBe(250);
    const note = server.store.sqlite.prepare('select id, body from notes where noteable_id = ?').get(world.issue.id) as { id: number; body: string };
    const attachmentId = (server.store.sqlite.prepare("select id from attachments where owner_type = 'Note' and owner_id = ?").get(note.id) as { id: number }).id;
    expect(note.body).toBe(`Log attached.\n\n[build.log](attachment:${attachmentId})`);
    expect(server.store.sqlite.prepare("select owner_type, owner_id, filename, content_type, size, sha256, cast(content as text) as text from attachments where owner_id = ? and owner_type = 'Note'").all(note.id)).toEqual([
      {
        owner_type: 'Note',
        owner_id: note.id,
        filename: 'build.log',
        content_type: 'text/plain',
        size: 14,
        sha256: createHash('sha256').update('line 1\nline 2\n').digest('hex'),
        text: 'line 1\nline 2\n',
      },
    ]);
  });

  it('links an inline image where the HTML showed it, and leaves out an attachment over the limit with a line saying so', async () => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const message = [
      `From: ${world.user.email}`, `To: ${to}`, 'Subject: Re: look', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="m"', '',
      '--m', 'Content-Type: multipart/related; boundary="r"', '',
      '--r', 'Content-Type: text/html; charset=utf-8', '', '<p>Before</p><p><img src="cid:shot@client" alt="screenshot"></p><p>After</p>',
      '--r', 'Content-Type: image/png; name="shot.png"', 'Content-ID: <shot@client>', 'Content-Disposition: inline; filename="shot.png"', 'Content-Transfer-Encoding: base64', '', Buffer.from('png bytes').toString('base64'), '--r--',
      '--m', 'Content-Type: application/octet-stream; name="big.bin"', 'Content-Disposition: attachment; filename="big.bin"', 'Content-Transfer-Encoding: base64', '', Buffer.alloc(2000, 7).toString('base64'), '--m--', '',
    ].join('\n');
    const { data } = await sendMail(server.port, { from: world.user.email, to: [to], message });
    expect(data.code).toBe(250);
    const note = server.store.sqlite.prepare('select id, body from notes where noteable_id = ?').get(world.issue.id) as { id: number; body: string };
    const shot = server.store.sqlite.prepare("select id from attachments where owner_type = 'Note' and owner_id = ? and filename = 'shot.png'").get(note.id) as { id: number };
    expect(note.body).toBe(`Before\n\n![screenshot](attachment:${shot.id})\n\nAfter\n\n*big.bin (2000 bytes) was not stored: attachments are limited to 1000 bytes.*`);
    expect(server.store.sqlite.prepare("select count(*) as n from attachments where filename = 'big.bin'").get()).toEqual({ n: 0 });
  });

  it('refuses a message over the size limit with 552 after reading it, and records it without content', async () => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const big = replyMessage({ from: world.user.email, to, body: 'x'.repeat(300 * 1024) });
    const { data } = await sendMail(server.port, { from: world.user.email, to: [to], message: big });
    expect(data.line).toBe('552 5.3.4 Error: message exceeds fixed maximum message size 262144');
    expect(notesOf(world.issue.id)).toEqual([]);
    const row = server.repos.inbound.list({ limit: 1 })[0]!;
    expect(row).toMatchObject({ status: 'rejected', reasonCode: 'data.too_big', rcptTo: [to] });
    expect(row.size).toBeGreaterThan(300 * 1024);
    expect(server.repos.inbound.findById(row.id)?.raw).toBeNull();
  });

  it('answers 451 4.3.0 and stores nothing when the database cannot be written', async () => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const count = () => (server.store.sqlite.prepare('select count(*) as n from inbound_messages').get() as { n: number }).n;
    const before = count();
    server.store.sqlite.exec("CREATE TRIGGER no_space BEFORE INSERT ON inbound_messages BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END");
    try {
      const { data } = await sendMail(server.port, { from: world.user.email, to: [to], message: replyMessage({ from: world.user.email, to, body: 'Keep your copy.' }) });
      expect(data.line).toBe('451 4.3.0 Temporary failure storing the message, please try again later');
    } finally {
      server.store.sqlite.exec('DROP TRIGGER no_space');
    }
    expect(count()).toBe(before);
    expect(notesOf(world.issue.id)).toEqual([]);
  });

  it('refuses a declared SIZE over the limit at MAIL FROM with 552 5.3.4', async () => {
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    const mail = await client.command('MAIL FROM:<jake@adventuretime.ooo> SIZE=999999999');
    await client.quit();
    // smtp-server's own reply, before a transaction starts (no row, no log line of intake's).
    const tooBig = OUTCOMES['mail.too_big'];
    expect(mail.line).toBe(`${tooBig.smtp} ${tooBig.dsn} ${tooBig.text} 262144`);
  });
});
