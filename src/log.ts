// log: the pino root logger. JSON lines; network data goes in fields, never in the message template.
import { pino, type Logger } from 'pino';

export function createLogger(level: string, destination: 1 | 2 = 1): Logger {
  return pino({ level, base: { name: 'intake' } }, pino.destination({ fd: destination, sync: destination === 2 }));
}
