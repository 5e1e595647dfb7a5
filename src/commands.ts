// commands: the `intake` command's commands, loaded by cli.ts: serve, migrate, check, the admin commands that create the rows mail is
// checked against, and the inspection commands. Input: operator arguments.
import { readFileSync } from 'node:fs';
import { connect, createServer, isIP } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  issueNoteKey,
  newIssueKey,
  newMergeRequestKey,
  SERVICE_DESK_KEY_MAX_LENGTH,
  SERVICE_DESK_KEY_PATTERN,
  serviceDeskAliasKey,
  serviceDeskKey,
} from './address/keys.js';
import { mintReplyKey, parseReplyKey } from './address/reply-key.js';
import { compileTemplate } from './address/template.js';
import { ConfigError, loadConfig, nothingToServe, parseHostPort, type Config } from './config.js';
import { assertWritable, isUniqueConstraintError, openStore, type Store } from './db/client.js';
import { pruneRaw } from './db/raw-retention.js';
import { createRepositories, type Repositories } from './db/repositories.js';
import type { MessageFilter } from './db/repos/inbound.repo.js';
import { OUTCOMES } from './errors.js';
import { ACCESS } from './handlers/access.js';
import { graphSettingsOf, imapSettingsOf } from './fetch/settings.js';
import { isBranchName } from './text/branch.js';
import { trimReply } from './text/trim-reply.js';
import { createLogger } from './log.js';
import { ingestDeps } from './ingest/deps.js';
import { EX_CONFIG, StartupError } from './startup-error.js';
import { freeBytes, minFreeBytes, shortfall } from './smtp/free-space.js';
import { expiryProblem, loadTlsMaterial } from './smtp/tls.js';
import { parseMoment } from './time-argument.js';

class CliError extends Error {}

const program = new Command('intake')
  .description('Receives mail for an issue tracker over SMTP and stores what it becomes in SQLite.')
  .option('-c, --config <file>', 'config file: YAML, JSON, or a systemd environment file ending in .env (INTAKE_* environment variables win)')
  .option('--json', 'print machine-readable JSON')
  .showHelpAfterError();

function config(): Config {
  return loadConfig({ file: program.opts<{ config?: string }>().config });
}

function json(): boolean {
  return program.opts<{ json?: boolean }>().json === true;
}

/**
 * Opens the database for an admin command, runs fn in one transaction, closes it. One that writes
 * begins so, and waits for `intake serve`'s commits; one that only reads (`readOnly`) never holds
 * serve's writer up.
 */
function withRepos<T>(fn: (repos: Repositories, store: Store) => T, { readOnly = false } = {}): T {
  const store = openStore(config().database);
  try {
    const repos = createRepositories(store);
    return readOnly ? store.transaction(() => fn(repos, store)) : store.writeTransaction(() => fn(repos, store));
  } finally {
    store.close();
  }
}

/**
 * Text from mail, made safe for a terminal: a control character (an escape sequence in a subject can
 * clear the screen or retitle the window) is shown as `\xNN`. Line breaks and tabs stay.
 */
function visible(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is being shown
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** JSON with the C1 controls escaped too (JSON.stringify leaves them raw; some terminals obey them). */
function safeJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Prints rows with the database's column names (snake_case), as sqlite3 shows them. */
function print(value: unknown): void {
  const columns = (row: Record<string, unknown>): Record<string, unknown> =>
    Object.fromEntries(
      Object.entries(row).map(([k, v]) => [
        k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
        Array.isArray(v) && v.every((item) => typeof item === 'object' && item !== null) ? v.map((item) => columns(item as Record<string, unknown>)) : v,
      ]),
    );
  const rows = (Array.isArray(value) ? value : [value]).map(columns);
  if (json()) {
    process.stdout.write(`${safeJson(Array.isArray(value) ? rows : rows[0])}\n`);
    return;
  }
  for (const [i, row] of rows.entries()) {
    if (i > 0) process.stdout.write('\n');
    const entries = Object.entries(row);
    const width = Math.max(...entries.map(([k]) => k.length));
    for (const [k, v] of entries) {
      const text = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
      process.stdout.write(`${k.padEnd(width)}  ${visible(text)}\n`);
    }
  }
}

/** A token for a user's incoming-email addresses, as trackers mint them (GitLab's are base 36). */
function newIncomingEmailToken(): string {
  return `glimt-${BigInt(`0x${randomBytes(16).toString('hex')}`).toString(36)}`;
}

function incomingEmailToken(value: string): string {
  if (!/^[A-Za-z0-9_.-]{1,255}$/.test(value)) throw new InvalidArgumentError('must be 1 to 255 of A-Z a-z 0-9 _ . -');
  return value;
}

function positiveInt(name: string, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError(`${name} must be a positive whole number`);
    if (Number(value) > max) throw new InvalidArgumentError(`${name} must be at most ${max}`);
    return Number(value);
  };
}

function user(repos: Repositories, username: string) {
  const found = repos.users.findByUsername(username);
  if (!found) throw new CliError(`no user with username "${username}"`);
  return found;
}

function project(repos: Repositories, path: string) {
  const found = repos.projects.findByPath(path);
  if (!found) throw new CliError(`no project with path "${path}"`);
  return found;
}

function unique<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (isUniqueConstraintError(error)) throw new CliError(`${what} already exists`);
    throw error;
  }
}

const EMAIL = /^[^\s@<>]+@[^\s@<>]+$/;
function email(value: string): string {
  if (!EMAIL.test(value)) throw new InvalidArgumentError(`"${value}" is not an e-mail address`);
  return value;
}

program
  .command('serve')
  .description('run the listeners (SMTP, LMTP, policy service as configured; migrates the database first); SIGHUP reloads the TLS files, SIGTERM stops')
  .action(async () => {
    const cfg = config();
    const idle = nothingToServe(cfg);
    if (idle) throw new ConfigError([idle]);
    const { serve } = await import('./serve.js');
    await serve(cfg, createLogger(cfg.log_level));
  });

program
  .command('migrate')
  .description('create the database or bring its schema up to date')
  .action(() => {
    const cfg = config();
    openStore(cfg.database).close();
    print({ database: cfg.database, migrated: true });
  });

