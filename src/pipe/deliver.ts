// deliver: the pipe ingress (`intake deliver`, for Postfix's pipe(8), procmail, scripts). Checks the
// recipients, hands the message to ingest() and turns the outcome into a sysexits code. Input: untrusted.
import { sameMailbox } from '../address/mailbox.js';
import { MailRejection } from '../errors.js';
import { ingest, recordRefusals, replyForRecipient, type Envelope, type IngestDeps, type RefusedRecipient, type Reply } from '../ingest/ingest.js';
import { checkRecipient } from '../ingest/recipient.js';

/** sysexits.h, as pipe(8) and procmail read them: bounce for 64-78 but 75, retry for 75. */
export const EXIT = { stored: 0, dataError: 65, noUser: 67, tempFail: 75 } as const;

export interface PipeResult {
  exitCode: number;
  /** One line per recipient, for stderr (pipe(8) quotes it in a bounce). */
  lines: string[];
  inboundMessageId: number | null;
}

/**
 * Delivers one message read whole from a pipe. With no recipient given, the message is taken as sent
 * to the mailbox address and routed by its headers, as the SMTP listener does for that address.
 */
export async function deliverFromPipe(
  request: { raw: Buffer; to: string[]; from: string | null; client?: { remoteAddress: string | null; helo: string | null }; maxBytes: number },
  deps: IngestDeps,
): Promise<PipeResult> {
  const recipients = request.to.length > 0 ? request.to : deps.template.mailbox ? [deps.template.mailbox] : [];
  if (recipients.length === 0) {
    return { exitCode: EXIT.noUser, lines: ['no recipient: give --to ADDRESS (the address template has no mailbox address)'], inboundMessageId: null };
  }
  const raw = withoutMboxFromLine(request.raw);
  const accepted: string[] = [];
  const refused: RefusedRecipient[] = [];
  for (const recipient of recipients) {
    try {
      checkRecipient(recipient, deps);
      // The same mailbox once: the domain in any case, the local part as written (keys are case-sensitive).
      if (!accepted.some((a) => sameMailbox(a, recipient))) accepted.push(recipient);
    } catch (error) {
      if (!(error instanceof MailRejection)) throw error;
      refused.push({ recipient, rejection: error });
    }
  }
  if (raw.length > request.maxBytes) {
    const rejection = new MailRejection('data.too_big', String(request.maxBytes));
    for (const recipient of accepted) refused.push({ recipient, rejection, stage: 'data' });
    accepted.length = 0;
  }
  const envelope: Envelope = { mailFrom: request.from, rcptTo: accepted, recipients, remoteAddress: request.client?.remoteAddress ?? null, helo: request.client?.helo ?? null };
  const lines = refused.map(({ recipient, rejection }) => `${recipient}: ${rejection.responseCode} ${rejection.message}`);
  let inboundMessageId = await recordRefusals({ ingress: 'pipe', envelope, refused, size: raw.length, inboundMessageId: null }, deps);
  // A recipient that may work later would be lost if the others were stored now: all retry together
  // (the ones stored by then are recognised as duplicates).
  if (accepted.length === 0 || refused.some((r) => r.rejection.isTemporary)) {
    return { exitCode: exitFor(refused.map((r) => ({ code: r.rejection.responseCode, stage: r.stage ?? 'rcpt' }))), lines, inboundMessageId };
  }
  let replies: Reply[];
  try {
    const result = await ingest({ raw, ingress: 'pipe', envelope, inboundMessageId }, deps);
    inboundMessageId = result.inboundMessageId;
    replies = accepted.map((recipient) => replyForRecipient(result, recipient));
  } catch (error) {
    const rejection = error instanceof MailRejection ? error : new MailRejection('data.store_failed');
    return { exitCode: EXIT.tempFail, lines: [...lines, `${rejection.responseCode} ${rejection.message}`], inboundMessageId };
  }
  accepted.forEach((recipient, i) => lines.push(`${recipient}: ${replies[i]?.code} ${replies[i]?.message}`));
  // One deferred after DATA: all retry together, as above.
  if (replies.some((r) => r.code >= 400 && r.code < 500)) return { exitCode: EXIT.tempFail, lines, inboundMessageId };
  if (replies.some((r) => r.code < 400)) return { exitCode: EXIT.stored, lines, inboundMessageId };
  return { exitCode: exitFor(replies.map((r) => ({ code: r.code, stage: 'data' }))), lines, inboundMessageId };
}

/** Nothing was stored: retry if any refusal was temporary, else say why it can never be. */
function exitFor(refusals: { code: number; stage: string }[]): number {
  if (refusals.some((r) => r.code < 500)) return EXIT.tempFail;
  return refusals.every((r) => r.stage === 'rcpt') ? EXIT.noUser : EXIT.dataError;
}

/** procmail and `formail` hand over mbox-style mail starting with a `From sender date` line. */
function withoutMboxFromLine(raw: Buffer): Buffer {
  if (raw.subarray(0, 5).toString('latin1') !== 'From ') return raw;
  const nl = raw.indexOf(0x0a);
  return nl === -1 ? raw : raw.subarray(nl + 1);
}
