/**
 * Control API routes of paging (docs/control-api.md): incidents (read),
 * silences (list, create, expire), approvals (list, approve, deny). An
 * approval decided here is executed by the next flush of any replica. Mounted by the engine's HTTP server next
 * to the core routes, with the same bearer-token authentication and roles.
 */
import { isDuration, parseDuration } from '../core/duration.js';
import { isRecord } from '../core/records.js';
import { PoisonInputError } from '../core/errors.js';
import type { IncidentPaging } from '../remediations/incidents/incident-paging.js';
import type { Silences } from '../remediations/silences/silence.js';
import type { Approvals } from '../remediations/approvals/approvals.js';
import type { Route, RouteHelpers } from './server.js';
import { HttpError } from './server.js';

export interface PagingControl {
  incidents?: IncidentPaging;
  silences: Silences;
  approvals?: Approvals;
}

function silenceBody(b: unknown, h: RouteHelpers): { matchers: string[]; ttlMs: number; reason: string } {
  if (!isRecord(b)) throw h.invalid('invalid request body', [{ path: '', message: 'must be an object {matchers, ttl, reason}' }]);
  const o = b;
  const extra = Object.keys(o).filter((k) => !['matchers', 'ttl', 'reason'].includes(k));
  if (extra.length) throw h.invalid('invalid request body', extra.map((k) => ({ path: `/${k}`, message: 'unknown field (matchers, ttl, reason)' })));
  if (!Array.isArray(o.matchers) || !o.matchers.every((m) => typeof m === 'string')) throw h.invalid('invalid request body', [{ path: '/matchers', message: 'must be a list of matchers like "pool=h100-train"' }]);
  const ttlMs = typeof o.ttl === 'string' && isDuration(o.ttl) ? parseDuration(o.ttl) : NaN;
  if (!Number.isFinite(ttlMs)) throw h.invalid('invalid request body', [{ path: '/ttl', message: 'must be a duration like 2h' }]);
  return { matchers: o.matchers, ttlMs, reason: typeof o.reason === 'string' ? o.reason : '' };
}

export function pagingRoutes(p: PagingControl): (h: RouteHelpers) => Route[] {
  const decide = (verdict: 'approved' | 'denied'): Route['handler'] => async (ctx, [id]) => {
    if (!p.approvals) throw new HttpError('UNAVAILABLE', 'approvals are not configured');
    const r = await p.approvals.decide(id ?? '', verdict, ctx.principal.name, 'api');
    if (!r.approval) throw new HttpError('NOT_FOUND', `no approval with id "${id ?? ''}"`);
    if (!r.changed) throw new HttpError('CONFLICT', `approval ${id ?? ''} is already ${r.approval.state}${r.approval.by ? ` (by ${r.approval.by})` : ''}`);
    return { approval: r.approval };
  };
  return (h) => [
    {
      method: 'GET',
      pattern: /^\/api\/v1\/approvals\/?$/,
      mutating: false,
      example: '/api/v1/approvals',
      handler: async () => ({ approvals: p.approvals ? await p.approvals.list() : [] }),
    },
    { method: 'POST', pattern: /^\/api\/v1\/approvals\/([^/]+)\/approve$/, mutating: true, example: '/api/v1/approvals/a1/approve', handler: decide('approved') },
    { method: 'POST', pattern: /^\/api\/v1\/approvals\/([^/]+)\/deny$/, mutating: true, example: '/api/v1/approvals/a1/deny', handler: decide('denied') },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/incidents\/?$/,
      mutating: false,
      example: '/api/v1/incidents',
      handler: async () => ({ incidents: p.incidents ? await p.incidents.list() : [] }),
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/silences\/?$/,
      mutating: false,
      example: '/api/v1/silences',
      handler: async () => ({ silences: await p.silences.list() }),
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/silences\/?$/,
      mutating: true,
      example: '/api/v1/silences',
      handler: async (ctx) => {
        const b = silenceBody(await ctx.body(), h);
        try {
          return { silence: await p.silences.create({ ...b, by: ctx.principal.name }) };
        } catch (err) {
          if (err instanceof PoisonInputError) throw h.invalid('invalid silence', err.problems);
          throw err;
        }
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/silences\/([^/]+)\/expire$/,
      mutating: true,
      example: '/api/v1/silences/s1/expire',
      handler: async (_ctx, [id]) => {
        if (!id || !(await p.silences.expire(id))) throw new HttpError('NOT_FOUND', `no active silence with id "${id ?? ''}"`);
        return { expired: id };
      },
    },
  ];
}
