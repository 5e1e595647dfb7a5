// Sender authentication over real SMTP, LMTP and pipe, against a DNS server on 127.0.0.1: SPF, DKIM
// and DMARC are stored with the message, and INTAKE_AUTHENTICATION=enforce refuses mail that fails
// DMARC where the From domain publishes p=reject (550 5.7.26), never mail to postmaster.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { dkimSign, type DKIMSignOptions } from 'mailauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { SmtpClient } from '../helpers/smtp-client.js';
import { CLI, startServer, template, type RunningServer } from '../helpers/server.js';

// seedReplyWorld's users write from adventuretime.ooo; its mail is sent from 127.0.0.2.
const DOMAIN = 'adventuretime.ooo';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
const dkimKey = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const REJECT = 'v=DMARC1; p=reject';

let dns: TestDnsServer;
let enforcing: RunningServer;
let recording: RunningServer;
let off: RunningServer;
beforeAll(async () => {
  dns = await startDnsServer({
    [DOMAIN]: { TXT: ['v=spf1 ip4:127.0.0.2 -all'] },
    [`sel._domainkey.${DOMAIN}`]: { TXT: [`v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`] },
    [`_dmarc.${DOMAIN}`]: { TXT: [REJECT] },
  });
  // 127.0.0.3 plays a trusted relay.
  const auth = { INTAKE_DNS_SERVERS: dns.address, INTAKE_DNS_TIMEOUT_MS: '1000', INTAKE_LMTP_LISTEN: '127.0.0.1:0', INTAKE_TRUSTED_RELAYS: '127.0.0.3' };
  [enforcing, recording, off] = await Promise.all([
    startServer({ ...auth, INTAKE_AUTHENTICATION: 'enforce' }),
    startServer({ ...auth, INTAKE_AUTHENTICATION: 'record' }),
    startServer(auth),
  ]);
});
afterAll(async () => {
  await Promise.all([enforcing?.stop(), recording?.stop(), off?.stop()]);
  await dns?.close();
});

interface Sent {
  line: string;
  id: number;
}

async function signed(message: string): Promise<string> {
  // mailauth 4 reads signatureData, where its type declarations say the fields sit at the top level.
  const options = { signatureData: [{ signingDomain: DOMAIN, selector: 'sel', privateKey: dkimKey }] } as unknown as DKIMSignOptions;
  const { signatures } = await dkimSign(message, options);
  return signatures + message;
}

/** One message over SMTP from the given local address; returns the DATA reply and the row it made. */
async function send(server: RunningServer, options: { from: string; to: string; message: string; localAddress?: string; lmtp?: boolean }): Promise<Sent> {
  const { client } = await SmtpClient.connect(options.lmtp ? (server.ports.lmtp as number) : server.port, { localAddress: options.localAddress ?? '127.0.0.2' });
  try {
    await client.command(options.lmtp ? 'LHLO relay.test' : 'EHLO mail.adventuretime.ooo');
    expect((await client.command(`MAIL FROM:<${options.from}>`)).code).toBe(250);
    expect((await client.command(`RCPT TO:<${options.to}>`)).code).toBe(250);
    const [, data] = await client.data(options.message.replace(/\r?\n/g, '\r\n'));
    return { line: data.line, id: Number(/inbound message (\d+)/.exec(data.line)?.[1] ?? latestId(server)) };
  } finally {
    await client.quit();
  }
}

const latestId = (server: RunningServer) => (server.store.sqlite.prepare('select max(id) as id from inbound_messages').get() as { id: number }).id;
const row = (server: RunningServer, id: number) =>
  server.store.sqlite.prepare('select status, reason_code, reason, spf, dkim, dmarc, authentication_results as results, remote_address from inbound_messages where id = ?').get(id) as Record<string, string | null>;
const notes = (server: RunningServer, issueId: number) => (server.store.sqlite.prepare("select count(*) as n from notes where noteable_type = 'Issue' and noteable_id = ?").get(issueId) as { n: number }).n;

function reply(server: RunningServer, body: string) {
  const world = seedReplyWorld(server.repos);
  const to = template.format(world.key);
  return { world, to, message: replyMessage({ from: world.user.email, to, body }) };
}