program
  .command('check')
  .description('check the configuration, the TLS files, that the database is writable, that each listener can listen, and that each fetcher can log in and find its folders')
  .option('--timeout <seconds>', 'how long a fetcher\'s server has to answer', positiveInt('--timeout', 3600), 30)
  .action(async (options: { timeout: number }) => {
    const results: CheckResult[] = [];
    let cfg: Config;
    try {
      cfg = config();
      results.push({ check: 'config', ok: true, detail: `address ${cfg.address}${cfg.service_desk_address ? `, Service Desk alias ${cfg.service_desk_address}` : ''}` });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      for (const problem of error.problems) results.push({ check: 'config', ok: false, detail: problem });
      return finishCheck(results);
    }
    if (cfg.tls_cert_file) {
      try {
        const tls = loadTlsMaterial(cfg.tls_cert_file, cfg.tls_key_file);
        const expired = expiryProblem(tls);
        const days = Math.floor((tls.notAfter.getTime() - Date.now()) / 86_400_000);
        results.push({
          check: 'tls',
          ok: expired === null,
          detail: expired ? `${cfg.tls_cert_file}: ${expired}` : `${tls.subject}, key matches, expires ${tls.notAfter.toISOString()} (in ${days} days)`,
        });
      } catch (error) {
        results.push({ check: 'tls', ok: false, detail: (error as Error).message });
      }
    }
    try {
      const store = openStore(cfg.database);
      try {
        assertWritable(store.sqlite);
      } finally {
        store.close();
      }
      results.push({ check: 'database', ok: true, detail: `${cfg.database} is writable and migrated` });
      results.push(checkFreeSpace(cfg));
    } catch (error) {
      results.push({ check: 'database', ok: false, detail: `${cfg.database}: ${(error as Error).message}` });
    }
    if (nothingToServe(cfg)) results.push({ check: 'listeners', ok: true, detail: 'none, as for intake deliver alone; intake serve needs a listener or a fetcher' });
    for (const key of ['smtp_listen', 'smtps_listen', 'lmtp_listen', 'policy_listen', 'http_listen'] as const) {
      if (cfg[key]) results.push(await checkListener(key, cfg[key]));
    }
    // Credentials that expire or are changed by someone else are how fetched mail stops: asked now, not at the first poll.
    const quiet = createLogger('silent');
    if (cfg.imap_host) results.push(await checkFetcher('imap', options.timeout, async (signal) => (await import('./fetch/imap.js')).probeImap(imapSettingsOf(cfg), quiet, signal)));
    if (cfg.graph_user) results.push(await checkFetcher('graph', options.timeout, async (signal) => (await import('./fetch/graph.js')).probeGraph(graphSettingsOf(cfg), quiet, signal)));
    finishCheck(results);
  });

interface CheckResult {
  check: string;
  ok: boolean;
  detail: string;
}

/** What serve's MAIL FROM would find: room enough where the database is, or 452 4.3.1 to every sender. */
function checkFreeSpace(cfg: Config): CheckResult {
  const keep = minFreeBytes(cfg);
  const free = freeBytes(cfg.database);
  const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  if (free === null) return { check: 'disk', ok: false, detail: `cannot ask how much space is free for ${cfg.database}` };
  if (shortfall(free, keep, 0)) return { check: 'disk', ok: false, detail: `${mb(free)} free for the database, less than the ${mb(keep)} to keep (INTAKE_MIN_FREE_BYTES): MAIL FROM gets 452 4.3.1` };
  return { check: 'disk', ok: true, detail: `${mb(free)} free for the database, ${mb(keep)} kept (INTAKE_MIN_FREE_BYTES)` };
}

