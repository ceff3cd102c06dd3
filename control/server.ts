/**
 * The engine's HTTP endpoint (node:http; a dozen routes need no framework):
 *
 *   GET  /metrics   the engine's private Prometheus registry
 *   GET  /healthz   the process is alive
 *   GET  /readyz    consumer joined and Redis reachable (503 otherwise)
 *   /api/v1/...     the authenticated control API (docs/control-api.md)
 *   GET  /          the operator's console (docs/console.md): static files
 *                   that read the control API with the operator's token
 *   POST /webhooks/<name>  signed callbacks (PagerDuty v3 webhooks, Slack
 *                   interactivity): no bearer token, each handler verifies
 *                   its own signature over the raw body (docs/paging.md)
 *
 * Every error is JSON `{error: {code, message, problems}}`: 400 for a
 * malformed request, 401 without or with a bad token, 403 for a read-only
 * token on a mutating call, 404/405 for unknown routes and methods.
 */
import { controlCharProblem } from '../core/text.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Clock } from '../core/clock.js';
import type { ErrorCode, InputProblem } from '../core/errors.js';
import { NodewardenError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { ControlBackend } from './api.js';
import { validateLedgerQuery, validatePauseBody, validateResumeBody, validateToggleBody } from './api.js';
import type { Principal, TokenLookup } from './tokens.js';
import { bearerToken } from './tokens.js';
import { ConsoleAssets, CONSOLE_HEADERS, isConsolePath } from './console-assets.js';

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

export interface EngineHttpOptions {
  host: string;
  port: number;
  registry: Registry;
  readiness: () => Promise<ReadinessReport>;
  /** Absent: the control API answers 503 (no tokens file configured). */
  control?: { backend: ControlBackend; tokens: TokenLookup };
  clock: Clock;
  logger: Logger;
  /** Largest accepted request body (default 64 KiB). */
  maxBodyBytes?: number;
  /** The console's files (default: the ones shipped in control/console/). */
  console?: ConsoleAssets;
  /** Signed callbacks by name (`/webhooks/<name>`): raw body and headers in, JSON out. */
  webhooks?: Record<string, WebhookHandler>;
  /** More authenticated control API routes (control/paging-routes.ts). */
  extraRoutes?: (h: RouteHelpers) => Route[];
}

export type WebhookHandler = (body: Buffer, headers: http.IncomingHttpHeaders) => Promise<{ status: number; body: unknown }>;

/** What extra routes get from the server: the error for a bad request. */
export interface RouteHelpers {
  invalid: (message: string, problems: InputProblem[]) => HttpError;
}

const STATUS: Record<ErrorCode, number> = {
  CONFIG_INVALID: 500,
  RULE_INVALID: 500,
  EVENT_INVALID: 400,
  REQUEST_INVALID: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
  RATE_LIMITED: 429,
  INTERNAL: 500,
};

/** An error answer the handlers throw; the server turns it into JSON. */
export class HttpError extends NodewardenError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly problems: InputProblem[] = [],
    readonly status: number = STATUS[code],
    readonly headers: Record<string, string> = {},
  ) {
    super(code, message);
    this.name = 'HttpError';
  }
}

function invalid(message: string, problems: InputProblem[]): HttpError {
  return new HttpError('REQUEST_INVALID', message, problems);
}

export interface Ctx {
  req: http.IncomingMessage;
  url: URL;
  principal: Principal;
  body: () => Promise<unknown>;
}

type Handler = (ctx: Ctx) => Promise<unknown>;

/** What a control API route is, without its handler: the security tests enumerate these. */
export interface RouteInfo {
  method: 'GET' | 'POST';
  pattern: RegExp;
  /** Mutating routes need an admin token. */
  mutating: boolean;
  /** A concrete path the pattern matches (for tests and docs), e.g. /api/v1/rules/my-rule/disable. */
  example: string;
}
export interface Route extends RouteInfo {
  handler: (ctx: Ctx, params: string[]) => Promise<unknown>;
}

export class EngineHttpServer {
  private readonly server: http.Server;
  private readonly routes: Route[];
  private readonly maxBody: number;
  private readonly console: ConsoleAssets;

