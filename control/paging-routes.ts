/**
 * Control API routes of paging (docs/control-api.md): incidents (read),
 * silences (list, create, expire). Mounted by the engine's HTTP server next
 * to the core routes, with the same bearer-token authentication and roles.
 */
import { parseDuration } from '../core/duration.js';
import type { IncidentPaging } from '../remediations/incidents/incident-paging.js';
import type { Silences } from '../remediations/silences/silence.js';
import type { Route, RouteHelpers } from './server.js';
import { HttpError } from './server.js';

export interface PagingControl {
  incidents?: IncidentPaging;
  silences: Silences;
}

function silenceBody(b: unknown, h: RouteHelpers): { matchers: string[]; ttlMs: number; reason: string } {
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw h.invalid('invalid request body', [{ path: '', message: 'must be an object {matchers, ttl, reason}' }]);
  const o = b as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => !['matchers', 'ttl', 'reason'].includes(k));
  if (extra.length) throw h.invalid('invalid request body', extra.map((k) => ({ path: `/${k}`, message: 'unknown field (matchers, ttl, reason)' })));
  if (!Array.isArray(o.matchers) || !o.matchers.every((m) => typeof m === 'string')) throw h.invalid('invalid request body', [{ path: '/matchers', message: 'must be a list of matchers like "pool=h100-train"' }]);
  let ttlMs = NaN;
  try {
    ttlMs = typeof o.ttl === 'string' ? parseDuration(o.ttl) : NaN;
  } catch {
    ttlMs = NaN;
  }
  if (!Number.isFinite(ttlMs)) throw h.invalid('invalid request body', [{ path: '/ttl', message: 'must be a duration like 2h' }]);
  return { matchers: o.matchers as string[], ttlMs, reason: typeof o.reason === 'string' ? o.reason : '' };
}

export function pagingRoutes(p: PagingControl): (h: RouteHelpers) => Route[] {
  return (h) => [
    {
      method: 'GET',
      pattern: /^\/api\/v1\/incidents\/?$/,
      mutating: false,
      handler: async () => ({ incidents: p.incidents ? await p.incidents.list() : [] }),
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/silences\/?$/,
      mutating: false,
      handler: async () => ({ silences: await p.silences.list() }),
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/silences\/?$/,
      mutating: true,
      handler: async (ctx) => {
        const b = silenceBody(await ctx.body(), h);
        return { silence: await p.silences.create({ ...b, by: ctx.principal.name }) };
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/silences\/([^/]+)\/expire$/,
      mutating: true,
      handler: async (_ctx, [id]) => {
        if (!id || !(await p.silences.expire(id))) throw new HttpError('NOT_FOUND', `no active silence with id "${id ?? ''}"`);
        return { expired: id };
      },
    },
  ];
}
