import { defineConfig } from 'vitest/config';

// The crash suite: kill -9 under load, a locked database, a full disk. Files run one at a time.
export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    globalSetup: ['test/helpers/temp-root.ts'],
    include: ['test/crash/*.test.ts'],
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 60_000,
  },
});
