// rcpt-to: the RCPT TO stage. Input: an untrusted address. Side effects: database reads, and the row
// a refusal leaves.
// Unknown keys are refused here, in the dialogue, so nothing is ever bounced later.
import type { SMTPServerAddress } from 'smtp-server';
import type { Config } from '../config.js';
import { MailRejection } from '../errors.js';
import { recordRefusals, type Envelope, type Ingress, type IngestDeps } from '../ingest/ingest.js';
import { mailboxOf, sameMailbox } from '../address/mailbox.js';
import { redactedAddress } from '../address/template.js';
import { checkRecipient } from '../ingest/recipient.js';
import { RCPT_PARAMETERS, undeclaredUtf8, unsupportedParameter } from './parameters.js';
import { envelopeOf, type Transaction } from './transaction.js';

/**
 * Returns null to accept the recipient, or the rejection smtp-server sends. A refusal is answered at
 * once; its row is written by the writer meanwhile (tx.refusalRow), and DATA, RSET, QUIT and the next
 * MAIL wait for it (transaction-end.ts).
 */
export function onRcptTo(given: Pick<SMTPServerAddress, 'address' | 'args'>, tx: Transaction, ingress: Ingress, config: Config, deps: IngestDeps): MailRejection | null {
  const address = given.address;
  const same = (other: string) => sameMailbox(other, address);
  const repeated = tx.accepted.some(same);
  const listed = tx.recipients.some(same);
  if (!listed) tx.recipients.push(address);
  try {
    const unsupported = unsupportedParameter(given.args, RCPT_PARAMETERS);
    if (unsupported !== null) throw new MailRejection('rcpt.unsupported_parameter', unsupported);
    if (undeclaredUtf8(address, tx.smtpUtf8)) throw new MailRejection('rcpt.utf8_undeclared');
    // Every RCPT accepted counts, a repeated one too (as Postfix's smtpd_recipient_limit): LMTP owes each a reply.
    if (tx.answered.length >= config.max_recipients) throw new MailRejection('rcpt.too_many');
    checkRecipient(address, deps);
  } catch (error) {
    const rejection = error as MailRejection;
    deps.logger.info({ recipient: redactedAddress(deps.template, address), code: rejection.code, remoteAddress: tx.remoteAddress }, 'recipient refused');
    // Accepted already (this RCPT repeats it with a parameter refused): it stays accepted, and its row
    // comes with the message.
    if (repeated) return rejection;
    // Past the cap the client sends the rest again in another message (452): the first says so in the
    // row, the others are only answered. Each listed would rewrite the row's whole recipient list, a
    // thousand times over in one session (the cost grows with the square of the recipients).
    if (rejection.code === 'rcpt.too_many' && [...tx.refusedWith.values()].some((earlier) => earlier.code === 'rcpt.too_many')) {
      if (!listed) tx.recipients.pop();
      return rejection;
    }
    const mailbox = mailboxOf(address);
    // Asked again and refused the same way: answered again, recorded once (one row per recipient).
    if (tx.refusedWith.get(mailbox)?.code === rejection.code) return rejection;
    const earlier = tx.refusedWith.get(mailbox);
    tx.refusedWith.set(mailbox, { code: rejection.code, recipient: address });
    const snapshot = snapshotOf(tx);
    // In order: a second refusal of the same transaction adds to the row the first one made.
    tx.refused++;
    // Refused again for another reason: the row says the latest.
    const withdrawn = earlier ? [earlier.recipient] : [];
    tx.refusalRow = tx.refusalRow.then((inboundMessageId) =>
      recordRefusals({ ingress, envelope: snapshot, refused: [{ recipient: address, rejection }], inboundMessageId, withdrawn }, deps),
    );
    return rejection;
  }
  if (!repeated) tx.accepted.push(address);
  tx.answered.push(given);
  // The refusals' row lists every recipient given; one accepted after them is added to it too, in
  // case the transaction ends here (DATA would bring the row up to date anyway). One refused before
  // and accepted now loses its refusal's row with the message: until then, that refusal is what
  // happened to it.
  if (tx.refused > 0 && !repeated) {
    const mailbox = mailboxOf(address);
    const earlier = tx.refusedWith.get(mailbox);
    if (earlier) {
      tx.refusedWith.delete(mailbox);
      tx.withdrawn.push(earlier.recipient);
    }
    const snapshot = snapshotOf(tx);
    tx.refusalRow = tx.refusalRow.then((inboundMessageId) => recordRefusals({ ingress, envelope: snapshot, refused: [], inboundMessageId }, deps));
  }
  return null;
}

/**
 * The client is shut out at this refusal (too many unknown recipients), so it is told `shutOut`
 * instead: the row says so too, after the refusal's own record.
 */
export function recordShutOut(tx: Transaction, ingress: Ingress, shutOut: MailRejection, deps: IngestDeps): void {
  const snapshot = snapshotOf(tx);
  tx.refusalRow = tx.refusalRow.then((inboundMessageId) =>
    recordRefusals({ ingress, envelope: snapshot, refused: [], inboundMessageId, answered: shutOut.toWire() }, deps),
  );
}

function snapshotOf(tx: Transaction): Envelope {
  const envelope = envelopeOf(tx);
  return { ...envelope, rcptTo: [...envelope.rcptTo], recipients: [...(envelope.recipients ?? [])], withdrawn: [...(envelope.withdrawn ?? [])] };
}