/** A server that does not answer within `seconds` fails the check, and its connection is ended so that check exits. */
async function checkFetcher(check: string, seconds: number, probe: (signal: AbortSignal) => Promise<string>): Promise<CheckResult> {
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), seconds * 1000);
  const timedOut = new Promise<never>((_, reject) => timeout.signal.addEventListener('abort', () => reject(new Error(`no answer within ${seconds} s (--timeout)`)), { once: true }));
  try {
    const detail = await Promise.race([probe(timeout.signal), timedOut]);
    return { check, ok: true, detail };
  } catch (error) {
    return { check, ok: false, detail: error instanceof ConfigError ? error.problems.join('; ') : (error as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

/** Free to bind, or already answered by a running intake (the usual case on a live system), is fine. */
async function checkListener(key: string, listen: string): Promise<CheckResult> {
  const { host, port } = parseHostPort(listen) as { host: string; port: number };
  const bindError = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    const probe = createServer();
    probe.once('error', resolve);
    probe.listen(port, host, () => probe.close(() => resolve(null)));
  });
  if (!bindError) return { check: key, ok: true, detail: `${listen} is free` };
  if (bindError.code === 'EADDRINUSE') {
    if (key === 'http_listen') {
      // Longer than /health may take (its writer check waits up to 5 s).
      const health = await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${port}/health`, { signal: AbortSignal.timeout(8000) }).catch(() => null);
      if (health?.headers.get('server') === 'intake') {
        const body = await health.text().catch(() => '');
        const status = /"status":"(\w+)"/.exec(body)?.[1] ?? body.trim().slice(0, 200);
        return { check: key, ok: true, detail: `${listen} is in use, answered: ${health.status} ${status}` };
      }
      return { check: key, ok: false, detail: `${listen} is in use by another program${health ? `, which answers GET /health: ${health.status}` : ''}` };
    }
    // A policy service speaks only when asked: ask it about a stage it leaves alone.
    const probe = key === 'policy_listen' ? 'request=smtpd_access_policy\nprotocol_state=CONNECT\n\n' : null;
    const banner = await greeting(host, port, probe, key === 'smtps_listen');
    const ours = probe ? banner === 'action=DUNNO' : banner !== null && / intake$/.test(banner);
    if (ours) return { check: key, ok: true, detail: `${listen} is in use, answered: ${banner}` };
    return { check: key, ok: false, detail: `${listen} is in use by another program${banner ? `, which answers: ${banner}` : ''}` };
  }
  const hint = bindError.code === 'EACCES' && port < 1024 ? ' (a port below 1024 needs CAP_NET_BIND_SERVICE: see deploy/intake.service)' : '';
  return { check: key, ok: false, detail: `${listen}: ${bindError.message}${hint}` };
}

/**
 * The first line a server on host:port sends (after `probe`) within a second ('' if none), or null.
 * Implicit TLS (SMTPS) greets only after the handshake; any certificate will do to read the banner.
 */
function greeting(host: string, port: number, probe: string | null = null, tls = false): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = tls ? connectTls({ host, port, rejectUnauthorized: false }) : connect({ host, port });
    if (probe) socket.write(probe);
    let text = '';
    const done = (value: string | null) => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(1000, () => done(text.split(/\r?\n/)[0] ?? ''));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('\n')) done(text.split(/\r?\n/)[0] as string);
    });
    socket.on('error', () => done(null));
  });
}

function finishCheck(results: CheckResult[]): void {
  if (json()) print(results);
  // A listener's detail quotes what another program answered: shown, not obeyed.
  else for (const r of results) process.stdout.write(`${r.ok ? 'ok  ' : 'FAIL'}  ${r.check}: ${visible(r.detail)}\n`);
  if (results.some((r) => !r.ok)) process.exitCode = 1;
}

const users = program.command('users').description('users mail can come from');
users
  .command('add')
  .description('add a user; their address counts as verified')
  .requiredOption('--username <name>', 'unique user name')
  .requiredOption('--email <address>', 'primary e-mail address', email)
  .option('--name <name>', 'display name (default: the username)')
  .option('--incoming-email-token <token>', 'the token a tracker minted for this user (default: a new glimt- token)', incomingEmailToken)
  .action((options: { username: string; email: string; name?: string; incomingEmailToken?: string }) => {
    const row = withRepos((repos) =>
      unique(`a user with username "${options.username}" or that incoming e-mail token`, () =>
        repos.users.create({
          username: options.username,
          name: options.name ?? options.username,
          email: options.email,
          incomingEmailToken: options.incomingEmailToken ?? newIncomingEmailToken(),
        }),
      ),
    );
    print(row);
  });
users
  .command('reset-token')
  .description("give a user a new incoming-email token: their new-issue, new-merge-request and comment addresses with the old one stop working at once (reply keys are not affected)")
  .requiredOption('--user <username>', 'the user')
  .option('--incoming-email-token <token>', 'the token a tracker minted (default: a new glimt- token)', incomingEmailToken)
  .action((options: { user: string; incomingEmailToken?: string }) => {
    print(
      withRepos((repos) =>
        unique('a user with that incoming e-mail token', () => {
          const found = user(repos, options.user);
          if (found.userType !== 'human') throw new CliError(`${found.username} is GitLab's Support Bot: it has no addresses of its own`);
          return repos.users.setIncomingEmailToken(found.id, options.incomingEmailToken ?? newIncomingEmailToken());
        }),
      ),
    );
  });
for (const [name, state] of [
  ['block', 'blocked'],
  ['unblock', 'active'],
] as const) {
  users
    .command(name)
    .description(`${name} a user (a blocked user's mail is refused)`)
    .requiredOption('--user <username>', 'the user')
    .action((options: { user: string }) => {
      print(
        withRepos((repos) => {
          const found = user(repos, options.user);
          repos.users.setState(found.id, state);
          return { ...found, state };
        }),
      );
    });
}

const emails = program.command('emails').description("a user's further e-mail addresses");
emails
  .command('add')
  .description('add an address to a user (verified unless --unverified)')
  .requiredOption('--user <username>', 'the user')
  .requiredOption('--email <address>', 'the address', email)
  .option('--unverified', 'record the address as not verified: mail from it is refused')
  .action((options: { user: string; email: string; unverified?: boolean }) => {
    print(
      withRepos((repos) =>
        unique(`the address ${options.email} for ${options.user}`, () =>
          repos.users.addEmail({ userId: user(repos, options.user).id, email: options.email, verified: !options.unverified }),
        ),
      ),
    );
  });
emails
  .command('verify')
  .description('mark an address of a user as verified: mail from it is taken from now on (`reprocess` runs what was refused)')
  .requiredOption('--user <username>', 'the user')
  .requiredOption('--email <address>', 'the address, in any case', email)
  .action((options: { user: string; email: string }) => {
    print(
      withRepos((repos) => {
        const found = user(repos, options.user);
        const row = repos.users.verifyEmail(found.id, options.email);
        if (!row) throw new CliError(`user "${options.user}" has no address ${options.email}; add it with \`intake emails add\``);
        return row;
      }),
    );
  });

function serviceDeskAliasKeyOption(value: string): string {
  if (!SERVICE_DESK_KEY_PATTERN.test(value) || value.length > SERVICE_DESK_KEY_MAX_LENGTH) {
    throw new InvalidArgumentError(`must be 1 to ${SERVICE_DESK_KEY_MAX_LENGTH} of a-z 0-9 _`);
  }
  return value;
}

/** A Service Desk custom email as GitLab takes one: a plain address, its replies `local+KEY@domain`. */
function customEmailOption(value: string): string {
  if (!EMAIL.test(value)) throw new InvalidArgumentError(`"${value}" is not an e-mail address`);
  if (value.slice(0, value.lastIndexOf('@')).includes('+')) throw new InvalidArgumentError(`"${value}" has a + in its local part: replies go to ${value.replace('@', '+KEY@')}, so the address itself must have none`);
  return value.toLowerCase();
}

/** One project's custom email: mail to it must lead to one Service Desk. */
function assertCustomEmailFree(repos: Repositories, address: string, projectId?: number): void {
  const other = repos.projects.findByServiceDeskCustomEmail(address);
  if (other && other.id !== projectId) throw new CliError(`${address} is already the Service Desk custom email of ${other.path}`);
}

function branchName(value: string): string {
  if (!isBranchName(value)) throw new InvalidArgumentError('must be a branch name git takes (no blank, `..`, `~^:?*[\\`, leading `-`...)');
  return value;
}

/**
 * Two projects whose paths make the same slug (`acme/help-desk`, `acme-help/desk`) with the same alias
 * key would share one address, which reaches the first of them: refused, as GitLab refuses a key in use.
 */
