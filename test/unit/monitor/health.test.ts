// checkHealth, /health's verdict, over each way mail can be kept from being taken: a writer that does
// not answer or is gone, a failed flush, a disk under its minimum, a server stopping.
import { describe, expect, it } from 'vitest';
import { checkHealth, type HealthProbes } from '../../../src/monitor/health.js';

const probes = (overrides: Partial<HealthProbes> = {}): HealthProbes => ({
  ping: () => Promise.resolve(),
  flushFailure: () => null,
  stopping: () => false,
  freeBytes: () => 12_345_678_901,
  minFreeBytes: 78_643_200,
  writerTimeoutMs: 50,
  ...overrides,
});

describe('checkHealth', () => {
  it('is ok when the writer answers and the disk has room', async () => {
    const report = await checkHealth(probes());
    expect(report.status).toBe('ok');
    expect(report.checks.writer).toMatchObject({ ok: true, detail: expect.stringMatching(/^answered in \d+ ms, the database takes writes$/) });
    expect(report.checks.disk).toEqual({ ok: true, detail: '12.3 GB free' });
  });

  it('fails on a writer that does not answer in time, and says what that does to mail', async () => {
    const started = Date.now();
    const report = await checkHealth(probes({ ping: () => new Promise(() => undefined) }));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(report.status).toBe('failing');
    expect(report.checks.writer).toEqual({ ok: false, detail: 'the writer thread has not answered in 50 ms: messages wait, and get 451 if it does not recover' });
    expect(report.checks.disk!.ok).toBe(true);
  });

  it('fails on a writer that is gone or refuses writes, or a disk that failed a flush', async () => {
    const gone = await checkHealth(probes({ ping: () => Promise.reject(new Error('the writer thread is not running (stopped, or failing to start again)')) }));
    expect(gone.checks.writer).toEqual({ ok: false, detail: 'the writer thread is not running (stopped, or failing to start again): messages get 451 4.3.0 meanwhile' });
    const locked = await checkHealth(probes({ ping: () => Promise.reject(new Error('the database does not take writes (database is locked)')) }));
    expect(locked.status).toBe('failing');
    expect(locked.checks.writer).toEqual({ ok: false, detail: 'the database does not take writes (database is locked): messages get 451 4.3.0 meanwhile' });
    const flushed = await checkHealth(probes({ flushFailure: () => new Error('EIO') }));
    expect(flushed.status).toBe('failing');
    expect(flushed.checks.writer).toEqual({ ok: false, detail: 'the disk failed to flush the database (EIO): mail is refused 451 until intake has restarted' });
  });

  it('fails on a disk under INTAKE_MIN_FREE_BYTES, and passes when its room cannot be asked (as MAIL FROM does)', async () => {
    const short = await checkHealth(probes({ freeBytes: () => 999 }));
    expect(short.status).toBe('failing');
    expect(short.checks.disk).toEqual({ ok: false, detail: '999 B free, under the 78.6 MB INTAKE_MIN_FREE_BYTES keeps: MAIL FROM is refused 452 4.3.1' });
    const unknown = await checkHealth(probes({ freeBytes: () => null }));
    expect(unknown.status).toBe('ok');
    expect(unknown.checks.disk).toEqual({ ok: true, detail: 'cannot ask how much space is free; MAIL FROM is not checked for it' });
  });

  it('says stopping once the server stops, whatever the checks', async () => {
    expect((await checkHealth(probes({ stopping: () => true }))).status).toBe('stopping');
    expect((await checkHealth(probes({ stopping: () => true, freeBytes: () => 0 }))).status).toBe('stopping');
  });
});
