// server: the Postfix policy service listener. At Postfix's RCPT stage it runs the recipient check
// the SMTP listener runs, so unknown keys are refused before Postfix queues anything. Input: the network.
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { parseHostPort } from '../config.js';
import { MailRejection, type OutcomeCode } from '../errors.js';
import { recordRefusals, type IngestDeps } from '../ingest/ingest.js';
import { checkRecipient } from '../ingest/recipient.js';
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

export async function startPolicyListener(listen: string, deps: IngestDeps): Promise<PolicyListener> {
  const rows: Rows = new Map();
  const sockets = new Set<Socket>();

  const answer = (request: PolicyRequest): string => {
    const action = decide(request, (recipient) => verdictFor(recipient, request, rows, deps));
    if (action.action !== 'DUNNO' || request.problems.length > 0) {
      deps.logger.info(
        { ingress: 'policy', recipient: request.attributes.get('recipient')?.slice(0, 256), action: action.action, reason: 'reason' in action ? action.reason : undefined, problems: request.problems },
        'policy answer',
      );
    }
    return formatAction(action);
  };

  const server = createServer((socket) => {
    sockets.add(socket);
    const reader = new PolicyRequestReader();
    socket.setTimeout(IDLE_MS, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      for (const request of reader.push(chunk)) {
        if (socket.writable) socket.write(answer(request));
      }
    });
    socket.on('error', (error) => deps.logger.debug({ err: error.message }, 'policy connection error'));
    socket.on('close', () => sockets.delete(socket));
  });

  const { host, port } = parseHostPort(listen) as { host: string; port: number };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return {
    host: bound.address,
    port: bound.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // A request is answered synchronously, so no connection is ever in the middle of one.
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** Per Postfix transaction: the row its refusals go in, and the recipients refused so far. */
type Rows = Map<string, { id: number; recipients: string[] }>;

function verdictFor(recipient: string, request: PolicyRequest, rows: Rows, deps: IngestDeps): RecipientVerdict {
  try {
    checkRecipient(recipient, deps);
    return { kind: 'accept' };
  } catch (error) {
    if (!(error instanceof MailRejection)) throw error;
    if (NOT_OURS.has(error.code)) return { kind: 'not_ours' };
    recordPolicyRefusal(recipient, error, request, rows, deps);
    return { kind: 'refuse', temporary: error.isTemporary, dsn: error.outcome.dsn, text: error.reason };
  }
}

function recordPolicyRefusal(recipient: string, rejection: MailRejection, request: PolicyRequest, rows: Rows, deps: IngestDeps): void {
  const attribute = (name: string) => request.attributes.get(name)?.slice(0, 1024) || null;
  const instance = attribute('instance');
  const known = instance ? rows.get(instance) : undefined;
  const recipients = [...(known?.recipients ?? []), recipient];
  const id = recordRefusals(
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