function assertAliasFree(repos: Repositories, path: string, key: string, projectId?: number): void {
  const address = serviceDeskAliasKey(path, key);
  const other = repos.projects.findByServiceDeskKey(key).find((p) => p.id !== projectId && serviceDeskAliasKey(p.path, key) === address);
  if (other) throw new CliError(`Service Desk key "${key}" would give ${path} the alias address of ${other.path} (${address}); choose another key`);
}

const projectsCommand = program.command('projects').description('projects');
projectsCommand
  .command('add')
  .description('add a project')
  .requiredOption('--path <path>', 'unique path like group/project')
  .option('--name <name>', 'display name (default: the last part of the path)')
  .addOption(new Option('--visibility <level>', 'who may see it').choices(['private', 'internal', 'public']).default('private'))
  .option('--service-desk', 'enable Service Desk')
  .option('--service-desk-key <key>', 'Service Desk alias key: mail to <slug>-<key> opens tickets too', serviceDeskAliasKeyOption)
  .option('--service-desk-reopen', 'a Service Desk reply to a closed issue reopens it')
  .option('--service-desk-cc', 'Cc addresses of a new Service Desk mail, and of replies in its thread, become participants')
  .option('--no-service-desk-confidential', 'new Service Desk issues are not confidential (always are in a public project)')
  .option('--service-desk-custom-email <address>', 'the address customers write to, forwarded to the Service Desk address; its replies (ADDRESS with +KEY) reach their notification', customEmailOption)
  .option('--default-branch <branch>', 'target branch of new merge requests', branchName, 'main')
  .option('--archived', 'archived: read-only, its addresses refused')
  .action(
    (options: {
      path: string;
      name?: string;
      visibility: 'private' | 'internal' | 'public';
      serviceDesk?: boolean;
      serviceDeskKey?: string;
      serviceDeskReopen?: boolean;
      serviceDeskCc?: boolean;
      serviceDeskConfidential: boolean;
      serviceDeskCustomEmail?: string;
      defaultBranch: string;
      archived?: boolean;
    }) => {
      if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)+$/.test(options.path)) {
        throw new CliError(`project path "${options.path}" must look like group/project (letters, digits, _ . -)`);
      }
      print(
        withRepos((repos) =>
          unique(`a project with path "${options.path}"`, () => {
            if (options.serviceDeskKey) assertAliasFree(repos, options.path, options.serviceDeskKey);
            if (options.serviceDeskCustomEmail) assertCustomEmailFree(repos, options.serviceDeskCustomEmail);
            return repos.projects.create({
              path: options.path,
              name: options.name ?? (options.path.split('/').at(-1) as string),
              visibility: options.visibility,
              serviceDeskEnabled: options.serviceDesk === true,
              serviceDeskKey: options.serviceDeskKey ?? null,
              serviceDeskReopen: options.serviceDeskReopen === true,
              serviceDeskCcParticipants: options.serviceDeskCc === true,
              serviceDeskConfidential: options.serviceDeskConfidential,
              serviceDeskCustomEmail: options.serviceDeskCustomEmail ?? null,
              defaultBranch: options.defaultBranch,
              archived: options.archived === true,
            });
          }),
        ),
      );
    },
  );

projectsCommand
  .command('set')
  .description("change a project's settings; only those given change (--no-X turns X off)")
  .requiredOption('--project <path>', 'the project')
  .option('--name <name>', 'display name')
  .addOption(new Option('--visibility <level>', 'who may see it').choices(['private', 'internal', 'public']))
  .option('--service-desk', 'enable Service Desk')
  .option('--no-service-desk', 'disable Service Desk: its addresses are refused from now on')
  .option('--service-desk-key <key>', 'Service Desk alias key', serviceDeskAliasKeyOption)
  .option('--no-service-desk-key', 'remove the alias key: mail to <slug>-<key> is refused from now on')
  .option('--service-desk-reopen', 'a Service Desk reply to a closed issue reopens it')
  .option('--no-service-desk-reopen', 'it does not')
  .option('--service-desk-cc', 'Cc addresses of Service Desk mail become participants')
  .option('--no-service-desk-cc', 'they do not')
  .option('--service-desk-confidential', 'new Service Desk issues are confidential (the default)')
  .option('--no-service-desk-confidential', 'they are not, except in a public project')
  .option('--service-desk-custom-email <address>', 'the address customers write to, forwarded to the Service Desk address; its replies (ADDRESS with +KEY) reach their notification', customEmailOption)
  .option('--no-service-desk-custom-email', 'remove it: its replies open tickets like other mail to the Service Desk')
  .option('--default-branch <branch>', 'target branch of new merge requests', branchName)
  .option('--archived', 'archive it: read-only, every address of it refused (unsubscribing aside) from the next RCPT')
  .option('--no-archived', 'unarchive it')
  .action(
    (options: {
      project: string;
      name?: string;
      visibility?: 'private' | 'internal' | 'public';
      serviceDesk?: boolean;
      serviceDeskKey?: string | false;
      serviceDeskReopen?: boolean;
      serviceDeskCc?: boolean;
      serviceDeskConfidential?: boolean;
      serviceDeskCustomEmail?: string | false;
      defaultBranch?: string;
      archived?: boolean;
    }) => {
      const values = {
        ...(options.name !== undefined ? { name: options.name } : {}),
        ...(options.visibility !== undefined ? { visibility: options.visibility } : {}),
        ...(options.serviceDesk !== undefined ? { serviceDeskEnabled: options.serviceDesk } : {}),
        ...(options.serviceDeskKey !== undefined ? { serviceDeskKey: options.serviceDeskKey === false ? null : options.serviceDeskKey } : {}),
        ...(options.serviceDeskReopen !== undefined ? { serviceDeskReopen: options.serviceDeskReopen } : {}),
        ...(options.serviceDeskCc !== undefined ? { serviceDeskCcParticipants: options.serviceDeskCc } : {}),
        ...(options.serviceDeskConfidential !== undefined ? { serviceDeskConfidential: options.serviceDeskConfidential } : {}),
        ...(options.serviceDeskCustomEmail !== undefined ? { serviceDeskCustomEmail: options.serviceDeskCustomEmail === false ? null : options.serviceDeskCustomEmail } : {}),
        ...(options.defaultBranch !== undefined ? { defaultBranch: options.defaultBranch } : {}),
        ...(options.archived !== undefined ? { archived: options.archived } : {}),
      };
      if (Object.keys(values).length === 0) throw new CliError('nothing to change: give at least one setting (see intake projects set --help)');
      print(
        withRepos((repos) => {
          const found = project(repos, options.project);
          if (options.serviceDeskKey) assertAliasFree(repos, found.path, options.serviceDeskKey, found.id);
          if (options.serviceDeskCustomEmail) assertCustomEmailFree(repos, options.serviceDeskCustomEmail, found.id);
          return repos.projects.update(found.id, values);
        }),
      );
    },
  );

