// deps: what the pipeline stages are handed in a process: the repositories of one open store, the
// addresses (the address template and the Service Desk alias), the logger and the configured limits.
// mailauth (a fifth of a second to load, in each thread and `intake deliver`) only with authentication.
import type { Logger } from 'pino';
import { compileAddresses } from '../address/addresses.js';
import type { Config } from '../config.js';
import type { Store } from '../db/client.js';
import { createRepositories } from '../db/repositories.js';
import type { IngestDeps } from './ingest.js';
import { createSenderRate } from './sender-rate.js';

export async function ingestDeps(config: Config, store: Store, logger: Logger): Promise<IngestDeps> {
  return {
    repos: createRepositories(store),
    template: compileAddresses(config.address, config.service_desk_address || null),
    logger,
    hostname: config.hostname,
    maxAttachmentBytes: config.max_attachment_bytes,
    senderRate: createSenderRate({ limit: config.sender_rate_limit, windowMs: config.sender_rate_window_ms }),
    authenticator:
      config.authentication === 'off'
        ? null
        : (await import('./authenticate.js')).createAuthenticator({ mode: config.authentication, dnsServers: config.dns_servers, timeoutMs: config.dns_timeout_ms, hostname: config.hostname }),
  };
}
