/**
 * A bounded HTTP GET of a node-local endpoint (dcgm-exporter, kube-proxy
 * healthz) on node:http/https. The agent avoids a general HTTP client here:
 * every MiB of RSS counts on a node (brief: ≤ 64 MiB), and these are plain
 * GETs on loopback.
 */
import http from 'node:http';
import https from 'node:https';

export interface HttpGetOptions {
  timeoutMs: number;
  /** Larger bodies are an error (a misconfigured URL must not eat memory). */
  maxBytes?: number;
  headers?: Record<string, string>;
}

export interface HttpGetResult {
  status: number;
  body: string;
}

/** Resolves with any HTTP status; rejects on network errors (err.code kept), timeouts and oversized bodies. */
export function httpGetText(url: string, opts: HttpGetOptions): Promise<HttpGetResult> {
  const maxBytes = opts.maxBytes ?? 16 * 1024 * 1024;
  const client = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.get(url, { timeout: opts.timeoutMs, agent: false, headers: opts.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) {
          req.destroy(new Error(`response from ${url} larger than ${maxBytes} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer from ${url} within ${opts.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    // The socket timeout is per idle period: a server dripping one byte at a time would never trip it.
    const total = setTimeout(() => req.destroy(Object.assign(new Error(`response from ${url} not complete within ${opts.timeoutMs} ms`), { code: 'ETIMEDOUT' })), opts.timeoutMs);
    total.unref();
    req.on('close', () => clearTimeout(total));
    req.on('error', reject);
  });
}
