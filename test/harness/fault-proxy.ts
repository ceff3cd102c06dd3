/**
 * A fault-injecting HTTP proxy in front of a real kube-apiserver: clients talk
 * plain HTTP to 127.0.0.1:<port>, the proxy forwards to the apiserver's HTTPS
 * URL (its self-signed certificate accepted, the client's Authorization header
 * passed through). Rules decide per request, first match wins:
 *
 *   status  answer with an HTTP status and a Kubernetes Status body, without forwarding
 *   delay   forward after `ms`
 *   hang    never answer (the client's timeout fires); the request is not forwarded
 *   drop    forward, then destroy the client socket before the answer (the write
 *           happened, the client saw a network error: the "did it land?" case)
 *
 * Every request is counted as `forwarded` or `injected`, so a test can assert
 * how many writes really reached the apiserver.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

export type Fault = { kind: 'status'; code: number; reason?: string } | { kind: 'delay'; ms: number } | { kind: 'hang' } | { kind: 'drop' };

export interface FaultRule {
  method?: string;
  /** Matched against the request path (with query). */
  path?: RegExp;
  fault: Fault;
  /** Apply to this many matching requests, then fall through (default: unlimited). */
  times?: number;
}

export interface ProxyRequestLog {
  method: string;
  path: string;
  /** `forwarded` reached the apiserver; otherwise the fault that answered instead. */
  fate: 'forwarded' | 'status' | 'hang' | 'drop-after-forward';
  status?: number;
}

export interface FaultProxy {
  readonly url: string;
  readonly log: ProxyRequestLog[];
  /** Replaces the rules (an empty list: pass everything through). */
  setRules(rules: FaultRule[]): void;
  /** Requests that reached the apiserver, by method and path pattern. */
  forwarded(method: string, path: RegExp): number;
  close(): Promise<void>;
}

const REASONS: Record<number, string> = { 403: 'Forbidden', 409: 'Conflict', 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable', 504: 'Timeout' };

export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  let rules: Array<FaultRule & { used: number }> = [];
  const log: ProxyRequestLog[] = [];
  const hung = new Set<http.ServerResponse>();
  const agent = new https.Agent({ rejectUnauthorized: false, keepAlive: true });

  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const rule = rules.find((r) => (r.method === undefined || r.method === method) && (r.path === undefined || r.path.test(path)) && (r.times === undefined || r.used < r.times));
    if (rule) rule.used++;
    const fault = rule?.fault;
    if (fault?.kind === 'status') {
      log.push({ method, path, fate: 'status', status: fault.code });
      const reason = fault.reason ?? REASONS[fault.code] ?? 'InternalError';
      req.resume();
      res.writeHead(fault.code, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: `injected ${fault.code}`, reason, code: fault.code }));
      return;
    }
    if (fault?.kind === 'hang') {
      log.push({ method, path, fate: 'hang' });
      req.resume();
      hung.add(res);
      res.on('close', () => hung.delete(res));
      return;
    }
    const forward = (): void => {
      const headers = { ...req.headers, host: target.host };
      const up = https.request({ protocol: target.protocol, hostname: target.hostname, port: target.port, method, path, headers, agent }, (upRes) => {
        if (fault?.kind === 'drop') {
          log.push({ method, path, fate: 'drop-after-forward', status: upRes.statusCode ?? 0 });
          upRes.resume();
          req.socket.destroy();
          return;
        }
        log.push({ method, path, fate: 'forwarded', status: upRes.statusCode ?? 0 });
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      });
      up.on('error', (err) => {
        log.push({ method, path, fate: 'forwarded', status: 502 });
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`proxy: ${err.message}`);
      });
      req.pipe(up);
    };
    if (fault?.kind === 'delay') setTimeout(forward, fault.ms);
    else forward();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    setRules(next) {
      rules = next.map((r) => ({ ...r, used: 0 }));
    },
    forwarded(method, path) {
      return log.filter((l) => (l.fate === 'forwarded' || l.fate === 'drop-after-forward') && l.method === method && path.test(l.path) && (l.status ?? 0) < 400).length;
    },
    async close() {
      for (const r of hung) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
