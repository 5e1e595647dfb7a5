// shutdown-reply: once intake stops (SIGTERM), a command still arriving gets intake's own reply,
// `421 4.3.2 Service shutting down` (session.shutting_down), and the session ends; smtp-server's own
// would be another text, and the session would go on being told it.
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { MailRejection } from '../errors.js';

interface Connection {
  _server: { _closeTimeout?: unknown };
  _upgrading?: boolean;
  _closing?: boolean;
  _closed?: boolean;
  send(code: number, message: string): void;
  close(): void;
}

let installed = false;

export function installShutdownReply(): void {
  if (installed) return;
  installed = true;
  const proto = SMTPConnection.prototype as unknown as { _onCommand(this: Connection, command: Buffer, callback: () => void): void };
  const onCommand = proto._onCommand;
  proto._onCommand = function (this: Connection, command: Buffer, callback: () => void) {
    // Plain text that arrived during a TLS handshake is smtp-server's to discard, unanswered.
    if (!this._server._closeTimeout || this._upgrading) return onCommand.call(this, command, callback);
    sayShuttingDown(this);
  };
}

/** Tells the session intake is stopping and ends it; a session already ending is left alone. */
export function sayShuttingDown(connection: Pick<Connection, '_closing' | '_closed' | 'send' | 'close'>): void {
  if (connection._closing || connection._closed) return;
  const reply = new MailRejection('session.shutting_down');
  connection.send(reply.responseCode, reply.message);
  connection.close();
}
