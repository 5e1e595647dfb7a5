// graph: the Microsoft Graph fetcher, for a Microsoft 365 mailbox (where IMAP takes OAuth2 alone). Polls one
// folder, hands each message to ingest() as mail to the mailbox address, and deletes, moves or marks it
// read only once its row is committed. Side effects: HTTPS requests to Graph; rows through ingest().
import type { Logger } from 'pino';
import type { IngestDeps } from '../ingest/ingest.js';
import type { Fetcher, FetcherStatus } from './fetcher.js';
import { connectGraph, GraphError, GraphLoginError, type GraphAccount, type GraphMailbox } from './graph-api.js';
import { graphMessageUrl } from './graph-folder.js';
import { createLedger, RETRY_FIRST_MS, type Outcome } from './ledger.js';
import { createPause } from './pause.js';

export interface GraphSettings extends GraphAccount {
  folder: string;
  after: 'delete' | 'move' | 'read';
  moveTo: string;
  pollIntervalMs: number;
  maxMessageBytes: number;
}

/** A poll that failed is tried again at 1 s, doubling to 5 minutes, or after Graph's Retry-After if longer. */
const FAILURE_FIRST_MS = 1000;
const FAILURE_MAX_MS = 5 * 60_000;
const BROKEN_IN_A_ROW_MAX = 3;
/**
 * Exchange's codes for a 5xx that is about the one message (some signed or encrypted mail it cannot convert
 * to MIME, an item damaged in the store): every other 5xx (504 UnknownError, a gateway's page, a busy
 * server) may as well be Graph itself, and counts toward BROKEN_IN_A_ROW_MAX.
 */
const PER_MESSAGE_CODES = new Set(['ErrorMimeContentConversionFailed', 'ErrorContentConversionFailed', 'ErrorItemCorrupt', 'ErrorCorruptData']);

