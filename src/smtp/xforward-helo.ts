// xforward-helo: keeps a session usable after a relay's `XFORWARD HELO=[UNAVAILABLE]`, which Postfix
// sends over LMTP for mail submitted on the relay itself (no client, so no HELO).
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

let installed = false;

/**
 * smtp-server stores an unavailable XFORWARD HELO as the session's HELO name, empty, and then refuses
 * MAIL with "503 send LHLO first": Postfix would defer such mail forever. The relay's own LHLO name
 * is kept as the session's; what is recorded is decided from session.xForward (see transaction.ts).
 */
export function installXforwardHeloFix(): void {
  if (installed) return;
  installed = true;
  const proto = SMTPConnection.prototype as unknown as {
    handler_XFORWARD(this: Connection, command: Buffer, callback: () => void): void;
  };
  const original = proto.handler_XFORWARD;
  proto.handler_XFORWARD = function (this: Connection, command: Buffer, callback: () => void) {
    // The relay's own name, from its LHLO, before any XFORWARD replaced it.
    if (this.relayHelo === undefined) this.relayHelo = this.hostNameAppearsAs;
    original.call(this, command, callback);
    if (!this.hostNameAppearsAs && this.relayHelo) {
      this.hostNameAppearsAs = this.relayHelo;
      this.session.hostNameAppearsAs = this.relayHelo;
    }
  };
}

interface Connection {
  relayHelo?: string | false;
  hostNameAppearsAs: string | false;
  session: { hostNameAppearsAs: string | false };
}
