// imap: the IMAP fetcher, for a mailbox intake cannot be the MX of. Watches one folder (IDLE), hands each
// message to ingest() as mail to the mailbox address, and deletes, moves or flags it only once its row is
// committed. Side effects: one IMAP connection, reconnected with a backoff; rows through ingest().
import { ImapFlow } from 'imapflow';
import type { Logger } from 'pino';
import type { IngestDeps } from '../ingest/ingest.js';
import type { Fetcher, FetcherStatus } from './fetcher.js';
import { imapMessageUrl } from './imap-url.js';
import { createLedger, RETRY_FIRST_MS, type Outcome } from './ledger.js';
import { createPause } from './pause.js';

export interface ImapSettings {
  host: string;
  port: number;
  tls: 'implicit' | 'starttls' | 'none';
  user: string;
  password: string;
  mailbox: string;
  after: 'delete' | 'move' | 'seen';
  moveTo: string;
  checkIntervalMs: number;
  maxMessageBytes: number;
}

/**
 * RFC 2177 asks a client to leave IDLE within 29 minutes, and NATs drop quiet connections sooner: mail_room
 * stopped hearing of new mail after about 30 minutes (tpitale/mail_room#10).
 */
const IDLE_RESTART_MS = 10 * 60_000;
/** Reconnecting: 1 s, doubling to 5 minutes; never a tight loop against a server that refuses (mail_room#56). */
const RECONNECT_FIRST_MS = 1000;
const RECONNECT_MAX_MS = 5 * 60_000;
const FETCH_BATCH = 500;
/** Longer than most pauses inside a check (a message being stored); after a longer one, IDLE costs the next command a round-trip. */
const IDLE_AFTER_MS = 1000;

