// server: the Postfix policy service listener. At Postfix's RCPT stage it runs the recipient check
// the SMTP listener runs, so unknown keys are refused before Postfix queues anything. Input: the network.
import { createServer, type Socket } from 'node:net';
import { redactedAddress } from '../address/template.js';
import { listenOn } from '../listen.js';
import { MailRejection, OUTCOMES, type OutcomeCode } from '../errors.js';
import { recordRefusals, type IngestDeps } from '../ingest/ingest.js';
import { checkRecipient } from '../ingest/recipient.js';
import type { ClientLimits } from '../smtp/client-limits.js';
import { decide, formatAction, PolicyRequestReader, type PolicyRequest, type RecipientVerdict } from './protocol.js';

export interface PolicyListener {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Postfix keeps a policy connection open between requests (max_idle, 100 s); longer silence is a stray. */
const IDLE_MS = 300_000;
/** Refusals that say "this is not an address of ours": other restrictions of Postfix decide those. */
const NOT_OURS: ReadonlySet<OutcomeCode> = new Set(['rcpt.relay_denied', 'rcpt.no_domain']);
/** Rows of refusals are grouped per Postfix transaction (its `instance`); this many are remembered. */
const INSTANCES_KEPT = 10_000;

export async function startPolicyListener(listen: string, deps: IngestDeps, limits: ClientLimits): Promise<PolicyListener> {
  const rows: Rows = new Map();
  const sockets = new Set<Socket>();

  const answer = async (request: PolicyRequest): Promise<string> => {
    let delayMs = 0;
    let recorded: Promise<void> | undefined;
    const action = decide(request, (recipient) => {
      const verdict = verdictFor(recipient, request, rows, deps, limits);
      delayMs = verdict.delayMs;
      recorded = verdict.recorded;
      return verdict.verdict;
    });
    // Answered once its row is written: the next request of the same transaction adds to that row.
    await recorded;
    // A guesser's Postfix session waits (Postfix allows a policy answer 100 s); nobody else's does.
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    if (action.action !== 'DUNNO' || request.problems.length > 0) {
      deps.logger.info(
        { ingress: 'policy', recipient: redactedAddress(deps.template, request.attributes.get('recipient')?.slice(0, 256) ?? ''), remoteAddress: request.attributes.get('client_address'), action: action.action, reason: 'reason' in action ? action.reason : undefined, problems: request.problems },
        'policy answer',
      );
    }
    return formatAction(action);
  };

  // Half-open: a client that sends its request and then shuts its side (`nc`, a script) still gets
  // the answer, which can wait for a row to be written; the socket ends after the last answer.
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    const reader = new PolicyRequestReader();
    socket.setTimeout(IDLE_MS, () => socket.destroy());
    // One request at a time, in order: a request of the same Postfix transaction adds to the row the
    // one before it made, so it must see that row (a client may send several requests at once).
    let queue = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      for (const request of reader.push(chunk)) {
        queue = queue
          .then(() => answer(request))
          .catch((error: unknown) => {
            // A bug must not let a recipient through, nor take the service down.
            deps.logger.error({ err: error }, 'policy request failed');
            return formatAction({ action: 'DEFER_IF_PERMIT', reason: new MailRejection('rcpt.lookup_failed').message });
          })
          .then((text) => {
            if (socket.writable) socket.write(text);
          });
      }
    });
    socket.on('end', () => {
      void queue.then(() => socket.end());
    });
    socket.on('error', (error) => deps.logger.debug({ err: error.message }, 'policy connection error'));
    socket.on('close', () => sockets.delete(socket));
  });

  const bound = await listenOn(server, listen);
  return {
    host: bound.host,
    port: bound.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // An answer waits at most for one commit (or a guesser's delay, which is theirs to lose).
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** Where requests without a client_address are counted (no IP address looks like it). */
const NO_CLIENT = 'no client_address';

/** Per Postfix transaction: the row its refusals go in, and the recipients refused so far. */
type Rows = Map<string, { id: number; recipients: string[] }>;

function verdictFor(
  recipient: string,
  request: PolicyRequest,
  rows: Rows,
  deps: IngestDeps,
  limits: ClientLimits,
): { verdict: RecipientVerdict; delayMs: number; recorded?: Promise<void> } {
  // Postfix always names the client; a request that does not (another program) is counted in one
  // bucket of its own, so that leaving it out is no way round the limit.
  const client = request.attributes.get('client_address') || NO_CLIENT;
  const shutOut = { kind: 'disconnect', dsn: OUTCOMES['rcpt.too_many_unknown'].dsn, text: OUTCOMES['rcpt.too_many_unknown'].text } as const;
  if (limits.isBlocked(client)) return { verdict: shutOut, delayMs: 0 };
  try {
    checkRecipient(recipient, deps);
    return { verdict: { kind: 'accept' }, delayMs: 0 };
  } catch (error) {
    if (!(error instanceof MailRejection)) throw error;
    if (NOT_OURS.has(error.code)) return { verdict: { kind: 'not_ours' }, delayMs: 0 };
    const recorded = recordPolicyRefusal(recipient, error, request, rows, deps);
    const refuse: RecipientVerdict = { kind: 'refuse', temporary: error.isTemporary, dsn: error.outcome.dsn, text: error.reason };
    if (error.isTemporary) return { verdict: refuse, delayMs: 0, recorded };
    const guess = limits.unknownRecipient(client);
    if (guess.shutOut) {
      deps.logger.warn({ ingress: 'policy', remoteAddress: client, client: limits.clientOf(client), unknownRecipients: guess.count }, 'client shut out: too many unknown recipients');
      return { verdict: shutOut, delayMs: 0, recorded };
    }
    return { verdict: refuse, delayMs: guess.delayMs, recorded };
  }
}

async function recordPolicyRefusal(recipient: string, rejection: MailRejection, request: PolicyRequest, rows: Rows, deps: IngestDeps): Promise<void> {
  const attribute = (name: string) => request.attributes.get(name)?.slice(0, 1024) || null;
  const instance = attribute('instance');
  const known = instance ? rows.get(instance) : undefined;
  const recipients = [...(known?.recipients ?? []), recipient];
  const id = await recordRefusals(
    {
      ingress: 'policy',
      envelope: {
        mailFrom: request.attributes.get('sender')?.slice(0, 1024) ?? null,
        rcptTo: [],
        recipients,
        remoteAddress: attribute('client_address'),
        helo: attribute('helo_name'),
      },
      refused: [{ recipient, rejection }],
      inboundMessageId: known?.id ?? null,
    },
    deps,
  );
  if (instance && id !== null) {
    rows.set(instance, { id, recipients });
    if (rows.size > INSTANCES_KEPT) rows.delete(rows.keys().next().value as string);
  }
}
