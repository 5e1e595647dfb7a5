// bare-server: the benchmark's ceiling: smtp-server with the same options intake uses that cost
// anything (no reverse lookup, enhanced codes), draining and discarding every message. Prints its port.
import { SMTPServer } from 'smtp-server';
import { BASELINE_OPTIONS } from './baseline-options.js';

const server = new SMTPServer({
  ...BASELINE_OPTIONS,
  onData(stream, _session, callback) {
    stream.on('data', () => undefined);
    stream.on('end', () => callback());
  },
});
// A client that resets its connection in a transaction (smtp-source killed at its bound in time)
// ends that session only, as in intake; smtp-server emits it as an error that would end the process.
server.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') throw error;
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.server.address() as { port: number }).port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
