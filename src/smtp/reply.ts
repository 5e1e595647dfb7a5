// reply: the one place SMTP replies are shaped and sent. Rejections from errors.ts carry their own
// enhanced status code; this makes smtp-server send it instead of its generic per-code guess. Replies
// to pipelined commands go out together, as Postfix's smtpd sends them.
import type { Socket } from 'node:net';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { MailRejection } from '../errors.js';

const HAS_ENHANCED_CODE = /^[245]\.\d{1,3}\.\d{1,3} /;
/**
 * smtp-server's own refusal past its maxClients (twice intake's: a burst of connections before intake
 * hears of them), sent without an enhanced code; intake's connect.too_many_clients says the same.
 */
const TOO_MANY_CLIENTS = / Too many connected clients, try again in a moment$/;
let installed = false;
/** Who hears of smtp-server's own refusals, by server (each listener logs its own). */
const backstopRefusals = new WeakMap<object, (remoteAddress: string) => void>();

/** onRefused hears of each connection server's smtp-server refuses past its own maxClients. */
export function onBackstopRefusal(server: object, onRefused: (remoteAddress: string) => void): void {
  backstopRefusals.set(server, onRefused);
}

/**
 * smtp-server adds an enhanced status code chosen from the reply code alone (550 → 5.1.1), so a
 * "550 5.7.1 relay denied" would go out as "550 5.1.1 5.7.1 ...". A reply text that already starts
 * with an enhanced code is sent as it is; everything else keeps smtp-server's behaviour.
 */
export function installEnhancedCodePassthrough(): void {
  if (installed) return;
  installed = true;
  const proto = SMTPConnection.prototype as unknown as {
    send(code: number, data: unknown, context?: unknown): void;
  };
  const send = proto.send;
  proto.send = function (this: { _socket?: Socket; _server?: object; remoteAddress?: string }, code: number, data: unknown, context?: unknown) {
    holdUntilTurnEnds(this._socket);
    if (code === 421 && context === false && typeof data === 'string' && TOO_MANY_CLIENTS.test(data) && !HAS_ENHANCED_CODE.test(data)) {
      data = new MailRejection('connect.too_many_clients').message;
      if (this._server) backstopRefusals.get(this._server)?.(this.remoteAddress ?? '');
    }
    const own = typeof data === 'string' && HAS_ENHANCED_CODE.test(data);
    return send.call(this, code, data, own ? false : context);
  };
}

/**
 * Replies written in one turn of the event loop leave in one write (RFC 2920 lets a server hold them
 * until it would wait for input): a pipelining client's MAIL, RCPT and DATA are answered with one
 * packet, not three system calls.
 */
function holdUntilTurnEnds(socket: Socket | undefined): void {
  // Corked already: by this turn's first reply, or by transaction-end.ts, which uncorks it in turn.
  if (!socket || socket.writableCorked > 0 || socket.destroyed) return;
  socket.cork();
  setImmediate(() => socket.uncork());
}
