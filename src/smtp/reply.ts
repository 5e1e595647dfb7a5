// reply: the one place SMTP replies are shaped. Rejections from errors.ts carry their own enhanced
// status code; this makes smtp-server send it instead of its generic per-code guess.
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

const HAS_ENHANCED_CODE = /^[245]\.\d{1,3}\.\d{1,3} /;
let installed = false;

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
  proto.send = function (this: unknown, code: number, data: unknown, context?: unknown) {
    const own = typeof data === 'string' && HAS_ENHANCED_CODE.test(data);
    return send.call(this, code, data, own ? false : context);
  };
}

