// serve: runs the service: opens and migrates the database, starts the listeners and the IMAP and Graph
// fetchers, reloads the TLS files on SIGHUP, stops cleanly on SIGTERM/SIGINT. Side effects: network
// listeners, an IMAP connection, HTTPS requests to Graph, the database file. The fetchers and metrics
// are loaded only when configured: imapflow, msal and prom-client would add half a second to every start.
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { openStore, type Store } from './db/client.js';
import type { Fetcher } from './fetch/fetcher.js';
import { graphSettingsOf, imapSettingsOf } from './fetch/settings.js';
import { ingestDeps } from './ingest/deps.js';
import { startWriter, type WriterThread } from './ingest/writer.js';
import { checkHealth } from './monitor/health.js';
import { startMonitorListener, type MonitorListener } from './monitor/http.js';
import { startPolicyListener, type PolicyListener } from './policy/server.js';
import { ClientLimits } from './smtp/client-limits.js';
import { freeBytes, minFreeBytes } from './smtp/free-space.js';
import { startMailListener, type ListenerKind, type MailListener } from './smtp/server.js';
import { expiryProblem, loadTlsMaterial, TlsFileError, type TlsMaterial } from './smtp/tls.js';
import { EX_CONFIG, EX_IOERR, StartupError } from './startup-error.js';

/** How long the writer may take to answer /health before it counts as stuck. */
const WRITER_HEALTH_TIMEOUT_MS = 5000;

/** How long sessions receiving a message get to finish (with a 451) once the disk failed a flush. */
const FLUSH_FAILURE_GRACE_MS = 1000;

