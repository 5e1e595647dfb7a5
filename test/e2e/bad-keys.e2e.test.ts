// Near-miss keys and hostile headers over real SMTP: a clear refusal or the right target, never a crash.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { newIssueKey } from '../../src/address/keys.js';
import { seedReplyWorld } from '../helpers/seed.js';
import { sendMail, SmtpClient } from '../helpers/smtp-client.js';
import { startServer, template, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ INTAKE_HOSTNAME: 'tracker.example.com' });
});
afterAll(async () => {
  await server?.stop();
});

it('refuses keys that almost match, each with a reply from the table, and the session goes on', async () => {
  const w = seedReplyWorld(server.repos);
  const { client } = await SmtpClient.connect(server.port);
  await client.command('EHLO client.test');
  await client.command('MAIL FROM:<a@example.net>');
  const near = [
    template.format(w.key.toUpperCase()),
    // (`${w.key}x` would be accepted: like GitLab, a partitioned key is found by its partition and random
    // part whatever namespace suffix follows.)
    template.format(`${w.key}_`),
    template.format(`${w.key}.`),
    `${template.format(w.key)}.`,
    template.format(`${w.key}-unsubscribe-unsubscribe`),
    template.format('a'.repeat(300)),
    template.format(`${w.key}%41`),
    `"${template.format(w.key)}"`,
    template.format(`${w.key.slice(0, -1)}"`),
  ];
  const replies: string[] = [];
  for (const address of near) replies.push((await client.command(`RCPT TO:<${address}>`)).line);
  const good = await client.command(`RCPT TO:<${template.format(w.key)}>`);
  await client.quit();
  for (const reply of replies) expect(reply).toMatch(/^5\d\d 5\.\d\.\d+ \S/);
  expect(good.line).toBe('250 2.1.5 Accepted');
});

it('routes the mailbox address through hundreds of To/Cc addresses and thousands of References to the live key, trying at most ten keys', async () => {
  const w = seedReplyWorld(server.repos);
  const token = server.repos.users.findById(w.user.id)!.incomingEmailToken;
  const live = template.format(newIssueKey(w.project.path, w.project.id, token));
  // Nine dead keys of ours among other people's addresses: the live key is the tenth key tried.
  const noise = Array.from({ length: 300 }, (_, i) => (i % 30 === 0 && i < 270 ? `incoming+noise${i}@example.com` : `person${i}@elsewhere.example`));
  const references = Array.from({ length: 3000 }, (_, i) => `<ref${i}@elsewhere.example>`).join(' ');
  const received = Array.from({ length: 50 }, (_, i) => `Received: from h${i} by mx for <<<broken ${i}; ((( for <not an address>`).join('\n');
  const message = [
    'From: a@example.net',
    `To: ${noise.slice(0, 150).join(', ')}`,
    `Cc: ${[...noise.slice(150), live].join(', ')}`,
    `References: ${references}`,
    received,
    'Subject: Found at last',
    'Message-ID: <hostile-headers@client.test>',
    '',
    'Routed by the last Cc.',
    '',
  ].join('\n');
  const { data } = await sendMail(server.port, { from: 'a@example.net', to: ['incoming@example.com'], message });
  expect(data.line).toMatch(/^250 2\.6\.0 Message accepted as inbound message (\d+)$/);
  const id = Number(/(\d+)$/.exec(data.line)?.[1]);
  expect(server.repos.inbound.deliveriesOf(id)).toMatchObject([{ source: 'Cc', handler: 'new_issue', status: 'processed' }]);
  expect(server.store.sqlite.prepare("select title from issues where project_id = ? and title = 'Found at last'").all(w.project.id)).toHaveLength(1);

  // One dead key more, and the live one is not looked up: headers are no way round the limit on unknown recipients.
  const guessed = message.replace('To: ', 'To: incoming+noise-extra@example.com, ').replace('<hostile-headers@client.test>', '<hostile-headers-2@client.test>');
  const second = await sendMail(server.port, { from: 'a@example.net', to: ['incoming@example.com'], message: guessed });
  expect(second.data.line).toMatch(/^550 5\.1\.1 /);
  const refused = server.repos.inbound.list({ limit: 1 })[0]!;
  expect(refused.messageId).toBe('hostile-headers-2@client.test');
  expect(server.repos.inbound.deliveriesOf(refused.id)).toMatchObject([{ status: 'rejected', reasonCode: 'data.no_key' }]);
});
