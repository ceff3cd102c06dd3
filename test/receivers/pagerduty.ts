/**
 * A local PagerDuty Events API v2 receiver for tests: a real HTTP server on a
 * free loopback port that checks EVERY request against the published contract
 * (../shared/contracts/pagerduty-events-v2.openapi.json, with ajv), plus what
 * PagerDuty also enforces: routing_key exactly 32 characters, dedup_key ≤ 255,
 * dedup_key required for resolve/acknowledge. Valid requests are recorded;
 * it can answer 429 (with Retry-After) or 5xx for the next N requests.
 */
import http from 'node:http';
import type { ValidateFunction } from 'ajv';
import { pagerDutyRequestValidator } from './contract.js';
import type { Failure } from './http-util.js';
import { checkJsonBody, closeServer, listenLoopback, readBody } from './http-util.js';

export interface PdEventBody {
  routing_key: string;
  event_action: 'trigger' | 'acknowledge' | 'resolve';
  dedup_key?: string;
  payload?: { summary: string; source: string; severity: string; custom_details?: Record<string, unknown>; [k: string]: unknown };
  [k: string]: unknown;
}

export interface PagerDutyReceiver {
  /** Base URL, e.g. http://127.0.0.1:40123 (the enqueue path is /v2/enqueue). */
  readonly url: string;
  /** Accepted events in arrival order. */
  readonly accepted: PdEventBody[];
  /** Rejected requests (400) with the reasons. */
  readonly rejected: Array<{ body: string; errors: string[] }>;
  /** Every request that reached the server, including scripted failures. */
  readonly attempts: number;
  /** Alert state by dedup key after the accepted events. */
  readonly alerts: Map<string, 'triggered' | 'acknowledged' | 'resolved'>;
  /** Answer the next `n` requests with this failure instead of processing them. */
  failNext(n: number, f: Failure): void;
  close(): Promise<void>;
}

/** opts.host: address to listen on (default loopback; the node tests pass the harness bridge address). */
export async function startPagerDutyReceiver(opts: { host?: string } = {}): Promise<PagerDutyReceiver> {
  const host = opts.host ?? '127.0.0.1';
  const validate: ValidateFunction = pagerDutyRequestValidator();
  const accepted: PdEventBody[] = [];
  const rejected: Array<{ body: string; errors: string[] }> = [];
  const alerts = new Map<string, 'triggered' | 'acknowledged' | 'resolved'>();
  const failures: Failure[] = [];
  let attempts = 0;
  let seq = 0;

  const reply = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  const server = http.createServer((req, res) => {
    void (async () => {
      attempts++;
      const text = await readBody(req);
      const fail = failures.shift();
      if (fail) {
        reply(res, fail.status, { status: fail.status === 429 ? 'throttle event' : 'error', message: 'scripted failure' }, fail.retryAfter ? { 'retry-after': fail.retryAfter } : {});
        return;
      }
      if (req.method !== 'POST' || req.url !== '/v2/enqueue') {
        reply(res, 404, { status: 'not found', message: `${req.method ?? ''} ${req.url ?? ''}` });
        return;
      }
      const errors: string[] = [];
      if (!(req.headers['content-type'] ?? '').startsWith('application/json')) errors.push('content-type must be application/json');
      const body = checkJsonBody(text, validate, errors);
      const ev = body as PdEventBody | undefined;
      if (ev && typeof ev === 'object') {
        if (typeof ev.routing_key === 'string' && ev.routing_key.length !== 32) errors.push('routing_key must be 32 characters');
        if (typeof ev.dedup_key === 'string' && ev.dedup_key.length > 255) errors.push('dedup_key must be at most 255 characters');
        if (ev.event_action !== 'trigger' && typeof ev.dedup_key !== 'string') errors.push('dedup_key is required unless event_action is trigger');
        if (ev.event_action === 'trigger' && ev.payload === undefined) errors.push("'payload' is missing or null");
      }
      if (errors.length > 0 || !ev) {
        rejected.push({ body: text, errors });
        reply(res, 400, { status: 'invalid event', message: 'Event object is invalid', errors });
        return;
      }
      const key = ev.dedup_key ?? `generated-${++seq}`;
      accepted.push(ev);
      alerts.set(key, ev.event_action === 'trigger' ? 'triggered' : ev.event_action === 'resolve' ? 'resolved' : 'acknowledged');
      reply(res, 202, { status: 'success', message: 'Event processed', dedup_key: key });
    })().catch(() => reply(res, 500, { status: 'error', message: 'receiver error' }));
  });
  const port = await listenLoopback(server, host);
  return {
    url: `http://${host}:${port}`,
    accepted,
    rejected,
    alerts,
    get attempts() {
      return attempts;
    },
    failNext(n: number, f: Failure): void {
      for (let i = 0; i < n; i++) failures.push(f);
    },
    close: () => closeServer(server),
  };
}
