// serve: runs the service: opens and migrates the database, starts the listeners, stops cleanly on
// SIGTERM/SIGINT. Side effects: network listeners, the database file.
import type { Logger } from 'pino';
import { compileTemplate } from './address/template.js';
import type { Config } from './config.js';
import { openStore, type Store } from './db/client.js';
import { createRepositories } from './db/repositories.js';
import type { IngestDeps } from './ingest/ingest.js';
import { startSmtpListener } from './smtp/server.js';

export function ingestDeps(config: Config, store: Store, logger: Logger): IngestDeps {
  return {
    repos: createRepositories(store),
    template: compileTemplate(config.address),
    logger,
    hostname: config.hostname,
    maxAttachmentBytes: config.max_attachment_bytes,
  };
}

/** A reason the service cannot start, said in one line (no stack trace: it is not a bug). */
export class StartupError extends Error {
  override name = 'StartupError';
}

export async function serve(config: Config, logger: Logger): Promise<void> {
  let store;
  try {
    // better-sqlite3 waits for a lock on the event loop, holding up every session: wait briefly, then
    // answer 451 and let the sender retry.
    store = openStore(config.database, { busyTimeoutMs: 1000 });
  } catch (error) {
    throw new StartupError(`cannot open the database ${config.database}: ${(error as Error).message}`);
  }
  const deps = ingestDeps(config, store, logger);
  let smtp;
  try {
    smtp = await startSmtpListener(config, deps);
  } catch (error) {
    store.close();
    throw new StartupError(`cannot listen on ${config.smtp_listen}: ${(error as Error).message}`);
  }
  logger.info(
    { protocol: 'smtp', host: smtp.host, port: smtp.port, address: config.address, database: config.database },
    'listening',
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'stopping');
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  await smtp.close();
  store.close();
  logger.info('stopped');
  logger.flush();
}
