// server: the SMTP, implicit-TLS SMTP and LMTP listeners. Wires smtp-server's hooks to the stage
// functions (rcpt-to, data) and holds per-transaction state; no business logic. Input: the network.
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import type { Config } from '../config.js';
import { parseHostPort } from '../config.js';
import { MailRejection, type OutcomeCode } from '../errors.js';
import type { IngestDeps } from '../ingest/ingest.js';
import { enforceCommandDeadline } from './command-deadline.js';
import { limitHandshakesPerClient } from './handshake-limit.js';
import { onData } from './data.js';
import { installEnhancedCodePassthrough, onBackstopRefusal } from './reply.js';
import { installTransactionEndWait } from './transaction-end.js';
import { installXforwardHeloFix } from './xforward-helo.js';
import { installPipelinedDataFix } from './pipelined-data.js';
import { installLenientSender } from './lenient-sender.js';
import { onRcptTo, recordShutOut } from './rcpt-to.js';
import { declaredSize, declaresUtf8, MAIL_PARAMETERS, undeclaredUtf8, unsupportedParameter } from './parameters.js';
import { freeBytes, freeSpaceGauge, minFreeBytes, shortfall } from './free-space.js';
import type { ClientLimits } from './client-limits.js';
import type { TlsMaterial } from './tls.js';
import { sayShuttingDown, installShutdownReply } from './shutdown-reply.js';
import { Transactions } from './transaction.js';

export type ListenerKind = 'smtp' | 'smtps' | 'lmtp';

/** `452 4.5.3` answers (recipients past INTAKE_MAX_RECIPIENTS) a session may collect, as Postfix allows. */
const MAX_OVERSHOOT = 1000;

/** Refusals that say "no such recipient here": what a key guesser collects. */
const UNKNOWN_RECIPIENT: ReadonlySet<OutcomeCode> = new Set([
  'rcpt.no_such_address',
  'rcpt.unknown_key',
  'rcpt.unknown_reply_key',
  'rcpt.user_not_found',
  'rcpt.project_not_found',
  'rcpt.relay_denied',
]);

export interface MailListener {
  readonly kind: ListenerKind;
  readonly host: string;
  readonly port: number;
  /** Sessions open now (those refused at connect included until they close). */
  readonly sessions: number;
  /** New sessions get this certificate; sessions already encrypted keep theirs. */
  updateTls(material: TlsMaterial): void;
  /**
   * Stops accepting connections, answers idle sessions 421 and closes them, lets messages being
   * received finish for at most graceMs, then cuts what is left. Resolves when no session is left.
   */
  close(graceMs: number): Promise<void>;
}

/** At most one `too little free space` line in this long (each carries the count of refusals since the last). */
const SHORT_OF_ROOM_LOG_MS = 10_000;

/** Told of the refusals that leave no row (recipients' are counted as they are recorded): for /metrics. */
export interface SessionObserver {
  refused(stage: 'connect' | 'mail' | 'session', code: OutcomeCode): void;
}

