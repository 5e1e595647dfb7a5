// load: an SMTP load generator over real TCP, for the benchmark and the crash test. Sessions pipeline
// MAIL, RCPT and DATA (RFC 2920); every message's outcome and end-of-DATA latency is recorded.
import { connect, type Socket } from 'node:net';

export interface Envelope {
  from: string;
  to: string;
  /** The whole message, CRLF line ends, dot-stuffed or without lines starting with a dot. */
  data: Buffer;
}

export interface LoadOptions {
  port: number;
  sessions: number;
  messages: number;
  /** A new connection for each message, or sessions kept open. */
  mode: 'persistent' | 'per-message';
  /** Builds message i (0-based). */
  message: (i: number) => Envelope;
  /** Stops starting new messages after this long. */
  maxMs?: number;
  /** Called with each message's outcome as soon as it is known (the crash test's ledger). */
  onOutcome?: (i: number, outcome: Outcome) => void;
  /**
   * Sessions already open and greeted (see openSessions), one per worker, left open afterwards: the
   * time then counts messages only, not connecting and the server's greeting delay. A session that
   * fails is replaced in the array by a new one.
   */
  pool?: Session[];
}

export type Outcome =
  | { kind: 'accepted'; reply: string; latencyMs: number }
  | { kind: 'refused'; stage: 'rcpt' | 'data'; reply: string; latencyMs?: number }
  | { kind: 'temporary'; reply: string }
  /** The connection failed; `stage` says how far the message got: not sent, its envelope, or all of it. */
  | { kind: 'error'; message: string; stage: Progress };

/** Where a message is in its session: before MAIL, between MAIL and the end of DATA, or after it. */
export type Progress = 'not sent' | 'envelope' | 'data';

export interface LoadResult {
  elapsedMs: number;
  accepted: number;
  refused: number;
  temporary: number;
  errors: number;
  /** End of DATA to the final reply, for messages that got one. */
  latenciesMs: number[];
  firstError?: string;
}

/** A server that says nothing for this long has failed the session. */
const REPLY_TIMEOUT_MS = 60_000;

