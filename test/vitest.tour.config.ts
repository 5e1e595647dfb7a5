import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    globalSetup: ['test/helpers/temp-root.ts'],
    include: ['test/tour/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 30_000,
  },
});