function accessLevel(value: string): number {
  const named = (ACCESS as Record<string, number>)[value];
  const level = named ?? Number(value);
  if (!Object.values(ACCESS).includes(level as never)) {
    throw new InvalidArgumentError('must be 10 (guest), 20 (reporter), 30 (developer), 40 (maintainer) or 50 (owner), or one of those names');
  }
  return level;
}

program
  .command('members')
  .description('project membership')
  .command('add')
  .description('make a user a member of a project (or change their access level)')
  .requiredOption('--project <path>', 'the project')
  .requiredOption('--user <username>', 'the user')
  .requiredOption('--access-level <level>', '10 guest, 20 reporter, 30 developer, 40 maintainer, 50 owner', accessLevel)
  .action((options: { project: string; user: string; accessLevel: number }) => {
    print(
      withRepos((repos) =>
        repos.projects.setMember({
          projectId: project(repos, options.project).id,
          userId: user(repos, options.user).id,
          accessLevel: options.accessLevel,
        }),
      ),
    );
  });

program
  .command('issues')
  .description('issues')
  .command('add')
  .description('add an issue; prints it with its iid')
  .requiredOption('--project <path>', 'the project')
  .requiredOption('--author <username>', 'the author')
  .requiredOption('--title <title>', 'the title')
  .option('--description <text>', 'the description', '')
  .option('--confidential', 'only reporters and up (and the author) may see it')
  .action((options: { project: string; author: string; title: string; description: string; confidential?: boolean }) => {
    print(
      withRepos((repos) =>
        repos.issuables.createIssue({
          projectId: project(repos, options.project).id,
          authorId: user(repos, options.author).id,
          title: options.title,
          description: options.description,
          confidential: options.confidential === true,
        }),
      ),
    );
  });

program
  .command('merge-requests')
  .description('merge requests')
  .command('add')
  .description('add a merge request; prints it with its iid')
  .requiredOption('--project <path>', 'the project')
  .requiredOption('--author <username>', 'the author')
  .requiredOption('--title <title>', 'the title')
  .requiredOption('--source-branch <branch>', 'the branch to merge')
  .option('--target-branch <branch>', "the branch to merge into (default: the project's default branch)")
  .option('--description <text>', 'the description', '')
  .action((options: { project: string; author: string; title: string; sourceBranch: string; targetBranch?: string; description: string }) => {
    print(
      withRepos((repos) => {
        const target = project(repos, options.project);
        return repos.issuables.createMergeRequest({
          projectId: target.id,
          authorId: user(repos, options.author).id,
          title: options.title,
          description: options.description,
          sourceBranch: options.sourceBranch,
          targetBranch: options.targetBranch ?? target.defaultBranch,
        });
      }),
    );
  });

program
  .command('notifications')
  .description('notification e-mails sent, each with the reply key its reply address carries')
  .command('add')
  .description('record a notification sent to a user about an issue or merge request; prints its reply key and address')
  .requiredOption('--project <path>', 'the project')
  .option('--recipient <username>', 'the user it was sent to (the author of replies)')
  .option('--support-bot', "sent by Service Desk to the issue's external participants, from GitLab's Support Bot (whoever answers is the reply's author)")
  .option('--issue <iid>', 'the issue it is about', positiveInt('--issue'))
  .option('--merge-request <iid>', 'the merge request it is about', positiveInt('--merge-request'))
  .option('--discussion <id>', 'the discussion replies join')
  .option('--reply-key <key>', 'the reply key a tracker minted (default: a new partitioned key)', (value: string) => {
    if (!parseReplyKey(value)) throw new InvalidArgumentError('must be a GitLab reply key: 32 lowercase hex, or <partition>-<25 base36>[-<namespace>]');
    return value;
  })
  .action((options: { project: string; recipient?: string; supportBot?: boolean; issue?: number; mergeRequest?: number; discussion?: string; replyKey?: string }) => {
    if ((options.issue === undefined) === (options.mergeRequest === undefined)) {
      throw new CliError('give exactly one of --issue IID and --merge-request IID');
    }
    if ((options.recipient === undefined) === (options.supportBot === undefined)) {
      throw new CliError('give exactly one of --recipient USERNAME and --support-bot');
    }
    if (options.supportBot && options.issue === undefined) throw new CliError('--support-bot is for Service Desk issues: give --issue IID');
    const cfg = config();
    const template = compileTemplate(cfg.address);
    const row = withRepos((repos) => {
      const found = project(repos, options.project);
      const noteable =
        options.issue !== undefined
          ? repos.issuables.findIssueByIid(found.id, options.issue)
          : repos.issuables.findMergeRequestByIid(found.id, options.mergeRequest as number);
      if (!noteable) {
        throw new CliError(
          options.issue !== undefined
            ? `project ${found.path} has no issue #${options.issue}`
            : `project ${found.path} has no merge request !${options.mergeRequest}`,
        );
      }
      if (options.supportBot && !found.serviceDeskEnabled) throw new CliError(`project ${found.path} has no Service Desk (projects add --service-desk)`);
      return unique(`a notification with reply key ${options.replyKey}`, () => repos.notifications.create({
        replyKey: options.replyKey ?? mintReplyKey(1, found.id),
        projectId: found.id,
        recipientId: options.supportBot ? repos.users.supportBot().id : user(repos, options.recipient as string).id,
        noteableType: options.issue !== undefined ? 'Issue' : 'MergeRequest',
        noteableId: noteable.id,
        inReplyToDiscussionId: options.discussion ?? null,
      }));
    });
    print({
      ...row,
      reply_address: template.hasKey ? template.format(row.replyKey) : null,
      message_id: `<reply-${row.replyKey}@${cfg.hostname}>`,
    });
  });