/** One SMTP connection that reads replies as they come. */
export class Session {
  private buffer = '';
  private waiting: (() => void) | null = null;
  /** How far the message being sent has got (for the crash test: cut before or after its end of DATA). */
  progress: Progress = 'not sent';
  private closed: Error | null = null;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.waiting?.();
    });
    const onEnd = (error?: Error) => {
      this.closed = error ?? new Error('connection closed');
      this.waiting?.();
    };
    socket.on('error', onEnd);
    socket.on('close', () => onEnd());
    // One idle timer per connection, refreshed by traffic: a timer per awaited reply cost the generator
    // more CPU than some servers it measures.
    socket.setTimeout(REPLY_TIMEOUT_MS, () => {
      socket.destroy(new Error('reply timeout'));
    });
  }

  static open(port: number): Promise<Session> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => resolve(new Session(socket)));
      socket.once('error', reject);
    });
  }

  /** The next complete reply (multi-line replies joined), e.g. "250 2.1.5 Accepted". */
  async reply(): Promise<string> {
    for (;;) {
      let offset = 0;
      for (let end = this.buffer.indexOf('\r\n', offset); end !== -1; end = this.buffer.indexOf('\r\n', offset)) {
        const line = this.buffer.slice(offset, end);
        offset = end + 2;
        if (/^\d{3}(?: |$)/.test(line)) {
          this.buffer = this.buffer.slice(offset);
          return line;
        }
      }
      if (this.closed) throw this.closed;
      await new Promise<void>((resolve) => {
        this.waiting = () => {
          this.waiting = null;
          resolve();
        };
      });
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async hello(name = 'load.test'): Promise<void> {
    const greeting = await this.reply();
    if (!greeting.startsWith('220')) throw new Error(`greeting: ${greeting}`);
    this.write(`EHLO ${name}\r\n`);
    const ehlo = await this.reply();
    if (!ehlo.startsWith('250')) throw new Error(`EHLO: ${ehlo}`);
  }

  /** One transaction, pipelined: MAIL, RCPT and DATA in one write, then the message. */
  async send(envelope: Envelope): Promise<Outcome> {
    this.progress = 'envelope';
    this.write(`MAIL FROM:<${envelope.from}>\r\nRCPT TO:<${envelope.to}>\r\nDATA\r\n`);
    const mail = await this.reply();
    const rcpt = await this.reply();
    const data = await this.reply();
    if (!data.startsWith('354')) {
      // The transaction is still open on the server's side (MAIL was taken): end it before the next.
      this.write('RSET\r\n');
      await this.reply();
      // The first reply that is not a success: MAIL's, RCPT's, or DATA's own (a 4xx or 5xx to DATA
      // after MAIL and RCPT were taken).
      const refusal = [mail, rcpt, data].find((reply) => !reply.startsWith('2') && !reply.startsWith('3')) ?? data;
      this.progress = 'not sent';
      return refusal.startsWith('4') ? { kind: 'temporary', reply: refusal } : { kind: 'refused', stage: 'rcpt', reply: refusal };
    }
    this.write(envelope.data);
    this.write(envelope.data.subarray(-2).toString() === '\r\n' ? '.\r\n' : '\r\n.\r\n');
    this.progress = 'data';
    const started = performance.now();
    const final = await this.reply();
    this.progress = 'not sent';
    const latencyMs = performance.now() - started;
    if (final.startsWith('2')) return { kind: 'accepted', reply: final, latencyMs };
    if (final.startsWith('4')) return { kind: 'temporary', reply: final };
    return { kind: 'refused', stage: 'data', reply: final, latencyMs };
  }

  /** The connection has failed or been closed. */
  get ended(): boolean {
    return this.closed !== null || this.socket.destroyed;
  }

  close(): void {
    this.socket.end('QUIT\r\n');
    this.socket.destroySoon?.();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Runs the load: `sessions` workers take message numbers from one counter until all are sent. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const result: LoadResult = { elapsedMs: 0, accepted: 0, refused: 0, temporary: 0, errors: 0, latenciesMs: [] };
  const deadline = Date.now() + (options.maxMs ?? 120_000);
  let next = 0;
  const take = () => (next < options.messages && Date.now() < deadline ? next++ : -1);
  const record = (i: number, outcome: Outcome) => {
    if (outcome.kind === 'accepted') {
      result.accepted++;
      result.latenciesMs.push(outcome.latencyMs);
    } else if (outcome.kind === 'refused') {
      result.refused++;
      if (outcome.latencyMs !== undefined) result.latenciesMs.push(outcome.latencyMs);
    } else if (outcome.kind === 'temporary') result.temporary++;
    else {
      result.errors++;
      result.firstError ??= outcome.message;
    }
    options.onOutcome?.(i, outcome);
  };

  const pool = options.pool;
  if (pool && (pool.length !== options.sessions || options.mode !== 'persistent')) throw new Error('a pool has one kept-open session per worker');
  const worker = async (_: unknown, k: number) => {
    let session: Session | null = pool?.[k]?.ended === false ? (pool[k] as Session) : null;
    for (let i = take(); i !== -1; i = take()) {
      try {
        if (!session) {
          session = await Session.open(options.port);
          await session.hello();
          if (pool) pool[k] = session;
        }
        record(i, await session.send(options.message(i)));
        if (options.mode === 'per-message') {
          session.close();
          session = null;
        }
      } catch (error) {
        record(i, { kind: 'error', message: (error as Error).message, stage: session?.progress ?? 'not sent' });
        session?.destroy();
        session = null;
      }
    }
    if (!pool) session?.close();
  };

  const started = performance.now();
  await Promise.all(Array.from({ length: options.sessions }, worker));
  result.elapsedMs = performance.now() - started;
  return result;
}

/** `count` sessions to port, each greeted, for runLoad's pool; close them with Session.close. */
export async function openSessions(port: number, count: number): Promise<Session[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const session = await Session.open(port);
      await session.hello();
      return session;
    }),
  );
}

/** The p-th percentile (0-100) of values, or null for none. */
export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}
