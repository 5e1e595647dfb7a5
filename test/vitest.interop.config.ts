import { defineConfig } from 'vitest/config';

// The interop suite: a real Postfix in front of intake. One file at a time (each starts its own
// Postfix and intake); `.ci/run` installs postfix and swaks first.
export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    globalSetup: ['test/helpers/temp-root.ts'],
    include: ['test/interop/*.interop.test.ts'],
    fileParallelism: false,
    testTimeout: 90_000,
    hookTimeout: 90_000,
  },
});
