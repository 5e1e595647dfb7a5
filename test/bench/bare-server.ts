// bare-server: the benchmark's ceiling: smtp-server with the same options intake uses that cost
// anything (no reverse lookup, enhanced codes), draining and discarding every message. Prints its port.
import { SMTPServer } from 'smtp-server';

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  disableReverseLookup: true,
  hideENHANCEDSTATUSCODES: false,
  maxClients: 1000,
  // 26 MiB, as the bench allows intake: the 25 MB messages (an 18 MiB file in base64) must fit.
  size: 27262976,
  logger: false,
  onData(stream, _session, callback) {
    stream.on('data', () => undefined);
    stream.on('end', () => callback());
  },
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.server.address() as { port: number }).port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
