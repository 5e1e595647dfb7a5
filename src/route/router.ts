// router: from a recipient to the handler and live target it names. Keys are read in GitLab's handler
// precedence; mail to the bare mailbox address is routed by its headers, in GitLab's order, taking the
// first candidate that names a live target. Input: untrusted addresses and headers. Side effects: reads.
import { parseKey, serviceDeskKey, type KeyForm, type KeyHandler } from '../address/keys.js';
import { splitAddress, type AddressTemplate } from '../address/template.js';
import type { Project } from '../db/repos/projects.repo.js';
import type { Repositories } from '../db/repositories.js';
import { MailRejection } from '../errors.js';
import type { Handler, ParsedMessage } from '../handlers/handler.js';
import { issueNoteHandler } from '../handlers/issue-note.js';
import { newIssueHandler } from '../handlers/new-issue.js';
import { newMergeRequestHandler } from '../handlers/new-merge-request.js';
import { replyHandler, type NotificationTarget } from '../handlers/reply.js';
import { serviceDeskHandler } from '../handlers/service-desk.js';
import { unsubscribeHandler } from '../handlers/unsubscribe.js';

const HANDLERS: Record<KeyForm['handler'], Handler<never, unknown>> = {
  reply: replyHandler,
  new_issue: newIssueHandler,
  issue_note: issueNoteHandler,
  unsubscribe: unsubscribeHandler,
  new_merge_request: newMergeRequestHandler,
  service_desk: serviceDeskHandler,
};

export interface Route {
  key: string;
  handler: Handler<never, unknown>;
  target: unknown;
}

/**
 * What the envelope recipient says: a key to route, the mailbox address (routed by headers), or
 * postmaster (kept for the operator, never routed).
 */
export type RecipientRoute = { kind: 'key'; route: Route } | { kind: 'mailbox' } | { kind: 'postmaster' };

/**
 * Resolves an envelope recipient, or throws the MailRejection that explains why it has none. Used at
 * RCPT time and again when the message is processed, so both apply the same rules to live data.
 */
export function routeAddress(address: string, template: AddressTemplate, repos: Repositories): RecipientRoute {
  const match = template.match(address);
  switch (match.kind) {
    case 'no_domain':
      throw new MailRejection('rcpt.no_domain');
    case 'foreign_domain':
      throw new MailRejection('rcpt.relay_denied');
    case 'no_match':
      throw new MailRejection('rcpt.no_such_address');
    case 'mailbox':
      return { kind: 'mailbox' };
    case 'postmaster':
      return { kind: 'postmaster' };
    case 'key':
      return { kind: 'key', route: routeKey(match.key, repos, match.serviceDesk ? 'service_desk' : null) };
  }
}

/**
 * Tries every reading of the key in precedence order and takes the first with a live target. When
 * none has one, the refusal is that of the first reading: the handler GitLab would have chosen. With
 * `only`, the readings of that handler alone: a key of the Service Desk alias address is a Service
 * Desk's, one in a custom email's reply address a reply key.
 */
export function routeKey(key: string, repos: Repositories, only: KeyHandler | null = null): Route {
  const { route, refusal } = traceKey(key, repos, only);
  if (route) return route;
  throw refusal ?? new MailRejection('rcpt.unknown_key');
}

export interface KeyAttempt {
  handler: string;
  /** The refusal code when this reading named no live target. */
  refused: string | null;
}

/** routeKey, telling every reading it tried and why each lost: for `intake explain`. */
export function traceKey(key: string, repos: Repositories, only: KeyHandler | null = null): { route: Route | null; refusal: MailRejection | null; attempts: KeyAttempt[] } {
  const attempts: KeyAttempt[] = [];
  let refusal: MailRejection | null = null;
  for (const form of parseKey(key)) {
    if (only !== null && form.handler !== only) continue;
    const handler = HANDLERS[form.handler];
    try {
      const route = { key, handler, target: (handler as Handler<KeyForm, unknown>).resolve(form, repos) };
      attempts.push({ handler: handler.name, refused: null });
      return { route, refusal, attempts };
    } catch (error) {
      if (!(error instanceof MailRejection)) throw error;
      attempts.push({ handler: handler.name, refused: error.code });
      refusal ??= error;
    }
  }
  // At the alias every key is a Service Desk's: one of no Service Desk form names no project (GitLab's
  // ServiceDeskHandler takes any key there, and finds no project).
  return { route: null, refusal: refusal ?? new MailRejection(only === 'service_desk' ? 'rcpt.project_not_found' : 'rcpt.unknown_key'), attempts };
}

