/**
 * The Executor for `page` and `resolve`: turns a decision into one PageRequest
 * and hands it to every pager. Succeeds when at least one pager delivered —
 * a human heard — and reports the pagers that failed.
 */
import type { Decision } from '../../core/decision.js';
import { errorMessage, NodewardenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { ExecutionResult, Executor } from '../ports.js';
import { targetKey } from '../guard/policy.js';
import type { PageRequest, Pager } from './pager.js';
import { MAX_SUMMARY, boundedDedupKey, truncate } from './pager.js';

export function groupLabel(group: Record<string, string> | undefined): string | undefined {
  if (!group || Object.keys(group).length === 0) return undefined;
  return Object.entries(group)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

export function pageRequestOf(d: Decision): PageRequest {
  const group = groupLabel(d.group);
  return {
    event: d.action === 'resolve' ? 'resolve' : 'trigger',
    dedupKey: boundedDedupKey(d.dedupKey ?? `nodewarden:${d.rule}:${targetKey(d.target)}`),
    summary: truncate(d.reason, MAX_SUMMARY),
    severity: d.severity ?? 'warning',
    source: d.target.name,
    rule: d.rule,
    ...(group ? { group } : {}),
    timestamp: new Date(d.at).toISOString(),
    details: { decisionId: d.id, target: d.target, ...(d.evidence ? { evidence: d.evidence } : {}) },
  };
}

export function createPagerExecutor(o: { pagers: readonly Pager[]; logger: Logger }): Executor {
  return {
    actions: ['page', 'resolve'],
    async execute(d: Decision): Promise<ExecutionResult> {
      if (o.pagers.length === 0) return { ok: false, error: new NodewardenError('UNAVAILABLE', 'no pager configured') };
      const req = pageRequestOf(d);
      const results = await Promise.allSettled(o.pagers.map((p) => p.send(req)));
      const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${o.pagers[i]?.name ?? '?'}: ${errorMessage(r.reason)}`] : []));
      const delivered = o.pagers.filter((_, i) => results[i]?.status === 'fulfilled').map((p) => p.name);
      if (delivered.length === 0)
        return { ok: false, error: new NodewardenError('UNAVAILABLE', `${req.event} ${req.dedupKey} not delivered: ${failed.join('; ')}`, { retriable: true }) };
      if (failed.length > 0) o.logger.warn({ dedupKey: req.dedupKey, failed }, 'page delivered by some pagers only');
      return { ok: true, detail: `${req.event} ${req.dedupKey} via ${delivered.join(', ')}${failed.length ? `; failed: ${failed.join('; ')}` : ''}` };
    },
  };
}
