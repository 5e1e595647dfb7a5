// pipelined-data: keeps a session answering when a client sends whole transactions, bodies included,
// without waiting for 354 (RFC 2920 forbids it; some scripts do it).
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

let installed = false;

/**
 * smtp-server's parser.continue() runs the continuation of the message just ended, then clears it.
 * When that continuation reads a whole second transaction synchronously (handlers that answer at
 * once, as intake's do), the second message sets its own continuation meanwhile, which the clearing
 * then erases: the commands after the second message are never read and the session hangs until
 * the idle timeout. Cleared first, then run, each continuation survives.
 */
export function installPipelinedDataFix(): void {
  if (installed) return;
  installed = true;
  const proto = SMTPStream.prototype as unknown as { continue(this: Parser): void };
  proto.continue = function (this: Parser) {
    const next = this._continueCallback;
    if (typeof next === 'function') {
      this._continueCallback = false;
      next();
    } else {
      // The message has not ended yet: run the continuation as soon as it does.
      this._continueCallback = true;
    }
  };
}

interface Parser {
  _continueCallback: boolean | (() => void);
}
