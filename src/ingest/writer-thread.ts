// writer-thread: the body of the writer thread (see writer.ts). Opens its own connection and runs
// ingest() and recordRefusals() for the SMTP, LMTP and policy listeners of the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../config.js';
import { assertWritable, checkpointWal, openStore, type Store } from '../db/client.js';
import { MailRejection } from '../errors.js';
import { pruneRaw } from '../db/raw-retention.js';
import { createLoggerTo } from '../log.js';
import { ingestDeps } from './deps.js';
import { ingest, recordRefusals } from './ingest.js';
import type { WriterAnswer, WriterCall } from './writer.js';

if (!parentPort) throw new Error('writer-thread runs as a worker thread of `intake serve`');
const port = parentPort;
const { config } = workerData as { config: Config };
// Answers of one turn go back in one message, as the calls came; log lines too (writer.ts writes them).
let answers: WriterAnswer[] | null = null;
const answer = (message: WriterAnswer) => {
  if (!answers) {
    answers = [];
    setImmediate(flushAnswers);
  }
  answers.push(message);
};
function flushAnswers(): void {
  if (!answers) return;
  const batch = answers;
  answers = null;
  port.postMessage(batch);
}
const logger = createLoggerTo(config.log_level, (line) => answer({ kind: 'log', line }));

let store: Store;
try {
  // The main thread has applied the migrations. A short busy timeout: a locked database is a 451 and
  // the sender's retry, not a stalled writer.
  store = openStore(config.database, {
    migrate: false,
    busyTimeoutMs: 1000,
    groupCommit: config.group_commit,
    // After the 451s of the group whose flush failed (answered in this turn's microtasks).
    onFlushFailure: (error) => setImmediate(() => answer({ kind: 'flush_failed', message: error.message })),
  });
  assertWritable(store.sqlite);
} catch (error) {
  port.postMessage([{ kind: 'failed', message: (error as Error).message }]);
  throw error;
}
const deps = await ingestDeps(config, store, logger);
const recovered = checkpointWal(store.sqlite);
if (!recovered.complete) logger.warn({ frames: recovered.frames }, 'could not checkpoint all of the WAL at start: another connection is reading the database');
else if (recovered.frames > 0) logger.info({ frames: recovered.frames }, 'WAL checkpointed into the database at start');

let inFlight = 0;
let closeRequested = false;

port.on('message', (calls: WriterCall[]) => calls.forEach(handle));

function handle(message: WriterCall): void {
  if (message.kind === 'close') {
    closeRequested = true;
    closeWhenDone();
    return;
  }
  if (message.kind === 'ping') {
    // /health: the thread is alive, and the database takes writes (another program's lock would make
    // every message a 451). No transaction of ours is open between turns: commits are synchronous.
    // Answered at once, not with this turn's batch: calls after it may hold the thread a while.
    try {
      assertWritable(store.sqlite);
      port.postMessage([{ id: message.id, ok: true, value: null }] satisfies WriterAnswer[]);
    } catch (error) {
      port.postMessage([{ id: message.id, ok: false, rejection: null, message: `the database does not take writes (${String((error as Error)?.message ?? error)})` }] satisfies WriterAnswer[]);
      // Should its ROLLBACK ever fail, every later commit would be a savepoint of a transaction that
      // never ends, answered 250 and never durable: this thread ends instead, and another starts. What
      // it has answered (committed) goes out first.
      if (store.sqlite.inTransaction) {
        logger.error({ err: String((error as Error)?.message ?? error) }, 'a health check left a transaction open: ending the writer thread');
        flushAnswers();
        process.exit(70);
      }
    }
    return;
  }
  inFlight++;
  const done =
    message.kind === 'ingest'
      ? // A Buffer arrives as a plain Uint8Array.
        ingest({ ...message.request, raw: (message.request.raw as unknown as Uint8Array[]).map((u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength)) }, deps)
      : recordRefusals({ ...message.request, refused: message.request.refused.map((r) => ({ ...r, rejection: MailRejection.fromWire(r.rejection) })) }, deps);
  done
    .then(
      (value) => answer({ id: message.id, ok: true, value }),
      (error: unknown) =>
        answer({ id: message.id, ok: false, rejection: error instanceof MailRejection ? error.toWire() : null, message: String((error as Error)?.message ?? error) }),
    )
    .finally(() => {
      inFlight--;
      closeWhenDone();
    });
}

/** Raw messages past INTAKE_KEEP_RAW_DAYS are dropped at start and every hour, in steps between messages. */
const PRUNE_EVERY_MS = 60 * 60 * 1000;
let pruning = false;
function pruneOldRaw(): void {
  if (pruning || closeRequested) return;
  pruning = true;
  inFlight++;
  const started = performance.now();
  pruneRaw(store, deps.repos, { days: config.keep_raw_days, stop: () => closeRequested })
    .then(
      (result) => {
        if (result.messages > 0) logger.info({ messages: result.messages, bytes: result.bytes, receivedBefore: result.cutoff, ms: Math.round(performance.now() - started) }, 'raw messages older than INTAKE_KEEP_RAW_DAYS dropped');
      },
      (error: unknown) => logger.warn({ err: String((error as Error)?.message ?? error) }, 'could not drop raw messages older than INTAKE_KEEP_RAW_DAYS; tried again in an hour'),
    )
    .finally(() => {
      pruning = false;
      inFlight--;
      closeWhenDone();
    });
}

/** On close: everything handed over is finished and answered before the connection closes. */
function closeWhenDone(): void {
  if (!closeRequested || inFlight > 0) return;
  store.close();
  flushAnswers();
  port.close();
}
// Its log lines first: what the start did is logged before intake says it is ready.
flushAnswers();
port.postMessage([{ kind: 'ready' }]);
if (config.keep_raw_days > 0) {
  setImmediate(pruneOldRaw);
  setInterval(pruneOldRaw, PRUNE_EVERY_MS).unref();
}
