// raw-retention: drops the raw bytes of messages older than a number of days (INTAKE_KEEP_RAW_DAYS, or
// `intake prune`), in short steps between which the writer stores mail. Side effects: SQL writes.
import type { Store } from './client.js';
import type { Repositories } from './repositories.js';

/** Rows read in one step, in one transaction: a few milliseconds, which a message stored meanwhile may wait. */
const STEP_ROWS = 200;
/** Bytes freed in one step at most (one message more): freeing reads every page of a blob. */
const STEP_BYTES = 32 * 1024 * 1024;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface PruneOptions {
  days: number;
  now?: Date;
  /** Count what would be dropped, drop nothing. */
  dryRun?: boolean;
  stepRows?: number;
  stepBytes?: number;
  /** Asked between steps: true ends the pruning there (the writer is closing). */
  stop?: () => boolean;
}

export interface PruneResult {
  /** Received before this is dropped (an ISO time, as received_at). */
  cutoff: string;
  messages: number;
  bytes: number;
}

/** The time before which raw messages go, `days` before `now`. */
export function pruneCutoff(days: number, now: Date = new Date()): string {
  return new Date(now.getTime() - days * DAY_MS).toISOString();
}

/**
 * Drops the raw messages received more than `days` ago, from where the last pruning stopped. Each
 * step is committed on its own, not flushed: a step lost in a crash is done again by the next run.
 */
export async function pruneRaw(store: Store, repos: Repositories, options: PruneOptions): Promise<PruneResult> {
  const cutoff = pruneCutoff(options.days, options.now);
  const limit = options.stepRows ?? STEP_ROWS;
  const result: PruneResult = { cutoff, messages: 0, bytes: 0 };
  // A dry run starts there too: what is before it was dropped already.
  let after = repos.inbound.lastRawPruned();
  for (;;) {
    const step = await store.commit(() => repos.inbound.pruneRawStep({ after, cutoff, limit, maxBytes: options.stepBytes ?? STEP_BYTES, dryRun: options.dryRun }), { durable: false });
    result.messages += step.messages;
    result.bytes += step.bytes;
    after = step.last;
    if (step.done || options.stop?.()) return result;
    // Mail handed over meanwhile is stored before the next step.
    await new Promise((resolve) => setImmediate(resolve));
  }
}
