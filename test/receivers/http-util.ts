import type http from 'node:http';
import type { ValidateFunction } from 'ajv';
import type { AddressInfo } from 'node:net';

export function readBody(req: http.IncomingMessage, max = 1 << 20): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reject(new Error('body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Listens on a free port of `host` (default loopback; port 0: the kernel picks). */
export async function listenLoopback(server: http.Server, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

export function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Scripted failures for the next N requests. */
export interface Failure {
  status: 429 | 500 | 502 | 503;
  /** Retry-After header value (seconds), if any. */
  retryAfter?: string;
}

/** Parses a request body as JSON and checks it against a published schema; every problem as text. */
export function checkJsonBody(text: string, validate: ValidateFunction, errors: string[]): unknown {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    errors.push('body is not JSON');
    return undefined;
  }
  if (!validate(body)) for (const e of validate.errors ?? []) errors.push(`${e.instancePath || '/'} ${e.message ?? 'invalid'}`);
  return body;
}
