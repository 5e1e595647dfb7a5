// server: the SMTP listener. Wires smtp-server's hooks to the stage functions (rcpt-to, data) and
// holds per-transaction state; no business logic. Input: the network (untrusted).
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Config } from '../config.js';
import { parseHostPort } from '../config.js';
import type { IngestDeps } from '../ingest/ingest.js';
import { onData } from './data.js';
import { installEnhancedCodePassthrough } from './reply.js';
import { onRcptTo } from './rcpt-to.js';
import { Transactions } from './transaction.js';

export interface SmtpListener {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Starts the SMTP listener on config.smtp_listen and resolves once it accepts connections. */
export async function startSmtpListener(config: Config, deps: IngestDeps): Promise<SmtpListener> {
  installEnhancedCodePassthrough();
  const transactions = new Transactions();
  const server = new SMTPServer({
    name: config.hostname,
    banner: 'intake',
    size: config.max_message_bytes,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    hideDSN: true,
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: !config.reverse_lookup,
    socketTimeout: config.socket_timeout_ms,
    maxClients: config.max_clients,
    closeTimeout: 10_000,
    logger: false,
    onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      transactions.begin(session, address.address);
      callback();
    },
    onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      callback(onRcptTo(address.address, transactions.current(session), config, deps));
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void) {
      onData(stream, session, transactions.take(session), config.max_message_bytes, deps).then(
        (message) => callback(null, message),
        (error: Error) => callback(error),
      );
    },
    onClose(session: SMTPServerSession) {
      transactions.end(session);
    },
  });

  const { host, port } = parseHostPort(config.smtp_listen) as { host: string; port: number };
  await new Promise<void>((resolve, reject) => {
    // smtp-server re-emits the listening socket's errors; until it listens, they mean "cannot start".
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      // Later errors (a client's socket failing) are smtp-server's to handle; log them only.
      server.on('error', (error) => deps.logger.warn({ err: error }, 'smtp server error'));
      resolve();
    });
  });
  const bound = server.server.address() as AddressInfo;
  return {
    host: bound.address,
    port: bound.port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
