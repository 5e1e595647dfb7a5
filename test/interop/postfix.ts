// A private Postfix instance for the interop suite: its own config, queue and log under a temp folder,
// smtpd on a loopback port, never the system's Postfix. It is configured with deploy/postfix's snippets.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/server.js';

export const POSTFIX_INSTALLED = spawnSync('postconf', ['-d', 'mail_version']).status === 0;
export const SWAKS_INSTALLED = spawnSync('swaks', ['--version']).status === 0;

export interface Postfix {
  dir: string;
  /** The master process, whose children do the work (for CPU accounting). */
  masterPid(): number;
  port: number;
  /** The maillog, where Postfix says what it did with each message. */
  log(): string;
  queue(): string;
  /** Messages in the queue, counted from the spool's files (cheaper than a postqueue process). */
  queued(): number;
  /** `postqueue -f`: deliver what is deferred now. */
  flush(): void;
  /** Submits a message on the relay itself (sendmail → postdrop → pickup), as a local program would. */
  sendmail(from: string, to: string, message: string): void;
  stop(): void;
}

/** A free loopback port (Postfix must be told the ports before intake starts on them). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/**
 * A deploy/postfix snippet with its placeholders replaced: the example domain and ports become the
 * test's, paths become the test's. The test proves the very lines an operator copies.
 */
export function snippet(name: string, replacements: Record<string, string>): string {
  let text = readFileSync(join(ROOT, 'deploy/postfix', name), 'utf8');
  for (const [from, to] of Object.entries(replacements)) {
    // A placeholder the snippet no longer has would leave the test proving something else.
    if (!text.includes(from)) throw new Error(`deploy/postfix/${name} has no ${JSON.stringify(from)} to replace`);
    text = text.split(from).join(to);
  }
  return text;
}

/**
 * Starts Postfix with `mainCf` and `masterCf` added to a base configuration in which nothing
 * leaves 127.0.0.1: no DNS, no local delivery, all other mail to `defaultTransport`.
 */
export async function startPostfix(options: {
  mainCf: string;
  masterCf: string;
  defaultTransport: string;
  /** Files to write into the config folder; `@ETC@` in mainCf stands for that folder. */
  files?: Record<string, string>;
  /** smtpd processes at most (master.cf maxproc). */
  smtpdProcesses?: number;
}): Promise<Postfix> {
  const dir = mkdtempSync(join(tmpdir(), 'intake-postfix-'));
  // The postfix user must reach the folders (mkdtemp makes 0700).
  chmodSync(dir, 0o755);
  for (const sub of ['etc', 'spool', 'data']) mkdirSync(join(dir, sub), { mode: 0o755 });
  chownSync(join(dir, 'data'), uid('postfix'), 0);
  const port = await freePort();
  writeFileSync(
    join(dir, 'etc/main.cf'),
    `compatibility_level = 3.6
config_directory = ${dir}/etc
queue_directory = ${dir}/spool
data_directory = ${dir}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.test
mydomain = relay.test
myorigin = relay.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
disable_dns_lookups = yes
smtp_dns_support_level = disabled
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
default_transport = ${options.defaultTransport}
alias_maps =
alias_database =
local_recipient_maps =
biff = no
maillog_file = ${dir}/maillog
maillog_file_prefixes = ${dir}
# Retries within seconds, so a test can wait for them.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = 0
${options.mainCf.split('@ETC@').join(join(dir, 'etc'))}
`,
  );
  for (const [name, text] of Object.entries(options.files ?? {})) writeFileSync(join(dir, 'etc', name), text);
  writeFileSync(
    join(dir, 'etc/master.cf'),
    `127.0.0.1:${port} inet n - n - ${options.smtpdProcesses ?? '-'} smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
smtp      unix  -       -       n       -       -       smtp
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
${options.masterCf}
`,
  );
  const etc = join(dir, 'etc');
  run('postfix', ['-c', etc, 'check']);
  run('postfix', ['-c', etc, 'set-permissions']);
  run('postfix', ['-c', etc, 'start']);
  const postfix: Postfix = {
    dir,
    port,
    log: () => {
      try {
        return readFileSync(join(dir, 'maillog'), 'utf8');
      } catch {
        return '';
      }
    },
    queue: () => run('postqueue', ['-c', etc, '-p']),
    queued: () => ['maildrop', 'incoming', 'active', 'deferred', 'hold'].reduce((sum, name) => sum + filesUnder(join(dir, 'spool', name)), 0),
    masterPid: () => Number(readFileSync(join(dir, 'spool/pid/master.pid'), 'utf8').trim()),
    flush: () => void run('postqueue', ['-c', etc, '-f']),
    sendmail: (from, to, message) => {
      const result = spawnSync('/usr/sbin/sendmail', ['-C', etc, '-f', from, to], { input: message, encoding: 'utf8' });
      if (result.status !== 0) throw new Error(`sendmail failed: ${result.stderr}`);
    },
    stop: () => {
      spawnSync('postfix', ['-c', etc, 'stop']);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await waitForPort(port);
  return postfix;
}

function run(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

function filesUnder(folder: string): number {
  try {
    return readdirSync(folder, { withFileTypes: true }).reduce((sum, entry) => sum + (entry.isDirectory() ? filesUnder(join(folder, entry.name)) : 1), 0);
  } catch (error) {
    // A queue folder Postfix has not made yet is empty; one that cannot be read is no answer.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
}

function uid(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
}

async function waitForPort(port: number): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`Postfix did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** swaks as the client: its whole transcript, and its exit code (0: accepted). */
export function swaks(args: string[]): { status: number | null; output: string } {
  const result = spawnSync('swaks', ['--server', '127.0.0.1', '--timeout', '30', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}