describe('INTAKE_AUTHENTICATION=enforce', () => {
  it('takes mail whose SPF passes, and records SPF, DKIM and DMARC with an Authentication-Results', async () => {
    const { world, to, message } = reply(enforcing, 'Mailed from an address SPF allows.');
    const sent = await send(enforcing, { from: world.user.email, to, message });
    expect(sent.line).toMatch(/^250 2\.6\.0 /);
    expect(row(enforcing, sent.id)).toMatchObject({ status: 'processed', spf: 'pass', dkim: 'none', dmarc: 'pass', remote_address: '127.0.0.2' });
    const results = row(enforcing, sent.id).results as string;
    expect(results).toMatch(/^intake\.test; dkim=none \(message not signed\); spf=pass .*smtp\.mailfrom=jake\d+@adventuretime\.ooo smtp\.helo=mail\.adventuretime\.ooo; dmarc=pass \(p=REJECT\) header\.from=adventuretime\.ooo/);
    expect(notes(enforcing, world.issue.id)).toBe(1);
  });

  it('takes mail from an address SPF refuses when an aligned DKIM signature verifies', async () => {
    const { world, to, message } = reply(enforcing, 'Signed, from elsewhere.');
    const sent = await send(enforcing, { from: world.user.email, to, message: await signed(message), localAddress: '127.0.0.1' });
    expect(sent.line).toMatch(/^250 2\.6\.0 /);
    expect(row(enforcing, sent.id)).toMatchObject({ status: 'processed', spf: 'fail', dkim: 'pass', dmarc: 'pass' });
    expect(row(enforcing, sent.id).results).toContain('dkim=pass header.i=@adventuretime.ooo header.s=sel');
    expect(notes(enforcing, world.issue.id)).toBe(1);
  });

  it('refuses with 550 5.7.26 mail that fails DMARC under p=reject: unsigned from elsewhere, or altered after signing; stored, nothing created', async () => {
    const unsigned = reply(enforcing, 'Forged.');
    const altered = reply(enforcing, 'Signed, then changed.');
    const tampered = (await signed(altered.message)).replace('Signed, then changed.', 'Signed, then CHANGED.');
    for (const [world, to, message] of [
      [unsigned.world, unsigned.to, unsigned.message],
      [altered.world, altered.to, tampered],
    ] as const) {
      const sent = await send(enforcing, { from: world.user.email, to, message, localAddress: '127.0.0.1' });
      expect(sent.line).toBe('550 5.7.26 Unauthenticated mail from this domain is not accepted due to its DMARC policy');
      expect(row(enforcing, latestId(enforcing))).toMatchObject({
        status: 'rejected',
        reason_code: 'data.dmarc_reject',
        reason: `Unauthenticated mail from this domain is not accepted due to its DMARC policy (${DOMAIN})`,
        spf: 'fail',
        dmarc: 'fail',
      });
      expect(notes(enforcing, world.issue.id)).toBe(0);
    }
    // mailauth's word for a body changed after signing (RFC 6376 6.3 leaves it to the verifier).
    expect(row(enforcing, latestId(enforcing))).toMatchObject({ dkim: 'neutral', results: expect.stringContaining('dkim=neutral (body hash did not verify)') });
  });

  it('keeps such mail when it is for postmaster', async () => {
    const { world, message } = reply(enforcing, 'For the postmaster.');
    const sent = await send(enforcing, { from: world.user.email, to: 'postmaster@example.com', message, localAddress: '127.0.0.1' });
    expect(sent.line).toMatch(/^250 2\.6\.0 Message for the postmaster accepted and kept/);
    expect(row(enforcing, sent.id)).toMatchObject({ status: 'ignored', reason_code: 'data.postmaster', dmarc: 'fail' });
  });

  it('takes mail that fails under p=quarantine, or under p=reject for a sample (pct below 100), recording the failure', async () => {
    try {
      for (const policy of ['v=DMARC1; p=quarantine', 'v=DMARC1; p=reject; pct=50']) {
        dns.set(`_dmarc.${DOMAIN}`, { TXT: [policy] });
        const { world, to, message } = reply(enforcing, `Under ${policy}.`);
        const sent = await send(enforcing, { from: world.user.email, to, message, localAddress: '127.0.0.1' });
        expect(sent.line).toMatch(/^250 2\.6\.0 /);
        expect(row(enforcing, sent.id)).toMatchObject({ status: 'processed', spf: 'fail', dmarc: 'fail' });
        expect(notes(enforcing, world.issue.id)).toBe(1);
      }
    } finally {
      dns.set(`_dmarc.${DOMAIN}`, { TXT: [REJECT] });
    }
  });

  it('takes the message when DNS does not answer, recording temperror, within INTAKE_DNS_TIMEOUT_MS', async () => {
    const { world, to, message } = reply(enforcing, 'While DNS is down.');
    dns.silent = true;
    const started = Date.now();
    let sent: Sent;
    try {
      sent = await send(enforcing, { from: world.user.email, to, message, localAddress: '127.0.0.1' });
    } finally {
      dns.silent = false;
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(sent.line).toMatch(/^250 2\.6\.0 /);
    expect(row(enforcing, sent.id)).toMatchObject({ status: 'processed', spf: 'temperror', dkim: 'temperror', dmarc: 'temperror', results: 'intake.test; none (DNS did not answer within 1000 ms)' });
  });

  it('defers with 451 4.7.0 a check that did not finish while the author domain is known to reject', async () => {
    const { world, to, message } = reply(enforcing, 'Signed by keys that never come.');
    // Two signatures whose body hash is right, so that their keys are asked for, one after the other.
    const crlf = message.replace(/\r?\n/g, '\r\n');
    const bh = createHash('sha256').update(crlf.slice(crlf.indexOf('\r\n\r\n') + 4)).digest('base64');
    const signature = (selector: string) => `DKIM-Signature: v=1; a=rsa-sha256; c=simple/simple; d=${DOMAIN}; s=${selector}; h=from; bh=${bh}; b=AAAA\r\n`;
    for (const selector of ['gone1', 'gone2']) dns.unanswered.add(`${selector}._domainkey.${DOMAIN}`);
    try {
      const sent = await send(enforcing, { from: world.user.email, to, message: signature('gone1') + signature('gone2') + crlf, localAddress: '127.0.0.1' });
      expect(sent.line).toBe('451 4.7.0 Could not check who sent the message in time, please try again later');
    } finally {
      dns.unanswered.clear();
    }
    const id = latestId(enforcing);
    expect(row(enforcing, id)).toMatchObject({ status: 'rejected', reason_code: 'data.authentication_unfinished', reason: `Could not check who sent the message in time, please try again later (${DOMAIN})`, dmarc: 'temperror' });
    // Its sender has it and sends it again: nothing of it is kept.
    expect(enforcing.repos.inbound.rawOf(id)).toBeNull();
    expect(notes(enforcing, world.issue.id)).toBe(0);
  });

  it('does not judge a relay by SPF, nor refuse for want of it: over LMTP without XFORWARD, only DKIM counts', async () => {
    const { world, to, message } = reply(enforcing, 'Through a relay.');
    const sent = await send(enforcing, { from: world.user.email, to, message: await signed(message), lmtp: true });
    expect(sent.line).toMatch(/^250 2\.6\.0 /);
    expect(row(enforcing, sent.id)).toMatchObject({ status: 'processed', spf: null, dkim: 'pass', dmarc: 'pass' });
    // Unsigned, DMARC fails; but the domain may send with SPF alone, which could not be asked.
    const unsigned = reply(enforcing, 'Through a relay, unsigned.');
    const taken = await send(enforcing, { from: unsigned.world.user.email, to: unsigned.to, message: unsigned.message, lmtp: true });
    expect(taken.line).toMatch(/^250 2\.6\.0 /);
    expect(row(enforcing, taken.id)).toMatchObject({ status: 'processed', spf: null, dkim: 'none', dmarc: 'fail' });
  });

  /** One message through a trusted relay (127.0.0.3), which names the client with XFORWARD when given. */
  async function relayed(lmtp: boolean, body: string, client?: string): Promise<{ line: string; issueId: number }> {
    const { world, to, message } = reply(enforcing, body);
    const { client: relay } = await SmtpClient.connect(lmtp ? (enforcing.ports.lmtp as number) : enforcing.port, { localAddress: '127.0.0.3' });
    try {
      await relay.command(lmtp ? 'LHLO relay.test' : 'EHLO relay.test');
      if (client) expect((await relay.command(`XFORWARD ADDR=${client} HELO=mail.adventuretime.ooo`)).code).toBe(250);
      await relay.command(`MAIL FROM:<${world.user.email}>`);
      await relay.command(`RCPT TO:<${to}>`);
      const [, data] = await relay.data(message.replace(/\r?\n/g, '\r\n'));
      return { line: data.line, issueId: world.issue.id };
    } finally {
      await relay.quit();
    }
  }

  it('judges the client a trusted relay names with XFORWARD, and not the relay itself when it names none', async () => {
    for (const lmtp of [true, false]) {
      expect((await relayed(lmtp, `Relayed for 127.0.0.2 (${lmtp ? 'LMTP' : 'SMTP'}).`, '127.0.0.2')).line).toMatch(/^250 2\.6\.0 /);
      expect(row(enforcing, latestId(enforcing))).toMatchObject({ status: 'processed', spf: 'pass', dmarc: 'pass', remote_address: '127.0.0.2' });
    }
    // The trusted relay over SMTP, naming no client: its own address is not the sender's, so no SPF.
    expect((await relayed(false, 'Relayed, no client named.')).line).toMatch(/^250 2\.6\.0 /);
    expect(row(enforcing, latestId(enforcing))).toMatchObject({ status: 'processed', spf: null, dkim: 'none', dmarc: 'fail', remote_address: '127.0.0.3' });
  });

  it('ignores, rather than refuses, a forgery a relay passed on: a refusal would make the relay bounce it to the forged sender', async () => {
    for (const lmtp of [true, false]) {
      const sent = await relayed(lmtp, `Forged, relayed (${lmtp ? 'LMTP' : 'SMTP'}).`, '127.0.0.1');
      expect(sent.line).toMatch(/^250 2\.6\.0 Unauthenticated mail accepted and ignored/);
      expect(row(enforcing, latestId(enforcing))).toMatchObject({
        status: 'ignored',
        reason_code: 'data.unauthenticated',
        reason: `Unauthenticated mail accepted and ignored (DMARC p=reject: ${DOMAIN})`,
        spf: 'fail',
        dmarc: 'fail',
        remote_address: '127.0.0.1',
      });
      expect(notes(enforcing, sent.issueId)).toBe(0);
    }
  });

  it('refuses a forgery a proxy in front passed on with XCLIENT: the proxy hands the refusal to the client itself', async () => {
    const { world, to, message } = reply(enforcing, 'Forged, through a proxy.');
    const { client } = await SmtpClient.connect(enforcing.port, { localAddress: '127.0.0.3' });
    try {
      await client.command('EHLO proxy.test');
      expect((await client.command('XCLIENT ADDR=127.0.0.1 HELO=mail.adventuretime.ooo')).code).toBe(220);
      await client.command('EHLO proxy.test');
      await client.command(`MAIL FROM:<${world.user.email}>`);
      await client.command(`RCPT TO:<${to}>`);
      const [, data] = await client.data(message.replace(/\r?\n/g, '\r\n'));
      expect(data.line).toBe('550 5.7.26 Unauthenticated mail from this domain is not accepted due to its DMARC policy');
    } finally {
      await client.quit();
    }
    expect(row(enforcing, latestId(enforcing))).toMatchObject({ status: 'rejected', reason_code: 'data.dmarc_reject', spf: 'fail', remote_address: '127.0.0.1' });
  });

  it('refuses with 552 5.3.4 a header too long to check (over 4,000 lines), which record takes as permerror', async () => {
    const long = Array.from({ length: 4_100 }, (_, i) => `X-Trace-${i}: hop`);
    for (const [server, expected] of [
      [enforcing, { line: /^552 5\.3\.4 Message header too long to check who sent it$/, status: 'rejected', reason_code: 'data.header_too_long' }],
      [recording, { line: /^250 2\.6\.0 /, status: 'processed', reason_code: null }],
    ] as const) {
      const world = seedReplyWorld(server.repos);
      const to = template.format(world.key);
      const message = replyMessage({ from: world.user.email, to, body: 'A long header.', headers: long });
      const sent = await send(server, { from: world.user.email, to, message });
      expect(sent.line).toMatch(expected.line);
      expect(row(server, latestId(server))).toMatchObject({ status: expected.status, reason_code: expected.reason_code, spf: 'pass', dkim: 'permerror', dmarc: 'permerror' });
    }
    expect(row(enforcing, latestId(enforcing)).reason).toBe('Message header too long to check who sent it (4105 lines, over 4000)');
  });

  it('refuses with 550 5.7.1 a message with two From fields (data.multiple_from), whichever is the real one', async () => {
    const { world, to } = reply(enforcing, 'unused');
    const message = replyMessage({ from: world.user.email, to, body: 'Two authors.', headers: ['From: someone@elsewhere.example'] });
    const sent = await send(enforcing, { from: world.user.email, to, message });
    expect(sent.line).toBe('550 5.7.1 Message with more than one From field not accepted');
    expect(row(enforcing, latestId(enforcing))).toMatchObject({ status: 'rejected', reason_code: 'data.multiple_from', reason: 'Message with more than one From field not accepted (2 From fields)', spf: 'pass', dkim: 'permerror' });
  });

  it('leaves a refused message alone on reprocess: running it again would make the forgery', async () => {
    const { world, to, message } = reply(enforcing, 'Forged, then reprocessed.');
    expect((await send(enforcing, { from: world.user.email, to, message, localAddress: '127.0.0.1' })).line).toMatch(/^550 5\.7\.26 /);
    const id = latestId(enforcing);
    const result = spawnSync(process.execPath, [CLI, 'reprocess', String(id)], { env: enforcing.env, encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`inbound message ${id} has nothing to reprocess`);
    expect(row(enforcing, id)).toMatchObject({ status: 'rejected', reason_code: 'data.dmarc_reject' });
    expect(notes(enforcing, world.issue.id)).toBe(0);
  });
});

describe('INTAKE_AUTHENTICATION=record and off', () => {
  it('record stores the failure and takes the message', async () => {
    const { world, to, message } = reply(recording, 'Forged, but only recorded.');
    const sent = await send(recording, { from: world.user.email, to, message, localAddress: '127.0.0.1' });
    expect(sent.line).toMatch(/^250 2\.6\.0 /);
    expect(row(recording, sent.id)).toMatchObject({ status: 'processed', spf: 'fail', dkim: 'none', dmarc: 'fail' });
    expect(notes(recording, world.issue.id)).toBe(1);
  });

  it('off (the default) asks DNS nothing and leaves the columns empty', async () => {
    const before = dns.queries.length;
    const { world, to, message } = reply(off, 'Not checked.');
    const sent = await send(off, { from: world.user.email, to, message, localAddress: '127.0.0.1' });
    expect(sent.line).toMatch(/^250 2\.6\.0 /);
    expect(row(off, sent.id)).toMatchObject({ status: 'processed', spf: null, dkim: null, dmarc: null, results: null });
    expect(dns.queries.length).toBe(before);
  });
});

describe('intake deliver', () => {
  function deliver(server: RunningServer, args: string[], input: string): Promise<{ status: number | null; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI, 'deliver', ...args], { env: server.env });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      child.on('close', (status) => resolve({ status, stderr }));
      child.stdin.on('error', () => undefined);
      child.stdin.end(input);
    });
  }

  it('judges the client named by --client-address and --client-helo, and ignores a forgery (0: no bounce)', async () => {
    const good = reply(enforcing, 'Piped from an allowed client.');
    const passed = await deliver(enforcing, ['--to', good.to, '--from', good.world.user.email, '--client-address', '127.0.0.2', '--client-helo', 'mail.adventuretime.ooo'], good.message);
    expect(passed.status).toBe(0);
    expect(row(enforcing, latestId(enforcing))).toMatchObject({ status: 'processed', spf: 'pass', dmarc: 'pass', remote_address: '127.0.0.2' });
    // Postfix has taken it: a refusal (65) would make it bounce the forgery to the forged sender.
    const forged = reply(enforcing, 'Piped from elsewhere.');
    const ignored = await deliver(enforcing, ['--to', forged.to, '--from', forged.world.user.email, '--client-address', '127.0.0.1'], forged.message);
    expect(ignored.status).toBe(0);
    expect(ignored.stderr).toMatch(new RegExp(`^intake: ${forged.to.replace(/[+.]/g, '\\$&')}: 250 2\\.6\\.0 Unauthenticated mail accepted and ignored`));
    expect(row(enforcing, latestId(enforcing))).toMatchObject({ status: 'ignored', reason_code: 'data.unauthenticated', spf: 'fail', dmarc: 'fail' });
    expect(notes(enforcing, forged.world.issue.id)).toBe(0);
  });

  it('says which argument is wrong, and keeps the mail queued (75), for a --client-address that is no IP address', async () => {
    const { to, message } = reply(enforcing, 'Bad argument.');
    const result = await deliver(enforcing, ['--to', to, '--client-address', 'mail.example.org'], message);
    expect(result).toEqual({ status: 75, stderr: 'intake: --client-address: "mail.example.org" is not an IP address\n' });
  });
});
