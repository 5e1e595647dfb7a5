import { defineConfig } from 'vitest/config';

// The hostile-input suite: abusive clients against a real server, a normal client served throughout.
export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    globalSetup: ['test/helpers/temp-root.ts'],
    // Polls wait on another process (a server's log, its database): on a loaded machine 1 s is short.
    expect: { poll: { timeout: 10_000 } },
    include: ['test/hostile/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
