// command-deadline: closes sessions that take too long to finish a command, or to send a message.
// smtp-server's idle timer restarts on every byte, so a client sending one byte a second (slowloris)
// would hold a slot forever.
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { MailRejection, type OutcomeCode } from '../errors.js';

interface Connection {
  commandDeadlineStamp?: number;
  /** Seen in DATA by the last check: the command clock restarts when the message is done. */
  commandDeadlineInData?: boolean;
  /** bytesRead at the last check while a message arrived, and when it last grew. */
  dataReadBytes?: number;
  dataReadStamp?: number;
  _dataStream: unknown;
  _parser?: { _dataMode?: boolean } | false;
  _socket?: { bytesRead: number };
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
 * first) is older than commandMs, or, while a message is arriving, whose DATA is older than dataMs.
 * onTimeout hears of each. Returns the stop function.
 */
export function enforceCommandDeadline(
  connections: Set<unknown>,
  limits: { commandMs: number; dataMs: number },
  onTimeout: (connection: unknown, code: OutcomeCode) => void = () => undefined,
): () => void {
  installCommandStamp();
  const timer = setInterval(() => {
    const now = Date.now();
    for (const item of connections) {
      const connection = item as Connection;
      connection.commandDeadlineStamp ??= now;
      if (connection._dataStream) {
        connection.commandDeadlineInData = true;
        // The message is in and being stored: the client waits for us, as smtp-server's own timer
        // knows. Only while it arrives does the DATA deadline run (the stamp is that of DATA).
        if (!(connection._parser && connection._parser._dataMode)) continue;
      } else if (connection.commandDeadlineInData) {
        // Its reply has gone out: the time it took to arrive is not a command's.
        connection.commandDeadlineInData = false;
        connection.commandDeadlineStamp = now;
      }
      const code: OutcomeCode = connection._dataStream ? 'session.data_timeout' : 'session.command_timeout';
      if (now - connection.commandDeadlineStamp > (connection._dataStream ? limits.dataMs : limits.commandMs) || stalled(connection, now, limits.commandMs)) {
        connection.commandDeadlineStamp = Infinity;
        onTimeout(connection, code);
        const reply = new MailRejection(code);
        connection.send(reply.responseCode, reply.message);
        connection.close();
      }
    }
  }, 1000);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Whether a message arriving has sent nothing for about commandMs: cut so with intake's reply, where
 * smtp-server's idle timer would 2 s later with its own. Seen once a second, so a second early at
 * most, never late.
 */
function stalled(connection: Connection, now: number, commandMs: number): boolean {
  if (!connection._dataStream) return false;
  const read = connection._socket?.bytesRead ?? 0;
  if (read !== connection.dataReadBytes || connection.dataReadStamp === undefined) {
    connection.dataReadBytes = read;
    connection.dataReadStamp = now;
    return false;
  }
  return now - connection.dataReadStamp >= commandMs - 1000;
}
