import { defineConfig } from 'vitest/config';

// The interop suite: a real Postfix in front of intake, and a real Dovecot behind the IMAP fetcher. One
// file at a time (each starts its own servers and intake); `.ci/run` installs postfix, swaks and dovecot-imapd first.
export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    globalSetup: ['test/helpers/temp-root.ts'],
    // Polls wait on another process (a server's log, its database): on a loaded machine 1 s is short.
    expect: { poll: { timeout: 10_000 } },
    include: ['test/interop/*.interop.test.ts'],
    fileParallelism: false,
    testTimeout: 90_000,
    hookTimeout: 90_000,
  },
});
