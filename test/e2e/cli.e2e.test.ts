// The intake command as an operator runs it: admin commands print the rows they create, bad settings
// and bad arguments name the problem, and a message that failed is run again with `reprocess`.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newIssueKey, newMergeRequestKey, serviceDeskKey, unsubscribeKey } from '../../src/address/keys.js';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { rcptReply, sendMail, SmtpClient } from '../helpers/smtp-client.js';
import { CLI, cliEnv, ROOT, runCli, startServer, template, tempDir, type RunningServer } from '../helpers/server.js';

function run(args: string[], env: NodeJS.ProcessEnv) {
  const result = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('npx intake', () => {
  it('prints its help after npm ci (the package bin)', () => {
    const out = execFileSync('npx', ['--no-install', 'intake', '--help'], { cwd: ROOT, encoding: 'utf8', env: cliEnv({}) });
    expect(out).toContain('Usage: intake [options] [command]');
    for (const command of ['serve', 'migrate', 'check', 'deliver', 'users', 'emails', 'projects', 'members', 'issues', 'notifications', 'addresses', 'explain', 'trim', 'messages', 'stats', 'show', 'prune', 'reprocess']) {
      expect(out).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    }
  });
});

describe('configuration errors', () => {
  it('stop the program before it listens, one line per problem naming the key, exit 78', () => {
    const dir = tempDir();
    const { status, stderr, stdout } = run(['serve'], cliEnv({
      INTAKE_DATABASE: join(dir, 'db.sqlite'),
      INTAKE_SMTP_LISTEN: 'localhost',
      INTAKE_ADDRESS: 'incoming@%{key}.example.com',
      INTAKE_MAX_MESSAGE_BYTES: 'lots',
      INTAKE_LOG_LEVEL: 'loud',
      INTAKE_DATBASE: 'typo',
    }));
    expect(status).toBe(78);
    expect(stdout).toBe('');
    const lines = stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('intake: invalid configuration:');
    expect(lines.slice(1).map((l) => l.trim().split(':')[0])).toEqual([
      'INTAKE_DATBASE',
      'INTAKE_ADDRESS',
      'INTAKE_SMTP_LISTEN',
      'INTAKE_MAX_MESSAGE_BYTES',
      'INTAKE_LOG_LEVEL',
    ]);
    expect(stderr).toContain('INTAKE_ADDRESS: %{key} must be in the local part, not the domain');
  });

  it('refuses an in-memory database for serve, which needs one file for its two connections', () => {
    const { status, stderr } = run(['serve'], cliEnv({ INTAKE_DATABASE: ':memory:', INTAKE_SMTP_LISTEN: '127.0.0.1:0' }));
    expect(status).toBe(78);
    expect(stderr).toBe('intake: serve needs a database file: INTAKE_DATABASE=:memory: would give each of its two connections a database of its own\n');
  });

  it('stops serve with exit 78 on an IMAP password file it cannot read, or an empty one', () => {
    const dir = tempDir();
    const imap = { INTAKE_DATABASE: join(dir, 'db.sqlite'), INTAKE_SMTP_LISTEN: '', INTAKE_IMAP_HOST: '127.0.0.1', INTAKE_IMAP_USER: 'intake' };
    const missing = run(['serve'], cliEnv({ ...imap, INTAKE_IMAP_PASSWORD_FILE: join(dir, 'missing') }));
    expect(missing.status).toBe(78);
    expect(missing.stderr).toMatch(new RegExp(`^intake: invalid configuration:\n  INTAKE_IMAP_PASSWORD_FILE: cannot read ${join(dir, 'missing')}: ENOENT`));
    writeFileSync(join(dir, 'empty'), '\n');
    const empty = run(['serve'], cliEnv({ ...imap, INTAKE_IMAP_PASSWORD_FILE: join(dir, 'empty') }));
    expect(empty.status).toBe(78);
    expect(empty.stderr).toBe(`intake: invalid configuration:\n  INTAKE_IMAP_PASSWORD_FILE: ${join(dir, 'empty')} is empty\n`);
  });

  it('reads a YAML or JSON config file, the environment winning', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'intake.yaml'), `database: ${join(dir, 'from-file.sqlite')}\nsmtp_listen: 127.0.0.1:0\naddress: reply+%{key}@mail.example.org\nservice_desk_address: contact+%{key}@mail.example.org\n`);
    writeFileSync(join(dir, 'intake.json'), JSON.stringify({ smtp_listen: 'nonsense' }));
    const yaml = run(['--config', join(dir, 'intake.yaml'), '--json', 'check'], cliEnv({ INTAKE_ADDRESS: 'incoming+%{key}@env.example.org' }));
    expect(yaml.status).toBe(0);
    const checks = JSON.parse(yaml.stdout) as { check: string; ok: boolean; detail: string }[];
    expect(checks.every((c) => c.ok)).toBe(true);
    expect(checks.map((c) => c.check)).toEqual(['config', 'database', 'disk', 'smtp_listen']);
    expect(checks[0]?.detail).toBe('address incoming+%{key}@env.example.org, Service Desk alias contact+%{key}@mail.example.org');
    expect(checks[1]?.detail).toContain('from-file.sqlite');
    expect(checks[2]?.detail).toMatch(/^\d+\.\d MB free for the database, 37\.5 MB kept \(INTAKE_MIN_FREE_BYTES\)$/);
    expect(checks[3]?.detail).toBe('127.0.0.1:0 is free');
    const json = run(['--config', join(dir, 'intake.json'), 'check'], cliEnv({}));
    expect(json.status).toBe(1);
    expect(json.stdout).toContain(`FAIL  config: ${join(dir, 'intake.json')}: smtp_listen: expected HOST:PORT`);
  });

  it('reads a systemd environment file, so the service and `intake deliver` share one file', () => {
    const dir = tempDir();
    const file = join(dir, 'intake.env');
    writeFileSync(file, `# comment\n\nINTAKE_DATABASE="${join(dir, 'env-file.sqlite')}"\nINTAKE_SMTP_LISTEN=127.0.0.1:0\nINTAKE_LMTP_LISTEN='127.0.0.1:0'\n`);
    const ok = run(['--config', file, '--json', 'check'], cliEnv({}));
    expect(ok.status).toBe(0);
    const checks = JSON.parse(ok.stdout) as { check: string; detail: string }[];
    expect(checks.map((c) => c.check)).toEqual(['config', 'database', 'disk', 'smtp_listen', 'lmtp_listen']);
    expect(checks[1]?.detail).toContain('env-file.sqlite');
    writeFileSync(file, 'INTAKE_DATABSE=/tmp/x\nnot a line\n');
    const bad = run(['--config', file, 'check'], cliEnv({}));
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain(`FAIL  config: --config ${file}: line 1: INTAKE_DATABSE: unknown setting`);
    expect(bad.stdout).toContain(`FAIL  config: --config ${file}: line 2: expected INTAKE_NAME=value, the environment's upper-case names (as in deploy/intake.env)`);
  });

  it('fails when the database has less free space than it keeps, as MAIL FROM would refuse', () => {
    const dir = tempDir();
    const result = run(['--json', 'check'], cliEnv({ INTAKE_DATABASE: join(dir, 'intake.sqlite'), INTAKE_SMTP_LISTEN: '127.0.0.1:0', INTAKE_MIN_FREE_BYTES: String(2 ** 52) }));
    expect(result.status).toBe(1);
    const disk = (JSON.parse(result.stdout) as { check: string; ok: boolean; detail: string }[]).find((c) => c.check === 'disk');
    expect(disk?.ok).toBe(false);
    expect(disk?.detail).toMatch(/^\d+\.\d MB free for the database, less than the 4294967296\.0 MB to keep \(INTAKE_MIN_FREE_BYTES\): MAIL FROM gets 452 4\.3\.1$/);
  });

  it('names settings that need each other', () => {
    const result = run(['check'], cliEnv({ INTAKE_SMTP_LISTEN: '', INTAKE_REQUIRE_TLS: 'yes', INTAKE_TLS_CERT_FILE: '/etc/cert.pem', INTAKE_TRUSTED_RELAYS: '10.0.0.1, 10.0.0.0/8' }));
    expect(result.status).toBe(1);
    expect(result.stdout).toContain('FAIL  config: INTAKE_TRUSTED_RELAYS: "10.0.0.0/8" is not an IP address');
    const cross = run(['check'], cliEnv({ INTAKE_SMTP_LISTEN: '', INTAKE_REQUIRE_TLS: 'yes', INTAKE_TLS_CERT_FILE: '/etc/cert.pem' }));
    expect(cross.stdout.trim().split('\n')).toEqual(['FAIL  config: INTAKE_TLS_KEY_FILE: TLS needs both a certificate and a key file']);
  });

  it('takes a configuration with no listener for intake deliver (a pipe), which serve refuses, naming the setting', async () => {
    const dir = tempDir();
    const env = cliEnv({ INTAKE_DATABASE: join(dir, 'intake.sqlite'), INTAKE_SMTP_LISTEN: '' });
    const checked = run(['check'], env);
    expect(checked.status).toBe(0);
    expect(checked.stdout).toContain('ok    listeners: none, as for intake deliver alone; intake serve needs a listener or a fetcher\n');
    const delivered = spawnSync(process.execPath, [CLI, 'deliver', '--to', 'postmaster'], { env, input: 'From: someone@client.test\r\nSubject: Hello\r\n\r\nFor the postmaster.\r\n', encoding: 'utf8' });
    expect({ status: delivered.status, stderr: delivered.stderr }).toEqual({ status: 0, stderr: expect.stringMatching(/^intake: postmaster: 250 2\.6\.0 Message for the postmaster accepted and kept/) });
    expect(run(['stats'], env).status).toBe(0);
    const served = run(['serve'], env);
    expect(served.status).toBe(78);
    expect(served.stderr).toBe('intake: invalid configuration:\n  INTAKE_SMTP_LISTEN: every listener is empty; set at least one of INTAKE_SMTP_LISTEN, INTAKE_LMTP_LISTEN, INTAKE_SMTPS_LISTEN, INTAKE_POLICY_LISTEN (or fetch with INTAKE_IMAP_HOST or INTAKE_GRAPH_USER)\n');
  });

  it('check reports a port in use, and serve refuses to start on it or on a file that is not a database', async () => {
    const server = await startServer({ INTAKE_POLICY_LISTEN: '127.0.0.1:0' });
    // Another program on a port intake is configured for: a check must not mistake it for intake.
    const other = createServer((socket) => socket.end('220 mx.example.org ESMTP Postfix\r\n'));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const otherPort = (other.address() as AddressInfo).port;
    try {
      const busy = run(['serve'], { ...server.env, INTAKE_SMTP_LISTEN: `127.0.0.1:${server.port}`, INTAKE_DATABASE: join(tempDir(), 'other.sqlite') });
      expect(busy.status).toBe(1);
      expect(busy.stderr).toBe(`intake: cannot listen for SMTP on 127.0.0.1:${server.port}: listen EADDRINUSE: address already in use 127.0.0.1:${server.port}\n`);
      const notDb = join(tempDir(), 'notes.txt');
      writeFileSync(notDb, 'these are not the tables you are looking for\n'.repeat(100));
      const bad = run(['serve'], { ...server.env, INTAKE_SMTP_LISTEN: '127.0.0.1:0', INTAKE_DATABASE: notDb });
      expect(bad.status).toBe(1);
      expect(bad.stderr).toBe(`intake: cannot open the database ${notDb}: file is not a database\n`);
      // A folder the file system will not make (Node's recursive mkdir spun on it for ever): a clean error.
      const unmakeable = spawnSync(process.execPath, [CLI, 'serve'], { env: { ...server.env, INTAKE_SMTP_LISTEN: '127.0.0.1:0', INTAKE_DATABASE: '/proc/intake-nope/intake.sqlite' }, encoding: 'utf8', timeout: 15_000 });
      expect({ status: unmakeable.status, stderr: unmakeable.stderr }).toEqual({
        status: 1,
        stderr: "intake: cannot open the database /proc/intake-nope/intake.sqlite: ENOENT: no such file or directory, mkdir '/proc/intake-nope'\n",
      });
      // Not spawnSync: the other program lives in this process and must answer meanwhile.
      const result = await runCli(['check'], {
        ...server.env,
        INTAKE_SMTP_LISTEN: `127.0.0.1:${server.port}`,
        INTAKE_LMTP_LISTEN: `127.0.0.1:${otherPort}`,
        INTAKE_POLICY_LISTEN: `127.0.0.1:${server.ports.policy}`,
      });
      expect(result.stdout).toContain(`ok    policy_listen: 127.0.0.1:${server.ports.policy} is in use, answered: action=DUNNO\n`);
      const notPolicy = await runCli(['check'], { ...server.env, INTAKE_SMTP_LISTEN: '', INTAKE_POLICY_LISTEN: `127.0.0.1:${otherPort}` });
      expect(notPolicy.stdout).toContain(`FAIL  policy_listen: 127.0.0.1:${otherPort} is in use by another program, which answers: 220 mx.example.org ESMTP Postfix\n`);
      expect(result.status).toBe(1);
      expect(result.stdout).toMatch(/^ok {4}config: /m);
      expect(result.stdout).toMatch(/^ok {4}database: .* is writable and migrated$/m);
      expect(result.stdout).toContain(`ok    smtp_listen: 127.0.0.1:${server.port} is in use, answered: 220 intake.test ESMTP intake\n`);
      expect(result.stdout).toContain(`FAIL  lmtp_listen: 127.0.0.1:${otherPort} is in use by another program, which answers: 220 mx.example.org ESMTP Postfix\n`);
    } finally {
      other.close();
      await server.stop();
    }
  });
});