  constructor(private readonly o: EngineHttpOptions) {
    this.maxBody = o.maxBodyBytes ?? 64 * 1024;
    this.console = o.console ?? new ConsoleAssets();
    this.routes = [...this.apiRoutes(), ...(o.extraRoutes?.({ invalid }) ?? [])];
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        o.logger.error({ err: errorMessage(err) }, 'http handler failed');
        if (!res.headersSent) sendJson(res, 500, { error: { code: 'INTERNAL', message: 'internal error', problems: [] } });
        else res.destroy();
      });
    });
    this.server.keepAliveTimeout = 5000;
    this.server.requestTimeout = 30_000;
  }

  async listen(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port, this.o.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** Every control API route (method, pattern, role needed, an example path). */
  routeTable(): RouteInfo[] {
    return this.routes.map(({ method, pattern, mutating, example }) => ({ method, pattern, mutating, example }));
  }

  get port(): number {
    return (this.server.address() as AddressInfo | null)?.port ?? 0;
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    try {
      if (url.pathname === '/metrics' || url.pathname === '/healthz' || url.pathname === '/readyz') {
        if (method !== 'GET' && method !== 'HEAD') throw new HttpError('REQUEST_INVALID', `method ${method} not allowed on ${url.pathname}`, [], 405, { allow: 'GET, HEAD' });
        await this.plain(url.pathname, res);
        return;
      }
      if (isConsolePath(url.pathname)) {
        if (method !== 'GET' && method !== 'HEAD') throw new HttpError('REQUEST_INVALID', `method ${method} not allowed on ${url.pathname}`, [], 405, { allow: 'GET, HEAD' });
        this.asset(req, url.pathname, method, res);
        return;
      }
      if (url.pathname.startsWith('/webhooks/')) {
        const hook = this.o.webhooks?.[url.pathname.slice('/webhooks/'.length)];
        if (!hook) throw new HttpError('NOT_FOUND', `no such endpoint: ${url.pathname}`);
        if (method !== 'POST') throw new HttpError('REQUEST_INVALID', `method ${method} not allowed on ${url.pathname}`, [], 405, { allow: 'POST' });
        const out = await hook(await this.readRaw(req), req.headers);
        sendJson(res, out.status, out.body);
        return;
      }
      if (url.pathname.startsWith('/api/')) {
        const out = await this.api(req, url, method);
        sendJson(res, out.status, out.body);
        return;
      }
      throw new HttpError('NOT_FOUND', `no such endpoint: ${url.pathname}`);
    } catch (err) {
      if (err instanceof HttpError) {
        for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
        sendJson(res, err.status, { error: { code: err.code, message: err.message, problems: err.problems } });
        return;
      }
      throw err;
    }
  }

  private asset(req: http.IncomingMessage, path: string, method: string, res: http.ServerResponse): void {
    const a = this.console.get(path);
    if (!a) throw new HttpError('NOT_FOUND', `no such endpoint: ${path}`);
    const headers = { ...CONSOLE_HEADERS, 'content-type': a.type, etag: a.etag };
    if (req.headers['if-none-match'] === a.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': String(a.body.length) });
    res.end(method === 'HEAD' ? undefined : a.body);
  }

  private async plain(path: string, res: http.ServerResponse): Promise<void> {
    if (path === '/metrics') {
      const text = await this.o.registry.metrics();
      res.writeHead(200, { 'content-type': this.o.registry.contentType });
      res.end(text);
    } else if (path === '/healthz') {
      sendJson(res, 200, { status: 'ok' });
    } else {
      const r = await this.o.readiness().catch((err: unknown): ReadinessReport => ({
        ready: false,
        checks: { readiness: { ok: false, detail: errorMessage(err) } },
      }));
      sendJson(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', checks: r.checks });
    }
  }

  private async api(req: http.IncomingMessage, url: URL, method: string): Promise<{ status: number; body: unknown }> {
    const control = this.o.control;
    if (!control) throw new HttpError('UNAVAILABLE', 'the control API is disabled: configure control.tokensFile to enable it');
    // Authenticate before anything else, so an anonymous caller learns nothing about routes.
    const token = bearerToken(req.headers.authorization);
    if (token === null)
      throw new HttpError('UNAUTHORIZED', 'missing bearer token (send "Authorization: Bearer <token>")', [], 401, { 'www-authenticate': 'Bearer realm="nodewarden"' });
    const principal = control.tokens.lookup(token);
    if (!principal) throw new HttpError('UNAUTHORIZED', 'invalid token', [], 401, { 'www-authenticate': 'Bearer realm="nodewarden", error="invalid_token"' });

    const candidates = this.routes.filter((r) => r.pattern.test(url.pathname));
    if (candidates.length === 0) throw new HttpError('NOT_FOUND', `no such endpoint: ${url.pathname}`);
    const route = candidates.find((r) => r.method === method);
    if (!route) throw new HttpError('REQUEST_INVALID', `method ${method} not allowed on ${url.pathname}`, [], 405, { allow: candidates.map((r) => r.method).join(', ') });
    if (route.mutating && principal.role !== 'admin')
      throw new HttpError('FORBIDDEN', `token "${principal.name}" has role ${principal.role}; ${method} ${url.pathname} needs admin`);
    const params = (route.pattern.exec(url.pathname) ?? []).slice(1).map(pathParam);
    const ctx: Ctx = { req, url, principal, body: () => this.readBody(req) };
    const body = await route.handler(ctx, params);
    this.o.logger.info({ by: principal.name, method, path: url.pathname }, 'control api call');
    return { status: 200, body };
  }

  private apiRoutes(): Route[] {
    const backend = (): ControlBackend => {
      if (!this.o.control) throw new HttpError('UNAVAILABLE', 'control API disabled');
      return this.o.control.backend;
    };
    const noQuery = (ctx: Ctx): void => {
      const keys = [...ctx.url.searchParams.keys()];
      if (keys.length > 0) throw invalid('this endpoint takes no query parameters', keys.map((k) => ({ path: `?${k}`, message: 'unknown parameter' })));
    };
    const toggle = (enabled: boolean): Route['handler'] => async (ctx, [id]) => {
      noQuery(ctx);
      const v = validateToggleBody(await ctx.body());
      if (!v.value) throw invalid('invalid request body', v.problems);
      if (id === undefined || !backend().hasRule(id)) throw new HttpError('NOT_FOUND', `no rule with id "${id ?? ''}"`);
      const t = await backend().setRule(id, enabled, { reason: v.value.reason, by: ctx.principal.name, ttlMs: v.value.ttlMs });
      const rule = backend().listRules().find((r) => r.id === id);
      return { toggle: t, rule };
    };
    const h = (fn: Handler): Route['handler'] => (ctx) => fn(ctx);
    return [
      {
        method: 'GET',
        pattern: /^\/api\/v1\/rules\/?$/,
        mutating: false,
        example: '/api/v1/rules',
        handler: h((ctx) => {
          noQuery(ctx);
          return Promise.resolve({ rules: backend().listRules() });
        }),
      },
      { method: 'POST', pattern: /^\/api\/v1\/rules\/([^/]+)\/disable$/, mutating: true, example: '/api/v1/rules/{id}/disable', handler: toggle(false) },
      { method: 'POST', pattern: /^\/api\/v1\/rules\/([^/]+)\/enable$/, mutating: true, example: '/api/v1/rules/{id}/enable', handler: toggle(true) },
      {
        method: 'POST',
        pattern: /^\/api\/v1\/pause$/,
        mutating: true,
        example: '/api/v1/pause',
        handler: h(async (ctx) => {
          noQuery(ctx);
          const v = validatePauseBody(await ctx.body());
          if (!v.value) throw invalid('invalid request body', v.problems);
          await backend().pause(v.value.reason, ctx.principal.name);
          return { paused: true, reason: v.value.reason, by: ctx.principal.name };
        }),
      },
      {
        method: 'POST',
        pattern: /^\/api\/v1\/resume$/,
        mutating: true,
        example: '/api/v1/resume',
        handler: h(async (ctx) => {
          noQuery(ctx);
          const v = validateResumeBody(await ctx.body());
          if (!v.value) throw invalid('invalid request body', v.problems);
          await backend().resume(ctx.principal.name, v.value.reason);
          return { paused: false, by: ctx.principal.name };
        }),
      },
      {
        method: 'GET',
        pattern: /^\/api\/v1\/guard$/,
        mutating: false,
        example: '/api/v1/guard',
        handler: h(async (ctx) => {
          noQuery(ctx);
          return { ...(await backend().guard()), dryRun: backend().dryRun ?? false };
        }),
      },
      {
        method: 'GET',
        pattern: /^\/api\/v1\/whoami$/,
        mutating: false,
        example: '/api/v1/whoami',
        handler: h((ctx) => {
          noQuery(ctx);
          // What this engine's API offers, so the console asks only for what exists.
          const has = (path: string): boolean => this.routes.some((r) => r.method === 'GET' && r.pattern.test(path));
          return Promise.resolve({
            name: ctx.principal.name,
            role: ctx.principal.role,
            features: { nodes: backend().nodes !== undefined, incidents: has('/api/v1/incidents') },
          });
        }),
      },
      {
        method: 'GET',
        pattern: /^\/api\/v1\/nodes$/,
        mutating: false,
        example: '/api/v1/nodes',
        handler: h(async (ctx) => {
          noQuery(ctx);
          const b = backend();
          if (!b.nodes) throw new HttpError('NOT_FOUND', 'this engine has no cluster view to list nodes from');
          return { nodes: await b.nodes() };
        }),
      },
      {
        method: 'GET',
        pattern: /^\/api\/v1\/ledger$/,
        mutating: false,
        example: '/api/v1/ledger',
        handler: h(async (ctx) => {
          const v = validateLedgerQuery(ctx.url.searchParams, this.o.clock.now());
          if (!v.value) throw invalid('invalid query', v.problems);
          return { records: await backend().ledger(v.value) };
        }),
      },
    ];
  }

  /** JSON body, or undefined when empty. */
  private async readBody(req: http.IncomingMessage): Promise<unknown> {
    const text = (await this.readRaw(req)).toString('utf8');
    if (text.trim().length === 0) return undefined;
    const ct = req.headers['content-type'];
    if (ct !== undefined && !/^application\/(.+\+)?json\b/i.test(ct)) throw invalid(`content-type must be application/json, got "${ct}"`, [{ path: '', message: 'not JSON' }]);
    try {
      return JSON.parse(text);
    } catch (err) {
      throw invalid('request body is not valid JSON', [{ path: '', message: errorMessage(err) }]);
    }
  }

  /** The raw body (signatures are over these exact bytes), bounded by maxBodyBytes. */
  private readRaw(req: http.IncomingMessage): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let failed = false;
      req.on('data', (c: Buffer) => {
        if (failed) return;
        size += c.length;
        if (size > this.maxBody) {
          failed = true;
          reject(new HttpError('REQUEST_INVALID', `request body larger than ${this.maxBody} bytes`, [], 413));
          return;
        }
        chunks.push(c);
      });
      req.on('error', reject);
      req.on('end', () => {
        if (!failed) resolve(Buffer.concat(chunks));
      });
    });
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text + '\n');
}

/** A decoded path segment (a rule id): malformed escapes and control characters are a 400, not a 500 or a forged log line. */
function pathParam(raw: string): string {
  let v: string;
  try {
    v = decodeURIComponent(raw);
  } catch {
    throw new HttpError('REQUEST_INVALID', 'malformed percent-encoding in the path', [{ path: 'path', message: 'malformed percent-encoding' }]);
  }
  const bad = controlCharProblem(v);
  if (bad) throw new HttpError('REQUEST_INVALID', `invalid path parameter: ${bad}`, [{ path: 'path', message: bad }]);
  if (v.length > 253) throw new HttpError('REQUEST_INVALID', 'path parameter longer than 253 characters', [{ path: 'path', message: 'too long' }]);
  return v;
}
