// protocol: Postfix's SMTP access policy delegation protocol (SMTPD_POLICY_README): attribute=value
// lines ended by an empty line in, one `action=...` line and an empty line out. Pure; input untrusted.
import { MailRejection } from '../errors.js';

/** Longest line kept; the rest of a longer one is dropped (Postfix's own values are far shorter). */
export const MAX_LINE_BYTES = 8192;
/** Most attributes in one request (Postfix 3.7 sends about 30). */
export const MAX_ATTRIBUTES = 512;

/** The attributes a decision reads: a request with one of them cut or garbled is not judged. */
const NEEDED = new Set(['request', 'protocol_state', 'recipient']);

export interface PolicyRequest {
  attributes: Map<string, string>;
  /** What was wrong with the request's lines, in order; empty for a well-formed request. */
  problems: string[];
}

/**
 * Splits a byte stream into requests. Memory stays bounded whatever the peer sends: a line past
 * MAX_LINE_BYTES is cut, attributes past MAX_ATTRIBUTES are counted and dropped.
 */
export class PolicyRequestReader {
  private line: Buffer[] = [];
  private lineBytes = 0;
  private lineCut = false;
  private request: PolicyRequest = emptyRequest();
  private count = 0;

  /** Feeds bytes, returns the requests they complete (an empty line ends each). */
  push(chunk: Buffer): PolicyRequest[] {
    const done: PolicyRequest[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      this.append(chunk.subarray(start, nl));
      const finished = this.endLine();
      if (finished) done.push(finished);
      start = nl + 1;
    }
    this.append(chunk.subarray(start));
    return done;
  }

  private append(part: Buffer): void {
    const room = MAX_LINE_BYTES - this.lineBytes;
    if (part.length > room) this.lineCut = true;
    const kept = part.subarray(0, Math.max(0, room));
    if (kept.length > 0) {
      this.line.push(kept);
      this.lineBytes += kept.length;
    }
  }

  private endLine(): PolicyRequest | null {
    let text = Buffer.concat(this.line, this.lineBytes).toString('utf8');
    const cut = this.lineCut;
    this.line = [];
    this.lineBytes = 0;
    this.lineCut = false;
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (text === '' && !cut) {
      const finished = this.request;
      this.request = emptyRequest();
      this.count = 0;
      return finished;
    }
    this.count += 1;
    if (this.count > MAX_ATTRIBUTES) {
      if (this.count === MAX_ATTRIBUTES + 1) this.request.problems.push(`more than ${MAX_ATTRIBUTES} attributes`);
      return null;
    }
    const eq = text.indexOf('=');
    if (eq <= 0 || !/^[a-z_][a-z0-9_]*$/i.test(text.slice(0, eq))) {
      this.request.problems.push(`line ${this.count} is not name=value`);
      return null;
    }
    const name = text.slice(0, eq).toLowerCase();
    if (cut) {
      // An attribute the decision does not read may be long (a client certificate); one it reads may not.
      if (NEEDED.has(name)) this.request.problems.push(`${name} is longer than ${MAX_LINE_BYTES} bytes`);
      return null;
    }
    if (this.request.attributes.has(name) && NEEDED.has(name)) this.request.problems.push(`${name} given twice`);
    this.request.attributes.set(name, text.slice(eq + 1));
    return null;
  }
}

function emptyRequest(): PolicyRequest {
  return { attributes: new Map(), problems: [] };
}

/** What the recipient check said: accept, or refuse for good or for now, with the reply it gives. */
export type RecipientVerdict =
  | { kind: 'accept' }
  | { kind: 'not_ours' }
  | { kind: 'refuse'; temporary: boolean; dsn: string; text: string }
  /** Refuse and make Postfix drop the client's connection (a key guesser). */
  | { kind: 'disconnect'; dsn: string; text: string };

export type PolicyAction = { action: 'DUNNO' } | { action: 'REJECT' | 'DEFER_IF_PERMIT' | '421'; reason: string };

/**
 * Decides the answer to one request (`421 text` is Postfix's access action for "reply 421 and hang
 * up"). Never OK: at best DUNNO, so Postfix's other restrictions still
 * apply; a RCPT request that cannot be judged is deferred, never let through unchecked.
 */
export function decide(request: PolicyRequest, check: (recipient: string) => RecipientVerdict): PolicyAction {
  const state = request.attributes.get('protocol_state');
  const kind = request.attributes.get('request');
  if (state?.toUpperCase() !== 'RCPT') {
    if (state === undefined && request.attributes.has('recipient')) return incomplete('no protocol_state');
    return { action: 'DUNNO' };
  }
  if (kind !== undefined && kind !== 'smtpd_access_policy') return incomplete(`unknown request type ${JSON.stringify(kind.slice(0, 64))}`);
  if (request.problems.length > 0) return incomplete(request.problems.join(', '));
  const recipient = request.attributes.get('recipient');
  if (!recipient) return incomplete('no recipient');
  const verdict = check(recipient);
  if (verdict.kind === 'accept' || verdict.kind === 'not_ours') return { action: 'DUNNO' };
  if (verdict.kind === 'disconnect') return { action: '421', reason: `${verdict.dsn} ${verdict.text}` };
  return { action: verdict.temporary ? 'DEFER_IF_PERMIT' : 'REJECT', reason: `${verdict.dsn} ${verdict.text}` };
}

function incomplete(what: string): PolicyAction {
  return { action: 'DEFER_IF_PERMIT', reason: new MailRejection('policy.cannot_judge', what).message.slice(0, 400) };
}

/** The response bytes: one line, then the empty line that ends it. */
export function formatAction(action: PolicyAction): string {
  // eslint-disable-next-line no-control-regex -- a control character would end or garble the line
  const text = action.action === 'DUNNO' ? 'DUNNO' : `${action.action} ${action.reason.replace(/[\x00-\x1f\x7f]/g, ' ')}`;
  return `action=${text}\n\n`;
}
