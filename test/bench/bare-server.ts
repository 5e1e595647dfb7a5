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
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.server.address() as { port: number }).port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
