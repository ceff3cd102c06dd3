/**
 * The agent's HTTP endpoint: `/metrics` (its private Prometheus registry)
 * and `/healthz` (200 while running, 503 once stopping). node:http only:
 * the agent has a memory budget of 64 MiB.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from './metrics.js';
import type { Logger } from '../core/logger.js';
import { errorMessage } from '../core/errors.js';

export interface AgentHealth {
  ok: boolean;
  [k: string]: unknown;
}

export interface AgentHttpOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  registry: Registry;
  health: () => AgentHealth;
  logger: Logger;
}

export interface AgentHttpServer {
  /** The port actually bound. */
  readonly port: number;
  close(): Promise<void>;
}

export function startAgentHttp(opts: AgentHttpOptions): Promise<AgentHttpServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      opts.registry
        .metrics()
        .then((text) => {
          res.writeHead(200, { 'content-type': opts.registry.contentType });
          res.end(req.method === 'HEAD' ? undefined : text);
        })
        .catch((err: unknown) => {
          opts.logger.warn({ err: errorMessage(err) }, 'metrics rendering failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
        });
      return;
    }
    if (path === '/healthz') {
      const h = opts.health();
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(h));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  // Scrapes are tiny; don't keep idle sockets (and their buffers) around.
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      server.on('error', (err) => opts.logger.error({ err: errorMessage(err) }, 'agent http server error'));
      const port = (server.address() as AddressInfo).port;
      resolve({
        port,
        close: () =>
          new Promise<void>((res) => {
            server.close(() => res());
            server.closeAllConnections();
          }),
      });
    });
  });
}
