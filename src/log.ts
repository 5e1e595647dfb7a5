// log: the pino root logger. JSON lines; network data goes in fields, never in the message template.
import { pino, type Logger } from 'pino';

/**
 * Standard error is written synchronously (CLI commands). Standard output, the service's log, is
 * written in batches of at least 4 KB or every 100 ms: a write per line cost a fifth of the SMTP
 * thread's time under load. A crash can lose the last 100 ms of log lines, never a message.
 */
export function createLogger(level: string, destination: 1 | 2 = 1): Logger {
  const sync = destination === 2;
  return pino({ level, base: { name: 'intake' } }, pino.destination({ fd: destination, sync, ...(sync ? {} : { minLength: 4096, periodicFlush: 100 }) }));
}

/** A logger whose lines go to `write` (the writer thread hands them to the main thread's destination). */
export function createLoggerTo(level: string, write: (line: string) => void): Logger {
  return pino({ level, base: { name: 'intake' } }, { write });
}