program
  .command('addresses')
  .description("a project's mail addresses: Service Desk, and with --user that user's new issue, new merge request and comment addresses")
  .requiredOption('--project <path>', 'the project')
  .option('--user <username>', "the user whose token the addresses carry (keep them private: they post as the user)")
  .option('--issue <iid>', 'also the address that comments on this issue', positiveInt('--issue'))
  .action((options: { project: string; user?: string; issue?: number }) => {
    const cfg = config();
    const template = compileTemplate(cfg.address);
    if (!template.hasKey) throw new CliError(`the address template ${cfg.address} has no %{key}: only replies (by References) are possible`);
    const rows = withRepos((repos) => {
      const found = project(repos, options.project);
      const list: { purpose: string; address: string }[] = [];
      if (found.serviceDeskEnabled) {
        list.push({ purpose: 'service desk', address: template.format(serviceDeskKey(found.path, found.id)) });
        if (found.serviceDeskKey) list.push({ purpose: 'service desk (suffix)', address: template.format(serviceDeskAliasKey(found.path, found.serviceDeskKey)) });
        // GitLab's alias address: the project's suffix when it has one, else its Service Desk key.
        if (cfg.service_desk_address) {
          const key = found.serviceDeskKey ? serviceDeskAliasKey(found.path, found.serviceDeskKey) : serviceDeskKey(found.path, found.id);
          list.push({ purpose: 'service desk alias', address: compileTemplate(cfg.service_desk_address).format(key) });
        }
      }
      if (options.user) {
        const owner = user(repos, options.user);
        if (owner.userType !== 'human') throw new CliError(`${owner.username} is GitLab's Support Bot: it has no addresses of its own`);
        const token = owner.incomingEmailToken;
        list.push({ purpose: 'new issue', address: template.format(newIssueKey(found.path, found.id, token)) });
        list.push({ purpose: 'new merge request', address: template.format(newMergeRequestKey(found.path, found.id, token)) });
        if (options.issue !== undefined) list.push({ purpose: `comment on #${options.issue}`, address: template.format(issueNoteKey(found.path, found.id, token, options.issue)) });
      } else if (options.issue !== undefined) {
        throw new CliError('--issue needs --user: the address carries the user\'s token');
      }
      return list;
    }, { readOnly: true });
    if (json()) print(rows);
    else for (const r of rows) process.stdout.write(`${r.purpose.padEnd(22)}${r.address}\n`);
    // Nothing to print is an answer too; said where a person reads it, not in what a script parses.
    if (rows.length === 0) process.stderr.write(`${options.project} has no Service Desk; give --user for a user's new issue and new merge request addresses\n`);
  });

const INGRESSES = ['smtp', 'lmtp', 'pipe', 'policy', 'imap', 'graph'] as const;

function reasonCode(value: string): string {
  const code = value.replace(/\.$/, '');
  if (!Object.keys(OUTCOMES).some((known) => known === code || known.startsWith(`${code}.`))) {
    const families = [...new Set(Object.keys(OUTCOMES).map((known) => known.split('.')[0]))].join(', ');
    throw new InvalidArgumentError(`--reason ${value} is no reason code nor the start of one (a family: ${families}; the codes are in the README's rejection table)`);
  }
  return code;
}

function moment(name: string) {
  return (value: string): string => {
    const found = parseMoment(value, new Date());
    if (!found) throw new InvalidArgumentError(`${name} ${value} is no time: give a date or time in UTC (2026-11-27, 2026-11-27T14:30, with an offset such as +01:00 if not UTC) or an age (90m, 36h, 7d, 2w)`);
    return found.toISOString();
  };
}

program
  .command('messages')
  .description('inbound messages, newest first, with what became of each; the filters given must all match')
  .addOption(new Option('--status <status>', 'only this status').choices(['processed', 'rejected', 'ignored', 'duplicate', 'failed']))
  .option('--from <text>', 'a sender (MAIL FROM or the From: header) that contains TEXT, in any case')
  .option('--to <text>', 'a recipient (RCPT TO) that contains TEXT, in any case')
  .option('--reason <code>', 'this reason code on the message or one of its recipients; a family (rcpt, data) matches every code in it', reasonCode)
  .option('--since <when>', 'received at or after WHEN: a UTC date or time (2026-11-27, 2026-11-27T14:30) or an age (90m, 36h, 7d)', moment('--since'))
  .option('--until <when>', 'received before WHEN, as --since', moment('--until'))
  .addOption(new Option('--ingress <ingress>', 'received this way').choices(INGRESSES))
  .option('--message-id <id>', 'this Message-ID (with or without its angle brackets)')
  .option('--limit <n>', 'at most this many', positiveInt('--limit'), 20)
  .action((options: Omit<MessageFilter, 'status' | 'ingress'> & { status?: MessageFilter['status']; ingress?: MessageFilter['ingress'] }) => {
    if (options.since && options.until && options.since >= options.until) {
      throw new CliError(`--since (${options.since}) must be before --until (${options.until})`);
    }
    const messageId = options.messageId?.trim().replace(/^<(.*)>$/, '$1');
    if (options.messageId !== undefined && !messageId) throw new CliError('--message-id is empty');
    const rows = withRepos((repos) => repos.inbound.list({ ...options, messageId }), { readOnly: true });
    const filtered = Object.keys(options).some((option) => option !== 'limit');
    if (json()) print(rows);
    else if (rows.length === 0) process.stdout.write(filtered ? 'no messages match\n' : 'no messages\n');
    else
      for (const r of rows) {
        const target = r.targetType ? ` → ${r.targetType} ${r.targetId}` : '';
        process.stdout.write(
          visible(`${r.id}  ${r.receivedAt}  ${r.status.padEnd(9)}  from ${r.mailFrom || '<>'} to ${r.rcptTo.join(', ')}${target}${r.reasonCode ? `  [${r.reasonCode}] ${r.reason}` : ''}`) + '\n',
        );
      }
  });

