// The Postfix policy service over real TCP: the same recipient check as RCPT TO, answered in Postfix's
// attribute=value protocol, with refusals recorded; and bad input never gets more than DUNNO.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedReplyWorld } from '../helpers/seed.js';
import { SmtpClient } from '../helpers/smtp-client.js';
import { startServer, template, type RunningServer } from '../helpers/server.js';

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ INTAKE_POLICY_LISTEN: '127.0.0.1:0' });
});
afterAll(async () => {
  await server?.stop();
});

/** A connection like Postfix's: kept open, one request after another. */
class PolicyClient {
  private buffer = '';
  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8').on('data', (c: string) => (this.buffer += c));
  }
  static async open(port: number): Promise<PolicyClient> {
    const socket = connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new PolicyClient(socket);
  }
  async ask(request: string | Buffer): Promise<string> {
    this.socket.write(request);
    await expect.poll(() => this.buffer.includes('\n\n'), { timeout: 10_000 }).toBe(true);
    const end = this.buffer.indexOf('\n\n');
    const answer = this.buffer.slice(0, end);
    this.buffer = this.buffer.slice(end + 2);
    return answer;
  }
  close(): void {
    this.socket.destroy();
  }
}

const request = (attrs: Record<string, string>) =>
  `${Object.entries({ request: 'smtpd_access_policy', protocol_state: 'RCPT', protocol_name: 'ESMTP', client_address: '192.0.2.44', helo_name: 'mx.sender.test', sender: 'someone@sender.test', ...attrs })
    .map(([k, v]) => `${k}=${v}`)
    .join('\n')}\n\n`;

