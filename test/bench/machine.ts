// machine: how fast this shared machine is at the moment, by four small probes the bench runs as it
// starts and as it ends. Its absolute numbers drift by up to a factor of two between hours; these say
// which resource drifted (arithmetic, memory, the kernel's loopback, the disk's flush) when they do.
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

export interface MachineProbe {
  /** 2·10^7 additions in a loop V8 compiles: arithmetic alone (the median of five). */
  arithmeticMs: number;
  /**
   * The same in two threads at once, the slower one's median: intake keeps two threads busy, and a
   * second core that is shared out to others shows here and not in arithmeticMs.
   */
  arithmeticOnBothCoresMs: number;
  /** 4·10^6 reads and writes at random places in 64 MB: the memory's latency, beyond the caches (the median of five). */
  randomMemoryMs: number;
  /** One byte sent back and forth over loopback TCP, 20,000 times: the kernel and the event loop. */
  loopbackRoundTripUs: number;
  /** The median of 200 fdatasync calls after a 12 KB write, in the system's temporary folder. */
  flushMs: number;
}

export async function probeMachine(): Promise<MachineProbe> {
  // Each the median of five: one run may share its moment with something else on the machine.
  const arithmeticMs = medianOf(5, () => (_sink = addUp(2e7)));
  const randomMemoryMs = medianOf(5, () => (_sink = scatter(4e6)));
  const arithmeticOnBothCoresMs = Math.max(...(await Promise.all([arithmeticInAThread(), arithmeticInAThread()])));

  const dir = mkdtempSync(join(tmpdir(), 'intake-probe-'));
  const flushes: number[] = [];
  try {
    const fd = openSync(join(dir, 'probe'), 'w');
    const block = Buffer.alloc(12 * 1024, 1);
    for (let i = 0; i < 200; i++) {
      writeSync(fd, block, 0, block.length, (i % 50) * block.length);
      const before = performance.now();
      fdatasyncSync(fd);
      flushes.push(performance.now() - before);
    }
    closeSync(fd);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  flushes.sort((a, b) => a - b);

  const loopbackRoundTripUs = await roundTrips(20_000);
  return {
    arithmeticMs: Math.round(arithmeticMs * 10) / 10,
    arithmeticOnBothCoresMs: Math.round(arithmeticOnBothCoresMs * 10) / 10,
    randomMemoryMs: Math.round(randomMemoryMs),
    loopbackRoundTripUs: Math.round(loopbackRoundTripUs * 10) / 10,
    flushMs: Math.round((flushes[100] as number) * 1000) / 1000,
  };
}

// Results kept, not read: a loop whose result nobody keeps could be dropped by the compiler.
let _sink = 0;

function medianOf(runs: number, work: () => void): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    work();
    times.push(performance.now() - started);
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)] as number;
}

function addUp(count: number): number {
  let sum = 0;
  for (let i = 0; i < count; i++) sum = (sum + i) | 0;
  return sum;
}

function scatter(count: number): number {
  const memory = new Float64Array(8e6);
  let sum = 0;
  for (let i = 0; i < count; i++) {
    const at = (i * 2654435761) % 8e6;
    sum += memory[at] as number;
    memory[at] = sum;
  }
  return sum;
}

/** The arithmetic probe in a thread of its own (its functions, as source, run there). */
function arithmeticInAThread(): Promise<number> {
  const source = `${medianOf.toString()}\n${addUp.toString()}\nlet _sink = 0;\nrequire('node:worker_threads').parentPort.postMessage(medianOf(5, () => (_sink = addUp(2e7))));`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(source, { eval: true });
    worker.once('message', (ms: number) => {
      resolve(ms);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

/** Microseconds for one byte to go to an echo server on 127.0.0.1 and back. */
async function roundTrips(count: number): Promise<number> {
  const server = createServer((socket) => socket.on('data', (data) => socket.write(data)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  client.setNoDelay(true);
  await new Promise<void>((resolve) => client.once('connect', resolve));
  const started = performance.now();
  let done = 0;
  await new Promise<void>((resolve) => {
    client.on('data', () => {
      if (++done < count) client.write('x');
      else resolve();
    });
    client.write('x');
  });
  const us = ((performance.now() - started) * 1000) / count;
  client.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return us;
}

export function describeProbe(when: string, probe: MachineProbe): string {
  return `The machine ${when}: arithmetic ${probe.arithmeticMs} ms (on both cores at once ${probe.arithmeticOnBothCoresMs} ms), random memory ${probe.randomMemoryMs} ms, a loopback round trip ${probe.loopbackRoundTripUs} µs, fdatasync ${probe.flushMs} ms (median) (test/bench/machine.ts).`;
}
