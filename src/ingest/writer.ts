// writer: in `intake serve`, the thread that owns the database's writes. ingest() and recordRefusals()
// run there, so parsing, storing and waiting for the disk never hold up the SMTP sessions, which keep
// a read-only connection for the RCPT-time checks. Side effects: a worker thread and its connection.
import { Worker } from 'node:worker_threads';
import { symbols, type Logger } from 'pino';
import type { Config } from '../config.js';
import { MailRejection, type WireRejection } from '../errors.js';
import type { IngestRequest, IngestResult, IngestWriter, Ingress, RefusalRequest } from './ingest.js';
import { rawPieces } from './parse.js';

/** main → writer, in arrays: what was asked for in one turn of the event loop goes in one message. */
export type WriterCall =
  | { id: number; kind: 'ingest'; request: IngestRequest }
  | { id: number; kind: 'refusals'; request: Omit<RefusalRequest, 'refused'> & { refused: WireRefusal[] } }
  | { id: number; kind: 'ping' }
  | { id: number; kind: 'close' };

type Asked = 'ingest' | 'refusals' | 'ping';
/** A call as asked for, before it has its id. */
type CallBody = { [K in Asked]: Omit<Extract<WriterCall, { kind: K }>, 'id'> }[Asked];

/** writer → main; answers, like calls, travel in arrays, with the writer's log lines among them. */
export type WriterAnswer =
  | { kind: 'ready' }
  | { kind: 'failed'; message: string }
  /** The disk failed a flush: the writer refuses every message from now on (see WriterThread.flushFailed). */
  | { kind: 'flush_failed'; message: string }
  | { kind: 'log'; line: string }
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; rejection: WireRejection | null; message: string };

export interface WireRefusal {
  recipient: string;
  rejection: WireRejection;
  stage?: 'rcpt' | 'data';
}

export interface WriterThread extends IngestWriter {
  /**
   * Resolves when the disk has failed a flush of the database's WAL. Nothing more can be promised on
   * the writer's connection, and a new connection in this process would not read the WAL from the
   * disk again: only a new process does (see serve.ts).
   */
  readonly flushFailed: Promise<Error>;
  /**
   * Resolves when the writer thread answers and the database takes writes (a write lock taken and
   * let go); rejects naming what is wrong. Waits for a thread being started again. For /health.
   */
  ping(): Promise<void>;
  /** Waits for what was handed over, closes the writer's connection (checkpointing the WAL) and ends the thread. */
  close(): Promise<void>;
}

/** What the writer's answers told, as they arrive: what `/metrics` counts (monitor/metrics.ts). */
export interface WriterObserver {
  /** A message handed over at the end of DATA was answered after `seconds`: stored (result), or not (code). */
  ingested(ingress: Ingress, seconds: number, outcome: { result: IngestResult } | { code: string }): void;
  /** Recipients were refused (handed over to be recorded). */
  refused(refused: readonly WireRefusal[]): void;
  /** The writer thread stopped and another is being started. */
  restarted(): void;
}

const THREAD = new URL('./writer-thread.js', import.meta.url);
/** A writer that died is started again, but not more often than this. */
const RESTART_MS = 1000;
/**
 * The writer's young generation limit, in MB. By default (48 here) V8 lets its new space grow to
 * 32 MB; with 64 it grows to 64 MB, the garbage of parsing and storing a message dies young instead
 * of being promoted, and V8's collections took about a tenth less CPU a message (+11 to +14 %
 * throughput in three paired runs; 128 gave no more).
 */
const WRITER_YOUNG_GENERATION_MB = 64;

