// baseline: what the benchmark's baselines (the drain, the reference design) share: the smtp-server
// options of intake's that cost anything (no reverse lookup, enhanced codes), room for the 25 MB
// messages, and how they listen, report their port and stop.
import type { SMTPServer, SMTPServerOptions } from 'smtp-server';

export const BASELINE_OPTIONS: SMTPServerOptions = {
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  disableReverseLookup: true,
  hideENHANCEDSTATUSCODES: false,
  maxClients: 1000,
  // 26 MiB, as the bench allows intake: the 25 MB messages (an 18 MiB file in base64) must fit.
  size: 27262976,
  logger: false,
};

/** Listens on a free port of 127.0.0.1, prints it as a JSON line, and on SIGTERM closes, runs `stopped` and exits 0. */
export function serveBaseline(server: SMTPServer, stopped: () => void = () => undefined): void {
  // A client that resets its connection in a transaction (smtp-source killed at its bound in time)
  // ends that session only, as in intake; smtp-server emits it as an error that would end the process.
  server.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') throw error;
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.server.address() as { port: number }).port })}\n`);
  });
  process.on('SIGTERM', () =>
    server.close(() => {
      stopped();
      process.exit(0);
    }),
  );
}