describe('the policy service', () => {
  it('answers DUNNO for a live key, REJECT with the RCPT reason for a dead one, and DUNNO for other domains', async () => {
    const world = seedReplyWorld(server.repos);
    const client = await PolicyClient.open(server.ports.policy as number);
    try {
      expect(await client.ask(request({ recipient: template.format(world.key), instance: 'a1' }))).toBe('action=DUNNO');
      expect(await client.ask(request({ recipient: template.format('f'.repeat(32)), instance: 'a1' }))).toBe(
        "action=REJECT 5.1.1 We couldn't figure out what the email is in reply to. Please create your comment through the web interface.",
      );
      expect(await client.ask(request({ recipient: 'incoming+nonsense-key!@example.com', instance: 'a1' }))).toBe(
        "action=REJECT 5.1.1 We couldn't figure out what the email is for. Please create your issue or comment through the web interface.",
      );
      expect(await client.ask(request({ recipient: 'postmaster@other.example', instance: 'a1' }))).toBe('action=DUNNO');
      // The SMTP listener gives the same answer for the same address.
      const { client: smtp } = await SmtpClient.connect(server.port);
      await smtp.command('EHLO x.test');
      await smtp.command('MAIL FROM:<someone@sender.test>');
      expect((await smtp.command(`RCPT TO:<${template.format('f'.repeat(32))}>`)).line).toBe(
        "550 5.1.1 We couldn't figure out what the email is in reply to. Please create your comment through the web interface.",
      );
      await smtp.quit();
    } finally {
      client.close();
    }
  });

  it('answers a client that shuts its side after the request, as `nc` does, and then ends the connection', async () => {
    const socket = connect(server.ports.policy as number, '127.0.0.1');
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    let answer = '';
    socket.setEncoding('utf8').on('data', (c: string) => (answer += c));
    const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
    // An unknown key: its answer waits for the refusal's row to be written.
    socket.end(request({ recipient: 'incoming+halfopen1@example.com', instance: 'half.1' }));
    await ended;
    expect(answer).toMatch(/^action=REJECT 5\.1\.1 .*\n\n$/);
  });

  it('takes requests sent together one after another: two refusals of one instance share its row', async () => {
    const client = await PolicyClient.open(server.ports.policy as number);
    try {
      const dead = [template.format('c'.repeat(32)), template.format('b'.repeat(32))];
      client.socket.write(dead.map((recipient) => request({ recipient, instance: 'tx-pipelined' })).join(''));
      await expect.poll(() => (client as unknown as { buffer: string }).buffer.split('\n\n').length, { timeout: 10_000 }).toBe(3);
      const rows = server.store.sqlite.prepare("select rcpt_to from inbound_messages where ingress = 'policy' and rcpt_to like ?").all(`%${'c'.repeat(32)}%`);
      expect(rows).toEqual([{ rcpt_to: JSON.stringify(dead) }]);
    } finally {
      client.close();
    }
  });

  it('records the refusals of one Postfix transaction (its instance) in one row', async () => {
    const client = await PolicyClient.open(server.ports.policy as number);
    try {
      const dead = [template.format('e'.repeat(32)), template.format('d'.repeat(32))];
      for (const recipient of dead) expect(await client.ask(request({ recipient, instance: 'tx-42' }))).toMatch(/^action=REJECT /);
      const rows = server.store.sqlite
        .prepare("select id, ingress, remote_address, helo, mail_from, rcpt_to, status, reason_code from inbound_messages where ingress = 'policy' and rcpt_to like ?")
        .all(`%${'e'.repeat(32)}%`) as { id: number; rcpt_to: string }[];
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        ingress: 'policy',
        remote_address: '192.0.2.44',
        helo: 'mx.sender.test',
        mail_from: 'someone@sender.test',
        rcpt_to: JSON.stringify(dead),
        status: 'rejected',
        reason_code: 'rcpt.unknown_reply_key',
      });
      expect(server.repos.inbound.deliveriesOf(rows[0]!.id).map((d) => [d.recipient, d.stage, d.reasonCode])).toEqual(
        dead.map((r) => [r, 'rcpt', 'rcpt.unknown_reply_key']),
      );
    } finally {
      client.close();
    }
  });

  it('gives bad input a safe answer and goes on serving the same connection', async () => {
    const world = seedReplyWorld(server.repos);
    const good = template.format(world.key);
    const client = await PolicyClient.open(server.ports.policy as number);
    try {
      expect(await client.ask('request=smtpd_access_policy\nprotocol_state=RCPT\n\n')).toBe('action=DEFER_IF_PERMIT 4.3.5 Policy request cannot be judged: no recipient');
      expect(await client.ask(request({ recipient: good, brand_new_attribute: 'from Postfix 4.0' }))).toBe('action=DUNNO');
      expect(await client.ask(request({ recipient: `${'x'.repeat(100 * 1024)}@example.com` }))).toBe(
        'action=DEFER_IF_PERMIT 4.3.5 Policy request cannot be judged: recipient is longer than 8192 bytes',
      );
      expect(await client.ask(request({ recipient: good, ccert_subject: 'y'.repeat(100 * 1024) }))).toBe('action=DUNNO');
      expect(await client.ask(`GET / HTTP/1.1\r\nHost: x\r\n\r\n`)).toBe('action=DUNNO');
      // Binary garbage then an empty line is a request of its own, with no recipient to judge.
      expect(await client.ask(Buffer.from([0, 255, 254, 10, 13, 10]))).toBe('action=DUNNO');
      expect(await client.ask(request({ recipient: `incoming+${'\0'}bad@example.com` }))).toBe(
        "action=REJECT 5.1.1 We couldn't figure out what the email is for. Please create your issue or comment through the web interface.",
      );
      expect(await client.ask(request({ recipient: good }))).toBe('action=DUNNO');
    } finally {
      client.close();
    }
    // Garbage that never ends a line, then a hang-up: nothing to answer, and nothing breaks.
    const rude = await PolicyClient.open(server.ports.policy as number);
    rude.socket.write(Buffer.alloc(300 * 1024, 0x41));
    rude.close();
    const after = await PolicyClient.open(server.ports.policy as number);
    expect(await after.ask(request({ recipient: good }))).toBe('action=DUNNO');
    after.close();
  });

  it('defers (DEFER_IF_PERMIT) while the database cannot answer, and answers again once it can', async () => {
    const world = seedReplyWorld(server.repos);
    const client = await PolicyClient.open(server.ports.policy as number);
    // A database that fails every lookup (here: the table the reply keys live in is gone for a moment).
    server.store.sqlite.exec('ALTER TABLE sent_notifications RENAME TO sent_notifications_away');
    try {
      expect(await client.ask(request({ recipient: template.format(world.key) }))).toBe(
        'action=DEFER_IF_PERMIT 4.3.0 Temporary failure looking up the recipient, please try again later',
      );
    } finally {
      server.store.sqlite.exec('ALTER TABLE sent_notifications_away RENAME TO sent_notifications');
    }
    try {
      expect(await client.ask(request({ recipient: template.format(world.key) }))).toBe('action=DUNNO');
    } finally {
      client.close();
    }
  });
});

