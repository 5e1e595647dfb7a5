// router: from a recipient address to the handler and live target it names, trying handlers in
// GitLab's precedence. Input: untrusted addresses. Side effects: database reads.
import type { AddressTemplate } from '../address/template.js';
import type { Repositories } from '../db/repositories.js';
import { MailRejection } from '../errors.js';
import type { Handler } from '../handlers/handler.js';
import { replyHandler } from '../handlers/reply.js';

/** First match wins, as in GitLab's Gitlab::Email::Handler.load_handlers. */
export const HANDLERS: readonly Handler<never, never>[] = [replyHandler as Handler<never, never>];

export interface Route {
  key: string;
  handler: Handler<unknown, unknown>;
  target: unknown;
}

/**
 * Resolves a recipient to a route, or throws the MailRejection that explains why it has none.
 * Used at RCPT time and again when the message is processed, so both see the same rules.
 */
export function routeAddress(address: string, template: AddressTemplate, repos: Repositories): Route {
  const match = template.match(address);
  switch (match.kind) {
    case 'no_domain':
      throw new MailRejection('rcpt.no_domain');
    case 'foreign_domain':
      throw new MailRejection('rcpt.relay_denied');
    case 'no_match':
    case 'mailbox':
      // The mailbox address (no key) is routed by References, which comes with issue 3.
      throw new MailRejection('rcpt.no_such_address');
    case 'key':
      return routeKey(match.key, repos);
  }
}

export function routeKey(key: string, repos: Repositories): Route {
  for (const handler of HANDLERS as readonly Handler<unknown, unknown>[]) {
    const parsed = handler.match(key);
    if (parsed !== null) return { key, handler, target: handler.resolve(parsed, repos) };
  }
  throw new MailRejection('rcpt.unknown_key');
}
