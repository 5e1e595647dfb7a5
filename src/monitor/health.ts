// health: whether intake can take mail now, as `GET /health` tells it: the writer thread answers,
// the disk has not failed a flush, the database's file system has the room INTAKE_MIN_FREE_BYTES
// keeps, and the server is not stopping. Each check names what it found and what it does to mail.
import type { HealthCheck, HealthReport } from './http.js';

export interface HealthProbes {
  /** Resolves when the writer thread answers and the database takes writes; rejects saying why not. */
  ping(): Promise<void>;
  /** The disk's failed flush, once there was one (serve exits 74 then). */
  flushFailure(): Error | null;
  stopping(): boolean;
  /** Bytes free on the database's file system, or null when it cannot be asked. */
  freeBytes(): number | null;
  /** INTAKE_MIN_FREE_BYTES as applied (minFreeBytes()). */
  minFreeBytes: number;
  /** How long the writer may take to answer before it counts as stuck. */
  writerTimeoutMs: number;
}

export async function checkHealth(probes: HealthProbes): Promise<HealthReport> {
  const checks: Record<string, HealthCheck> = {
    writer: await writerCheck(probes),
    disk: diskCheck(probes),
  };
  const status = probes.stopping() ? 'stopping' : Object.values(checks).every((c) => c.ok) ? 'ok' : 'failing';
  return { status, checks };
}

async function writerCheck(probes: HealthProbes): Promise<HealthCheck> {
  const failed = probes.flushFailure();
  if (failed) return { ok: false, detail: `the disk failed to flush the database (${failed.message}): mail is refused 451 until intake has restarted` };
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), probes.writerTimeoutMs)));
  try {
    const answered = await Promise.race([probes.ping().then(() => 'answered' as const), late]);
    if (answered === 'late') return { ok: false, detail: `the writer thread has not answered in ${probes.writerTimeoutMs} ms: messages wait, and get 451 if it does not recover` };
    return { ok: true, detail: `answered in ${Math.round(performance.now() - started)} ms, the database takes writes` };
  } catch (error) {
    return { ok: false, detail: `${String((error as Error)?.message ?? error)}: messages get 451 4.3.0 meanwhile` };
  } finally {
    clearTimeout(timer);
  }
}

function diskCheck(probes: HealthProbes): HealthCheck {
  const free = probes.freeBytes();
  if (free === null) return { ok: true, detail: 'cannot ask how much space is free; MAIL FROM is not checked for it' };
  if (free < probes.minFreeBytes) {
    return { ok: false, detail: `${formatBytes(free)} free, under the ${formatBytes(probes.minFreeBytes)} INTAKE_MIN_FREE_BYTES keeps: MAIL FROM is refused 452 4.3.1` };
  }
  return { ok: true, detail: `${formatBytes(free)} free` };
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