describe('the policy service and key guessing', () => {
  let guarded: RunningServer;
  beforeAll(async () => {
    guarded = await startServer({ INTAKE_POLICY_LISTEN: '127.0.0.1:0', INTAKE_UNKNOWN_RECIPIENT_LIMIT: '4' });
  });
  afterAll(async () => {
    await guarded?.stop();
  });

  it('counts unknown recipients by the client Postfix names: slowed, then 421 (Postfix hangs up), then 421 at once', async () => {
    const client = await PolicyClient.open(guarded.ports.policy as number);
    try {
      const guess = (i: number, address = '198.51.100.66') => request({ recipient: template.format(`${i.toString(16).padStart(32, 'c')}`), client_address: address });
      const answers: string[] = [];
      const started = Date.now();
      for (let i = 0; i < 4; i++) answers.push(await client.ask(guess(i)));
      expect(answers.slice(0, 3).every((a) => a.startsWith('action=REJECT 5.1.1 '))).toBe(true);
      expect(answers[3]).toBe('action=421 4.7.0 Too many unknown recipients from your address, try again later');
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      expect(await client.ask(request({ recipient: template.format(seedReplyWorld(guarded.repos).key), client_address: '198.51.100.66' }))).toBe(
        'action=421 4.7.0 Too many unknown recipients from your address, try again later',
      );
      expect(await client.ask(guess(9, '198.51.100.67'))).toMatch(/^action=REJECT 5\.1\.1 /);
    } finally {
      client.close();
    }
  });

  it('counts requests that name no client together: leaving client_address out is no way round the limit', async () => {
    const client = await PolicyClient.open(guarded.ports.policy as number);
    try {
      const answers: string[] = [];
      for (let i = 0; i < 4; i++) answers.push(await client.ask(request({ recipient: template.format(`${i.toString(16).padStart(32, 'd')}`), client_address: '' })));
      expect(answers.slice(0, 3).every((a) => a.startsWith('action=REJECT 5.1.1 '))).toBe(true);
      expect(answers[3]).toBe('action=421 4.7.0 Too many unknown recipients from your address, try again later');
    } finally {
      client.close();
    }
  });

  it('counts an IPv6 client by its /64, as Postfix names it: each guess from a new address of it still counts', async () => {
    const client = await PolicyClient.open(guarded.ports.policy as number);
    try {
      const answers: string[] = [];
      for (let i = 0; i < 4; i++) answers.push(await client.ask(request({ recipient: template.format(`${i.toString(16).padStart(32, 'e')}`), client_address: `2001:db8:77:1::${i + 1}` })));
      expect(answers.slice(0, 3).every((a) => a.startsWith('action=REJECT 5.1.1 '))).toBe(true);
      expect(answers[3]).toBe('action=421 4.7.0 Too many unknown recipients from your address, try again later');
      expect(await client.ask(request({ recipient: template.format('f'.repeat(32)), client_address: '2001:db8:77:1:abcd::1' }))).toBe(
        'action=421 4.7.0 Too many unknown recipients from your address, try again later',
      );
      expect(await client.ask(request({ recipient: template.format('f'.repeat(32)), client_address: '2001:db8:77:2::1' }))).toMatch(/^action=REJECT 5\.1\.1 /);
    } finally {
      client.close();
    }
  });
});