export function startGraphFetcher(settings: GraphSettings, deps: IngestDeps, logger: Logger): Fetcher {
  const mailbox = connectGraph(settings, logger);
  const state: FetcherStatus = { connected: false, lastCheck: null, lastError: null };
  const ledger = createLedger({ ingress: 'graph', maxMessageBytes: settings.maxMessageBytes, deps, logger, label: 'Graph' });
  const urlOf = (id: string) => graphMessageUrl(settings.graphEndpoint, settings.user, id);
  let stopping = false;
  let folderId: string | null = null;
  let moveToId: string | null = null;
  const pause = createPause();

  /** Messages in a row whose request got no answer or a 5xx not about that message alone: a few, and it is Graph that is down, not them. */
  let brokenInARow = 0;

  /**
   * Goes through the folder once. Returns when a deferred message is due again, and whether it went
   * through the whole folder (not stopped).
   */
  async function poll(): Promise<{ nextAt: number; complete: boolean }> {
    folderId ??= await mailbox.folderId(settings.folder, false);
    if (settings.after === 'move') moveToId ??= await mailbox.folderId(settings.moveTo, true);
    // The whole list first: deleting while paging would shift the pages under it.
    // In `read` mode, the unread alone: a folder of kept mail is not listed whole every minute.
    const ids = await mailbox.messageIds(folderId, settings.after === 'read');
    state.connected = true;
    state.lastError = null;
    brokenInARow = 0;
    ledger.sync(ids.map(urlOf));
    let nextAt = Infinity;
    for (const id of ids) {
      if (stopping) return { nextAt, complete: false };
      const url = urlOf(id);
      const due = ledger.notBefore(url, Date.now());
      if (due !== null) {
        nextAt = Math.min(nextAt, due);
        continue;
      }
      // Stored before, still here (or unread): the step after the commit did not happen (a crash, a refusal).
      const outcome = ledger.finished(url) ? 'finished' : await fetchOne(id, url);
      if (outcome === 'finished') await finish(id, url);
      else if (outcome === 'stop') return { nextAt: Math.min(nextAt, Date.now() + RETRY_FIRST_MS), complete: !stopping };
      const again = ledger.notBefore(url, Date.now());
      if (again !== null) nextAt = Math.min(nextAt, again);
    }
    return { nextAt, complete: !stopping };
  }

  async function fetchOne(id: string, url: string): Promise<Outcome> {
    let downloaded: Awaited<ReturnType<GraphMailbox['download']>>;
    try {
      downloaded = await mailbox.download(id, settings.maxMessageBytes);
      brokenInARow = 0;
    } catch (error) {
      // One message Exchange cannot convert to MIME (ErrorMimeContentConversionFailed: some signed or
      // encrypted mail) answers 500 every time: it waits, and the messages after it go on.
      messageFailed(error, id, url, 'Graph message could not be downloaded: left in the folder, fetched again later');
      return 'deferred';
    }
    if ('tooBig' in downloaded) return ledger.refuseTooBig(url, downloaded.tooBig, { id });
    return ledger.store(downloaded.raw, url, { id });
  }

  async function finish(id: string, url: string): Promise<void> {
    // Its bytes are nowhere else (too big to store): never deleted.
    if (settings.after === 'delete' && !ledger.finished(url)?.stored) return;
    try {
      if (settings.after === 'delete') await mailbox.delete(id);
      else if (settings.after === 'move') await move(id);
      else await mailbox.markRead(id);
      brokenInARow = 0;
      logger.debug({ id, url, after: settings.after }, 'Graph message done with');
    } catch (error) {
      // Already gone is done with. The row is written, so it is tried again later, never stored again.
      if (error instanceof GraphError && error.status === 404) return;
      messageFailed(error, id, url, `Graph refused to ${settings.after === 'read' ? 'mark read' : settings.after} a stored message; tried again later`);
    }
  }

  async function move(id: string): Promise<void> {
    try {
      await mailbox.move(id, moveToId as string);
    } catch (error) {
      if (!(error instanceof GraphError && error.status === 404)) throw error;
      // The message is gone, or the folder it goes to is (deleted for good: one deleted in Outlook is only moved
      // to Deleted Items, and its ID still works): that folder is found or made again.
      const found = await mailbox.folderId(settings.moveTo, true);
      if (found === moveToId) throw error;
      logger.warn({ folder: settings.moveTo }, 'the Graph folder fetched mail is moved to was gone: found or made again');
      moveToId = found;
      await mailbox.move(id, moveToId);
    }
  }

  /**
   * A request about one message failed: the message waits (a minute, doubling to an hour) and the poll goes
   * on. What is the same for every message ends the poll: throttled or told to wait (Retry-After), the token
   * or the app refused, stopping; and a few requests in a row that got no answer or a 5xx. A 5xx whose code
   * says it is about that message (PER_MESSAGE_CODES) is not counted, and shows Graph is up, as a 4xx does.
   */
  function messageFailed(error: unknown, id: string, url: string, what: string): void {
    if (!(error instanceof GraphError) || error instanceof GraphLoginError || stopping) throw error;
    const { status } = error;
    if (status === 429 || status === 401) throw error;
    const attempts = ledger.defer(url);
    logger.warn({ id, err: error.message, status, attempts }, what);
    // Deferred first: were it this message that Graph cannot serve (a 503 every time, a policy that denies
    // it alone), it would otherwise be asked about first at every poll, and the folder behind it never reached.
    if (status === 403 || error.retryAfterMs !== null) throw error;
    const aboutThisMessage = status !== null && (status < 500 || (error.code !== null && PER_MESSAGE_CODES.has(error.code)));
    if (aboutThisMessage) brokenInARow = 0;
    else if (++brokenInARow >= BROKEN_IN_A_ROW_MAX) throw error;
  }

  const running = (async () => {
    let failures = 0;
    logger.info({ user: settings.user, folder: settings.folder, after: settings.after, pollIntervalMs: settings.pollIntervalMs }, 'fetching over Microsoft Graph');
    while (!stopping) {
      let delay: number;
      try {
        const { nextAt, complete } = await poll();
        failures = 0;
        if (complete) state.lastCheck = Date.now();
        delay = Math.max(0, Math.min(settings.pollIntervalMs, nextAt - Date.now()));
      } catch (error) {
        if (stopping) break;
        state.connected = false;
        state.lastError = (error as Error).message;
        // A folder deleted or renamed since it was found: found again at the next try.
        if (error instanceof GraphError && error.status === 404) folderId = moveToId = null;
        const backoff = Math.min(FAILURE_MAX_MS, FAILURE_FIRST_MS * 2 ** failures);
        delay = Math.max(backoff, error instanceof GraphError ? (error.retryAfterMs ?? 0) : 0);
        failures++;
        logger.warn({ err: state.lastError, status: error instanceof GraphError ? error.status : undefined, retryInMs: delay }, 'Graph poll failed; trying again');
      }
      if (!stopping) await pause.sleep(delay);
    }
  })();

  return {
    status: () => ({ ...state }),
    async close(graceMs) {
      stopping = true;
      // A wait ends now; a message being stored finishes first (poll() stops before the next one). Past
      // the grace, requests under way are ended: a message stored by then is known by its row at the next start.
      pause.wake();
      const cut = setTimeout(() => mailbox.abort(), graceMs);
      await running;
      clearTimeout(cut);
    },
  };
}

/**
 * For `intake check`: gets a token and finds the folders, changing nothing. Resolves with what it found;
 * rejects with Entra ID's or Graph's words. `signal` ends the requests under way.
 */
export async function probeGraph(settings: GraphSettings, logger: Logger, signal: AbortSignal): Promise<string> {
  const mailbox = connectGraph(settings, logger);
  signal.addEventListener('abort', () => mailbox.abort(), { once: true });
  await mailbox.folderId(settings.folder, false);
  let detail = `${settings.user}: a token from ${new URL(settings.loginEndpoint).host}, folder ${settings.folder} found`;
  if (settings.after === 'move') {
    const found = await mailbox.folderId(settings.moveTo, false).then(
      () => true,
      (error: unknown) => {
        if (error instanceof GraphError && error.status === 404) return false;
        throw error;
      },
    );
    detail += found ? `; moving to ${settings.moveTo}` : `; ${settings.moveTo} is created at the first move`;
  }
  return detail;
}
