// A private Dovecot IMAP server on loopback, for the IMAP fetcher's suite: its own configuration, users,
// maildirs and logs under a temporary folder, plain IMAP and implicit TLS. Needs root (Dovecot
// switches to the mail user) and Debian's dovecot-imapd, which `.ci/run` installs.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { writeCertificate } from '../helpers/certificates.js';
import { freePort } from './postfix.js';

export const DOVECOT_INSTALLED = spawnSync('dovecot', ['--version']).status === 0;

export interface Dovecot {
  /** Plain IMAP (no TLS) and implicit TLS (IMAPS) ports on 127.0.0.1. */
  port: number;
  tlsPort: number;
  /** The certificate IMAPS presents (for 127.0.0.1), to trust with NODE_EXTRA_CA_CERTS. */
  certFile: string;
  /** A logged-in client of the user's, for the test to put messages in and look at what is left. */
  client(user: string): Promise<ImapFlow>;
  log(): string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startDovecot(users: Record<string, string>): Promise<Dovecot> {
  const dir = mkdtempSync(join(tmpdir(), 'dovecot-'));
  // The mail user (nobody) must reach its maildirs through the run's temporary folders.
  chmodSync(dirname(dir), statSync(dirname(dir)).mode | 0o011);
  chmodSync(dir, 0o755);
  const mail = join(dir, 'mail');
  mkdirSync(mail);
  const nobody = spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim();
  const nogroup = spawnSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).stdout.trim();
  chownSync(mail, Number(nobody), Number(nogroup));
  const [port, tlsPort] = [await freePort(), await freePort()];
  const certificate = writeCertificate(dir, 'imap', { commonName: 'localhost', ipAddress: '127.0.0.1' });
  writeFileSync(join(dir, 'users'), Object.entries(users).map(([user, password]) => `${user}:{PLAIN}${password}\n`).join(''));
  const conf = join(dir, 'dovecot.conf');
  writeFileSync(
    conf,
    `base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
instance_name = intake-test-${port}
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <${certificate.certFile}
ssl_key = <${certificate.keyFile}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
mail_location = maildir:${mail}/%u
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/users
}
userdb {
  driver = static
  args = uid=${nobody} gid=${nogroup} home=${mail}/%u
}
service imap-login {
  chroot =
  inet_listener imap {
    port = ${port}
  }
  inet_listener imaps {
    port = ${tlsPort}
    ssl = yes
  }
}
service anvil {
  chroot =
}
`,
  );
  const start = async () => {
    // Its daemon keeps whatever it is given as stdout and stderr: a pipe would never close.
    const run = spawnSync('dovecot', ['-c', conf], { stdio: 'ignore' });
    if (run.status !== 0) throw new Error(`dovecot did not start (exit ${run.status}): ${readLog(dir)}`);
    await untilListening(port);
    await untilListening(tlsPort);
  };
  const stop = async () => {
    // Dovecot's master ends logged-in sessions some 10 s after it is told to stop: they are ended first, as a
    // server that goes away ends them, so that tests wait on intake, not on Dovecot's shutdown.
    spawnSync('doveadm', ['-c', conf, 'kick', '127.0.0.0/8'], { stdio: 'ignore' });
    spawnSync('dovecot', ['-c', conf, 'stop'], { stdio: 'ignore' });
    // Until the port is free again, so that a restart gets it.
    for (let i = 0; i < 100 && (await isListening(port)); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  };
  await start();
  return {
    port,
    tlsPort,
    certFile: certificate.certFile,
    async client(user) {
      const client = new ImapFlow({ host: '127.0.0.1', port, secure: false, doSTARTTLS: false, auth: { user, pass: users[user] as string }, logger: false, disableAutoIdle: true });
      await client.connect();
      return client;
    },
    log: () => readLog(dir),
    start,
    stop,
  };
}

function readLog(dir: string): string {
  try {
    return readFileSync(join(dir, 'dovecot.log'), 'utf8');
  } catch {
    return '';
  }
}

function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function untilListening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await isListening(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`dovecot is not listening on 127.0.0.1:${port}`);
}