describe('admin commands', () => {
  let env: NodeJS.ProcessEnv;
  beforeAll(() => {
    env = cliEnv({ INTAKE_DATABASE: join(tempDir(), 'nested', 'intake.sqlite'), INTAKE_ADDRESS: 'incoming+%{key}@mail.example.org', INTAKE_HOSTNAME: 'tracker.example.org' });
  });

  it('create users, projects, members, issues and notifications, printing each row', () => {
    expect(run(['migrate'], env).status).toBe(0);
    const user = run(['--json', 'users', 'add', '--username', 'alice', '--email', 'alice@example.com', '--name', 'Alice'], env);
    expect(user.status).toBe(0);
    expect(JSON.parse(user.stdout)).toMatchObject({ id: 1, username: 'alice', name: 'Alice', email: 'alice@example.com', state: 'active', incoming_email_token: expect.stringMatching(/^glimt-[0-9a-z]+$/) });
    expect(run(['projects', 'add', '--path', 'acme/widgets', '--visibility', 'internal'], env).stdout).toMatch(/^path\s+acme\/widgets$/m);
    expect(run(['members', 'add', '--project', 'acme/widgets', '--user', 'alice', '--access-level', 'developer'], env).stdout).toMatch(/^access_level\s+30$/m);
    expect(run(['emails', 'add', '--user', 'alice', '--email', 'alice@home.example', '--unverified'], env).stdout).toMatch(/^verified\s+false$/m);
    expect(run(['issues', 'add', '--project', 'acme/widgets', '--author', 'alice', '--title', 'Squeaks'], env).stdout).toMatch(/^iid\s+1$/m);
    expect(run(['merge-requests', 'add', '--project', 'acme/widgets', '--author', 'alice', '--title', 'Oil', '--source-branch', 'oil'], env).stdout).toMatch(/^target_branch\s+main$/m);
    // Into the project's default branch, as a merge request by email goes, unless told otherwise.
    expect(run(['projects', 'add', '--path', 'acme/gears', '--default-branch', 'develop'], env).status).toBe(0);
    expect(run(['merge-requests', 'add', '--project', 'acme/gears', '--author', 'alice', '--title', 'Grease', '--source-branch', 'grease'], env).stdout).toMatch(/^target_branch\s+develop$/m);
    expect(run(['merge-requests', 'add', '--project', 'acme/gears', '--author', 'alice', '--title', 'Tar', '--source-branch', 'tar', '--target-branch', 'stable'], env).stdout).toMatch(/^target_branch\s+stable$/m);
    const notification = JSON.parse(run(['--json', 'notifications', 'add', '--project', 'acme/widgets', '--recipient', 'alice', '--issue', '1'], env).stdout) as Record<string, string>;
    expect(notification.reply_key).toMatch(/^1-[0-9a-z]{25}-1$/);
    expect(notification.reply_address).toBe(`incoming+${notification.reply_key}@mail.example.org`);
    expect(notification.message_id).toBe(`<reply-${notification.reply_key}@tracker.example.org>`);
    expect(JSON.parse(run(['--json', 'notifications', 'add', '--project', 'acme/widgets', '--recipient', 'alice', '--merge-request', '1'], env).stdout)).toMatchObject({ noteable_type: 'MergeRequest' });
    // Service Desk's own notifications: to the Support Bot, made once (named support-bot-2: a person has support-bot).
    expect(run(['users', 'add', '--username', 'support-bot', '--email', 'sb@example.com'], env).status).toBe(0);
    expect(run(['projects', 'add', '--path', 'acme/desk', '--service-desk'], env).status).toBe(0);
    expect(run(['issues', 'add', '--project', 'acme/desk', '--author', 'alice', '--title', 'A request'], env).status).toBe(0);
    const bot = [1, 2].map(() => JSON.parse(run(['--json', 'notifications', 'add', '--project', 'acme/desk', '--support-bot', '--issue', '1'], env).stdout) as { recipient_id: number });
    expect(bot[0]!.recipient_id).toBe(bot[1]!.recipient_id);
    expect(bot[0]!.recipient_id).not.toBe(1);
    expect(run(['addresses', '--project', 'acme/desk', '--user', 'support-bot-2'], env)).toMatchObject({ status: 1, stdout: '', stderr: "intake: support-bot-2 is GitLab's Support Bot: it has no addresses of its own\n" });
  });

  it('register tokens and reply keys minted elsewhere, print addresses, and explain a message without storing it', () => {
    expect(run(['users', 'add', '--username', 'bob', '--email', 'bob@example.com', '--incoming-email-token', 'tracker_token_1'], env).stdout).toMatch(/^incoming_email_token\s+tracker_token_1$/m);
    expect(run(['members', 'add', '--project', 'acme/widgets', '--user', 'bob', '--access-level', '30'], env).status).toBe(0);
    const key = '0123456789abcdef0123456789abcdef';
    expect(run(['notifications', 'add', '--project', 'acme/widgets', '--recipient', 'bob', '--issue', '1', '--reply-key', key], env).stdout).toMatch(new RegExp(`^reply_address\\s+incoming\\+${key}@mail\\.example\\.org$`, 'm'));
    expect(run(['addresses', '--project', 'acme/widgets', '--user', 'bob', '--issue', '1'], env).stdout).toBe(
      'new issue             incoming+acme-widgets-1-tracker_token_1-issue@mail.example.org\n' +
        'new merge request     incoming+acme-widgets-1-tracker_token_1-merge-request@mail.example.org\n' +
        'comment on #1         incoming+acme-widgets-1-tracker_token_1-issue-1@mail.example.org\n',
    );
    // No Service Desk and no --user: nothing to print, and a line on stderr says why.
    expect(run(['addresses', '--project', 'acme/widgets'], env)).toEqual({
      status: 0,
      stdout: '',
      stderr: "acme/widgets has no Service Desk; give --user for a user's new issue and new merge request addresses\n",
    });
    const eml = join(tempDir(), 'reply.eml');
    // The first id is a notification's from before INTAKE_HOSTNAME changed: named, never routed.
    writeFileSync(eml, `From: bob@example.com\nTo: incoming@mail.example.org\nReferences: <reply-${key}@old-tracker.example.org> <reply-${key}@tracker.example.org>\nSubject: Re\n\nLooks right.\n\n> quoted\n`);
    const explained = run(['explain', eml], env);
    expect(explained.status).toBe(0);
    expect(explained.stdout).toContain('recipient incoming@mail.example.org');
    expect(explained.stdout).toContain(`header References: reply-${key}@old-tracker.example.org: skipped (host is not INTAKE_HOSTNAME tracker.example.org)`);
    expect(explained.stdout).toContain(`header References: reply-${key}@tracker.example.org key ${key}: won: reply`);
    expect(explained.stdout).toContain('    | Looks right.');
    expect(explained.stdout).toMatch(/^DATA reply: 250 2\.6\.0 Message accepted as inbound message \d+$/m);
    const json = JSON.parse(run(['--json', 'explain', eml, '--to', 'incoming+nope@mail.example.org'], env).stdout) as { recipients: { rcpt: string }[] };
    expect(json.recipients[0]?.rcpt).toBe("550 5.1.1 We couldn't figure out what the email is for. Please create your issue or comment through the web interface.");
    expect(JSON.parse(run(['--json', 'messages'], env).stdout)).toEqual([]);
  });

  it('trim prints the reply or the part cut off', () => {
    const input = 'Yes.\n\nOn Mon, Bob wrote:\n> question';
    const trim = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { env, input, encoding: 'utf8' }).stdout;
    expect(trim(['trim'])).toBe('Yes.\n');
    expect(trim(['trim', '--elided'])).toBe('On Mon, Bob wrote:\n> question\n');
    expect(JSON.parse(trim(['--json', 'trim']))).toEqual({ reply: 'Yes.', elided: 'On Mon, Bob wrote:\n> question' });
  });

  it('ends quietly, exit 0, when whatever reads its output goes away (`intake show 42 | head`)', async () => {
    const child = spawn(process.execPath, [CLI, 'trim'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.stdout.once('data', () => child.stdout.destroy());
    child.stdin.end('a line of text\n'.repeat(200_000));
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  });

  it.each([
    [['notifications', 'add', '--project', 'acme/widgets', '--recipient', 'alice', '--issue', '1', '--reply-key', 'NOT-A-KEY'], "argument 'NOT-A-KEY' is invalid. must be a GitLab reply key"],
    [['projects', 'add', '--path', 'a/b', '--service-desk-key', 'Bad Key'], "argument 'Bad Key' is invalid. must be 1 to 255 of a-z 0-9 _"],
    [['users', 'add', '--username', 'alice', '--email', 'other@example.com'], 'intake: a user with username "alice" or that incoming e-mail token already exists'],
    [['users', 'add', '--username', 'bob', '--email', 'not-an-address'], `error: option '--email <address>' argument 'not-an-address' is invalid. "not-an-address" is not an e-mail address`],
    [['projects', 'add', '--path', 'a/d', '--service-desk-custom-email', 'support+x@customer.example'], 'has a + in its local part: replies go to support+x+KEY@customer.example, so the address itself must have none'],
    [['projects', 'add', '--path', 'a/d', '--service-desk-custom-email', 'nope'], `argument 'nope' is invalid. "nope" is not an e-mail address`],
    [['projects', 'add', '--path', 'nogroup'], 'intake: project path "nogroup" must look like group/project (letters, digits, _ . -)'],
    [['projects', 'add', '--path', 'a/c', '--default-branch', 'two words'], "argument 'two words' is invalid. must be a branch name git takes"],
    [['members', 'add', '--project', 'acme/widgets', '--user', 'nobody', '--access-level', '30'], 'intake: no user with username "nobody"'],
    [['members', 'add', '--project', 'acme/widgets', '--user', 'alice', '--access-level', '35'], 'must be 10 (guest), 20 (reporter), 30 (developer), 40 (maintainer) or 50 (owner)'],
    [['notifications', 'add', '--project', 'acme/widgets', '--recipient', 'alice', '--issue', '9'], 'intake: project acme/widgets has no issue #9'],
    [['notifications', 'add', '--project', 'acme/widgets', '--recipient', 'alice'], 'intake: give exactly one of --issue IID and --merge-request IID'],
    [['notifications', 'add', '--project', 'acme/widgets', '--recipient', 'alice', '--support-bot', '--issue', '1'], 'intake: give exactly one of --recipient USERNAME and --support-bot'],
    [['notifications', 'add', '--project', 'acme/widgets', '--support-bot', '--issue', '1'], 'intake: project acme/widgets has no Service Desk (projects add --service-desk)'],
    [['notifications', 'add', '--project', 'acme/widgets', '--support-bot', '--merge-request', '1'], 'intake: --support-bot is for Service Desk issues: give --issue IID'],
    [['reprocess', '999'], 'intake: no inbound message with id 999'],
  ])('refuse bad arguments with an error naming the problem: %j', (args, message) => {
    const result = run(args, env);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(message);
  });
});

describe('admin commands while another connection writes', () => {
  it('wait their turn for the write lock, as long as busy_timeout, instead of failing at once', async () => {
    const database = join(tempDir(), 'intake.sqlite');
    const env = cliEnv({ INTAKE_DATABASE: database });
    expect(run(['migrate'], env).status).toBe(0);
    expect(run(['users', 'add', '--username', 'alice', '--email', 'alice@example.com'], env).status).toBe(0);
    expect(run(['projects', 'add', '--path', 'acme/widgets'], env).status).toBe(0);
    // Another writer (as `intake serve` is, at every group commit) holds the lock for a while.
    const other = new Database(database);
    other.pragma('journal_mode = WAL');
    other.exec('BEGIN IMMEDIATE');
    other.prepare('update users set name = name where id = 1').run();
    // Each reads before it writes: a deferred transaction could not wait for the lock once it had read.
    const commands = [
      ['members', 'add', '--project', 'acme/widgets', '--user', 'alice', '--access-level', 'developer'],
      ['issues', 'add', '--project', 'acme/widgets', '--author', 'alice', '--title', 'Squeaks'],
      ['users', 'block', '--user', 'alice'],
    ];
    const started = Date.now();
    const results = commands.map((args) =>
      new Promise<{ status: number | null; stderr: string; ms: number }>((resolve) => {
        const child = spawn(process.execPath, [CLI, ...args], { env });
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
        child.on('close', (status) => resolve({ status, stderr, ms: Date.now() - started }));
      }),
    );
    setTimeout(() => {
      other.exec('COMMIT');
      other.close();
    }, 1500);
    const done = await Promise.all(results);
    expect(done.map((r) => [r.status, r.stderr])).toEqual(commands.map(() => [0, '']));
    expect(Math.min(...done.map((r) => r.ms))).toBeGreaterThan(1400);
  });
});

describe('projects set and users reset-token', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const rcpt = (address: string) => rcptReply(server.port, address, 'someone@example.net');
  const NO_PROJECT = "550 5.7.1 We couldn't find the project. Please check if there's any typo.";
  const NO_USER = "550 5.1.1 We couldn't figure out what user corresponds to the email. Please create your comment through the web interface.";

  it("turn a project's Service Desk and alias key on and off, taking effect at the running server's next RCPT", async () => {
    const env = server.env;
    expect(run(['projects', 'add', '--path', 'acme/help'], env).status).toBe(0);
    const desk = 'incoming+acme-help-1-issue-@example.com';
    const alias = 'incoming+acme-help-support@example.com';
    expect(await rcpt(desk)).toBe(NO_PROJECT);
    const on = run(['--json', 'projects', 'set', '--project', 'acme/help', '--service-desk', '--service-desk-key', 'support', '--service-desk-cc'], env);
    expect(on.status).toBe(0);
    expect(JSON.parse(on.stdout)).toMatchObject({ service_desk_enabled: true, service_desk_key: 'support', service_desk_reopen: false, service_desk_cc_participants: true, service_desk_confidential: true, visibility: 'private' });
    expect(JSON.parse(run(['--json', 'projects', 'set', '--project', 'acme/help', '--no-service-desk-confidential'], env).stdout)).toMatchObject({ service_desk_confidential: false, service_desk_cc_participants: true });
    expect(JSON.parse(run(['--json', 'projects', 'add', '--path', 'acme/open-desk', '--service-desk', '--no-service-desk-confidential'], env).stdout)).toMatchObject({ service_desk_enabled: true, service_desk_confidential: false });
    expect(await rcpt(desk)).toBe('250 2.1.5 Accepted');
    expect(await rcpt(alias)).toBe('250 2.1.5 Accepted');
    // The addresses to give out; with INTAKE_SERVICE_DESK_ADDRESS, the alias mailbox's, by the suffix.
    const withAlias = { ...env, INTAKE_SERVICE_DESK_ADDRESS: 'contact+%{key}@example.net' };
    expect(run(['addresses', '--project', 'acme/help'], withAlias).stdout).toBe(
      'service desk          incoming+acme-help-1-issue-@example.com\n' + 'service desk (suffix) incoming+acme-help-support@example.com\n' + 'service desk alias    contact+acme-help-support@example.net\n',
    );
    expect(run(['addresses', '--project', 'acme/help'], env).stdout).not.toContain('contact+');
    // A custom email, in lower case, one project's alone.
    expect(JSON.parse(run(['--json', 'projects', 'set', '--project', 'acme/help', '--service-desk-custom-email', 'Support@Customer.example'], env).stdout)).toMatchObject({ service_desk_custom_email: 'support@customer.example' });
    expect(run(['projects', 'set', '--project', 'acme/open-desk', '--service-desk-custom-email', 'support@customer.example'], env)).toMatchObject({ status: 1, stderr: 'intake: support@customer.example is already the Service Desk custom email of acme/help\n' });
    expect(run(['projects', 'add', '--path', 'acme/third', '--service-desk-custom-email', 'SUPPORT@customer.example'], env)).toMatchObject({ status: 1, stderr: 'intake: support@customer.example is already the Service Desk custom email of acme/help\n' });
    expect(JSON.parse(run(['--json', 'projects', 'set', '--project', 'acme/help', '--no-service-desk-custom-email'], env).stdout)).toMatchObject({ service_desk_custom_email: null });
    expect(JSON.parse(run(['--json', 'projects', 'set', '--project', 'acme/open-desk', '--service-desk-custom-email', 'support@customer.example'], env).stdout)).toMatchObject({ service_desk_custom_email: 'support@customer.example' });
    // Only what is given changes.
    expect(JSON.parse(run(['--json', 'projects', 'set', '--project', 'acme/help', '--no-service-desk-key'], env).stdout)).toMatchObject({ service_desk_enabled: true, service_desk_key: null, service_desk_cc_participants: true });
    expect(await rcpt(alias)).toBe(NO_PROJECT);
    expect(await rcpt(desk)).toBe('250 2.1.5 Accepted');
    expect(run(['addresses', '--project', 'acme/help'], withAlias).stdout).toContain('service desk alias    contact+acme-help-1-issue-@example.net\n');
    expect(run(['projects', 'set', '--project', 'acme/help', '--no-service-desk'], env).status).toBe(0);
    expect(await rcpt(desk)).toBe(NO_PROJECT);
    // Bad input is named.
    expect(run(['projects', 'set', '--project', 'acme/help'], env)).toMatchObject({ status: 1, stderr: 'intake: nothing to change: give at least one setting (see intake projects set --help)\n' });
    expect(run(['projects', 'set', '--project', 'acme/nope', '--service-desk'], env).stderr).toMatch(/^intake: no project/);
    expect(run(['projects', 'set', '--project', 'acme/help', '--service-desk-key', 'Bad Key'], env).stderr).toMatch(/must be 1 to \d+ of a-z 0-9 _/);
    expect(run(['projects', 'set', '--project', 'acme/help', '--default-branch', 'a..b'], env).stderr).toMatch(/must be a branch name git takes/);
    // Two paths of one slug cannot share an alias key: their alias address would be one.
    expect(run(['projects', 'add', '--path', 'acme-help/desk', '--service-desk', '--service-desk-key', 'support'], env).status).toBe(0);
    expect(run(['projects', 'add', '--path', 'acme/help-desk', '--service-desk', '--service-desk-key', 'support'], env)).toMatchObject({
      status: 1,
      stderr: 'intake: Service Desk key "support" would give acme/help-desk the alias address of acme-help/desk (acme-help-desk-support); choose another key\n',
    });
    expect(run(['projects', 'add', '--path', 'acme/help-desk', '--service-desk'], env).status).toBe(0);
    expect(run(['projects', 'set', '--project', 'acme/help-desk', '--service-desk-key', 'support'], env).status).toBe(1);
    expect(run(['projects', 'set', '--project', 'acme/help-desk', '--service-desk-key', 'helpdesk'], env).status).toBe(0);
    // Setting a project's own key again is no collision.
    expect(run(['projects', 'set', '--project', 'acme-help/desk', '--service-desk-key', 'support'], env).status).toBe(0);
  });

  it('archive a project: every address of it is refused at the next RCPT, unsubscribing aside, and mail is taken again once it is unarchived', async () => {
    const env = server.env;
    const world = seedReplyWorld(server.repos);
    expect(run(['projects', 'set', '--project', world.project.path, '--service-desk'], env).status).toBe(0);
    // A notification Service Desk sent the issue's external participants: anyone may answer it.
    const bot = JSON.parse(run(['--json', 'notifications', 'add', '--project', world.project.path, '--support-bot', '--issue', String(world.issue.iid)], env).stdout) as { reply_key: string };
    const addresses = [
      template.format(world.key),
      template.format(bot.reply_key),
      template.format(newIssueKey(world.project.path, world.project.id, world.user.incomingEmailToken)),
      template.format(newMergeRequestKey(world.project.path, world.project.id, world.user.incomingEmailToken)),
      template.format(serviceDeskKey(world.project.path, world.project.id)),
    ];
    const unsubscribe = template.format(unsubscribeKey(world.key));
    for (const address of [...addresses, unsubscribe]) expect(await rcpt(address), address).toBe('250 2.1.5 Accepted');
    const archived = run(['--json', 'projects', 'set', '--project', world.project.path, '--archived'], env);
    expect(archived.status).toBe(0);
    expect(JSON.parse(archived.stdout)).toMatchObject({ archived: true, service_desk_enabled: true });
    for (const address of addresses) expect(await rcpt(address), address).toBe('550 5.7.1 You are not allowed to perform this action. If you believe this is in error, contact a staff member.');
    expect(await rcpt(unsubscribe)).toBe('250 2.1.5 Accepted');
    const rows = server.store.sqlite.prepare("select count(*) as n from deliveries where reason_code = 'rcpt.project_archived' and recipient in (select value from json_each(?))").get(JSON.stringify(addresses)) as { n: number };
    expect(rows.n).toBe(addresses.length);
    expect(JSON.parse(run(['--json', 'projects', 'set', '--project', world.project.path, '--no-archived'], env).stdout)).toMatchObject({ archived: false });
    for (const address of addresses) expect(await rcpt(address), address).toBe('250 2.1.5 Accepted');
    // A private project's archive is not revealed to whoever may not see the project.
    const stranger = seedReplyWorld(server.repos, { accessLevel: null });
    expect(run(['projects', 'set', '--project', stranger.project.path, '--archived'], env).status).toBe(0);
    expect(await rcpt(template.format(newIssueKey(stranger.project.path, stranger.project.id, stranger.user.incomingEmailToken)))).toBe(NO_PROJECT);
  });

  it("give a user a new token: the old addresses are refused at once, the new ones taken, and a token in use is refused", async () => {
    const env = server.env;
    expect(run(['users', 'add', '--username', 'carol', '--email', 'carol@example.com', '--incoming-email-token', 'old_token'], env).status).toBe(0);
    expect(run(['users', 'add', '--username', 'dave', '--email', 'dave@example.com', '--incoming-email-token', 'daves_token'], env).status).toBe(0);
    expect(run(['projects', 'add', '--path', 'acme/tools'], env).status).toBe(0);
    expect(run(['members', 'add', '--project', 'acme/tools', '--user', 'carol', '--access-level', '30'], env).status).toBe(0);
    const oldAddress = run(['addresses', '--project', 'acme/tools', '--user', 'carol'], env).stdout.split('\n')[0]!.split(/\s+/).at(-1)!;
    expect(oldAddress).toMatch(/^incoming\+acme-tools-\d+-old_token-issue@example\.com$/);
    expect(await rcpt(oldAddress)).toBe('250 2.1.5 Accepted');
    const reset = JSON.parse(run(['--json', 'users', 'reset-token', '--user', 'carol'], env).stdout) as { incoming_email_token: string };
    expect(reset.incoming_email_token).toMatch(/^glimt-[0-9a-z]+$/);
    expect(await rcpt(oldAddress)).toBe(NO_USER);
    expect(await rcpt(oldAddress.replace('old_token', reset.incoming_email_token))).toBe('250 2.1.5 Accepted');
    expect(run(['users', 'reset-token', '--user', 'carol', '--incoming-email-token', 'daves_token'], env)).toMatchObject({ status: 1, stderr: expect.stringMatching(/^intake: .*a user with that incoming e-mail token/) });
    expect(run(['users', 'reset-token', '--user', 'carol', '--incoming-email-token', 'tracker_minted_2'], env).stdout).toMatch(/^incoming_email_token\s+tracker_minted_2$/m);
    // The Support Bot has no addresses, so no token to give.
    expect(run(['projects', 'add', '--path', 'acme/bots', '--service-desk'], env).status).toBe(0);
    expect(run(['issues', 'add', '--project', 'acme/bots', '--author', 'carol', '--title', 'T'], env).status).toBe(0);
    expect(run(['notifications', 'add', '--project', 'acme/bots', '--support-bot', '--issue', '1'], env).status).toBe(0);
    expect(run(['users', 'reset-token', '--user', 'support-bot'], env)).toMatchObject({ status: 1, stderr: "intake: support-bot is GitLab's Support Bot: it has no addresses of its own\n" });
  });
});

