// data: the DATA stage. Reads the message (bounded by the size limit), hands it to ingest() and
// answers only after the transaction holding it has committed. Input: untrusted bytes.
import type { SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { MailRejection } from '../errors.js';
import { garbageCollector } from '../ingest/memory.js';
import { RAW_PIECE_BYTES } from '../ingest/parse.js';
import { ingest, recordRefusals, replyForRecipient, type Ingress, type IngestDeps } from '../ingest/ingest.js';
import { envelopeOf, type Transaction } from './transaction.js';

/** An LMTP reply for one recipient: the 250 text, or the error smtp-server sends with its code. */
export type RecipientReply = string | Error;

/**
 * Resolves to the 250 text (SMTP) or one reply per RCPT accepted (LMTP), or rejects with the
 * MailRejection to send (for every recipient, in LMTP).
 */
export async function onData(
  stream: SMTPServerDataStream,
  session: SMTPServerSession,
  tx: Transaction,
  options: {
    maxBytes: number;
    ingress: Ingress;
    /**
     * A message to the mailbox address whose headers named no live key is a guess too: asked once it
     * is refused so, resolves (after the tarpit's delay) to null for its own reply, or to the shut-out
     * to answer instead.
     */
    onUnknownKey?: () => Promise<MailRejection | null>;
  },
  deps: IngestDeps,
): Promise<string | RecipientReply[]> {
  const maxBytes = options.maxBytes;
  const started = performance.now();
  // smtp-server answers DATA once per entry of the envelope, whether with our replies, our error or its
  // own 552: in LMTP that must be once per RCPT it accepted, repeats included.
  if (options.ingress === 'lmtp') session.envelope.rcptTo = tx.answered.map(({ address, args }) => ({ address, args }));
  const message = new MessagePieces();
  const log = deps.logger.child({ session: session.id });
  try {
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (chunk: Buffer) => {
        // Past the limit the rest is read and dropped, and what was kept too: smtp-server replies 552
        // once it has all.
        if (stream.sizeExceeded) message.drop(chunk.length);
        else message.add(chunk);
      });
      stream.once('end', resolve);
      stream.once('error', reject);
    });
  } catch (error) {
    // Nothing was accepted or refused, so no row: the sender still has the message and tries again.
    log.info({ remoteAddress: tx.remoteAddress, mailFrom: tx.mailFrom, rcpts: tx.accepted.length, bytes: message.size, err: (error as Error).message }, 'message cut off: the connection closed during DATA');
    throw error;
  }
  const size = message.size;
  const envelope = envelopeOf(tx);
  const inboundMessageId = await tx.refusalRow;
  if (stream.sizeExceeded) {
    const rejection = new MailRejection('data.too_big', String(maxBytes));
    const refused = envelope.rcptTo.map((recipient) => ({ recipient, rejection, stage: 'data' as const }));
    // Each recipient is refused now for the size; an earlier refusal of one of them goes.
    const id = await recordRefusals({ ingress: options.ingress, envelope, refused, size, inboundMessageId, withdrawn: envelope.withdrawn }, deps);
    log.info({ mailFrom: envelope.mailFrom, size, code: rejection.code, inboundMessageId: id }, 'message refused');
    throw rejection;
  }
  let result;
  try {
    result = await ingest({ raw: message.finish(), ingress: options.ingress, envelope, inboundMessageId }, deps);
  } catch (error) {
    // Whatever went wrong, the sender must keep its copy and try again: never a 5xx for our fault.
    log.error({ err: error, mailFrom: envelope.mailFrom, size }, 'message not stored');
    const rejection = error instanceof MailRejection ? error : new MailRejection('data.store_failed');
    // The row of this transaction's refusals would say they were all of it: it gets this reply too
    // (tried again for a while, like any refusal record; the session need not wait for it).
    if (inboundMessageId !== null) void recordRefusals({ ingress: options.ingress, envelope, refused: [], size, inboundMessageId, answered: rejection.toWire() }, deps);
    throw rejection;
  }
  log.info(
    {
      mailFrom: envelope.mailFrom,
      rcpts: `${result.deliveries.filter((d) => d.status !== 'rejected').length}/${result.deliveries.length}`,
      size,
      status: result.status,
      reply: `${result.reply.code} ${result.reply.message}`,
      inboundMessageId: result.inboundMessageId,
      ms: Math.round(performance.now() - started),
    },
    'message',
  );
  const forPostmaster = result.deliveries.some((d) => d.reasonCode === 'data.postmaster');
  // Nobody reads the database for it: the log is where an operator learns that someone wrote to postmaster.
  if (forPostmaster) {
    log.warn({ mailFrom: envelope.mailFrom, code: 'data.postmaster', inboundMessageId: result.inboundMessageId }, 'mail to postmaster kept: read it with intake show');
  }
  if (options.ingress === 'lmtp') {
    return session.envelope.rcptTo.map(({ address }) => {
      const reply = replyForRecipient(result, address);
      return reply.code >= 400 ? smtpError(reply.code, reply.message) : reply.message;
    });
  }
  // Key-less mail counts towards the client's limit on unknown recipients, whatever the rest of the
  // message came to (a recipient processed or kept beside it would otherwise hide it): a key only the
  // headers named, which led nowhere, or a message kept for postmaster, which anyone may send and
  // which is stored whole with no key to answer for it.
  const keyless = forPostmaster || result.deliveries.some((d) => d.stage !== 'rcpt' && d.reasonCode === 'data.no_key');
  if (options.onUnknownKey && keyless) {
    const shutOut = await options.onUnknownKey();
    if (shutOut) {
      // The row says what the client was told, as at RCPT; the recipient keeps why it was refused.
      await recordRefusals({ ingress: options.ingress, envelope, refused: [], size, inboundMessageId: result.inboundMessageId, answered: shutOut.toWire() }, deps);
      throw shutOut;
    }
  }
  if (result.reply.code >= 400) throw smtpError(result.reply.code, result.reply.message);
  return result.reply.message;
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

