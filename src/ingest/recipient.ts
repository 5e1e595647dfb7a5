// recipient: the RCPT-time check every ingress with an envelope runs before taking any data.
// Input: an untrusted recipient address. Side effects: database reads.
import { redactedAddress } from '../address/template.js';
import { isTransientDbError } from '../db/client.js';
import { MailRejection } from '../errors.js';
import { routeAddress } from '../route/router.js';
import type { IngestDeps } from './ingest.js';

/**
 * Accepts a recipient (returns its key) or throws the MailRejection to send. A database that cannot
 * be read gives a temporary refusal, never a permanent one.
 */
export function checkRecipient(address: string, deps: IngestDeps): { key: string | null } {
  try {
    const routed = routeAddress(address, deps.template, deps.repos);
    // The mailbox address is taken here and routed by the message's headers once they are read.
    return { key: routed.kind === 'key' ? routed.route.key : null };
  } catch (error) {
    if (error instanceof MailRejection) throw error;
    deps.logger.error({ err: error, transient: isTransientDbError(error), recipient: redactedAddress(deps.template, address) }, 'recipient lookup failed');
    throw new MailRejection('rcpt.lookup_failed');
  }
}
