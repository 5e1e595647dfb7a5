// transaction: what the SMTP listener remembers between MAIL FROM and DATA: the sender, every
// recipient given, the ones accepted, and the row their refusals are recorded in.
import type { SMTPServerAddress, SMTPServerSession } from 'smtp-server';
import type { OutcomeCode } from '../errors.js';
import type { Envelope } from '../ingest/ingest.js';
import { declaresUtf8 } from './parameters.js';

export interface Transaction {
  mailFrom: string;
  /** MAIL FROM declared SMTPUTF8: recipients' local parts may be Unicode. */
  smtpUtf8: boolean;
  accepted: string[];
  /**
   * Every RCPT answered 250, in order, a repeated one again: LMTP owes each its own reply after DATA
   * (RFC 2033 §4.2), where smtp-server's envelope keeps one entry per address in any case.
   */
  answered: Pick<SMTPServerAddress, 'address' | 'args'>[];
  recipients: string[];
  /** The inbound_messages row made by the first refusal (null while none), once it is written. */
  refusalRow: Promise<number | null>;
  /** Recipients refused so far, whose row is refusalRow. */
  refused: number;
  /** Each refused mailbox (domain in lower case): the code it was refused with and the address its row has. */
  refusedWith: Map<string, { code: OutcomeCode; recipient: string }>;
  /** Refused recipients accepted since, as their rows name them: their rows go with the message. */
  withdrawn: string[];
  /** null when a trusted relay said it does not know (XFORWARD ADDR=[UNAVAILABLE]). */
  remoteAddress: string | null;
  /** null when unknown (a trusted relay said XFORWARD HELO=[UNAVAILABLE]). */
  helo: string | null;
  /** The trusted relay that named the client with XCLIENT or XFORWARD. */
  relayAddress: string | null;
  /** remoteAddress is a relay's own (an LMTP client, a trusted relay that named no client), not the sender's. */
  relayed: boolean;
  /**
   * A relay has the message in its queue (XFORWARD, or a relay that named no client), so a refusal
   * becomes its bounce; a proxy in front (XCLIENT) passes the reply on to the client as it comes.
   */
  queued: boolean;
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
    relayed: tx.relayed,
    queued: tx.queued,
    tls: tx.tls,
    withdrawn: tx.withdrawn,
  };
}

// smtp-server keeps the relay's own address under 'ADDR:DEFAULT' once XCLIENT/XFORWARD replaced it.
function forwardedBy(session: SMTPServerSession): string | null {
  const relay = session.xForward?.get('ADDR:DEFAULT') ?? session.xClient?.get('ADDR:DEFAULT');
  return relay ? String(relay) : null;
}

// Postfix reuses an LMTP connection and sends XFORWARD ADDR=[UNAVAILABLE] for mail that came from no
// client (a local submission); smtp-server then keeps the previous client's address, which is wrong.
function forwardedUnknown(session: SMTPServerSession): boolean {
  return session.xForward?.get('ADDR') === false || session.xClient?.get('ADDR') === false;
}

// XCLIENT's HELO is the client's (the EHLO that follows XCLIENT is the relay's own); an XFORWARD HELO
// is the client's, or empty when the relay does not know it.
function clientHelo(session: SMTPServerSession): string | null {
  const viaXclient = session.xClient?.get('HELO');
  if (viaXclient) return String(viaXclient);
  const viaXforward = session.xForward?.get('HELO');
  if (viaXforward !== undefined) return viaXforward ? String(viaXforward) : null;
  return session.hostNameAppearsAs || null;
}

export class Transactions {
  private readonly open = new Map<string, Transaction>();

  /** relay: whether a connection from this address, naming no client, is a relay's (see Transaction.relayed). */
  constructor(private readonly relay: (remoteAddress: string) => boolean) {}

  /** MAIL FROM starts a transaction (RSET or a new MAIL FROM abandons the previous one). */
  begin(session: SMTPServerSession, mailFrom: string, smtpUtf8: boolean): Transaction {
    const relayAddress = forwardedBy(session);
    const relayed = relayAddress === null && this.relay(session.remoteAddress);
    const tx: Transaction = {
      mailFrom,
      smtpUtf8,
      accepted: [],
      answered: [],
      recipients: [],
      refusalRow: Promise.resolve(null),
      refused: 0,
      refusedWith: new Map(),
      withdrawn: [],
      remoteAddress: forwardedUnknown(session) ? null : session.remoteAddress,
      helo: clientHelo(session),
      relayAddress,
      relayed,
      queued: relayed || (session.xForward?.size ?? 0) > 0,
      tls: session.secure && session.tlsOptions ? `${session.tlsOptions.version} ${session.tlsOptions.standardName}` : null,
    };
    this.open.set(session.id, tx);
    return tx;
  }

  current(session: SMTPServerSession): Transaction {
    const mailFrom = session.envelope.mailFrom || null;
    return this.open.get(session.id) ?? this.begin(session, mailFrom?.address ?? '', declaresUtf8(mailFrom?.args));
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

  /** The refusal rows of the session's open transaction, while there are any (see transaction-end.ts). */
  pendingWrite(sessionId: string): Promise<unknown> | null {
    const tx = this.open.get(sessionId);
    return tx && tx.refused > 0 ? tx.refusalRow : null;
  }
}
