// transaction-end: a refused recipient is answered at once and its row written meanwhile; the commands
// that end the transaction (RSET, QUIT, a new MAIL or HELO, and DATA, refused when every recipient
// was) are answered once that row is written, so a client that sees its transaction over can find its
// record. Replies pipelined ahead of such a command are written with its own.
import type { Socket } from 'node:net';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { MailRejection } from '../errors.js';

const ENDING = ['handler_RSET', 'handler_QUIT', 'handler_MAIL', 'handler_HELO', 'handler_EHLO', 'handler_LHLO', 'handler_DATA'] as const;

type CommandHandler = (this: Connection, command: Buffer, callback: () => void) => void;

interface Connection {
  session: { id: string };
  _socket?: Socket;
  _closed?: boolean;
  _closing?: boolean;
  emit(event: 'error', error: unknown): void;
  send(code: number, message: string): void;
}

type PendingWrite = (sessionId: string) => Promise<unknown> | null;

const lookups = new Set<PendingWrite>();
let installed = false;

/**
 * pendingWrite(sessionId) is the write still in progress for the session's transaction, if any; each
 * listener adds its own (session ids are unique in the process). Returns the function that removes it.
 */
export function installTransactionEndWait(pendingWrite: PendingWrite): () => void {
  lookups.add(pendingWrite);
  if (!installed) {
    installed = true;
    const proto = SMTPConnection.prototype as unknown as Record<(typeof ENDING)[number], CommandHandler | undefined>;
    for (const name of ENDING) {
      const original = proto[name];
      if (!original) continue;
      proto[name] = function (this: Connection, command: Buffer, callback: () => void) {
        const pending = pendingFor(this.session.id);
        if (!pending) return original.call(this, command, callback);
        // Replies reply.ts holds for the rest of this turn (a pipelined MAIL and RCPT) wait for this one
        // and leave with it: a refused transaction costs two socket writes (then RSET's), not three.
        // The client waits for this reply before it sends anything more, so it loses no time.
        const held = holdTurnReplies(this._socket);
        // recordRefusals never rejects (a failure to write is logged where it happens); were it to,
        // the command is still answered and the socket let go.
        const answer = () => {
          try {
            if (this._closed || this._closing) return callback();
            // Out of smtp-server's own try/catch now: a throw must not become an unhandled rejection.
            try {
              original.call(this, command, callback);
            } catch (error) {
              this.emit('error', error);
              const reply = new MailRejection('session.internal_error');
              this.send(reply.responseCode, reply.message);
              callback();
            }
          } finally {
            held?.uncork();
          }
        };
        void pending.then(answer, answer);
      };
    }
  }
  return () => lookups.delete(pendingWrite);
}

/** The socket, corked once more, while reply.ts holds this turn's replies on it; otherwise null. */
function holdTurnReplies(socket: Socket | undefined): Socket | null {
  if (!socket || socket.writableCorked === 0 || socket.destroyed) return null;
  socket.cork();
  return socket;
}

function pendingFor(sessionId: string): Promise<unknown> | null {
  for (const lookup of lookups) {
    const pending = lookup(sessionId);
    if (pending) return pending;
  }
  return null;
}
