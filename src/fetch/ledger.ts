// ledger: what a fetcher knows of the messages in its folder (which a row has finished with, which were
// deferred and when they are due again), and storing one through ingest(). Shared by the IMAP and Graph
// fetchers, which differ only in how they list, download and clear away a message.
import type { Logger } from 'pino';
import { MailRejection } from '../errors.js';
import { ingest, recordRefusals, type Envelope, type Ingress, type IngestDeps } from '../ingest/ingest.js';
import { returnPathOf } from './return-path.js';

/** A deferred message (4xx) is fetched again after 1 minute, doubling to an hour, as a sender would retry. */
export const RETRY_FIRST_MS = 60_000;
const RETRY_MAX_MS = 60 * 60_000;

/**
 * What became of one message: `finished` (a row is committed: it may be deleted, moved or flagged),
 * `deferred` (left in the folder until it is due again), `stop` (the database could not store it: the
 * rest wait a minute too).
 */
export type Outcome = 'finished' | 'deferred' | 'stop';

export interface Ledger {
  /**
   * Takes the folder's messages (their URLs): forgets those that left it, and asks the database about
   * those it has not seen. The process holds what the folder holds, not every message it ever fetched.
   */
  sync(present: Iterable<string>): void;
  /** Finished with, and whether its bytes were stored (a message too big to store is not). */
  finished(url: string): { stored: boolean } | undefined;
  /** When a deferred message may be fetched again (ms since the epoch), or null when it may be now. */
  notBefore(url: string, now: number): number | null;
  /** Leaves a message in the folder, to be fetched again after a minute, doubling to an hour. Returns how often it was. */
  defer(url: string): number;
  /** Hands one message to ingest() as mail to the mailbox address. `context` names it in the log. */
  store(raw: Buffer, url: string, context: Record<string, unknown>): Promise<Outcome>;
  /** Records a `data.too_big` refusal; finished only once that row is written (it is never deleted: its bytes are nowhere else). */
  refuseTooBig(url: string, size: number, context: Record<string, unknown>): Promise<'finished' | 'deferred'>;
}

export function createLedger(options: { ingress: Ingress; maxMessageBytes: number; deps: IngestDeps; logger: Logger; label: string }): Ledger {
  const { ingress, deps, logger, label } = options;
  // Fetched mail is taken as sent to the template's mailbox address (loadConfig() made sure there is one).
  const recipient = deps.template.mailbox as string;
  const deferred = new Map<string, { attempts: number; notBefore: number }>();
  /** So that a folder of kept mail is not looked up again every check. */
  const finished = new Map<string, { stored: boolean }>();
  const envelopeOf = (url: string, mailFrom: string | null): Envelope => ({ mailFrom, rcptTo: [recipient], recipients: [recipient], fetchedFrom: url });

  const ledger: Ledger = {
    sync(present) {
      const here = new Set(present);
      for (const url of finished.keys()) if (!here.has(url)) finished.delete(url);
      for (const url of deferred.keys()) if (!here.has(url)) deferred.delete(url);
      const unknown = [...here].filter((url) => !finished.has(url));
      for (const [url, done] of deps.repos.inbound.fetchedAlready(unknown)) finished.set(url, done);
    },
    finished: (url) => finished.get(url),
    notBefore(url, now) {
      const retry = deferred.get(url);
      return retry && retry.notBefore > now ? retry.notBefore : null;
    },
    defer(url) {
      const attempts = (deferred.get(url)?.attempts ?? 0) + 1;
      deferred.set(url, { attempts, notBefore: Date.now() + Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (attempts - 1)) });
      return attempts;
    },
    async store(raw, url, context) {
      // The size the server announced is its word; the bytes are what counts.
      if (raw.length > options.maxMessageBytes) return ledger.refuseTooBig(url, raw.length, context);
      try {
        const result = await ingest({ raw, ingress, envelope: envelopeOf(url, returnPathOf(raw)) }, deps);
        const reply = `${result.reply.code} ${result.reply.message}`;
        if (result.reply.code >= 400 && result.reply.code < 500) {
          const attempts = ledger.defer(url);
          logger.info({ ...context, inboundMessageId: result.inboundMessageId, reply, attempts }, `${label} message deferred: left in the folder, fetched again later`);
          return 'deferred';
        }
        deferred.delete(url);
        finished.set(url, { stored: true });
        logger.info({ ...context, inboundMessageId: result.inboundMessageId, status: result.status, reply }, `${label} message stored`);
        return 'finished';
      } catch (error) {
        // Nothing stored: it stays in the folder. The database locked, full or failing (a MailRejection) is
        // everyone's trouble: the check ends, and goes on in a minute. Anything else is this message's.
        const attempts = ledger.defer(url);
        const reply = error instanceof MailRejection ? `${error.responseCode} ${error.message}` : undefined;
        logger.warn({ ...context, reply, err: reply ? undefined : String((error as Error)?.message ?? error), attempts }, `${label} message not stored: left in the folder, fetched again later`);
        return error instanceof MailRejection ? 'stop' : 'deferred';
      }
    },
    async refuseTooBig(url, size, context) {
      const rejection = new MailRejection('data.too_big', String(options.maxMessageBytes));
      const envelope = { ...envelopeOf(url, null), rcptTo: [] };
      const id = await recordRefusals({ ingress, envelope, refused: [{ recipient, rejection, stage: 'data' }], size, inboundMessageId: null }, deps);
      if (id === null) {
        ledger.defer(url);
        return 'deferred';
      }
      logger.warn({ ...context, size, inboundMessageId: id, reply: `${rejection.responseCode} ${rejection.message}` }, `${label} message too big: refused and left in the folder`);
      finished.set(url, { stored: false });
      return 'finished';
    },
  };
  return ledger;
}
