/**
 * The agent's Kubernetes client: one GET and one watch over node:https, with
 * the in-cluster ServiceAccount (token re-read per request: bound tokens
 * rotate) or a kubeconfig (server, CA, token or client certificate).
 *
 * Why not @kubernetes/client-node: importing it costs ~60 MiB RSS, and the
 * agent asks the API two things only (its Node's labels, its kube-proxy pods).
 * The engine keeps client-node. ADR 0016.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { dirname, isAbsolute, join } from 'node:path';
import { errorMessage } from '../core/errors.js';

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Largest GET answer and largest watch line accepted. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;

/** Where and how to reach the API. */
export interface KubeTarget {
  server: string;
  ca?: Buffer;
  insecure: boolean;
  /** Bearer token, read at each request (null = none). */
  token: () => string | null;
  cert?: Buffer;
  key?: Buffer;
}

/** The in-cluster ServiceAccount target ($KUBERNETES_SERVICE_HOST/PORT, token, ca.crt). */
export function inClusterTarget(env: NodeJS.ProcessEnv = process.env, saDir = SA_DIR): KubeTarget {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'] ?? '443';
  if (!host) throw new Error('not in a cluster: KUBERNETES_SERVICE_HOST is not set');
  const h = host.includes(':') ? `[${host}]` : host;
  return {
    server: `https://${h}:${port}`,
    ca: readFileSync(join(saDir, 'ca.crt')),
    insecure: false,
    token: () => readFileSync(join(saDir, 'token'), 'utf8').trim(),
  };
}

interface KubeconfigFile {
  'current-context'?: string;
  contexts?: Array<{ name?: string; context?: { cluster?: string; user?: string } }>;
  clusters?: Array<{ name?: string; cluster?: Record<string, unknown> }>;
  users?: Array<{ name?: string; user?: Record<string, unknown> }>;
}

/** A kubeconfig's current context as a target. Throws one clear line on anything it cannot use (exec plugins, missing entries). */
export async function kubeconfigTarget(path: string): Promise<KubeTarget> {
  const { parse } = await import('yaml');
  let kc: KubeconfigFile;
  try {
    kc = parse(readFileSync(path, 'utf8')) as KubeconfigFile;
  } catch (err) {
    throw new Error(`kubeconfig ${path}: ${errorMessage(err).split('\n')[0] ?? ''}`, { cause: err });
  }
  const base = dirname(path);
  const ctxName = kc['current-context'];
  const ctx = kc.contexts?.find((c) => c.name === ctxName)?.context;
  if (!ctx) throw new Error(`kubeconfig ${path}: current-context "${ctxName ?? ''}" not found`);
  const cluster = kc.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster || typeof cluster['server'] !== 'string') throw new Error(`kubeconfig ${path}: cluster "${ctx.cluster ?? ''}" has no server`);
  const user = kc.users?.find((u) => u.name === ctx.user)?.user ?? {};
  if (user['exec'] || user['auth-provider']) throw new Error(`kubeconfig ${path}: user "${ctx.user ?? ''}" uses an exec/auth-provider plugin; the agent supports tokens and client certificates`);
  const str = (o: Record<string, unknown>, k: string): string | undefined => (typeof o[k] === 'string' ? o[k] : undefined);
  const material = (o: Record<string, unknown>, key: string): Buffer | undefined => {
    const data = str(o, `${key}-data`);
    if (data) return Buffer.from(data, 'base64');
    const file = str(o, key);
    return file ? readFileSync(isAbsolute(file) ? file : join(base, file)) : undefined;
  };
  const t: KubeTarget = { server: cluster['server'], insecure: cluster['insecure-skip-tls-verify'] === true, token: () => null };
  const ca = material(cluster, 'certificate-authority');
  if (ca) t.ca = ca;
  const cert = material(user, 'client-certificate');
  const key = material(user, 'client-key');
  if (cert) t.cert = cert;
  if (key) t.key = key;
  const token = str(user, 'token');
  const tokenFile = str(user, 'tokenFile');
  if (token) t.token = () => token;
  else if (tokenFile) t.token = () => readFileSync(isAbsolute(tokenFile) ? tokenFile : join(base, tokenFile), 'utf8').trim();
  return t;
}

