// serve: runs the service: opens and migrates the database, starts the listeners, stops cleanly on
// SIGTERM/SIGINT. Side effects: network listeners, the database file.
import type { Logger } from 'pino';
import { compileTemplate } from './address/template.js';
import type { Config } from './config.js';
import { openStore } from './db/client.js';
import { createRepositories } from './db/repositories.js';
import { startSmtpListener } from './smtp/server.js';

/** A reason the service cannot start, said in one line (no stack trace: it is not a bug). */
export class StartupError extends Error {
  override name = 'StartupError';
}

export async function serve(config: Config, logger: Logger): Promise<void> {
  let store;
  try {
    store = openStore(config.database);
  } catch (error) {
    throw new StartupError(`cannot open the database ${config.database}: ${(error as Error).message}`);
  }
  const deps = { repos: createRepositories(store), template: compileTemplate(config.address), logger };
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