/** Starts one listener on `listen` and resolves once it accepts connections. */
export async function startMailListener(
  kind: ListenerKind,
  listen: string,
  config: Config,
  deps: IngestDeps,
  tls: TlsMaterial | null,
  limits: ClientLimits,
  observer?: SessionObserver,
): Promise<MailListener> {
  const keepFree = minFreeBytes(config);
  const freeForDatabase = freeSpaceGauge(() => freeBytes(config.database));
  // While the disk is short, one log line per interval says so, with the count since the last one.
  let shortLoggedAt = -Infinity;
  let shortUnlogged = 0;
  let statfsFailed = false;
  /** False when the disk is short of room for the message (and that is logged); true otherwise. */
  const roomFor = (declared: number, session: SMTPServerSession, mailFrom: string): boolean => {
    if (keepFree === 0 && declared === 0) return true;
    const free = freeForDatabase(keepFree + declared);
    if (free === null) {
      // The write itself will tell (452 after DATA); said once.
      if (!statfsFailed) deps.logger.warn({ database: config.database }, 'cannot ask how much space is free for the database; MAIL FROM is not checked for it');
      statfsFailed = true;
      return true;
    }
    const missing = shortfall(free, keepFree, declared);
    if (!missing) return true;
    shortUnlogged++;
    if (performance.now() - shortLoggedAt >= SHORT_OF_ROOM_LOG_MS) {
      deps.logger.warn({ session: session.id, remoteAddress: session.remoteAddress, code: 'mail.disk_full', mailFrom, freeBytes: missing.free, neededBytes: missing.needed, refused: shortUnlogged }, 'refused: too little free space for the database');
      shortLoggedAt = performance.now();
      shortUnlogged = 0;
    }
    return false;
  };
  installEnhancedCodePassthrough();
  installXforwardHeloFix();
  installPipelinedDataFix();
  installLenientSender();
  installShutdownReply();
  // LMTP clients are relays; so is a trusted relay, unless it names the client (XCLIENT, XFORWARD).
  const transactions = new Transactions((address) => kind === 'lmtp' || limits.isExempt(address));
  const stopWaiting = installTransactionEndWait((sessionId) => transactions.pendingWrite(sessionId));
  // Sessions whose message is being received or stored: on shutdown they are let finish.
  const receiving = new Set<string>();
  let stopping = false;
  // smtp-server's open sessions (not a public property, but the one count of them there is).
  const connections = () => (server as unknown as { connections: Set<unknown> }).connections;
  const trusted = config.trusted_relays.length > 0 ? config.trusted_relays : false;
  // The address each session was admitted as (XCLIENT may change remoteAddress later).
  const admitted = new Map<string, string>();
  // LMTP clients are relays, which pass on many senders' mail: the limits are theirs to apply.
  const limited = kind !== 'lmtp';
  // An unknown recipient counts against its client: past the limit the refusals slow down, then stop.
  // Refused recipients per session, of clients the limits apply to: past the cap the session ends,
  // so that no client can have recipients refused (and recorded) without end.
  const refusedIn = new Map<string, number>();
  const overshootIn = new Map<string, number>();
  /** Counts an unknown key against its client, and logs a slowed answer or a shut-out. */
  const judgeGuess = (ip: string, stage: 'rcpt' | 'data') => {
    const verdict = limits.unknownRecipient(ip);
    const fields = { listener: kind, stage, remoteAddress: ip, client: limits.clientOf(ip), unknownRecipients: verdict.count };
    if (verdict.shutOut) deps.logger.warn({ ...fields, blockMs: config.unknown_recipient_block_ms }, 'client shut out: too many unknown recipients');
    else if (verdict.delayMs > 0) deps.logger.info({ ...fields, delayMs: verdict.delayMs }, 'unknown recipient: answer slowed');
    return verdict;
  };
  const answerRcpt = (session: SMTPServerSession, rejection: MailRejection | null, callback: (err?: Error | null) => void) => {
    const ip = admitted.get(session.id);
    if (rejection && ip !== undefined && !limits.isExempt(ip)) {
      // "Too many recipients" is the client's cue to send the rest in another transaction (RFC 5321):
      // those count against a cap of their own, Postfix's smtpd_recipient_overshoot_limit.
      const overshoot = rejection.code === 'rcpt.too_many';
      const counts = overshoot ? overshootIn : refusedIn;
      const refused = (counts.get(session.id) ?? 0) + 1;
      counts.set(session.id, refused);
      if (refused > (overshoot ? MAX_OVERSHOOT : config.max_refused_recipients)) {
        deps.logger.warn({ listener: kind, session: session.id, remoteAddress: ip, refused: refused - 1 }, 'session closed: too many refused recipients');
        const cut = new MailRejection('rcpt.too_many_refused');
        recordShutOut(transactions.current(session), kind === 'lmtp' ? 'lmtp' : 'smtp', cut, deps);
        return callback(cut);
      }
    }
    if (!rejection || !ip || !UNKNOWN_RECIPIENT.has(rejection.code)) return callback(rejection);
    const verdict = judgeGuess(ip, 'rcpt');
    if (verdict.shutOut) {
      const shutOut = new MailRejection('rcpt.too_many_unknown');
      recordShutOut(transactions.current(session), kind === 'lmtp' ? 'lmtp' : 'smtp', shutOut, deps);
      return callback(shutOut);
    }
    if (verdict.delayMs === 0) return callback(rejection);
    setTimeout(() => callback(rejection), verdict.delayMs);
  };
  // Keys named in the headers of mail to the mailbox address are guesses as much as RCPT's.
  const unknownKeyAtData = async (ip: string | undefined): Promise<MailRejection | null> => {
    if (ip === undefined || limits.isExempt(ip)) return null;
    const verdict = judgeGuess(ip, 'data');
    if (verdict.shutOut) return new MailRejection('rcpt.too_many_unknown');
    if (verdict.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, verdict.delayMs));
    return null;
  };
  const options: SMTPServerOptions = {
    name: config.hostname,
    banner: 'intake',
    lmtp: kind === 'lmtp',
    secure: kind === 'smtps',
    ...(tls ? { key: tls.key, cert: tls.cert } : {}),
    size: config.max_message_bytes,
    authOptional: true,
    // Without a certificate of our own there is no STARTTLS: smtp-server's built-in key is public.
    disabledCommands: tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    hideDSN: true,
    // Offered on encrypted sessions only (smtp-server's rule); see MAIL_PARAMETERS.
    hideREQUIRETLS: false,
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: !config.reverse_lookup,
    // intake's own deadline (command-deadline.ts, checked every second) closes an idle session with its
    // own reply; smtp-server's idle timer stays as a backstop.
    socketTimeout: config.socket_timeout_ms + 2000,
    // intake refuses past max_clients itself (onConnect), with an enhanced code; smtp-server's own
    // 421 has none, and stays only as a backstop for sockets that pile up faster than they close.
    maxClients: config.max_clients * 2,
    useXClient: trusted,
    useXForward: trusted,
    useProxy: config.proxy_protocol_from.length > 0 ? config.proxy_protocol_from : false,
    // intake cuts what is left after its own grace (closeGracefully), with its own reply; smtp-server's
    // timer, which would cut with its own, stays as a backstop.
    closeTimeout: config.shutdown_timeout_ms + 5000,
    logger: false,
    onConnect(session: SMTPServerSession, callback: (err?: Error | null) => void) {
      // This session is one of the connections already.
      if (connections().size > config.max_clients) {
        deps.logger.warn({ listener: kind, remoteAddress: session.remoteAddress, code: 'connect.too_many_clients', clients: connections().size - 1 }, 'connection refused');
        observer?.refused('connect', 'connect.too_many_clients');
        return callback(new MailRejection('connect.too_many_clients'));
      }
      if (!limited) return callback();
      const admission = limits.admit(session.remoteAddress);
      if (admission.ok) {
        admitted.set(session.id, session.remoteAddress);
        return callback();
      }
      const code = admission.reason === 'blocked' ? 'connect.blocked' : 'connect.too_many_connections';
      deps.logger.warn({ listener: kind, remoteAddress: session.remoteAddress, client: limits.clientOf(session.remoteAddress), code, retryAfterMs: admission.retryAfterMs }, 'connection refused');
      observer?.refused('connect', code);
      callback(new MailRejection(code));
    },
    onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, given: (err?: Error | null) => void) {
      const callback = (error?: MailRejection) => {
        if (error) observer?.refused('mail', error.code);
        given(error);
      };
      if (kind === 'smtp' && config.require_tls && !session.secure) {
        deps.logger.info({ session: session.id, remoteAddress: session.remoteAddress, code: 'mail.tls_required', mailFrom: address.address }, 'refused: no STARTTLS');
        return callback(new MailRejection('mail.tls_required'));
      }
      const unsupported = unsupportedParameter(address.args, MAIL_PARAMETERS);
      if (unsupported !== null) {
        deps.logger.info({ session: session.id, remoteAddress: session.remoteAddress, code: 'mail.unsupported_parameter', mailFrom: address.address, parameter: unsupported }, 'refused: unsupported MAIL FROM parameter');
        return callback(new MailRejection('mail.unsupported_parameter', unsupported));
      }
      if (undeclaredUtf8(address.address, declaresUtf8(address.args))) {
        deps.logger.info({ session: session.id, remoteAddress: session.remoteAddress, code: 'mail.utf8_undeclared', mailFrom: address.address }, 'refused: unicode sender without SMTPUTF8');
        return callback(new MailRejection('mail.utf8_undeclared'));
      }
      // smtp-server has refused a SIZE= above the limit already (mail.too_big).
      if (!roomFor(declaredSize(address.args), session, address.address)) return callback(new MailRejection('mail.disk_full'));
      transactions.begin(session, address.address, declaresUtf8(address.args));
      callback();
    },
    onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      answerRcpt(session, onRcptTo(address, transactions.current(session), kind === 'lmtp' ? 'lmtp' : 'smtp', config, deps), callback);
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string | (string | Error)[]) => void) {
      receiving.add(session.id);
      // Read now: a client that hangs up right after its final dot is closed (onClose forgets it)
      // while its message is still being stored, and its key-less mail must count all the same.
      const ip = admitted.get(session.id);
      const onUnknownKey = () => unknownKeyAtData(ip);
      onData(stream, session, transactions.take(session), { maxBytes: config.max_message_bytes, ingress: kind === 'lmtp' ? 'lmtp' : 'smtp', onUnknownKey }, deps)
        .then(
          (message) => callback(null, message as string),
          (error: Error) => callback(error),
        )
        .finally(() => {
          receiving.delete(session.id);
          // Its reply is out: told now rather than at its next command (shutdown-reply.ts answers a
          // command pipelined behind the message, and this then finds the session ending).
          if (stopping) for (const connection of connections() as Set<Connection>) if (connection.id === session.id) sayShuttingDown(connection);
        });
    },
    onClose(session: SMTPServerSession) {
      transactions.end(session);
      refusedIn.delete(session.id);
      overshootIn.delete(session.id);
      const ip = admitted.get(session.id);
      if (ip !== undefined) {
        admitted.delete(session.id);
        limits.release(ip);
      }
    },
  };
  const server = new SMTPServer(options);
  onBackstopRefusal(server, (remoteAddress) => {
    deps.logger.warn({ listener: kind, remoteAddress, code: 'connect.too_many_clients', clients: connections().size - 1, before: 'greeting' }, 'connection refused');
    observer?.refused('connect', 'connect.too_many_clients');
  });
  if (kind === 'smtps' && limited) {
    limitHandshakesPerClient(server, limits, { maxPerClient: config.max_connections_per_ip, proxies: config.proxy_protocol_from }, (address) => {
      deps.logger.warn({ listener: kind, remoteAddress: address, client: limits.clientOf(address), code: 'connect.too_many_connections' }, 'connection refused before its TLS handshake');
      observer?.refused('connect', 'connect.too_many_connections');
    });
  }
  const stopDeadline = enforceCommandDeadline(connections(), { commandMs: config.socket_timeout_ms, dataMs: config.data_timeout_ms }, (item, code) => {
    observer?.refused('session', code);
    if (code !== 'session.data_timeout') return;
    const connection = item as { session?: SMTPServerSession; remoteAddress?: string };
    deps.logger.warn({ listener: kind, session: connection.session?.id, remoteAddress: connection.remoteAddress, code }, 'message took too long to arrive; connection closed');
  });

  const { host, port } = parseHostPort(listen) as { host: string; port: number };
  await new Promise<void>((resolve, reject) => {
    // smtp-server re-emits the listening socket's errors; until it listens, they mean "cannot start".
    const onError = (error: Error) => {
      stopDeadline();
      stopWaiting();
      reject(error);
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      // Later errors are one client's (a failed TLS handshake, a reset): worth a line, never a crash.
      server.on('error', (error: Error & { code?: string; remote?: string }) =>
        deps.logger.warn({ listener: kind, code: error.code, remoteAddress: error.remote, err: error.message }, 'connection error'),
      );
      resolve();
    });
  });
  const bound = server.server.address() as AddressInfo;
  return {
    kind,
    host: bound.address,
    port: bound.port,
    get sessions() {
      return connections().size;
    },
    updateTls(material) {
      server.updateSecureContext({ key: material.key, cert: material.cert });
    },
    close: async (graceMs) => {
      stopDeadline();
      stopping = true;
      await closeGracefully(server, receiving, graceMs);
      stopWaiting();
    },
  };
}

interface Connection {
  id: string;
  send(code: number, message: string): void;
  close(): void;
}

async function closeGracefully(server: SMTPServer, receiving: Set<string>, graceMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Every session's next command would be answered 421 (shutdown-reply.ts); a session waiting for its
  // client would hold shutdown until the grace ends, so the idle ones are told and closed now.
  const connections = (server as unknown as { connections: Set<Connection> }).connections;
  for (const connection of connections) if (!receiving.has(connection.id)) sayShuttingDown(connection);
  const deadline = Date.now() + graceMs;
  while (connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  // Past the grace: cut what is left now (not acknowledged, so its sender tries again), rather than at
  // smtp-server's closeTimeout, which is longer than any grace.
  for (const connection of connections) sayShuttingDown(connection);
  await closed;
}