function request(t: KubeTarget, apiPath: string, timeoutMs: number | null): http.ClientRequest {
  const url = new URL(apiPath, t.server.endsWith('/') ? t.server : `${t.server}/`);
  const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
  const token = t.token();
  if (token) headers['authorization'] = `Bearer ${token}`;
  const opts: https.RequestOptions = { method: 'GET', headers, agent: false };
  if (url.protocol === 'https:') {
    opts.rejectUnauthorized = !t.insecure;
    if (t.ca) opts.ca = t.ca;
    if (t.cert) opts.cert = t.cert;
    if (t.key) opts.key = t.key;
  }
  const req = (url.protocol === 'https:' ? https : http).request(url, opts);
  if (timeoutMs !== null) req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
  return req;
}

/** The Status message of a failed call, or the first bytes of the body. */
function failure(apiPath: string, status: number, body: string): Error {
  let msg = body.slice(0, 200);
  try {
    const j = JSON.parse(body) as { message?: unknown };
    if (typeof j.message === 'string') msg = j.message;
  } catch {
    // not a Status object
  }
  return Object.assign(new Error(`GET ${apiPath}: HTTP ${status}: ${msg}`), { statusCode: status });
}

/** GET → parsed JSON; rejects with a one-line error on a non-2xx answer. */
export function kubeGet(t: KubeTarget, apiPath: string, timeoutMs = 15_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(t, apiPath, timeoutMs);
    req.on('error', (err) => reject(new Error(`GET ${apiPath}: ${err.message}`)));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size > MAX_BODY_BYTES) req.destroy(new Error(`answer larger than ${MAX_BODY_BYTES} bytes`));
        else chunks.push(d);
      });
      res.on('error', (err) => reject(new Error(`GET ${apiPath}: ${err.message}`)));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) return reject(failure(apiPath, status, body));
        try {
          resolve(JSON.parse(body));
        } catch {
          reject(new Error(`GET ${apiPath}: answer is not JSON`));
        }
      });
    });
    req.end();
  });
}

/**
 * A watch (`apiPath` must carry `watch=1`): calls `onEvent(type, object)` per
 * line; `onDone(err)` once when the stream ends (null = the server closed it
 * cleanly) or fails. `abort()` ends it without calling `onDone`.
 */
export function kubeWatch(t: KubeTarget, apiPath: string, onEvent: (type: string, object: unknown) => void, onDone: (err: Error | null) => void): { abort(): void } {
  let finished = false;
  const done = (err: Error | null) => {
    if (finished) return;
    finished = true;
    onDone(err);
  };
  const req = request(t, apiPath, null);
  req.on('socket', (s) => s.setKeepAlive(true, 30_000));
  req.on('error', (err) => done(new Error(`watch ${apiPath}: ${err.message}`)));
  req.on('response', (res) => {
    const status = res.statusCode ?? 0;
    if (status !== 200) {
      let body = '';
      res.on('data', (d: Buffer) => {
        if (body.length < 4096) body += d.toString('utf8');
      });
      res.on('end', () => done(failure(apiPath, status, body)));
      return;
    }
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        try {
          const ev = JSON.parse(line) as { type?: unknown; object?: unknown };
          if (typeof ev.type === 'string') onEvent(ev.type, ev.object ?? null);
        } catch {
          req.destroy(new Error('a watch line is not JSON'));
          return;
        }
      }
      if (buf.length > MAX_BODY_BYTES) req.destroy(new Error(`a watch line is larger than ${MAX_BODY_BYTES} bytes`));
    });
    res.on('error', (err) => done(new Error(`watch ${apiPath}: ${err.message}`)));
    res.on('end', () => done(null));
    res.on('close', () => done(new Error(`watch ${apiPath}: connection closed`)));
  });
  req.end();
  return {
    abort() {
      finished = true;
      req.destroy();
    },
  };
}

/** The target for a KubeAccess: its kubeconfig, else the in-cluster ServiceAccount. */
export function targetFor(access: { kubeconfigPath: string | undefined }): Promise<KubeTarget> {
  return access.kubeconfigPath ? kubeconfigTarget(access.kubeconfigPath) : Promise.resolve(inClusterTarget());
}