export async function serve(config: Config, logger: Logger): Promise<void> {
  if (config.database === ':memory:') {
    // Each connection has its own: the writer thread would store into one no other reads.
    throw new StartupError('serve needs a database file: INTAKE_DATABASE=:memory: would give each of its two connections a database of its own', EX_CONFIG);
  }
  let tls = config.tls_cert_file ? loadTls(config, logger) : null;
  const imapSettings = config.imap_host ? imapSettingsOf(config) : null;
  const graphSettings = config.graph_user ? graphSettingsOf(config) : null;
  let imapFetcher: Fetcher | null = null;
  let graphFetcher: Fetcher | null = null;
  // SIGHUP's default is to end the process: from the start it means "reload", even before the
  // database is open (a certificate renewal's reload right after a restart must not stop intake).
  const mail: MailListener[] = [];
  const reload = () => {
    if (!config.tls_cert_file) return logger.info('SIGHUP: no TLS files configured, nothing to reload');
    try {
      const material = loadTls(config, logger);
      tls = material;
      for (const listener of mail) listener.updateTls(material);
      logger.info({ subject: material.subject, notAfter: material.notAfter, fingerprint256: material.fingerprint256 }, 'TLS certificate reloaded');
    } catch (error) {
      // Keep serving with the certificate already loaded: a bad renewal must not stop mail.
      logger.error({ err: (error as Error).message }, 'TLS reload failed, keeping the current certificate');
    }
  };
  process.on('SIGHUP', reload);
  // Counted only when someone can read them. Loaded after SIGHUP means "reload": a renewal's signal
  // while prom-client loads would otherwise be lost, the old certificate read already.
  const metrics = config.http_listen
    ? (await import('./monitor/metrics.js')).createMetrics({ database: config.database, sessions: () => Object.fromEntries(mail.map((l) => [l.kind, l.sessions])), imap: imapSettings && (() => imapFetcher?.status() ?? null), graph: graphSettings && (() => graphFetcher?.status() ?? null) })
    : null;
  let store: Store;
  let writer: WriterThread;
  try {
    // This thread's connection migrates and then only reads (the RCPT-time checks); the writer
    // thread's connection writes. better-sqlite3 waits for a lock on the event loop: briefly.
    store = openStore(config.database, { busyTimeoutMs: 1000, queryOnly: true });
  } catch (error) {
    throw new StartupError(`cannot open the database ${config.database}: ${(error as Error).message}`);
  }
  try {
    writer = await startWriter(config, logger, metrics?.observer);
  } catch (error) {
    store.close();
    throw new StartupError(`cannot open the database ${config.database} for writing: ${(error as Error).message}`);
  }
  const deps = { ...(await ingestDeps(config, store, logger)), writer };
  let policy: PolicyListener | null = null;
  let monitor: MonitorListener | null = null;
  let stopping = false;
  let flushFailure: Error | null = null;
  // One set of limits for the whole process: a client is the same client on every listener.
  const limits = new ClientLimits({
    maxConnectionsPerIp: config.max_connections_per_ip,
    unknownRecipientLimit: config.unknown_recipient_limit,
    unknownRecipientWindowMs: config.unknown_recipient_window_ms,
    blockMs: config.unknown_recipient_block_ms,
    exempt: config.trusted_relays,
    ipv6PrefixLength: config.client_ipv6_prefix_length,
  });
  const wanted: [ListenerKind, string][] = [
    ['smtp', config.smtp_listen],
    ['smtps', config.smtps_listen],
    ['lmtp', config.lmtp_listen],
  ];
  try {
    for (const [kind, listen] of wanted) {
      if (!listen) continue;
      const listener = await startMailListener(kind, listen, config, deps, tls, limits, metrics?.sessions).catch((error: Error) => {
        throw new StartupError(`cannot listen for ${kind.toUpperCase()} on ${listen}: ${error.message}`);
      });
      mail.push(listener);
      logger.info({ protocol: kind, host: listener.host, port: listener.port, tls: kind === 'smtps' ? 'implicit' : tls ? 'starttls' : 'none' }, 'listening');
    }
    if (config.policy_listen) {
      policy = await startPolicyListener(config.policy_listen, deps, limits).catch((error: Error) => {
        throw new StartupError(`cannot listen for the policy service on ${config.policy_listen}: ${error.message}`);
      });
      logger.info({ protocol: 'policy', host: policy.host, port: policy.port }, 'listening');
    }
    if (metrics) {
      const keepFree = minFreeBytes(config);
      const health = () =>
        checkHealth({
          ping: () => writer.ping(),
          flushFailure: () => flushFailure,
          stopping: () => stopping,
          freeBytes: () => freeBytes(config.database),
          minFreeBytes: keepFree,
          writerTimeoutMs: WRITER_HEALTH_TIMEOUT_MS,
        });
      monitor = await startMonitorListener(config.http_listen, { registry: metrics.registry, health }).catch((error: Error) => {
        throw new StartupError(`cannot listen for HTTP (monitoring) on ${config.http_listen}: ${error.message}`);
      });
      logger.info({ protocol: 'http', host: monitor.host, port: monitor.port }, 'listening');
    }
  } catch (error) {
    process.off('SIGHUP', reload);
    await Promise.all(mail.map((l) => l.close(0)));
    await policy?.close();
    await monitor?.close();
    store.close();
    await writer.close();
    throw error;
  }
  if (imapSettings) {
    const { startImapFetcher } = await import('./fetch/imap.js');
    imapFetcher = startImapFetcher(imapSettings, deps, logger.child({ ingress: 'imap' }));
    logger.info({ host: imapSettings.host, port: imapSettings.port, tls: imapSettings.tls, mailbox: imapSettings.mailbox, after: imapSettings.after }, 'fetching over IMAP');
  }
  if (graphSettings) graphFetcher = (await import('./fetch/graph.js')).startGraphFetcher(graphSettings, deps, logger.child({ ingress: 'graph' }));
  const fetchers = [imapFetcher, graphFetcher];
  const ports = Object.fromEntries([...mail.map((l) => [l.kind, l.port]), ...(policy ? [['policy', policy.port]] : []), ...(monitor ? [['http', monitor.port]] : [])]);
  logger.info({ ports, address: config.address, serviceDeskAddress: config.service_desk_address || undefined, database: config.database, pid: process.pid }, 'ready');

  const signal = await new Promise<NodeJS.Signals | null>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
    void writer.flushFailed.then((error) => {
      flushFailure = error;
      resolve(null);
    });
  });
  process.off('SIGHUP', reload);
  stopping = true;
  if (signal === null) {
    logger.fatal({ err: (flushFailure as Error | null)?.message, exitCode: EX_IOERR }, 'the disk failed to flush the database: refusing mail (451) and exiting, so that a restart recovers the database from the disk');
    // A signal now only hastens the same exit.
    process.once('SIGTERM', () => process.exit(EX_IOERR));
    process.once('SIGINT', () => process.exit(EX_IOERR));
    // Sessions still open after the grace are cut; a client that does not answer the cut is not waited for.
    const closed = Promise.all([...mail.map((l) => l.close(Math.min(FLUSH_FAILURE_GRACE_MS, config.shutdown_timeout_ms))), policy?.close(), ...fetchers.map((f) => f?.close(Math.min(FLUSH_FAILURE_GRACE_MS, config.shutdown_timeout_ms)))]);
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, FLUSH_FAILURE_GRACE_MS + 500))]);
    return exitAfterFlushFailure(logger);
  }
  logger.info({ signal, graceMs: config.shutdown_timeout_ms }, 'stopping: no new connections, letting messages in progress finish');
  // A second signal means "now": sessions still receiving are cut (they are not acknowledged).
  const force = () => process.exit(1);
  process.once('SIGTERM', force);
  process.once('SIGINT', force);
  await Promise.all([...mail.map((l) => l.close(config.shutdown_timeout_ms)), policy?.close(), ...fetchers.map((f) => f?.close(config.shutdown_timeout_ms))]);
  // Open while sessions finish, answering /health 503 `stopping`.
  await monitor?.close();
  // A flush that failed while messages in progress finished: closing now would checkpoint its pages.
  if (flushFailure) {
    logger.fatal({ err: (flushFailure as Error).message, exitCode: EX_IOERR }, 'the disk failed to flush the database while stopping: exiting without closing it, so that the next start recovers it from the disk');
    return exitAfterFlushFailure(logger);
  }
  // The writer's connection closes last, so that it checkpoints the WAL and removes it.
  store.close();
  await writer.close();
  logger.info('stopped');
  logger.flush();
}

