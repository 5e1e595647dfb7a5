// transaction: what the SMTP listener remembers between MAIL FROM and DATA: the sender, the accepted
// recipients and the refused ones, so a transaction that ends without DATA still leaves its row.
import type { SMTPServerSession } from 'smtp-server';
import { recordRefusal, type Envelope, type IngestDeps, type RefusedRecipient } from '../ingest/ingest.js';

export interface Transaction {
  mailFrom: string;
  accepted: string[];
  refused: RefusedRecipient[];
  remoteAddress: string;
  helo: string;
}

export function envelopeOf(tx: Transaction): Envelope {
  return { mailFrom: tx.mailFrom, rcptTo: tx.accepted, remoteAddress: tx.remoteAddress, helo: tx.helo };
}

export class Transactions {
  private readonly open = new Map<string, Transaction>();

  constructor(private readonly deps: IngestDeps) {}

  /** MAIL FROM: a transaction left without DATA (RSET, or a client that gave up) is recorded first. */
  begin(session: SMTPServerSession, mailFrom: string): Transaction {
    this.end(session);
    const tx: Transaction = {
      mailFrom,
      accepted: [],
      refused: [],
      remoteAddress: session.remoteAddress,
      helo: session.hostNameAppearsAs,
    };
    this.open.set(session.id, tx);
    return tx;
  }

  current(session: SMTPServerSession): Transaction {
    return this.open.get(session.id) ?? this.begin(session, session.envelope.mailFrom ? session.envelope.mailFrom.address : '');
  }

  /** DATA: the transaction is handed to the data stage, which records it. */
  take(session: SMTPServerSession): Transaction {
    const tx = this.current(session);
    this.open.delete(session.id);
    return tx;
  }

  /** The session or transaction ended without DATA. */
  end(session: SMTPServerSession): void {
    const tx = this.open.get(session.id);
    if (!tx) return;
    this.open.delete(session.id);
    if (tx.refused.length > 0) {
      recordRefusal({ ingress: 'smtp', envelope: envelopeOf(tx), refused: tx.refused }, this.deps);
    }
  }
}
