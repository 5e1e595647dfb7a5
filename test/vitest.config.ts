import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    globalSetup: ['test/helpers/temp-root.ts'],
    include: ['test/**/*.test.ts'],
    // Suites with their own command, run by .ci/run: the tour (swaks, sqlite3 from apt), the interop
    // suite (postfix), the crash and hostile suites (long, and the crash suite mounts a tmpfs).
    exclude: ['test/tour/**', 'test/interop/**', 'test/crash/**', 'test/hostile/**', 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