describe('reprocess', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  function setUp() {
    const env = server.env;
    const suffix = Math.random().toString(36).slice(2, 8);
    run(['users', 'add', '--username', `u${suffix}`, '--email', `u${suffix}@example.com`], env);
    run(['projects', 'add', '--path', `g/p${suffix}`], env);
    run(['members', 'add', '--project', `g/p${suffix}`, '--user', `u${suffix}`, '--access-level', '30'], env);
    run(['issues', 'add', '--project', `g/p${suffix}`, '--author', `u${suffix}`, '--title', 'T'], env);
    const n = JSON.parse(run(['--json', 'notifications', 'add', '--project', `g/p${suffix}`, '--recipient', `u${suffix}`, '--issue', '1'], env).stdout) as { reply_address: string; noteable_id: number };
    return { user: `u${suffix}`, email: `u${suffix}@example.com`, to: n.reply_address, issueId: n.noteable_id };
  }

  const noteCount = (issueId: number) => (server.store.sqlite.prepare('select count(*) as n from notes where noteable_id = ?').get(issueId) as { n: number }).n;

  it('keeps a message that hit a bug as failed, with 250, and runs it again once fixed', async () => {
    const w = setUp();
    // A trigger stands in for a bug in a handler: the insert fails with a non-temporary error.
    server.store.sqlite.exec("CREATE TRIGGER bug BEFORE INSERT ON notes BEGIN SELECT RAISE(ABORT, 'simulated bug'); END");
    const { data } = await sendMail(server.port, { from: w.email, to: [w.to], message: replyMessage({ from: w.email, to: w.to, body: 'Do not lose me.' }) });
    server.store.sqlite.exec('DROP TRIGGER bug');
    expect(data.line).toMatch(/^250 2\.6\.0 Stored; processing failed and is kept for `intake reprocess` \(inbound message \d+\)$/);
    const id = Number(/inbound message (\d+)/.exec(data.line)?.[1]);
    expect(server.repos.inbound.findById(id)).toMatchObject({ status: 'failed', reasonCode: 'process.internal' });
    expect(server.repos.inbound.findById(id)?.reason).toContain('simulated bug');
    expect(noteCount(w.issueId)).toBe(0);
    expect(JSON.parse(run(['--json', 'messages', '--status', 'failed'], server.env).stdout)[0]).toMatchObject({ id, status: 'failed' });

    const again = run(['reprocess', String(id)], server.env);
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/^status\s+processed$/m);
    expect(noteCount(w.issueId)).toBe(1);
    expect(server.repos.inbound.findById(id)).toMatchObject({ status: 'processed', handler: 'reply' });
    const twice = run(['reprocess', String(id)], server.env);
    expect(twice.status).toBe(1);
    expect(twice.stderr).toBe(`intake: inbound message ${id} has nothing to reprocess (status processed)\n`);
    expect(noteCount(w.issueId)).toBe(1);
  });

  it('marks a message that failed for one recipient and was stored for another, so the failure can be found and run again', async () => {
    const w = setUp();
    const project = `g/p${w.user.slice(1)}`;
    run(['issues', 'add', '--project', project, '--author', w.user, '--title', 'Second'], server.env);
    const second = JSON.parse(run(['--json', 'notifications', 'add', '--project', project, '--recipient', w.user, '--issue', '2'], server.env).stdout) as { reply_address: string };
    server.store.sqlite.exec(`CREATE TRIGGER bug_one BEFORE INSERT ON notes WHEN NEW.noteable_id = ${w.issueId} BEGIN SELECT RAISE(ABORT, 'simulated bug'); END`);
    const { data } = await sendMail(server.port, { from: w.email, to: [w.to, second.reply_address], message: replyMessage({ from: w.email, to: w.to, body: 'To both issues.' }) });
    server.store.sqlite.exec('DROP TRIGGER bug_one');
    expect(data.line).toMatch(/^250 2\.6\.0 Message accepted as inbound message \d+$/);
    const id = Number(/inbound message (\d+)/.exec(data.line)?.[1]);
    // Stored for one recipient, so processed; the failure of the other is its reason.
    expect(server.repos.inbound.findById(id)).toMatchObject({ status: 'processed', reasonCode: 'process.internal' });
    const problems = server.store.sqlite.prepare("select id from inbound_messages where received_at >= date('now') and (status != 'processed' or reason_code is not null)").all() as { id: number }[];
    expect(problems.map((r) => r.id)).toContain(id);
    expect(run(['reprocess', String(id)], server.env).status).toBe(0);
    expect(noteCount(w.issueId)).toBe(1);
    expect(server.repos.inbound.findById(id)).toMatchObject({ status: 'processed', reasonCode: null });
  });

  it('runs a message refused at DATA again once the operator fixed the cause', async () => {
    const w = setUp();
    const { data } = await sendMail(server.port, { from: 'alias@example.net', to: [w.to], message: replyMessage({ from: 'alias@example.net', to: w.to, body: 'From my other address.' }) });
    expect(data.code).toBe(550);
    const id = server.repos.inbound.list({ limit: 1 })[0]!.id;
    expect(run(['emails', 'add', '--user', w.user, '--email', 'alias@example.net'], server.env).status).toBe(0);
    expect(run(['reprocess', String(id)], server.env).status).toBe(0);
    expect(noteCount(w.issueId)).toBe(1);
    const shown = JSON.parse(run(['--json', 'show', String(id)], server.env).stdout) as { status: string; mail_from: string; deliveries: { recipient: string; status: string; stage: string }[] };
    expect(shown).toMatchObject({ status: 'processed', mail_from: 'alias@example.net', deliveries: [{ recipient: w.to, status: 'processed', stage: 'data' }] });
    expect(shown).not.toHaveProperty('raw');
    expect(run(['show', String(id)], server.env).stdout).toMatch(/^deliveries:\n(.|\n)*^reason_code +$/m);
    const raw = run(['show', '--raw', String(id)], server.env).stdout;
    expect(raw).toContain('From: alias@example.net');
    expect(raw).toContain('From my other address.');
    const listed = run(['messages', '--limit', '1'], server.env).stdout;
    expect(listed).toMatch(new RegExp(`^${id}  \\S+  processed  from alias@example.net to ${w.to.replace(/[+.]/g, '\\$&')} → Note \\d+$`, 'm'));
  });

  it('verifies an address added unverified, after which a refused message goes through on reprocess', async () => {
    const w = setUp();
    expect(run(['emails', 'add', '--user', w.user, '--email', 'Pending@Example.net', '--unverified'], server.env).stdout).toMatch(/^verified\s+false$/m);
    const { data } = await sendMail(server.port, { from: 'pending@example.net', to: [w.to], message: replyMessage({ from: 'pending@example.net', to: w.to, body: 'From an address not yet confirmed.' }) });
    expect(data.code).toBe(550);
    const id = server.repos.inbound.list({ limit: 1 })[0]!.id;
    expect(run(['reprocess', String(id)], server.env).status).toBe(1);
    const stranger = run(['emails', 'verify', '--user', w.user, '--email', 'someone@example.net'], server.env);
    expect(stranger.status).toBe(1);
    expect(stranger.stderr).toBe(`intake: user "${w.user}" has no address someone@example.net; add it with \`intake emails add\`\n`);
    const verified = JSON.parse(run(['--json', 'emails', 'verify', '--user', w.user, '--email', 'pending@example.net'], server.env).stdout) as Record<string, unknown>;
    expect(verified).toMatchObject({ email: 'Pending@Example.net', verified: true });
    expect(run(['reprocess', String(id)], server.env).status).toBe(0);
    expect(noteCount(w.issueId)).toBe(1);
  });

  it('shows control characters from mail as \\xNN, so a subject cannot drive the terminal', async () => {
    const w = setUp();
    const subject = 'Hi \u001b]0;owned\u0007\u001b[2JFAKE \u009b31m';
    const encoded = `=?utf-8?b?${Buffer.from(subject).toString('base64')}?=`;
    const message = `From: ${w.email}\r\nTo: ${w.to}\r\nSubject: ${encoded}\r\nMessage-ID: <escape@client.test>\r\n\r\nHello.\r\n`;
    const { data } = await sendMail(server.port, { from: w.email, to: [w.to], message });
    const id = Number(/inbound message (\d+)/.exec(data.line)?.[1]);
    const shown = run(['show', String(id)], server.env).stdout;
    // eslint-disable-next-line no-control-regex -- control characters are what must not be printed
    const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
    expect(shown).not.toMatch(CONTROL);
    expect(shown).toContain('Hi \\x1b]0;owned\\x07\\x1b[2JFAKE \\x9b31m');
    const listed = run(['messages', '--limit', '1'], server.env).stdout;
    expect(listed).not.toMatch(CONTROL);
    const json = run(['--json', 'show', String(id)], server.env).stdout;
    expect(json).not.toMatch(CONTROL);
    expect((JSON.parse(json) as { subject: string }).subject).toBe(subject);
  });

  it('refuses a message that has no stored content', async () => {
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    await client.command('MAIL FROM:<nothing@stored.example>');
    await client.command('RCPT TO:<incoming+nope@example.com>');
    await client.quit();
    const find = () => server.repos.inbound.list({ limit: 50 }).find((r) => r.mailFrom === 'nothing@stored.example');
    await expect.poll(find).toBeDefined();
    const id = find()!.id;
    const result = run(['reprocess', String(id)], server.env);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(`intake: inbound message ${id} has no stored content (it was refused before DATA, was too big, or was deferred with a 4xx and comes again as another message)\n`);
    expect(run(['show', '--raw', String(id)], server.env).stderr).toBe(`intake: inbound message ${id} has no stored content (it was refused before DATA, was too big, or was deferred with a 4xx and comes again as another message)\n`);
    expect(run(['show', '99999'], server.env).stderr).toBe('intake: no inbound message with id 99999\n');
  });
});

