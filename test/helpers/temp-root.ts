// temp-root: every suite's temporary folders go under one folder per run, removed when the run ends,
// so that servers, databases and Postfix instances the tests start leave nothing behind in /tmp.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Vitest's globalSetup: runs before the test workers start, which inherit TMPDIR (os.tmpdir() reads it). */
export default function setup(): () => void {
  const previous = process.env.TMPDIR;
  const root = mkdtempSync(join(tmpdir(), 'intake-tests-'));
  // Postfix's own users must pass through to the folders the interop and bench suites make for them.
  chmodSync(root, 0o711);
  process.env.TMPDIR = root;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    rmSync(root, { recursive: true, force: true });
  };
}