export function startImapFetcher(settings: ImapSettings, deps: IngestDeps, logger: Logger): Fetcher {
  const state: FetcherStatus = { connected: false, lastCheck: null, lastError: null };
  let stopping = false;
  let ledger = createLedger({ ingress: 'imap', maxMessageBytes: settings.maxMessageBytes, deps, logger, label: 'IMAP' });
  let lastUidValidity: bigint | null = null;
  let current: ImapFlow | null = null;

  const pause = createPause();
  /** Announcements since the last check began: one during a check means checking again at once. */
  let pokes = 0;
  /** Whether the wait under way ends on news of the folder (a backoff does not). */
  let pokable = false;
  const poke = () => {
    pokes++;
    if (pokable) pause.wake();
  };
  /** Waits ms, or less when poked (new mail) or stopped; `backoff` waits are ended by stopping alone. */
  const sleep = async (ms: number, backoff = false) => {
    if ((pokes > 0 && !backoff) || stopping) return;
    pokable = !backoff;
    await pause.sleep(ms);
  };

  async function connection(): Promise<void> {
    const imap = imapClient(settings, logger);
    current = imap;
    // An error on the socket also closes it, which ends this connection below.
    imap.on('error', (error: Error) => {
      state.lastError = describe(error);
    });
    const closed = new Promise<void>((resolve) => imap.once('close', resolve));
    void closed.then(poke);
    imap.on('exists', poke);
    try {
      await imap.connect();
      const opened = await imap.mailboxOpen(settings.mailbox);
      if (lastUidValidity !== null && opened.uidValidity !== lastUidValidity) {
        // Every UID names another message now: all are fetched again, and copies are recognised by Message-ID.
        logger.warn({ mailbox: settings.mailbox, was: String(lastUidValidity), now: String(opened.uidValidity) }, 'IMAP folder UIDVALIDITY changed: its messages are fetched again');
        ledger = createLedger({ ingress: 'imap', maxMessageBytes: settings.maxMessageBytes, deps, logger, label: 'IMAP' });
      }
      lastUidValidity = opened.uidValidity;
      if (settings.after === 'move') await ensureFolder(imap, settings.moveTo);
      state.connected = true;
      state.lastError = null;
      logger.info({ host: settings.host, port: settings.port, user: settings.user, mailbox: settings.mailbox, exists: opened.exists, uidValidity: String(opened.uidValidity) }, 'IMAP folder opened');
      while (!stopping && imap.usable) {
        pokes = 0;
        const { nextAt, complete } = await check(imap, opened.uidValidity);
        if (!complete) break;
        state.lastCheck = Date.now();
        // From now, not from when the check began: a long check does not push retries back by its length.
        await sleep(Math.max(0, Math.min(settings.checkIntervalMs, nextAt - Date.now())));
      }
    } finally {
      state.connected = false;
      // close() may cut a LOGOUT the server does not answer: `current` stays set until it is over.
      if (imap.usable) await imap.logout().catch(() => imap.close());
      else imap.close();
      current = null;
    }
  }

  /**
   * Fetches what the folder holds and intake has not finished with. Returns when a deferred one is due
   * again, and whether it went through the whole folder (not stopped, the connection still up).
   */
  async function check(imap: ImapFlow, uidValidity: bigint): Promise<{ nextAt: number; complete: boolean }> {
    const uids = await imap.search({ deleted: false }, { uid: true });
    // `false`: the server refused the search. Taken for an empty folder, it would hide a fetcher that fetches nothing.
    if (!Array.isArray(uids)) throw new Error(`the server refused to search ${settings.mailbox}`);
    const urlOf = (uid: number) => imapMessageUrl({ user: settings.user, host: settings.host, port: settings.port, mailbox: settings.mailbox, uidValidity, uid });
    // Flagged \Deleted and still here: the server refused the EXPUNGE after intake's STORE (a stored
    // one, deleted again now), or someone else flagged it (theirs to expunge: left alone).
    const flagged = settings.after === 'delete' ? await imap.search({ deleted: true }, { uid: true }) : [];
    const halfDeleted = Array.isArray(flagged) ? flagged : [];
    ledger.sync([...uids, ...halfDeleted].map(urlOf));
    const now = Date.now();
    /** When the first deferred message is due again (ms since the epoch). */
    let nextAt = Infinity;
    const todo: number[] = halfDeleted.filter((uid) => ledger.finished(urlOf(uid))?.stored).sort((a, b) => a - b);
    for (const uid of uids.sort((a, b) => a - b)) {
      const url = urlOf(uid);
      const done = ledger.finished(url);
      if (done) {
        // Stored before, still here: the step after the commit did not happen (a crash, a lost connection).
        if (settings.after === 'move' || (settings.after === 'delete' && done.stored)) todo.push(uid);
        continue;
      }
      const due = ledger.notBefore(url, now);
      if (due !== null) {
        nextAt = Math.min(nextAt, due);
        continue;
      }
      todo.push(uid);
    }
    const sizes = new Map<number, number>();
    for (const [i, uid] of todo.entries()) {
      if (stopping || !imap.usable) return { nextAt, complete: false };
      // Sizes a batch at a time: a first check of a folder of kept mail may find many thousands.
      if (i % FETCH_BATCH === 0) {
        const batch = todo.slice(i, i + FETCH_BATCH).join(',');
        // Only the answers with a size: a flag change another client made arrives as a FETCH too.
        for (const message of await imap.fetchAll(batch, { uid: true, size: true }, { uid: true })) if (message.size !== undefined) sizes.set(message.uid, message.size);
      }
      const url = urlOf(uid);
      const size = sizes.get(uid);
      if (size === undefined) continue; // expunged meanwhile by another client
      if (ledger.finished(url)) {
        await finish(imap, uid, url);
        continue;
      }
      const outcome = await fetchOne(imap, uid, url, size);
      if (outcome === 'deferred') nextAt = Math.min(nextAt, ledger.notBefore(url, Date.now()) ?? now);
      else if (outcome === 'stop') return { nextAt: Math.min(nextAt, Date.now() + RETRY_FIRST_MS), complete: !stopping && imap.usable };
      else await finish(imap, uid, url);
    }
    return { nextAt, complete: !stopping && imap.usable };
  }

  /**
   * Downloads one message and stores it (or refuses it: too big). A message the server does not hand
   * over is left for later: one that cannot be had never holds up the others for longer.
   */
  async function fetchOne(imap: ImapFlow, uid: number, url: string, size: number): Promise<Outcome> {
    if (size > settings.maxMessageBytes) return ledger.refuseTooBig(url, size, { uid });
    let raw: Buffer;
    try {
      // One byte past the limit at most: a server that said less than it holds is not believed.
      const message = await imap.fetchOne(String(uid), { uid: true, source: { maxLength: settings.maxMessageBytes + 1 } }, { uid: true });
      if (!message || !message.source) {
        // Gone between the search and the fetch (another client took it), which the next search shows; else not handed over.
        const attempts = ledger.defer(url);
        logger.warn({ uid, attempts }, 'IMAP message not handed over by the server: left in the folder, fetched again later');
        return 'deferred';
      }
      raw = message.source;
    } catch (error) {
      // The connection is gone (the whole check ends), or the server refused this one message. Either way
      // it is deferred: a message that takes the connection down with it must not be first again at once.
      const attempts = ledger.defer(url);
      logger.warn({ uid, err: describe(error), attempts }, 'IMAP message could not be fetched: left in the folder, fetched again later');
      if (!imap.usable) throw error;
      return 'deferred';
    }
    return ledger.store(raw, url, { uid });
  }

  async function finish(imap: ImapFlow, uid: number, url: string): Promise<void> {
    // Its bytes are nowhere else: never deleted.
    if (settings.after === 'delete' && !ledger.finished(url)?.stored) return;
    let done: unknown;
    if (settings.after === 'delete') done = await imap.messageDelete(String(uid), { uid: true });
    else if (settings.after === 'move') done = await imap.messageMove(String(uid), settings.moveTo, { uid: true });
    else done = await imap.messageFlagsAdd(String(uid), ['\\Seen'], { uid: true });
    // Refused (a quota, a read-only folder): the row is written, so it is tried again at the next check, never stored again.
    if (done === false && imap.usable) logger.warn({ uid, after: settings.after, moveTo: settings.after === 'move' ? settings.moveTo : undefined }, `IMAP server refused to ${settings.after === 'seen' ? 'flag' : settings.after} a stored message; tried again at the next check`);
    else logger.debug({ uid, url, after: settings.after }, 'IMAP message done with');
  }

  const running = (async () => {
    let failures = 0;
    while (!stopping) {
      const checkedBefore = state.lastCheck;
      try {
        await connection();
      } catch (error) {
        state.lastError = describe(error);
      }
      if (stopping) break;
      // A connection that got a whole check done was a good one: the next attempt starts from 1 s again.
      if (state.lastCheck !== checkedBefore) failures = 0;
      const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** failures);
      failures++;
      logger.warn({ host: settings.host, port: settings.port, err: state.lastError ?? 'closed by the server', retryInMs: delay }, 'IMAP connection lost or refused; connecting again');
      await sleep(delay, true);
    }
  })();

  return {
    status: () => ({ ...state }),
    async close(graceMs) {
      stopping = true;
      // A wait ends now; a message being stored finishes first (check() stops before the next one),
      // then the connection logs out, which ends IDLE. A server that does not answer is not waited for:
      // a message stored by then is known by its row at the next start.
      pause.wake();
      const cut = setTimeout(() => current?.close(), graceMs);
      await running;
      clearTimeout(cut);
    },
  };
}

