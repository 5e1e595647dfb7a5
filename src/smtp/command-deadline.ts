// command-deadline: closes sessions that take too long to finish a command, or to send a message.
// smtp-server's idle timer restarts on every byte, so a client sending one byte a second (slowloris)
// would hold a slot forever.
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { OUTCOMES, type OutcomeCode } from '../errors.js';

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
      // While a message arrives no command completes: the stamp is that of DATA.
      const code: OutcomeCode = connection._dataStream ? 'session.data_timeout' : 'session.command_timeout';
      if (now - connection.commandDeadlineStamp > (connection._dataStream ? limits.dataMs : limits.commandMs)) {
        connection.commandDeadlineStamp = Infinity;
        onTimeout(connection, code);
        const outcome = OUTCOMES[code];
        connection.send(outcome.smtp, `${outcome.dsn} ${outcome.text}`);
        connection.close();
      }
    }
  }, 1000);
  timer.unref();
  return () => clearInterval(timer);
}
