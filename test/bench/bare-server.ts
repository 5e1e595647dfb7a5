// bare-server: the benchmark's ceiling: smtp-server with the same options intake uses that cost
// anything (no reverse lookup, enhanced codes), draining and discarding every message. Prints its port.
import { SMTPServer } from 'smtp-server';
import { BASELINE_OPTIONS, serveBaseline } from './baseline.js';

const server = new SMTPServer({
  ...BASELINE_OPTIONS,
  onData(stream, _session, callback) {
    stream.on('data', () => undefined);
    stream.on('end', () => callback());
  },
});
serveBaseline(server);