export interface Candidate {
  /** Where it was found: `To`, `References`, `Delivered-To`, ..., or `envelope`. */
  source: string;
  value: string;
  key: string | null;
  /** The handler that took it, or the code of the refusal it got. */
  outcome: { routed: string } | { refused: string } | { skipped: string };
}

/** Headers that may carry the original recipient, in GitLab's order (after To and References). */
const RECIPIENT_HEADERS = ['Delivered-To', 'X-Delivered-To', 'Envelope-To', 'X-Envelope-To', 'Received', 'X-Original-To', 'X-Forwarded-To'];
const RECEIVED_FOR = /for\s+<([^<>\s]+)>/g;

interface HeaderCandidate {
  source: string;
  value: string;
  /** Read from the value already (a References id). */
  key?: string;
  /** Listed for the record, never routed: why. */
  skipped?: string;
}

/** Every place a key may hide in the headers, in GitLab's order. */
export function headerCandidates(message: ParsedMessage, hostname: string): HeaderCandidate[] {
  const found: HeaderCandidate[] = message.to.map((value) => ({ source: 'To', value }));
  const replyId = new RegExp(`^reply-(.+)@${hostname.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'i');
  let otherHosts = 0;
  for (const id of message.references) {
    const match = replyId.exec(id);
    if (match) found.push({ source: 'References', value: id, key: match[1] as string });
    // Never routed (GitLab takes its own host only), but named, a few of them: after a change of
    // INTAKE_HOSTNAME, replies to older notifications carry the old one, and `intake explain` says so.
    else if (otherHosts < 5 && /^reply-.+@/i.test(id)) {
      otherHosts++;
      found.push({ source: 'References', value: id, skipped: `host is not INTAKE_HOSTNAME ${hostname}` });
    }
  }
  for (const name of RECIPIENT_HEADERS) {
    for (const value of message.header(name)) {
      if (name === 'Received') {
        for (const m of value.matchAll(RECEIVED_FOR)) found.push({ source: name, value: m[1] as string });
      } else {
        for (const part of value.split(',')) {
          const address = part.trim().replace(/^.*<([^<>]*)>.*$/, '$1');
          if (address) found.push({ source: name, value: address });
        }
      }
    }
  }
  for (const value of message.cc) found.push({ source: 'Cc', value });
  return found;
}

/**
 * Keys looked up per message found in its headers: enough for any real thread, and a message with
 * thousands of addresses in To is no way to guess keys past the limit on unknown recipients.
 */
export const MAX_HEADER_KEYS = 10;

/**
 * Routes mail that reached the mailbox address by its headers: the first candidate that names a
 * live target wins, not merely the first that looks like a key (GitLab issues 534900, 426269).
 */
export function routeByHeaders(
  message: ParsedMessage,
  template: AddressTemplate,
  hostname: string,
  repos: Repositories,
): { route: Route | null; candidates: Candidate[] } {
  const candidates: Candidate[] = [];
  const tried = new Set<string>();
  let customLookups = 0;
  for (const { source, value, key: given, skipped } of headerCandidates(message, hostname).slice(0, 1000)) {
    if (skipped !== undefined) {
      candidates.push({ source, value, key: null, outcome: { skipped } });
      continue;
    }
    const match = given === undefined ? template.match(value) : null;
    let key = given ?? (match?.kind === 'key' ? match.key : null);
    let serviceDesk = match?.kind === 'key' && match.serviceDesk === true;
    // GitLab's CustomEmail.key_from_settings: To a project's custom email (or a sub-address of it,
    // which routeCustomEmail then reads) is mail to its Service Desk.
    if (key === null && source === 'To' && customLookups++ < MAX_HEADER_KEYS) {
      const custom = customEmailOf(value, repos);
      if (custom) [key, serviceDesk] = [serviceDeskKey(custom.project.path, custom.project.id), true];
    }
    if (key === null) {
      candidates.push({ source, value, key, outcome: { skipped: match?.kind ?? 'no_match' } });
      continue;
    }
    // The same key under the alias address is another question: a Service Desk's alone.
    const asked = `${serviceDesk}:${key}`;
    if (tried.has(asked)) {
      candidates.push({ source, value, key, outcome: { skipped: 'already tried' } });
      continue;
    }
    if (tried.size >= MAX_HEADER_KEYS) {
      candidates.push({ source, value, key, outcome: { skipped: `more than ${MAX_HEADER_KEYS} keys tried` } });
      continue;
    }
    tried.add(asked);
    try {
      const route = routeKey(key, repos, serviceDesk ? 'service_desk' : null);
      candidates.push({ source, value, key, outcome: { routed: route.handler.name } });
      return { route, candidates };
    } catch (error) {
      if (!(error instanceof MailRejection)) throw error;
      candidates.push({ source, value, key, outcome: { refused: error.code } });
    }
  }
  return { route: null, candidates };
}

/** What a Service Desk custom email's address in To makes of a message: a reply, or its verification. */
export type CustomEmailRoute = { kind: 'reply'; route: Route } | { kind: 'verification'; address: string };

/** To addresses read for a custom email's reply address: as many as keys are tried in the headers. */
const MAX_TO_READ = MAX_HEADER_KEYS;

/**
 * An address read as a custom email's: its address without the sub-address, in lower case as custom
 * emails are stored, and the sub-address if any (`Support+KEY@customer.example` is
 * `support@customer.example`, sub-address KEY). Null when it has no local part before a `+`.
 */
function customEmailParts(address: string): { base: string; sub: string | null } | null {
  const split = splitAddress(address);
  if (!split) return null;
  const plus = split.local.indexOf('+');
  const local = plus === -1 ? split.local : split.local.slice(0, plus);
  if (local === '') return null;
  return { base: `${local}@${split.domain}`.toLowerCase(), sub: plus === -1 ? null : split.local.slice(plus + 1) };
}

/** The project whose Service Desk custom email an address is (or a sub-address of), with the sub-address. */
export function customEmailOf(address: string, repos: Repositories): { project: Project; sub: string | null } | null {
  const parts = customEmailParts(address);
  const project = parts && repos.projects.findByServiceDeskCustomEmail(parts.base);
  return parts && project ? { project, sub: parts.sub } : null;
}

/**
 * Mail a customer sent to a project's custom email (`support@customer.example`, forwarded by their
 * mail server to the project's Service Desk address) keeps that address in To, and GitLab reads it
 * there (`CustomEmail.key_from_reply_address`): `support+KEY@` answers a Service Desk notification
 * whose Reply-To carried reply key KEY, and `support+verify@` first in To is the custom email's
 * verification mail, which opens no ticket. Only for mail routed to that project's Service Desk, and
 * for a key of a notification its Service Desk sent (to the Support Bot): any other key leaves the
 * mail to the Service Desk, as does a key that names nothing (the sender is still heard, as a new
 * ticket or a note in the thread it names), and a key says no more about itself than a ticket would.
 */
export function routeCustomEmail(message: ParsedMessage, route: Route, repos: Repositories): CustomEmailRoute | null {
  if (route.handler.name !== 'service_desk') return null;
  const { project } = route.target as { project: Project };
  if (!project.serviceDeskCustomEmail) return null;
  // The project is known: its own custom email is compared, no other looked up.
  const ours = (address: string) => {
    const parts = customEmailParts(address);
    return parts?.base === project.serviceDeskCustomEmail ? parts.sub : null;
  };
  const first = message.to[0];
  if (first !== undefined && ours(first)?.toLowerCase() === 'verify') return { kind: 'verification', address: first };
  for (const address of message.to.slice(0, MAX_TO_READ)) {
    const sub = ours(address);
    if (!sub) continue;
    try {
      const reply = routeKey(sub, repos, 'reply');
      const target = reply.target as NotificationTarget;
      if (target.project.id === project.id && target.recipient.userType === 'support_bot') return { kind: 'reply', route: reply };
    } catch (error) {
      if (!(error instanceof MailRejection)) throw error;
    }
  }
  return null;
}