program
  .command('stats')
  .description('what became of the messages of a time window (the last 24 hours unless given): messages by status, recipients by stage, status and reason, most first')
  .option('--since <when>', 'received at or after WHEN (default: 24 hours before --until), as for messages', moment('--since'))
  .option('--until <when>', 'received before WHEN (default: now)', moment('--until'))
  .action((options: { since?: string; until?: string }) => {
    const since = options.since ?? new Date((options.until ? Date.parse(options.until) : Date.now()) - 24 * 3_600_000).toISOString();
    if (options.until && since >= options.until) throw new CliError(`--since (${since}) must be before --until (${options.until})`);
    const found = withRepos((repos) => repos.inbound.outcomes({ since, until: options.until }), { readOnly: true });
    if (json()) return print({ since, until: options.until ?? null, ...found });
    const total = found.messages.reduce((sum, m) => sum + m.count, 0);
    process.stdout.write(`${total} messages received from ${since} to ${options.until ?? 'now'}\n`);
    for (const m of found.messages) process.stdout.write(`  ${m.status.padEnd(10)} ${String(m.count).padStart(8)}\n`);
    if (found.deliveries.length > 0) process.stdout.write('recipients:\n');
    for (const d of found.deliveries) {
      const outcome = d.reasonCode ? OUTCOMES[d.reasonCode as keyof typeof OUTCOMES] : undefined;
      const reason = d.reasonCode ? `  ${d.reasonCode}${outcome ? ` (${outcome.smtp} ${outcome.dsn} ${outcome.text})` : ''}` : '';
      process.stdout.write(`  ${d.stage.padEnd(8)} ${d.status.padEnd(10)} ${String(d.count).padStart(8)}${reason}\n`);
    }
  });

program
  .command('show')
  .description('one inbound message: its envelope, status and reason, and what became of each recipient')
  .argument('<id>', 'inbound message id', positiveInt('id'))
  .option('--raw', 'print the message exactly as received instead')
  .action((id: number, options: { raw?: boolean }) => {
    const found = withRepos((repos) => {
      const row = repos.inbound.findById(id);
      return row && { row, deliveries: repos.inbound.deliveriesOf(id), raw: options.raw ? repos.inbound.rawOf(id) : null };
    }, { readOnly: true });
    if (!found) throw new CliError(`no inbound message with id ${id}`);
    const { raw: _inline, ...row } = found.row;
    const { raw } = found;
    if (options.raw) {
      if (!raw && row.rawPrunedAt) throw new CliError(`inbound message ${id} has no stored content: it was dropped at ${row.rawPrunedAt}, older than INTAKE_KEEP_RAW_DAYS (or by intake prune)`);
      if (!raw) throw new CliError(`inbound message ${id} has no stored content (it was refused before DATA, was too big, or was deferred with a 4xx and comes again as another message)`);
      process.stdout.write(raw);
      return;
    }
    if (json()) {
      print({ ...row, deliveries: found.deliveries });
      return;
    }
    print(row);
    process.stdout.write('\ndeliveries:\n');
    print(found.deliveries);
  });

program
  .command('deliver')
  .description('store one message read on stdin, for Postfix pipe(8), procmail or scripts; exit 0 stored, 67 unknown recipient, 65 refused, 75 try again')
  .option('--to <address>', 'an envelope recipient (repeatable; default: the mailbox address, routed by the headers)', (v: string, all: string[]) => [...all, v], [])
  .option('--from <address>', 'the envelope sender (empty for the null sender <>)')
  .option('--client-address <ip>', "the SMTP client's IP address, for SPF and the record (Postfix pipe(8): ${client_address})")
  .option('--client-helo <name>', "the SMTP client's HELO name (Postfix pipe(8): ${client_helo})")
  .action(async (options: { to: string[]; from?: string; clientAddress?: string; clientHelo?: string }) => {
    const { deliverFromPipe, EXIT } = await import('./pipe/deliver.js');
    let cfg: Config;
    try {
      cfg = config();
    } catch (error) {
      // A configuration to fix: the MTA keeps the mail (75) rather than bouncing it (78 would).
      if (!(error instanceof ConfigError)) throw error;
      process.stderr.write(`intake: invalid configuration:\n${error.problems.map((p) => `  ${p}\n`).join('')}`);
      process.exit(EXIT.tempFail);
    }
    if (options.clientAddress && isIP(options.clientAddress) === 0) {
      // A pipe(8) line to fix: the MTA keeps the mail meanwhile.
      process.stderr.write(`intake: --client-address: ${JSON.stringify(options.clientAddress)} is not an IP address\n`);
      process.exit(EXIT.tempFail);
    }
    const raw = await readStdin(cfg.max_message_bytes);
    let store: Store;
    try {
      // Beside a running `intake serve`, which may hold the write lock for a moment.
      store = openStore(cfg.database, { busyTimeoutMs: 10_000 });
    } catch (error) {
      process.stderr.write(`intake: cannot open the database ${cfg.database}: ${(error as Error).message}\n`);
      process.exit(EXIT.tempFail);
    }
    try {
      const logger = createLogger(cfg.log_level === 'info' ? 'warn' : cfg.log_level, 2);
      const client = { remoteAddress: options.clientAddress || null, helo: options.clientHelo || null };
      const result = await deliverFromPipe({ raw, to: options.to, from: options.from ?? null, client, maxBytes: cfg.max_message_bytes }, await ingestDeps(cfg, store, logger));
      for (const line of result.lines) process.stderr.write(`intake: ${line}\n`);
      if (json()) print({ exitCode: result.exitCode, inboundMessageId: result.inboundMessageId, replies: result.lines });
      process.exitCode = result.exitCode;
    } catch (error) {
      // A bug or a broken database is never the sender's fault: keep the mail queued (75), never bounce it.
      process.stderr.write(`intake: could not deliver, will be retried: ${(error as Error)?.message ?? String(error)}\n`);
      process.exitCode = EXIT.tempFail;
    } finally {
      store.close();
    }
  });

