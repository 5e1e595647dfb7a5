// The per-sender rate over real SMTP: past INTAKE_SENDER_RATE_LIMIT a sender's messages to one
// destination are deferred with 451 4.7.1 (stored, and logged once), others go on, and the deferred
// message goes through when its sender tries again later.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { sendMail, SmtpClient } from '../helpers/smtp-client.js';
import { startServer, template, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
beforeAll(async () => {
  // Two in a row, then one each two seconds.
  server = await startServer({ INTAKE_SENDER_RATE_LIMIT: '2', INTAKE_SENDER_RATE_WINDOW_MS: '4000', INTAKE_LMTP_LISTEN: '127.0.0.1:0' });
});
afterAll(async () => {
  await server?.stop();
});

const notes = (issueId: number) => (server.store.sqlite.prepare("select count(*) as n from notes where noteable_type = 'Issue' and noteable_id = ?").get(issueId) as { n: number }).n;

describe('the sender rate', () => {
  it('defers a sender past the limit for one destination with 451 4.7.1, lets others through, and takes the message when it comes again', async () => {
    const world = seedReplyWorld(server.repos);
    const other = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const send = (body: string, messageId = `<rate-${body.replace(/\W/g, '')}-${Math.random()}@client.test>`) =>
      sendMail(server.port, { from: world.user.email, to: [to], message: replyMessage({ from: world.user.email, to, body, messageId }) });
    const started = Date.now();
    expect((await send('one')).data.code).toBe(250);
    expect((await send('two')).data.code).toBe(250);
    const deferredId = '<rate-three@client.test>';
    const third = await send('three', deferredId);
    const fourth = await send('four');
    // Both within the two seconds it takes one to accrue, or the test machine was too slow to tell.
    expect(Date.now() - started).toBeLessThan(2000);
    for (const deferred of [third, fourth]) {
      expect(deferred.data.line).toBe('451 4.7.1 Too many messages from you to this address lately, please try again later');
      const row = server.repos.inbound.list({ limit: 5 }).find((r) => r.smtpReply === deferred.data.line);
      expect(row).toMatchObject({ status: 'rejected', reasonCode: 'data.sender_rate' });
      // Nothing of it was taken: its bytes stay with the sender, which sends them again.
      expect(server.repos.inbound.rawOf(row?.id as number)).toBeNull();
    }
    expect(notes(world.issue.id)).toBe(2);
    // Logged at the first refusal only.
    const warnings = () => server.logs.filter((line) => line.includes('"code":"data.sender_rate"'));
    await expect.poll(() => warnings().length).toBe(1);
    expect(JSON.parse(warnings()[0] as string)).toMatchObject({ level: 40, sender: world.user.email, destination: `Issue:${world.issue.id}` });

    // A message to this issue and another: the whole is deferred (a 250 would lose this issue's part),
    // and the other issue's note is made, its message kept with it.
    const second = seedReplyWorld(server.repos);
    const secondKey = server.repos.transaction(() =>
      server.repos.notifications.create({ replyKey: `${'f'.repeat(31)}2`, projectId: second.project.id, recipientId: world.user.id, noteableType: 'Issue', noteableId: second.issue.id }),
    ).replyKey;
    server.repos.transaction(() => server.repos.projects.setMember({ projectId: second.project.id, userId: world.user.id, accessLevel: 30 }));
    const both = [to, template.format(secondKey)];
    const bothId = '<rate-both@client.test>';
    const sendBoth = () => sendMail(server.port, { from: world.user.email, to: both, message: replyMessage({ from: world.user.email, to: both.join(', '), body: 'To both.', messageId: bothId }) });
    const deferredBoth = await sendBoth();
    expect(deferredBoth.data.line).toBe('451 4.7.1 Too many messages from you to this address lately, please try again later');
    const bothRow = server.repos.inbound.list({ limit: 3 }).find((r) => r.messageId === 'rate-both@client.test');
    expect(bothRow).toMatchObject({ status: 'processed', reasonCode: 'data.sender_rate', smtpReply: deferredBoth.data.line });
    expect(server.repos.inbound.rawOf(bothRow?.id as number)?.toString()).toContain('To both.');
    expect(notes(second.issue.id)).toBe(1);

    // Another sender and destination is not held up.
    const elsewhere = template.format(other.key);
    expect((await sendMail(server.port, { from: other.user.email, to: [elsewhere], message: replyMessage({ from: other.user.email, to: elsewhere, body: 'Mine.' }) })).data.code).toBe(250);

    // The sender tries the deferred message again a while later: it is taken, once.
    await new Promise((resolve) => setTimeout(resolve, 2100));
    expect((await send('three', deferredId)).data.line).toMatch(/^250 2\.6\.0 Message accepted as inbound message \d+$/);
    expect(notes(world.issue.id)).toBe(3);
    expect((await send('three', deferredId)).data.line).toMatch(/^250 2\.6\.0 Already received/);
    expect(notes(world.issue.id)).toBe(3);
    // And the one to both issues, a while later still: this issue's part is taken, the other's is a duplicate.
    await new Promise((resolve) => setTimeout(resolve, 2100));
    expect((await sendBoth()).data.line).toMatch(/^250 2\.6\.0 Message accepted as inbound message \d+$/);
    expect([notes(world.issue.id), notes(second.issue.id)]).toEqual([4, 1]);
    const retried = server.repos.inbound.list({ limit: 1 })[0];
    expect(server.repos.inbound.deliveriesOf(retried?.id as number).map((d) => d.status).sort()).toEqual(['duplicate', 'processed']);
    expect(server.repos.inbound.rawOf(retried?.id as number)).not.toBeNull();
  });

  it('gives back what a message spent when it was not stored after all (451 4.3.0), so its retry is taken', async () => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const send = (body: string) => sendMail(server.port, { from: world.user.email, to: [to], message: replyMessage({ from: world.user.email, to, body }) });
    const started = Date.now();
    expect((await send('one')).data.code).toBe(250);
    // The note is made and counted, and then the transaction fails: nothing of the message is stored.
    server.store.sqlite.exec("CREATE TRIGGER fail_delivery BEFORE INSERT ON deliveries WHEN NEW.status = 'processed' BEGIN SELECT RAISE(ABORT, 'simulated failure'); END");
    try {
      expect((await send('two')).data.line).toBe('451 4.3.0 Temporary failure storing the message, please try again later');
    } finally {
      server.store.sqlite.exec('DROP TRIGGER fail_delivery');
    }
    expect((await send('two, again')).data.code).toBe(250);
    expect((await send('three')).data.line).toMatch(/^451 4\.7\.1 /);
    // Within the two seconds it takes one to accrue, or the test machine was too slow to tell.
    expect(Date.now() - started).toBeLessThan(2000);
    expect(notes(world.issue.id)).toBe(2);
  });

  it('over LMTP, answers the deferred recipient alone and keeps the bytes the others were answered 250 for', async () => {
    const world = seedReplyWorld(server.repos);
    const other = seedReplyWorld(server.repos);
    // The same member of both projects replies to both issues; the first issue has had its two already.
    const secondKey = server.repos.transaction(() => {
      server.repos.projects.setMember({ projectId: other.project.id, userId: world.user.id, accessLevel: 30 });
      return server.repos.notifications.create({ replyKey: `${'a'.repeat(31)}3`, projectId: other.project.id, recipientId: world.user.id, noteableType: 'Issue', noteableId: other.issue.id }).replyKey;
    });
    const to = template.format(world.key);
    for (const body of ['one', 'two']) {
      expect((await sendMail(server.port, { from: world.user.email, to: [to], message: replyMessage({ from: world.user.email, to, body }) })).data.code).toBe(250);
    }
    const { client } = await SmtpClient.connect(server.ports.lmtp as number);
    try {
      await client.command('LHLO relay.test');
      await client.command(`MAIL FROM:<${world.user.email}>`);
      for (const rcpt of [to, template.format(secondKey), 'postmaster@example.com']) expect((await client.command(`RCPT TO:<${rcpt}>`)).code).toBe(250);
      const [, first] = await client.data(replyMessage({ from: world.user.email, to, body: 'Over LMTP.' }));
      const rest = await client.readMany(2);
      expect([first.line, ...rest.map((r) => r.line)]).toEqual([
        '451 4.7.1 Too many messages from you to this address lately, please try again later',
        expect.stringMatching(/^250 2\.6\.0 Message accepted as inbound message \d+$/),
        expect.stringMatching(/^250 2\.6\.0 Message for the postmaster accepted and kept \(inbound message \d+\)$/),
      ]);
      // The two answered 250 have what they were promised: the note's message, postmaster's copy.
      const id = Number(/(\d+)$/.exec(rest[0]!.line)![1]);
      expect(server.repos.inbound.rawOf(id)?.toString()).toContain('Over LMTP.');
    } finally {
      await client.quit();
    }
  });
});
