// transaction: what the SMTP listener remembers between MAIL FROM and DATA: the sender, every
// recipient given, the ones accepted, and the row their refusals are recorded in.
import type { SMTPServerSession } from 'smtp-server';
import type { Envelope } from '../ingest/ingest.js';

export interface Transaction {
  mailFrom: string;
  accepted: string[];
  recipients: string[];
  /** The inbound_messages row, made at the first refusal or at DATA. */
  inboundMessageId: number | null;
  remoteAddress: string;
  helo: string;
  /** The trusted relay that named the client with XCLIENT or XFORWARD. */
  relayAddress: string | null;
  /** TLS protocol and cipher, when the session is encrypted. */
  tls: string | null;
}

export function envelopeOf(tx: Transaction): Envelope {
  return {
    mailFrom: tx.mailFrom,
    rcptTo: tx.accepted,
    recipients: tx.recipients,
    remoteAddress: tx.remoteAddress,
    helo: tx.helo,
    relayAddress: tx.relayAddress,
    tls: tx.tls,
  };
}

// smtp-server keeps the relay's own address under 'ADDR:DEFAULT' once XCLIENT/XFORWARD replaced it.
function forwardedBy(session: SMTPServerSession): string | null {
  const relay = session.xForward?.get('ADDR:DEFAULT') ?? session.xClient?.get('ADDR:DEFAULT');
  return relay ? String(relay) : null;
}

// XCLIENT's HELO is the client's; the EHLO that follows XCLIENT is the relay's own.
function forwardedHelo(session: SMTPServerSession): string | null {
  const helo = session.xClient?.get('HELO');
  return helo ? String(helo) : null;
}

export class Transactions {
  private readonly open = new Map<string, Transaction>();

  /** MAIL FROM starts a transaction (RSET or a new MAIL FROM abandons the previous one). */
  begin(session: SMTPServerSession, mailFrom: string): Transaction {
    const tx: Transaction = {
      mailFrom,
      accepted: [],
      recipients: [],
      inboundMessageId: null,
      remoteAddress: session.remoteAddress,
      helo: forwardedHelo(session) ?? session.hostNameAppearsAs,
      relayAddress: forwardedBy(session),
      tls: session.secure && session.tlsOptions ? `${session.tlsOptions.version} ${session.tlsOptions.standardName}` : null,
    };
    this.open.set(session.id, tx);
    return tx;
  }

  current(session: SMTPServerSession): Transaction {
    return this.open.get(session.id) ?? this.begin(session, session.envelope.mailFrom ? session.envelope.mailFrom.address : '');
  }

  /** DATA: the transaction is handed to the data stage. */
  take(session: SMTPServerSession): Transaction {
    const tx = this.current(session);
    this.open.delete(session.id);
    return tx;
  }

  end(session: SMTPServerSession): void {
    this.open.delete(session.id);
  }
}
