// lenient-sender: takes MAIL FROM addresses that real senders use though RFC 5321 forbids them
// (`taro.@docomo.ne.jp`, `a..b@example.com`), as Postfix does; recipients stay strictly parsed.
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

/** RFC 5321 §4.5.3.1.3: a path is at most 256 octets, so `local@domain` without `<>` at most 254; smtp-server's strict check allows 253. */
export const MAX_SENDER_CHARS = 253;

let installed = false;

interface Parsed {
  address: string;
  args: unknown;
}

interface Connection {
  _server: { options: Record<string, unknown> };
}

/**
 * smtp-server's strict parse refuses a dot at either end of a local part, two in a row, and domains
 * that are no hostname, with `501 5.1.7`. Mail from older Japanese mobile addresses and some firmware
 * (HPE iLO's `ilo.@`) is lost that way, while the MTA that relays everyone else's mail takes it
 * (Postfix's `strict_rfc821_envelopes = no`, its default). A sender the strict parse refuses is parsed
 * again in smtp-server's lenient mode, which still refuses control and invisible characters, a
 * missing or second `@`, an empty local part or domain and bad parameters. Its length is capped here
 * as the strict parse caps it, since the lenient one does not, and the sender is stored in every row.
 * smtp-server's own option would loosen RCPT TO too; recipients keep the strict parse.
 */
export function installLenientSender(): void {
  if (installed) return;
  installed = true;
  const proto = SMTPConnection.prototype as unknown as {
    _parseAddressCommand(this: Connection, name: string, command: unknown): Parsed | false;
  };
  const original = proto._parseAddressCommand;
  proto._parseAddressCommand = function (this: Connection, name: string, command: unknown) {
    const strict = original.call(this, name, command);
    if (strict || String(name).trim().toUpperCase() !== 'MAIL FROM') return strict;
    const server = Object.create(this._server) as Connection['_server'];
    server.options = { ...this._server.options, lenientAddressParsing: true };
    const lenient = original.call(Object.create(this, { _server: { value: server } }) as Connection, name, command);
    if (!lenient || lenient.address.length > MAX_SENDER_CHARS) return false;
    // The lenient parse decodes an xn-- domain after its checks: `a@xn--` would come out with none.
    const parts = lenient.address.split('@');
    return parts.length === 2 && parts.every((part) => part.length > 0) ? lenient : false;
  };
}