function imapClient(settings: ImapSettings, logger: Logger): ImapFlow {
  return new ImapFlow({
    host: settings.host,
    port: settings.port,
    secure: settings.tls === 'implicit',
    doSTARTTLS: settings.tls === 'starttls' ? true : settings.tls === 'none' ? false : undefined,
    auth: { user: settings.user, pass: settings.password },
    // The message's bytes as stored on the server: BINARY would undo its transfer encodings (and DKIM).
    disableBinary: true,
    maxIdleTime: IDLE_RESTART_MS,
    // IDLE right after a check (imapflow waits 15 s by default): mail announced meanwhile would wait as long.
    autoIdleDelay: IDLE_AFTER_MS,
    logger: imapLogger(logger),
    clientInfo: { name: 'intake' },
  });
}

/**
 * For `intake check`: logs in and asks about the folders, changing nothing. Resolves with what it
 * found; rejects saying what the server refused.
 */
export async function probeImap(settings: ImapSettings, logger: Logger, signal: AbortSignal): Promise<string> {
  const imap = imapClient(settings, logger);
  imap.on('error', () => {});
  signal.addEventListener('abort', () => imap.close(), { once: true });
  try {
    await imap.connect();
    const status = await imap.status(settings.mailbox, { messages: true });
    if (status === false) throw new Error(`${settings.mailbox}: the server has no such folder, or refused to say`);
    let detail = `${settings.user}@${settings.host}:${settings.port} logged in (${settings.tls}); ${settings.mailbox} holds ${status.messages ?? '?'} messages`;
    if (settings.after === 'move') {
      // imapflow says of a folder LIST does not show: code NotFound.
      const target = await imap.status(settings.moveTo, { messages: true }).catch((error: { code?: string }) => {
        if (error?.code === 'NotFound') return false;
        throw error;
      });
      detail += target === false ? `; ${settings.moveTo} is created at the first move` : `; moving to ${settings.moveTo}`;
    }
    return detail;
  } catch (error) {
    throw new Error(describe(error));
  } finally {
    if (imap.usable) await imap.logout().catch(() => imap.close());
    else imap.close();
  }
}

/** A CREATE that fails for a folder that is there already (a server that does not say ALREADYEXISTS) is no failure. */
async function ensureFolder(imap: ImapFlow, path: string): Promise<void> {
  try {
    await imap.mailboxCreate(path);
  } catch (error) {
    // imapflow's status() answers false, not an error, for a folder it could not ask about.
    const exists = await imap.status(path, { messages: true }).then((status) => status !== false, () => false);
    if (!exists) throw error;
  }
}

/** An error with what the server said, when it said something (imapflow's message alone is `Command failed`). */
function describe(error: unknown): string {
  const e = error as { message?: string; responseText?: string; serverResponseCode?: string } | null;
  const said = [e?.serverResponseCode && `[${e.serverResponseCode}]`, e?.responseText].filter(Boolean).join(' ');
  return `${e?.message ?? String(error)}${said ? `: ${said}` : ''}`;
}

/** imapflow's own log lines, at warn and above (its info and debug are every command). */
function imapLogger(logger: Logger): Logger {
  const level = logger.levelVal > 40 ? logger.level : 'warn';
  return logger.child({ component: 'imapflow' }, { level });
}
