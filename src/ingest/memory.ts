// memory: keeps reading a large message from costing more than the message. Reading one leaves a trail
// of short-lived buffers (socket reads, smtp-server's and mailparser's copies) that V8 only collects
// after about 64 MB of them; a young-generation collection every few megabytes frees them as it goes.
import v8 from 'node:v8';
import vm from 'node:vm';

/** Collect after this many bytes read; small messages never reach it. */
const EVERY_BYTES = 4 * 1024 * 1024;

let collect: ((options: { type: 'minor' | 'major'; execution: 'sync' }) => void) | null = null;

function collector(): typeof collect {
  if (!collect) {
    // The `gc` function exists only in contexts made while --expose-gc is set; it is unset again at once.
    v8.setFlagsFromString('--expose-gc');
    collect = vm.runInNewContext('gc') as typeof collect;
    v8.setFlagsFromString('--no-expose-gc');
  }
  return collect;
}

/** Returns a counter of bytes read that collects young garbage each time another 4 MB has gone by. */
export function garbageCollector(): (bytes: number) => void {
  let counted = 0;
  return (bytes) => {
    const before = Math.floor(counted / EVERY_BYTES);
    counted += bytes;
    if (Math.floor(counted / EVERY_BYTES) !== before) collector()?.({ type: 'minor', execution: 'sync' });
  };
}
