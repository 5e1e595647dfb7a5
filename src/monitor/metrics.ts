// metrics: what `GET /metrics` tells Prometheus: messages stored and their recipients by outcome (as
// the writer answered them: committed), refusals as answered, the time to store, the last message's
// time, open sessions, the database's disk, and the process's own (prom-client's defaults).
import { statSync } from 'node:fs';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FetcherStatus } from '../fetch/fetcher.js';
import type { WriterObserver } from '../ingest/writer.js';
import type { SessionObserver } from '../smtp/server.js';
import { freeBytes } from '../smtp/free-space.js';

export interface Metrics {
  registry: Registry;
  observer: WriterObserver;
  /** For the mail listeners: refusals at connect, MAIL FROM and session timeouts. */
  sessions: SessionObserver;
}

/** The refusals of a recipient that names nothing (what a key guesser gets): the alerting rules' own. */
const UNKNOWN_RECIPIENT_CODES = ['rcpt.unknown_key', 'rcpt.unknown_reply_key', 'rcpt.user_not_found', 'rcpt.no_such_address', 'rcpt.project_not_found'];

/** Up to the 10 s a sender might wait; most answers take 1 to 20 ms (README, Performance). */
const STORE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createMetrics(options: { database: string; sessions: () => Record<string, number>; imap?: (() => FetcherStatus | null) | null; graph?: (() => FetcherStatus | null) | null }): Metrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  const messages = new Counter({
    name: 'intake_messages_total',
    help: 'Messages received to the end of DATA and stored, by ingress and the status of their inbound_messages row.',
    labelNames: ['ingress', 'status'],
    registers,
  });
  const deliveries = new Counter({
    name: 'intake_deliveries_total',
    help: 'Recipients of the messages stored at the end of DATA, one per deliveries row of stage data or process, by status and reason_code (empty when none).',
    labelNames: ['stage', 'status', 'reason'],
    registers,
  });
  const refusals = new Counter({
    name: 'intake_refusals_total',
    help: 'Refusals as answered, by stage and reason code: connections (connect), senders (mail), recipients (rcpt, or data for a message refused whole at the end of DATA: too big), sessions cut (session: timeouts). A refusal the client then made good (RCPT again without the parameter) still counts.',
    labelNames: ['stage', 'reason'],
    registers,
  });
  const notStored = new Counter({
    name: 'intake_messages_not_stored_total',
    help: 'Messages answered with a temporary failure at the end of DATA and not stored (data.store_failed, data.disk_full, session.internal_error).',
    labelNames: ['ingress', 'reason'],
    registers,
  });
  const storeSeconds = new Histogram({
    name: 'intake_store_seconds',
    help: 'From a message handed to the writer thread to its answer: parsed, stored, committed and flushed (or refused).',
    buckets: STORE_BUCKETS,
    registers,
  });
  const lastMessage = new Gauge({
    name: 'intake_last_message_timestamp_seconds',
    help: 'When a message last reached the end of DATA and the writer answered it, whatever the answer (Unix time); 0 until one has. Alert when it is older than your quietest hour.',
    registers,
  });
  const restarts = new Counter({
    name: 'intake_writer_restarts_total',
    help: 'Times the writer thread stopped and another was started.',
    registers,
  });
  new Gauge({
    name: 'intake_sessions',
    help: 'SMTP, SMTPS and LMTP sessions open now, by listener.',
    labelNames: ['listener'],
    registers,
    collect() {
      this.reset();
      for (const [listener, open] of Object.entries(options.sessions())) this.set({ listener }, open);
    },
  });
  new Gauge({
    name: 'intake_database_free_bytes',
    help: 'Bytes free for intake on the file system of the database (MAIL FROM is refused 452 4.3.1 under INTAKE_MIN_FREE_BYTES).',
    registers,
    collect() {
      const free = freeBytes(options.database);
      if (free !== null) this.set(free);
    },
  });
  new Gauge({
    name: 'intake_database_bytes',
    help: 'Size of the database file and of its write-ahead log.',
    labelNames: ['file'],
    registers,
    collect() {
      for (const [file, path] of [['database', options.database], ['wal', `${options.database}-wal`]] as const) {
        try {
          this.set({ file }, statSync(path).size);
        } catch {
          // No WAL between a clean close and the next write.
          this.set({ file }, 0);
        }
      }
    },
  });
  const imap = options.imap;
  if (imap) {
    new Gauge({
      name: 'intake_imap_connected',
      help: 'Whether the IMAP fetcher has its folder open (1) or is connecting again (0).',
      registers,
      collect() {
        this.set(imap()?.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'intake_imap_last_check_timestamp_seconds',
      help: 'When the IMAP fetcher last searched its folder to the end (Unix time); 0 until it has. It searches at least every INTAKE_IMAP_CHECK_INTERVAL_MS: alert when it is older than a few of those.',
      registers,
      collect() {
        this.set((imap()?.lastCheck ?? 0) / 1000);
      },
    });
  }

  const graph = options.graph;
  if (graph) {
    new Gauge({
      name: 'intake_graph_connected',
      help: "Whether the Microsoft Graph fetcher's last poll went through (1) or it is trying again (0): a refused token or permission, Graph down or throttling.",
      registers,
      collect() {
        this.set(graph()?.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'intake_graph_last_check_timestamp_seconds',
      help: 'When the Graph fetcher last went through its folder to the end (Unix time); 0 until it has. It polls every INTAKE_GRAPH_POLL_INTERVAL_MS: alert when it is older than a few of those.',
      registers,
      collect() {
        this.set((graph()?.lastCheck ?? 0) / 1000);
      },
    });
  }

  // A labelled series appears only once counted, and Prometheus's increase() reads a series' first
  // value as its start: the first failure after a start would never alert. Those alerted on start at 0.
  for (const ingress of ['smtp', 'lmtp', ...(imap ? ['imap'] : []), ...(graph ? ['graph'] : [])]) for (const reason of ['data.store_failed', 'data.disk_full', 'session.internal_error']) notStored.inc({ ingress, reason }, 0);
  deliveries.inc({ stage: 'process', status: 'failed', reason: 'process.internal' }, 0);
  for (const reason of UNKNOWN_RECIPIENT_CODES) refusals.inc({ stage: 'rcpt', reason }, 0);
  refusals.inc({ stage: 'connect', reason: 'connect.blocked' }, 0);

  const observer: WriterObserver = {
    ingested(ingress, seconds, outcome) {
      storeSeconds.observe(seconds);
      lastMessage.set(Date.now() / 1000);
      if ('code' in outcome) {
        notStored.inc({ ingress, reason: outcome.code });
        return;
      }
      messages.inc({ ingress, status: outcome.result.status });
      // Its RCPT refusals are among them, counted as they were answered (refused, below).
      for (const d of outcome.result.deliveries) if (d.stage !== 'rcpt') deliveries.inc({ stage: d.stage, status: d.status, reason: d.reasonCode ?? '' });
    },
    refused(refused) {
      for (const r of refused) refusals.inc({ stage: r.stage ?? 'rcpt', reason: r.rejection.code });
    },
    restarted() {
      restarts.inc();
    },
  };
  return { registry, observer, sessions: { refused: (stage, reason) => refusals.inc({ stage, reason }) } };
}
