// A seeded fuzzer over real TCP, after smtp-server's own: valid sessions with hostile tokens mixed in.
// Every command gets a well-formed reply, the session stays usable, and nothing is stored as processed.
// Deterministic by default; set FC_SEED to explore other inputs.
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SmtpClient } from '../helpers/smtp-client.js';
import { startServer, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.stop();
});

const hostile = fc.oneof(
  fc.constantFrom('', ' ', '<>', '<<>>', '@', '<postmaster>', '<Postmaster@example.com>', '%{key}', '\u00ff\u00fe', '\t', 'A'.repeat(2000), '"quoted local"@example.com', 'incoming+@example.com', 'SIZE=-1', 'BODY=9BIT', 'SMTPUTF8=yes', 'NOTIFY=NEVER,SUCCESS'),
  fc.string({ maxLength: 40 }).map((s) => s.replace(/[\r\n]/g, '')),
);
const command = fc.oneof(
  fc.tuple(fc.constantFrom('MAIL FROM:', 'RCPT TO:', 'EHLO ', 'HELO ', 'VRFY ', 'EXPN ', 'NOOP ', 'RSET', 'HELP ', 'XCLIENT ', 'STARTTLS', 'AUTH PLAIN ', 'DATA', 'DATA '), hostile).map(([verb, arg]) => `${verb}${arg}`),
  fc.tuple(fc.constantFrom('MAIL FROM:<a@b.example>', 'RCPT TO:<incoming+x@example.com>'), hostile).map(([cmd, arg]) => `${cmd} ${arg}`),
  hostile,
);

it('answers every fuzzed command with a reply line and stays usable', async () => {
  const seed = Number(process.env.FC_SEED ?? 20261125);
  await fc.assert(
    fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 12 }), async (commands) => {
      const { client } = await SmtpClient.connect(server.port);
      try {
        await client.command('EHLO fuzz.test');
        const replies: string[] = [];
        // Whether a recipient was accepted since the last MAIL: only postmaster can be, here.
        let accepted = false;
        for (const line of commands) {
          if (client.isClosed) break;
          const reply = await client.command(line);
          replies.push(reply.line);
          const context = `FC_SEED=${seed} input=${JSON.stringify(line)} replies=${JSON.stringify(replies)}`;
          expect(reply.line, context).toMatch(/^[2345]\d\d[ -]/);
          if (/^(MAIL|RSET|EHLO|HELO)/i.test(line)) accepted = false;
          if (/^RCPT/i.test(line) && reply.code === 250) accepted = true;
          // No recipient here has a live key: DATA starts a message only for postmaster, which is kept.
          if (reply.code === 354) {
            expect(accepted, context).toBe(true);
            client.write('.\r\n');
            expect((await client.read()).line, context).toMatch(/^(250 2\.6\.0 Message for the postmaster accepted and kept|[45]\d\d )/);
            accepted = false;
          }
        }
        if (!client.isClosed) {
          expect((await client.command('RSET')).code).toBe(250);
        } else {
          // A session is only ever closed with a 421 said first, and the server goes on serving.
          expect(replies.at(-1), `FC_SEED=${seed} replies=${JSON.stringify(replies)}`).toMatch(/^421 /);
          const next = await SmtpClient.connect(server.port);
          // Greeted, or told it is shut out for guessing (messages kept for postmaster count too).
          expect(next.greeting.line).toMatch(/^(220 |421 4\.7\.0 Too many unknown recipients)/);
          await next.client.quit();
        }
      } finally {
        await client.quit();
      }
    }),
    { seed, numRuns: 60 },
  );
  expect((server.store.sqlite.prepare("select count(*) as n from inbound_messages where status = 'processed'").get() as { n: number }).n).toBe(0);
});