/** Reads stdin to the end, keeping at most limit + 1 bytes (enough to know it is too big). */
async function readStdin(limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let kept = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    if (kept > limit) continue;
    chunks.push(chunk);
    kept += chunk.length;
  }
  return Buffer.concat(chunks, kept);
}

program
  .command('explain')
  .description('dry run: how a message would be routed and what would be stored, storing nothing')
  .argument('<file>', 'the message (.eml)')
  .option('--to <address>', 'an envelope recipient (repeatable; default: the mailbox address, routed by the headers)', (v: string, all: string[]) => [...all, v], [])
  .option('--from <address>', 'the envelope sender', 'sender@example.invalid')
  .action(async (file: string, options: { to: string[]; from: string }) => {
    const cfg = config();
    let raw: Buffer;
    try {
      raw = readFileSync(file);
    } catch (error) {
      throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
    }
    const mailbox = compileTemplate(cfg.address).mailbox;
    const to = options.to.length > 0 ? options.to : mailbox ? [mailbox] : [];
    if (to.length === 0) throw new CliError('give --to ADDRESS: the address template has no mailbox address');
    const store = openStore(cfg.database);
    try {
      const { explain } = await import('./ingest/ingest.js');
      const result = await explain(raw, { mailFrom: options.from, rcptTo: to }, await ingestDeps(cfg, store, createLogger('warn', 2)));
      if (json()) {
        process.stdout.write(`${safeJson(result)}\n`);
        return;
      }
      const out: string[] = [`message-id  ${result.messageId ?? ''}`, `from        ${result.from ?? ''}`, `subject     ${result.subject ?? ''}`];
      if (result.unparsable) out.push(`unparsable  ${result.unparsable}`);
      for (const r of result.recipients) {
        out.push('', `recipient ${r.recipient}`, `  RCPT TO: ${r.rcpt}`);
        for (const a of r.attempts) out.push(`  reading ${a.handler}: ${a.refused ? `lost (${a.refused})` : 'won'}`);
        for (const c of r.candidates) {
          const outcome = 'routed' in c.outcome ? `won: ${c.outcome.routed}` : 'refused' in c.outcome ? `refused (${c.outcome.refused})` : `skipped (${c.outcome.skipped})`;
          out.push(`  header ${c.source}: ${c.value}${c.key ? ` key ${c.key}` : ''}: ${outcome}`);
        }
        if (r.delivery) {
          const d = r.delivery;
          out.push(`  result: ${d.status}${d.handler ? ` by ${d.handler}` : ''}${d.destination ? ` (${d.destination})` : ''}${d.reasonCode ? ` [${d.reasonCode}] ${d.reason}` : ''}`);
        }
        if (r.stored) {
          out.push(`  would store: ${r.stored.type}${r.stored.title ? ` titled "${r.stored.title}"` : ''}`);
          out.push(...r.stored.body.split('\n').map((line) => `    | ${line}`));
        }
      }
      if (result.reply) out.push('', `DATA reply: ${result.reply.code} ${result.reply.message}`);
      process.stdout.write(`${visible(out.join('\n'))}\n`);
    } finally {
      store.close();
    }
  });

program
  .command('trim')
  .description('read a plain-text reply body on stdin and print what a reply note keeps (or, with --elided, what is cut)')
  .option('--elided', 'print the part that is cut off instead')
  .action((options: { elided?: boolean }) => {
    const { reply, elided } = trimReply(readFileSync(0, 'utf8'));
    if (json()) print({ reply, elided });
    else process.stdout.write(`${options.elided ? elided : reply}\n`);
  });

program
  .command('prune')
  .description("drop the raw bytes of messages older than DAYS (default INTAKE_KEEP_RAW_DAYS); their rows and what they created stay")
  .option('--older-than <days>', 'received more than this many days ago (1 or more)', positiveInt('--older-than'))
  .option('--dry-run', 'count what would be dropped, drop nothing')
  .action(async (options: { olderThan?: number; dryRun?: boolean }) => {
    const cfg = config();
    const days = options.olderThan ?? cfg.keep_raw_days;
    if (days === 0) throw new CliError('nothing to prune by: give --older-than DAYS, or set INTAKE_KEEP_RAW_DAYS');
    // A running server stores mail meanwhile: each step waits for its commit for at most this long.
    const store = openStore(cfg.database, { busyTimeoutMs: 10_000 });
    try {
      const result = await pruneRaw(store, createRepositories(store), { days, dryRun: options.dryRun });
      if (json()) print({ cutoff: result.cutoff, messages: result.messages, bytes: result.bytes, dry_run: options.dryRun === true });
      else process.stdout.write(`${options.dryRun ? 'would drop' : 'dropped'} the raw bytes of ${result.messages} messages received before ${result.cutoff} (${result.bytes} bytes)\n`);
    } finally {
      store.close();
    }
  });

program
  .command('reprocess')
  .description('run a stored message again for the recipients it failed for or was refused at DATA')
  .argument('<id>', 'inbound message id', positiveInt('id'))
  .action(async (id: number) => {
    const cfg = config();
    const store = openStore(cfg.database);
    try {
      const deps = await ingestDeps(cfg, store, createLogger('warn', 2));
      const { reprocess, ReprocessError } = await import('./ingest/ingest.js');
      const result = await reprocess(id, deps).catch((error: unknown) => {
        throw error instanceof ReprocessError ? new CliError(error.message) : error;
      });
      print({ inbound_message_id: result.inboundMessageId, status: result.status, reply: `${result.reply.code} ${result.reply.message}` });
      if (result.status === 'failed' || result.status === 'rejected') process.exitCode = 1;
    } finally {
      store.close();
    }
  });

// `intake show 42 | head`: the reader went away, which is no error of ours.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

program.parseAsync().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`intake: invalid configuration:\n${error.problems.map((p) => `  ${p}\n`).join('')}`);
    process.exit(EX_CONFIG);
  }
  if (error instanceof StartupError) {
    process.stderr.write(`intake: ${error.message}\n`);
    process.exit(error.exitCode);
  }
  if (error instanceof CliError) {
    process.stderr.write(`intake: ${error.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`intake: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
