// serve: runs the service: opens and migrates the database, starts the listeners, stops cleanly on
// SIGTERM/SIGINT. Side effects: network listeners, the database file.
import type { Logger } from 'pino';
import { compileTemplate } from './address/template.js';
import type { Config } from './config.js';
import { openStore } from './db/client.js';
import { createRepositories } from './db/repositories.js';
import { startSmtpListener } from './smtp/server.js';

export async function serve(config: Config, logger: Logger): Promise<void> {
  const store = openStore(config.database);
  const deps = { repos: createRepositories(store), template: compileTemplate(config.address), logger };
  let smtp;
  try {
    smtp = await startSmtpListener(config, deps);
  } catch (error) {
    store.close();
    throw error;
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
