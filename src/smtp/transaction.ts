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
}

export function envelopeOf(tx: Transaction): Envelope {
  return { mailFrom: tx.mailFrom, rcptTo: tx.accepted, recipients: tx.recipients, remoteAddress: tx.remoteAddress, helo: tx.helo };
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
      helo: session.hostNameAppearsAs,
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
