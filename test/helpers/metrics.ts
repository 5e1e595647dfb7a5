// Reads intake's /metrics over HTTP, as Prometheus would.
import { get } from 'node:http';

export function scrape(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(body));
    }).once('error', reject);
  });
}

/** The value of an unlabelled series, NaN when it is not there. */
export async function metricValue(port: number, name: string): Promise<number> {
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await scrape(port))?.[1]);
}
