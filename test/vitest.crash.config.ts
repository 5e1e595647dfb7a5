import { defineConfig } from 'vitest/config';

// The crash suite: kill -9 under load, a locked database, a full disk. Files run one at a time.
export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    globalSetup: ['test/helpers/temp-root.ts'],
    // Polls wait on another process (a server's log, its database): on a loaded machine 1 s is short.
    expect: { poll: { timeout: 10_000 } },
    include: ['test/crash/*.test.ts'],
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 60_000,
  },
});
