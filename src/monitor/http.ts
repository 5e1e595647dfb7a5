// http: the monitoring listener (INTAKE_HTTP_LISTEN): `GET /health` for a load balancer or a
// supervisor, `GET /metrics` for Prometheus. Input: HTTP requests from whoever can connect, so it
// reads no body, answers two paths and tells counts, never content. Side effects: a TCP listener.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { listenOn } from '../listen.js';

export interface HealthCheck {
  ok: boolean;
  /** What was found, for a person: `answered in 1 ms`, `12.3 GB free`, or what is wrong and what it does to mail. */
  detail: string;
}

export interface HealthReport {
  /** `ok` answers 200; anything else 503. */
  status: 'ok' | 'failing' | 'stopping';
  checks: Record<string, HealthCheck>;
}

export interface MonitorListener {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** A scrape or a health check that takes longer is cut: the client is told, the server goes on. */
const ANSWER_TIMEOUT_MS = 10_000;
/** Connections at once: a scraper and a health checker or two, with room to spare. */
const MAX_CONNECTIONS = 32;

export async function startMonitorListener(listen: string, options: { registry: Registry; health(): Promise<HealthReport> }): Promise<MonitorListener> {
  const server = createServer({ connectionsCheckingInterval: 1000 }, (request, response) => {
    response.setTimeout(ANSWER_TIMEOUT_MS, () => response.destroy());
    answer(request, response, options).catch((error: unknown) => {
      if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', `internal error: ${String((error as Error)?.message ?? error)}\n`);
    });
  });
  // A client cannot hold sockets (file descriptors the mail listeners need): a socket idle for 10 s is
  // closed, a request must be whole within 10 s (checked each second), and a few at once are served.
  server.timeout = ANSWER_TIMEOUT_MS;
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = ANSWER_TIMEOUT_MS;
  server.requestTimeout = ANSWER_TIMEOUT_MS;
  server.maxConnections = MAX_CONNECTIONS;
  const bound = await listenOn(server, listen);
  return {
    host: bound.host,
    port: bound.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function answer(request: IncomingMessage, response: ServerResponse, options: { registry: Registry; health(): Promise<HealthReport> }): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  if (path !== '/health' && path !== '/metrics') return send(response, 404, 'text/plain; charset=utf-8', 'not found: this listener answers GET /health and GET /metrics\n');
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    return send(response, 405, 'text/plain; charset=utf-8', `${request.method ?? ''} not allowed: GET ${path}\n`);
  }
  if (path === '/metrics') return send(response, 200, options.registry.contentType, await options.registry.metrics(), request.method === 'HEAD');
  const report = await options.health();
  send(response, report.status === 'ok' ? 200 : 503, 'application/json', `${JSON.stringify(report)}\n`, request.method === 'HEAD');
}

function send(response: ServerResponse, status: number, contentType: string, body: string, headOnly = false): void {
  response.writeHead(status, { Server: 'intake', 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  response.end(headOnly ? undefined : body);
}
