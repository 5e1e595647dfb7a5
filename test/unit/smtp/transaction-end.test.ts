// transaction-end over a real smtp-server and TCP: an ending command waits for the transaction's
// pending write, and a failure of the command after the wait is a 451, not a lost session.
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTCOMES } from '../../../src/errors.js';
import { installEnhancedCodePassthrough } from '../../../src/smtp/reply.js';
import { installTransactionEndWait } from '../../../src/smtp/transaction-end.js';
import { SmtpClient } from '../../helpers/smtp-client.js';

type Handler = (this: unknown, command: Buffer, callback: () => void) => void;
const proto = SMTPConnection.prototype as unknown as Record<string, Handler>;

let server: SMTPServer;
let port: number;
let release: () => void = () => undefined;
let pending: Promise<void> | null = null;
let stop: () => void;
const errors: string[] = [];

beforeAll(async () => {
  // A failure inside RSET, as a bug in smtp-server or in a patch of ours would be.
  const rset = proto.handler_RSET as Handler;
  proto.handler_RSET = function (this: unknown, command: Buffer, callback: () => void) {
    if (pending) throw new Error('RSET failed');
    return rset.call(this, command, callback);
  };
  stop = installTransactionEndWait(() => pending);
  // As in intake: replies of one turn are held together (corked), which the wait holds longer.
  installEnhancedCodePassthrough();
  server = new SMTPServer({ authOptional: true, disableReverseLookup: true, logger: false });
  // As in intake's listener: a session's error is reported, not thrown.
  server.on('error', (error: Error) => errors.push(error.message));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  port = (server.server.address() as { port: number }).port;
});

afterAll(async () => {
  stop();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('installTransactionEndWait', () => {
  it('answers an ending command once the write is done, and 451 4.3.0 when the command then fails', async () => {
    const { client } = await SmtpClient.connect(port);
    await client.command('EHLO client.test');
    pending = new Promise<void>((resolve) => (release = resolve));
    let answered = false;
    const rset = client.command('RSET').then((reply) => {
      answered = true;
      return reply;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(answered).toBe(false);
    release();
    const internal = OUTCOMES['session.internal_error'];
    expect((await rset).line).toBe(`${internal.smtp} ${internal.dsn} ${internal.text}`);
    pending = null;
    expect(errors).toEqual(['RSET failed']);
    expect((await client.command('NOOP')).code).toBe(250);
    await client.quit();
  });

  it('answers the command, and lets the socket go, should the write it waits for fail', async () => {
    const { client } = await SmtpClient.connect(port);
    await client.command('EHLO client.test');
    let fail: (error: Error) => void = () => undefined;
    pending = new Promise<void>((_, reject) => (fail = reject));
    // Pipelined: NOOP's reply is held with the one of the waiting MAIL.
    client.write('NOOP\r\nMAIL FROM:<sender@client.test>\r\n');
    await new Promise((resolve) => setTimeout(resolve, 200));
    fail(new Error('the write failed'));
    expect((await client.read()).line).toMatch(/^250 /);
    expect((await client.read()).line).toMatch(/^250 /);
    pending = null;
    expect((await client.command('NOOP')).code).toBe(250);
    await client.quit();
  });
});
