// command-deadline: closes sessions that take too long to finish a command. smtp-server's idle timer
// restarts on every byte, so a client sending one byte a second (slowloris) would hold a slot forever.
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

interface Connection {
  commandDeadlineStamp?: number;
  _dataStream: unknown;
  send(code: number, message: string): void;
  close(): void;
}

let installed = false;

/** Stamps every connection with the time of its last complete command (and of its start). */
function installCommandStamp(): void {
  if (installed) return;
  installed = true;
  const proto = SMTPConnection.prototype as unknown as {
    init(this: Connection): void;
    _onCommand(this: Connection, command: Buffer, callback: () => void): void;
  };
  const init = proto.init;
  proto.init = function (this: Connection) {
    this.commandDeadlineStamp = Date.now();
    return init.call(this);
  };
  const onCommand = proto._onCommand;
  proto._onCommand = function (this: Connection, command: Buffer, callback: () => void) {
    this.commandDeadlineStamp = Date.now();
    return onCommand.call(this, command, callback);
  };
}

/**
 * Every second, closes with 421 the sessions whose last complete command (or connection, for the
 * first) is older than timeoutMs while no message is being received. Returns the stop function.
 */
export function enforceCommandDeadline(connections: Set<unknown>, timeoutMs: number): () => void {
  installCommandStamp();
  const timer = setInterval(() => {
    const now = Date.now();
    for (const item of connections) {
      const connection = item as Connection;
      connection.commandDeadlineStamp ??= now;
      if (connection._dataStream) continue;
      if (now - connection.commandDeadlineStamp > timeoutMs) {
        connection.commandDeadlineStamp = Infinity;
        connection.send(421, '4.4.2 Timeout waiting for a complete command - closing connection');
        connection.close();
      }
    }
  }, 1000);
  timer.unref();
  return () => clearInterval(timer);
}
