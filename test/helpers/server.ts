// Starts the real `intake serve` (the built dist/cli.js) on a free port with a temporary database.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileTemplate } from '../../src/address/template.js';
import { openStore, type Store } from '../../src/db/client.js';
import { createRepositories, type Repositories } from '../../src/db/repositories.js';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const CLI = join(ROOT, 'dist/cli.js');

export interface RunningServer {
  /** The SMTP listener's port (0 when there is none). */
  port: number;
  /** Every listener's port, by protocol (smtp, smtps, lmtp, policy). */
  ports: Record<string, number>;
  pid: number;
  dir: string;
  database: string;
  env: NodeJS.ProcessEnv;
  /** The test's own connection to the server's database. */
  store: Store;
  repos: Repositories;
  logs: string[];
  /** Resolves with the exit code once the process has exited, however it was stopped. */
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'intake-test-'));
}

/** Environment for a CLI run: only the given INTAKE_* settings, none inherited from the caller. */
export function cliEnv(settings: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('INTAKE_')) env[k] = v;
  return { ...env, ...settings };
}

/** One `intake` command, without blocking this process (which may be serving what the command talks to). */
export function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

export async function startServer(settings: Record<string, string> = {}): Promise<RunningServer> {
  const dir = tempDir();
  // A restart of the same service passes its database back in.
  const database = settings.INTAKE_DATABASE ?? join(dir, 'data', 'intake.sqlite');
  const env = cliEnv({
    INTAKE_DATABASE: database,
    INTAKE_SMTP_LISTEN: '127.0.0.1:0',
    INTAKE_HOSTNAME: 'intake.test',
    INTAKE_ADDRESS: 'incoming+%{key}@example.com',
    INTAKE_LOG_LEVEL: 'info',
    ...settings,
  });
  const child = spawn(process.execPath, [CLI, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const logs: string[] = [];
  const ports = await new Promise<Record<string, number>>((resolve, reject) => {
    let pending = '';
    const timer = setTimeout(() => reject(new Error(`intake serve did not start: ${logs.join('\n')}`)), 15_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        logs.push(line);
        try {
          const entry = JSON.parse(line) as { msg?: string; ports?: Record<string, number> };
          if (entry.msg === 'ready' && entry.ports) {
            clearTimeout(timer);
            resolve(entry.ports);
          }
        } catch {
          // not a log line
        }
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => logs.push(chunk));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`intake serve exited with ${code}: ${logs.join('\n')}`));
    });
  });
  const store = openStore(database, { migrate: false });
  return {
    port: ports.smtp ?? 0,
    ports,
    pid: child.pid as number,
    dir,
    database,
    env,
    store,
    repos: createRepositories(store),
    logs,
    exited,
    stop: () => stopChild(child, exited, () => {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }),
  };
}

/** SIGTERM (SIGKILL after 10 s) unless it has exited already, killed by a test or not. */
async function stopChild(child: ChildProcess, exited: Promise<number | null>, cleanup: () => void): Promise<number | null> {
  const running = child.exitCode === null && child.signalCode === null;
  const kill = running ? setTimeout(() => child.kill('SIGKILL'), 10_000) : undefined;
  if (running) child.kill('SIGTERM');
  const code = await exited;
  clearTimeout(kill);
  cleanup();
  return code;
}

export const template = compileTemplate('incoming+%{key}@example.com');