/**
 * Exits 74 for the supervisor to start intake again, as PostgreSQL stops on a failed fsync. The pages
 * of the failed flush are in memory, marked written, and may not be on the disk: a checkpoint would
 * copy them into the database file unchecked, where the next start's recovery reads the WAL back and
 * keeps only frames whose checksums hold, then checkpoints and flushes (writer-thread.ts). So nothing
 * is closed. process.exit stops the writer thread, and better-sqlite3 then closes its connection; it
 * cannot checkpoint on that close only because this thread's connection (`store`) is still open, and
 * it must stay so until the process is gone (test/crash: the WAL is still there after exit 74).
 */
async function exitAfterFlushFailure(logger: Logger): Promise<never> {
  // Not for ever: a log reader stuck on the same sick disk must not keep intake from its restart.
  await Promise.race([new Promise<void>((resolve) => logger.flush(() => resolve())), new Promise((resolve) => setTimeout(resolve, 1000))]);
  process.exit(EX_IOERR);
}

function loadTls(config: Config, logger: Logger): TlsMaterial {
  let material: TlsMaterial;
  try {
    material = loadTlsMaterial(config.tls_cert_file, config.tls_key_file);
  } catch (error) {
    if (error instanceof TlsFileError) throw new StartupError(error.message, EX_CONFIG);
    throw error;
  }
  // Served anyway: senders fall back to plain text or accept it (opportunistic TLS); refusing all mail
  // over an expired certificate would be worse. `intake check` fails on it.
  const expired = expiryProblem(material);
  if (expired) logger.error({ file: config.tls_cert_file }, `TLS ${expired}; renew it and send SIGHUP`);
  return material;
}