describe('messages, searched', () => {
  let server: RunningServer;
  const ids: Record<string, number> = {};
  beforeAll(async () => {
    server = await startServer();
    const env = server.env;
    run(['users', 'add', '--username', 'finder', '--email', 'finder@example.com'], env);
    run(['projects', 'add', '--path', 'search/here'], env);
    run(['members', 'add', '--project', 'search/here', '--user', 'finder', '--access-level', '30'], env);
    run(['issues', 'add', '--project', 'search/here', '--author', 'finder', '--title', 'T'], env);
    const to = (JSON.parse(run(['--json', 'notifications', 'add', '--project', 'search/here', '--recipient', 'finder', '--issue', '1'], env).stdout) as { reply_address: string }).reply_address;
    const lastId = () => server.repos.inbound.list({ limit: 1 })[0]!.id;

    await sendMail(server.port, { from: 'finder@example.com', to: [to], message: replyMessage({ from: 'finder@example.com', to, body: 'Found it.', messageId: '<first@client.test>' }) });
    ids.reply = lastId();
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    await client.command('MAIL FROM:<stranger@elsewhere.test>');
    await client.command('RCPT TO:<incoming+nope@example.com>');
    await client.quit();
    // QUIT is answered once the refusal's row is committed.
    ids.unknown = lastId();
    await sendMail(server.port, { from: 'alias@example.net', to: [to], message: replyMessage({ from: 'alias@example.net', to, body: 'From my other address.' }) });
    ids.unverified = lastId();
    await sendMail(server.port, { from: 'finder@example.com', to: [to, 'incoming+nope2@example.com'], message: replyMessage({ from: 'finder@example.com', to, body: 'To one good and one bad.' }) });
    ids.mixed = lastId();
    const piped = spawnSync(process.execPath, [CLI, 'deliver', '--to', to, '--from', 'finder@example.com'], { env, input: replyMessage({ from: 'finder@example.com', to, body: 'Piped.' }) });
    expect(piped.status).toBe(0);
    ids.piped = lastId();
    expect(new Set(Object.values(ids)).size).toBe(5);
  });
  afterAll(async () => {
    await server?.stop();
  });

  const found = (...args: string[]) => {
    const result = run(['--json', 'messages', ...args], server.env);
    expect(result.stderr).toBe('');
    return (JSON.parse(result.stdout) as { id: number }[]).map((r) => r.id);
  };

  it('finds by sender and recipient, any case, in the envelope or the From header', () => {
    expect(found()).toEqual([ids.piped, ids.mixed, ids.unverified, ids.unknown, ids.reply]);
    expect(found('--from', 'FINDER@Example')).toEqual([ids.piped, ids.mixed, ids.reply]);
    expect(found('--from', 'elsewhere.test')).toEqual([ids.unknown]);
    expect(found('--to', 'incoming+NOPE')).toEqual([ids.mixed, ids.unknown]);
    expect(found('--to', 'nowhere')).toEqual([]);
  });

  it('finds by reason code on the message or any recipient, a family matching all its codes', () => {
    expect(found('--reason', 'rcpt.unknown_key')).toEqual([ids.mixed, ids.unknown]);
    expect(found('--reason', 'rcpt')).toEqual([ids.mixed, ids.unknown]);
    expect(found('--reason', 'data.sender_not_verified')).toEqual([ids.unverified]);
    expect(found('--reason', 'data.')).toEqual([ids.unverified]);
    expect(found('--reason', 'rcpt', '--status', 'processed')).toEqual([ids.mixed]);
    expect(found('--reason', 'rcpt', '--from', 'stranger')).toEqual([ids.unknown]);
  });

  it('finds by Message-ID, ingress and time', () => {
    expect(found('--message-id', '<first@client.test>')).toEqual([ids.reply]);
    expect(found('--message-id', 'first@client.test')).toEqual([ids.reply]);
    expect(found('--ingress', 'pipe')).toEqual([ids.piped]);
    expect(found('--since', '1h', '--limit', '2')).toEqual([ids.piped, ids.mixed]);
    const at = server.repos.inbound.findById(ids.unverified!)!.receivedAt;
    expect(found('--since', at)).toEqual([ids.piped, ids.mixed, ids.unverified]);
    expect(found('--until', at)).toEqual([ids.unknown, ids.reply]);
    expect(found('--until', '2000-01-01')).toEqual([]);
    expect(found('--message-id', 'never-sent@client.test')).toEqual([]);
    expect(run(['messages', '--from', 'nobody-at-all'], server.env).stdout).toBe('no messages match\n');
  });

  it('sums up a window with stats: messages by status, recipients by stage, status and reason', () => {
    const stats = JSON.parse(run(['--json', 'stats', '--since', '1h'], server.env).stdout) as { messages: unknown[]; deliveries: unknown[] };
    expect(stats.messages).toEqual([
      { status: 'processed', count: 3 },
      { status: 'rejected', count: 2 },
    ]);
    expect(stats.deliveries).toEqual([
      { stage: 'data', status: 'processed', reason_code: null, count: 3 },
      { stage: 'rcpt', status: 'rejected', reason_code: 'rcpt.unknown_key', count: 2 },
      { stage: 'data', status: 'rejected', reason_code: 'data.sender_not_verified', count: 1 },
    ]);
    const text = run(['stats'], server.env).stdout;
    expect(text).toMatch(/^5 messages received from \S+ to now\n {2}processed +3\n {2}rejected +2\nrecipients:\n/);
    expect(text).toContain("  rcpt     rejected          2  rcpt.unknown_key (550 5.1.1 We couldn't figure out what the email is for.");
    // From the third message on.
    const at = server.repos.inbound.findById(ids.unverified!)!.receivedAt;
    const later = JSON.parse(run(['--json', 'stats', '--since', at], server.env).stdout) as { messages: unknown[] };
    expect(later.messages).toEqual([
      { status: 'processed', count: 2 },
      { status: 'rejected', count: 1 },
    ]);
    expect(JSON.parse(run(['--json', 'stats', '--since', '2000-01-01', '--until', '2000-01-02'], server.env).stdout)).toEqual({ since: '2000-01-01T00:00:00.000Z', until: '2000-01-02T00:00:00.000Z', messages: [], deliveries: [] });
    // --until alone: the 24 hours before it.
    expect(JSON.parse(run(['--json', 'stats', '--until', '2000-01-02'], server.env).stdout)).toMatchObject({ since: '2000-01-01T00:00:00.000Z', messages: [] });
    expect(run(['stats', '--since', '2000-01-02', '--until', '2000-01-01'], server.env).stderr).toBe('intake: --since (2000-01-02T00:00:00.000Z) must be before --until (2000-01-01T00:00:00.000Z)\n');
  });

  it('folds case beyond ASCII (sent last: the lists above are of five)', async () => {
    const { client } = await SmtpClient.connect(server.port);
    await client.command('EHLO client.test');
    expect((await client.command('MAIL FROM:<JÖRG@Bücher.example> SMTPUTF8')).code).toBe(250);
    expect((await client.command('RCPT TO:<incoming+nope@example.com>')).code).toBe(550);
    await client.quit();
    const id = server.repos.inbound.list({ limit: 1 })[0]!.id;
    expect(found('--from', 'jörg@bücher')).toEqual([id]);
    expect(found('--from', 'JÖRG@BÜCHER.EXAMPLE')).toEqual([id]);
  });

  it('names what it cannot search for', () => {
    const cases: [string[], string][] = [
      [['--reason', 'rcpt.unknown'], "error: option '--reason <code>' argument 'rcpt.unknown' is invalid. --reason rcpt.unknown is no reason code nor the start of one (a family: data, rcpt, connect, policy, session, mail, process; the codes are in the README's rejection table)"],
      [['--since', 'yesterday'], "error: option '--since <when>' argument 'yesterday' is invalid. --since yesterday is no time: give a date or time in UTC"],
      [['--until', '2026-02-30'], "error: option '--until <when>' argument '2026-02-30' is invalid. --until 2026-02-30 is no time"],
      [['--since', '2026-11-27', '--until', '2026-11-26'], 'intake: --since (2026-11-27T00:00:00.000Z) must be before --until (2026-11-26T00:00:00.000Z)'],
      [['--ingress', 'fax'], "error: option '--ingress <ingress>' argument 'fax' is invalid. Allowed choices are smtp, lmtp, pipe, policy, imap, graph."],
      [['--message-id', '<>'], 'intake: --message-id is empty'],
    ];
    for (const [args, message] of cases) {
      const result = run(['messages', ...args], server.env);
      expect(result.status, args.join(' ')).not.toBe(0);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain(message);
    }
  });
});
