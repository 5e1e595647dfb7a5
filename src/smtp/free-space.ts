// free-space: whether the database's file system has room for a message, asked at MAIL FROM, as
// Postfix's smtpd refuses MAIL while its queue has less than 1.5 × its size limit free.
import { statfsSync } from 'node:fs';
import type { Config } from '../config.js';

export interface Shortfall {
  /** Bytes the file system has free for an unprivileged user. */
  free: number;
  /** Bytes it should have: the minimum to keep, plus the size the client declared. */
  needed: number;
}

/** INTAKE_MIN_FREE_BYTES, or by default 1.5 times the largest message, as Postfix's smtpd keeps. */
export function minFreeBytes(config: Pick<Config, 'min_free_bytes' | 'max_message_bytes'>): number {
  return config.min_free_bytes ?? Math.ceil(1.5 * config.max_message_bytes);
}

/**
 * What is missing for a message of `declaredBytes` (0 when none was declared), or null when there is
 * room, or nothing to check (nothing to keep, no size declared). Pure.
 * @example shortfall(1000, 800, 300) // { free: 1000, needed: 1100 }
 */
export function shortfall(freeBytes: number, keepBytes: number, declaredBytes: number): Shortfall | null {
  const needed = keepBytes + declaredBytes;
  return needed > 0 && freeBytes < needed ? { free: freeBytes, needed } : null;
}

/** A reading that showed this much more than needed is good for FRESH_MS: no disk fills that fast. */
const MARGIN_BYTES = 1024 ** 3;
const FRESH_MS = 250;

/**
 * `read` (freeBytes of the database) asked again only when its last answer is older than FRESH_MS,
 * or came within a GiB of what is needed now: under a flood of MAIL commands the statfs was 4 % of
 * the SMTP thread, and near a full disk every MAIL still asks.
 */
export function freeSpaceGauge(read: () => number | null, now: () => number = () => performance.now()): (needed: number) => number | null {
  let last: number | null = null;
  let readAt = -Infinity;
  return (needed) => {
    const at = now();
    if (last !== null && at - readAt < FRESH_MS && last >= needed + MARGIN_BYTES) return last;
    last = read();
    readAt = at;
    return last;
  };
}

/**
 * Bytes free on the file system of `path` (the database file itself: a symlink is followed to where
 * the data is), or null when it cannot be asked. One statfs(): about 2 µs here, and 10 among a
 * few thousand MAIL commands a second.
 */
export function freeBytes(path: string): number | null {
  try {
    const stats = statfsSync(path);
    return stats.bavail * stats.bsize;
  } catch {
    return null;
  }
}
