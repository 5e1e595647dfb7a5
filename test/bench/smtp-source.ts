// smtp-source: drives a server with Postfix's own load generator (C, one command at a time, no
// pipelining), the one the reference numbers were measured with. Bounded in count and time.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { LoadResult } from './load.js';

const CANDIDATES = ['/usr/sbin/smtp-source', '/usr/bin/smtp-source'];

/** The smtp-source program, or null when Postfix is not installed. */
export function smtpSourcePath(): string | null {
  const found = CANDIDATES.find((path) => existsSync(path));
  if (found) return found;
  const which = spawnSync('sh', ['-c', 'command -v smtp-source'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : null;
}

export interface SmtpSourceOptions {
  program: string;
  port: number;
  sessions: number;
  messages: number;
  mode: 'persistent' | 'per-message';
  /** Body bytes (smtp-source writes its own From, To, Date, a unique Message-Id and the Subject). */
  bytes: number;
  from: string;
  to: string;
  maxMs: number;
}

/**
 * Runs smtp-source to completion. It stops at the first reply it did not expect (no -A), so a run
 * either had every message accepted or counts as failed: there is no per-message ledger, and no
 * latency (the latency figures come from the pipelining generator).
 */
export async function runSmtpSource(options: SmtpSourceOptions): Promise<LoadResult> {
  const args = [
    ...(options.mode === 'persistent' ? ['-d'] : []),
    '-s', String(options.sessions),
    '-m', String(options.messages),
    '-l', String(options.bytes),
    '-f', options.from,
    '-t', options.to,
    '-S', 'Re: Benchmark',
    '-M', 'bench.sender.test',
    `inet:127.0.0.1:${options.port}`,
  ];
  const started = performance.now();
  const child = spawn(options.program, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.maxMs);
  const code: number | null = await new Promise((resolve) => child.once('exit', (status) => resolve(status)));
  clearTimeout(timer);
  const elapsedMs = performance.now() - started;
  const ok = code === 0 && stderr.trim() === '';
  return {
    elapsedMs,
    accepted: ok ? options.messages : 0,
    refused: 0,
    temporary: 0,
    errors: ok ? 0 : options.messages,
    latenciesMs: [],
    ...(ok ? {} : { firstError: stderr.trim().split('\n')[0] ?? `smtp-source exited with ${code}` }),
  };
}