/**
 * The message as it arrives. Past 1 MiB it is copied into 1 MiB buffers of its own, which the writer
 * thread takes over without a copy and stores as they are: a large message is held once, never joined.
 */
class MessagePieces {
  size = 0;
  private readonly pieces: Buffer[] = [];
  private slab: Buffer | null = null;
  private used = 0;
  private readonly collect = garbageCollector();

  add(chunk: Buffer): void {
    this.size += chunk.length;
    if (!this.slab && this.size <= RAW_PIECE_BYTES) {
      this.pieces.push(chunk);
      return;
    }
    if (!this.slab) {
      this.slab = Buffer.allocUnsafeSlow(RAW_PIECE_BYTES);
      for (const earlier of this.pieces.splice(0)) this.copy(earlier);
    }
    this.copy(chunk);
    this.collect(chunk.length);
  }

  /** The message is refused for its size: count the rest, keep nothing. */
  drop(bytes: number): void {
    this.size += bytes;
    this.pieces.length = 0;
    this.slab = null;
    this.used = 0;
  }

  finish(): Buffer[] {
    if (this.slab && this.used > 0) {
      const last = Buffer.allocUnsafeSlow(this.used);
      this.slab.copy(last, 0, 0, this.used);
      this.pieces.push(last);
    }
    this.slab = null;
    return this.pieces;
  }

  private copy(data: Buffer): void {
    let rest = data;
    while (rest.length > 0 && this.slab) {
      const take = Math.min(RAW_PIECE_BYTES - this.used, rest.length);
      rest.copy(this.slab, this.used, 0, take);
      this.used += take;
      rest = rest.subarray(take);
      if (this.used === RAW_PIECE_BYTES) {
        this.pieces.push(this.slab);
        this.slab = Buffer.allocUnsafeSlow(RAW_PIECE_BYTES);
        this.used = 0;
      }
    }
  }
}
