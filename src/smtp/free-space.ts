// free-space: whether the database's file system has room for a message, asked at MAIL FROM, as
// Postfix's smtpd refuses MAIL while its queue has less free than 1.5 × its message size limit.
// Side effect: one statfs() (about half a microsecond).
import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';
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
 * What is missing for a message of `declaredBytes` (0 when the client declared none), or null when
 * there is room. Null too when there is nothing to check (nothing to keep, no size declared) or the
 * file system cannot be asked: then the write itself tells (452 after DATA).
 */
export function freeSpaceShortfall(database: string, minFreeBytes: number, declaredBytes: number): Shortfall | null {
  if (minFreeBytes === 0 && declaredBytes === 0) return null;
  let free: number;
  try {
    const stats = statfsSync(dirname(database));
    free = stats.bavail * stats.bsize;
  } catch {
    return null;
  }
  const needed = minFreeBytes + declaredBytes;
  return free < needed ? { free, needed } : null;
}
