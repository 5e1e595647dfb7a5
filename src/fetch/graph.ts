// graph: the Microsoft Graph fetcher, for a Microsoft 365 mailbox (where IMAP takes OAuth2 alone). Polls one
// folder, hands each message to ingest() as mail to the mailbox address, and deletes, moves or marks it
// read only once its row is committed. Side effects: HTTPS requests to Graph; rows through ingest().
import type { Logger } from 'pino';
import type { IngestDeps } from '../ingest/ingest.js';
import type { Fetcher, FetcherStatus } from './fetcher.js';
import { connectGraph, GraphError, type GraphAccount, type GraphMailbox } from './graph-api.js';
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

export function startGraphFetcher(settings: GraphSettings, deps: IngestDeps, logger: Logger): Fetcher {
  const mailbox = connectGraph(settings, logger);
  const state: FetcherStatus = { connected: false, lastCheck: null, lastError: null };
  const ledger = createLedger({ ingress: 'graph', maxMessageBytes: settings.maxMessageBytes, deps, logger, label: 'Graph' });
  const urlOf = (id: string) => graphMessageUrl(settings.graphEndpoint, settings.user, id);
  let stopping = false;
  let folderId: string | null = null;
  let moveToId: string | null = null;
  const pause = createPause();

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
    ledger.sync(ids.map(urlOf));
    let nextAt = Infinity;
    for (const id of ids) {
      if (stopping) return { nextAt, complete: false };
      const url = urlOf(id);
      const done = ledger.finished(url);
      if (done) {
        // Stored before, still here (or unread): the step after the commit did not happen (a crash, a refusal).
        await finish(id, url);
        continue;
      }
      const due = ledger.notBefore(url, Date.now());
      if (due !== null) {
        nextAt = Math.min(nextAt, due);
        continue;
      }
      const outcome = await fetchOne(id, url);
      if (outcome === 'finished') await finish(id, url);
      else if (outcome === 'deferred') nextAt = Math.min(nextAt, ledger.notBefore(url, Date.now()) ?? Date.now());
      else return { nextAt: Math.min(nextAt, Date.now() + RETRY_FIRST_MS), complete: !stopping };
    }
    return { nextAt, complete: !stopping };
  }

  async function fetchOne(id: string, url: string): Promise<Outcome> {
    let downloaded: Awaited<ReturnType<GraphMailbox['download']>>;
    try {
      downloaded = await mailbox.download(id, settings.maxMessageBytes);
    } catch (error) {
      // Throttled, Graph down or the app refused ends the poll; the rest (gone meanwhile: 404) is this message's.
      if (!(error instanceof GraphError) || error.status === null || error.status === 429 || error.status >= 500 || error.status === 401 || error.status === 403) throw error;
      const attempts = ledger.defer(url);
      logger.warn({ id, err: error.message, attempts }, 'Graph message could not be downloaded: left in the folder, fetched again later');
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
      else if (settings.after === 'move') await mailbox.move(id, moveToId as string);
      else await mailbox.markRead(id);
      logger.debug({ id, url, after: settings.after }, 'Graph message done with');
    } catch (error) {
      // Already gone is done with; the row is written, so anything else is tried again at the next poll, never stored again.
      if (error instanceof GraphError && error.status === 404) return;
      if (error instanceof GraphError && (error.status === null || error.status === 429 || error.status >= 500)) throw error;
      logger.warn({ id, after: settings.after, err: (error as Error).message }, `Graph refused to ${settings.after === 'read' ? 'mark read' : settings.after} a stored message; tried again at the next poll`);
    }
  }

  const running = (async () => {
    let failures = 0;
    logger.info({ user: settings.user, folder: settings.folder, after: settings.after, pollIntervalMs: settings.pollIntervalMs }, 'fetching over Microsoft Graph');
    while (!stopping) {
      let delay: number;
      try {
        const { nextAt, complete } = await poll();
        state.connected = true;
        state.lastError = null;
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
 * rejects with Entra ID's or Graph's words.
 */
export async function probeGraph(settings: GraphSettings, logger: Logger): Promise<string> {
  const mailbox = connectGraph(settings, logger);
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
