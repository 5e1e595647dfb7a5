import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    globalSetup: ['test/helpers/temp-root.ts'],
    // Polls wait on another process (a server's log, its database): on a loaded machine 1 s is short.
    expect: { poll: { timeout: 10_000 } },
    include: ['test/**/*.test.ts'],
    // Suites with their own command, run by .ci/run: the tour (swaks, sqlite3 from apt), the interop
    // suite (postfix), the crash and hostile suites (long, and the crash suite mounts a tmpfs).
    exclude: ['test/tour/**', 'test/interop/**', 'test/crash/**', 'test/hostile/**', 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