/** Starts the writer thread; rejects with the reason when it cannot open the database. */
export async function startWriter(config: Config, logger: Logger, observer?: WriterObserver): Promise<WriterThread> {
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: unknown): void }>();
  // The writer's log lines are written by this thread's destination: two threads writing batches to
  // one pipe could interleave their lines.
  const destination = (logger as unknown as Record<symbol, { write(line: string): void }>)[symbols.streamSym];
  let flushFailedAlready = false;
  let reportFlushFailure: (error: Error) => void = () => undefined;
  const flushFailed = new Promise<Error>((resolve) => (reportFlushFailure = resolve));
  let nextId = 1;
  let closing = false;
  let gone = false;

  const spawn = (): Promise<Worker> =>
    new Promise((resolve, reject) => {
      const worker = new Worker(THREAD, { workerData: { config }, resourceLimits: { maxYoungGenerationSizeMb: WRITER_YOUNG_GENERATION_MB } });
      let ready = false;
      worker.on('message', (answers: WriterAnswer[]) => {
        for (const answer of answers) {
          if ('kind' in answer) {
            if (answer.kind === 'log') destination?.write(answer.line);
            else if (answer.kind === 'flush_failed') {
              flushFailedAlready = true;
              reportFlushFailure(new Error(answer.message));
            }
            else if (answer.kind === 'ready') resolve(worker);
            else reject(new Error(answer.message));
            ready ||= answer.kind === 'ready';
            continue;
          }
          const call = pending.get(answer.id);
          if (!call) continue;
          pending.delete(answer.id);
          if (answer.ok) call.resolve(answer.value);
          else call.reject(answer.rejection ? MailRejection.fromWire(answer.rejection) : new Error(answer.message));
        }
      });
      worker.on('error', (error) => {
        logger.error({ err: error }, 'writer thread failed');
        reject(error);
      });
      worker.on('exit', (code) => {
        // Whatever it was doing is not committed, or its answer is lost: the senders try again later.
        for (const call of pending.values()) call.reject(new MailRejection('data.store_failed'));
        pending.clear();
        if (closing) gone = true;
        // After a failed flush, not in this process: a new connection's checkpoint would copy the lost
        // pages into the database file; serve is exiting, and the next process recovers instead.
        if (!ready || closing || flushFailedAlready) return reject(new Error(`the writer thread exited with ${code}`));
        logger.error({ exitCode: code }, 'writer thread stopped; starting another');
        observer?.restarted();
        restart();
      });
    });

  // Until one starts, calls wait for it (and get 451 if it failed); there is always another attempt.
  const restart = () => {
    current = new Promise((again) => setTimeout(again, RESTART_MS)).then(spawn);
    current.catch((error: unknown) => {
      if (closing) return;
      logger.error({ err: error }, 'writer thread cannot start; trying again');
      restart();
    });
  };

  let current = spawn();
  await current;

  let pinging: Promise<void> | null = null;
  // A postMessage costs both threads more than recording a refusal: one per turn carries them all.
  let outbox: { calls: WriterCall[]; transfer: ArrayBuffer[] } | null = null;
  const send = (worker: Worker, message: WriterCall, transfer: ArrayBuffer[]) => {
    if (!outbox) {
      const batch = (outbox = { calls: [], transfer: [] });
      setImmediate(() => {
        outbox = null;
        worker.postMessage(batch.calls, batch.transfer);
      });
    }
    outbox.calls.push(message);
    outbox.transfer.push(...transfer);
  };

  const call = async <T>(message: CallBody, transfer: ArrayBuffer[] = []): Promise<T> => {
    const worker = await current.catch(() => {
      throw new MailRejection('data.store_failed');
    });
    if (gone) throw new MailRejection('data.store_failed');
    return new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      send(worker, { ...message, id } as WriterCall, transfer);
    });
  };

  return {
    flushFailed,
    ingest: (request) => {
      // Moved, not copied: posting a view would copy all of the memory under it (a socket read, Node's
      // buffer pool). A large message arrives in pieces that own their memory (smtp/data.ts); anything
      // else is small and is joined once into memory of its own.
      const given = rawPieces(request.raw);
      const pieces = given.every(owns) ? given : [ownCopy(given)];
      const started = observer ? performance.now() : 0;
      const answered = call<IngestResult>({ kind: 'ingest', request: { ...request, raw: pieces } }, pieces.map((p) => p.buffer as ArrayBuffer));
      if (observer) {
        const seconds = () => (performance.now() - started) / 1000;
        answered.then(
          (result) => observer.ingested(request.ingress, seconds(), { result }),
          (error: unknown) => observer.ingested(request.ingress, seconds(), { code: error instanceof MailRejection ? error.code : 'session.internal_error' }),
        );
      }
      return answered;
    },
    recordRefusals: (request) => {
      const refused = request.refused.map((r) => ({ recipient: r.recipient, stage: r.stage, rejection: r.rejection.toWire() }));
      // Counted as answered: the sender was told, whether or not the row could be written.
      observer?.refused(refused);
      return call<number | null>({ kind: 'refusals', request: { ...request, refused } });
    },
    // One at a time: each takes the write lock, which another program's lock makes wait up to 1 s in
    // the writer; checks that come meanwhile share the answer instead of queueing more waits.
    ping: () =>
      (pinging ??= call<void>({ kind: 'ping' })
        .catch((error: unknown) => {
          // What a message would be told (451) is not what a person checking needs to read.
          throw error instanceof MailRejection ? new Error('the writer thread is not running (stopped, or failing to start again)') : error;
        })
        .finally(() => (pinging = null))),
    async close() {
      closing = true;
      const worker = await current.catch(() => null);
      if (!worker) return;
      await new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        // After whatever is still in the outbox: that goes out first, at the end of this turn. The
        // writer finishes what it was given, answers it, and only then closes its connection.
        setImmediate(() => worker.postMessage([{ id: 0, kind: 'close' }] satisfies WriterCall[]));
      });
    },
  };
}

function owns(piece: Buffer): boolean {
  return piece.byteOffset === 0 && piece.byteLength === piece.buffer.byteLength;
}

function ownCopy(pieces: readonly Buffer[]): Buffer {
  const copy = Buffer.allocUnsafeSlow(pieces.reduce((sum, piece) => sum + piece.length, 0));
  let at = 0;
  for (const piece of pieces) at += piece.copy(copy, at);
  return copy;
}
