/**
 * Per-rule outcome figures from ledger records alone (pure): what `ctl
 * outcomes` and the daily digest show, next to the Prometheus histograms.
 * - time to detect / to isolate: executed cordons (`details.faultAt`, `details.decidedAt`, the record's ts);
 * - time to return to service (MTTR): the repair ladder's executed uncordons
 *   (`details.episode.faultAt` → ts), and episodes a person resolved;
 * - cordons undone by a person before any repair (a likely false positive):
 *   the ladder's `resolvedByPerson` records of episodes not repaired.
 */
import type { LedgerRecord } from '../../core/decision.js';
import { isRecord } from '../../core/records.js';
import { median } from '../../core/stats.js';

export interface RuleOutcome {
  rule: string;
  isolations: number;
  /** Medians in ms; null when nothing was measured. */
  detectMs: number | null;
  isolateMs: number | null;
  /** Returned by nodewarden after a validated repair. */
  returned: number;
  returnMs: number | null;
  resolvedByPerson: number;
  /** Resolved by a person before any repair step succeeded. */
  undoneWithoutRepair: number;
  handedOver: number;
}

function ms(v: unknown): number | null {
  if (typeof v !== 'string') return null;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : null;
}

function medianOrNull(xs: number[]): number | null {
  return xs.length === 0 ? null : median(xs);
}

export function outcomeFigures(records: readonly Partial<LedgerRecord>[], from: number, to: number): RuleOutcome[] {
  const by = new Map<string, { o: RuleOutcome; detect: number[]; isolate: number[]; ret: number[] }>();
  const get = (rule: string) => {
    let x = by.get(rule);
    if (!x) by.set(rule, (x = { o: { rule, isolations: 0, detectMs: null, isolateMs: null, returned: 0, returnMs: null, resolvedByPerson: 0, undoneWithoutRepair: 0, handedOver: 0 }, detect: [], isolate: [], ret: [] }));
    return x;
  };
  for (const r of records) {
    const t = ms(r.ts);
    if (t === null || t < from || t > to || typeof r.rule !== 'string') continue;
    const det = isRecord(r.details) ? r.details : {};
    const ep = isRecord(det.episode) ? det.episode : null;
    if (r.action === 'cordon' && r.outcome === 'executed') {
      const x = get(r.rule);
      x.o.isolations++;
      const fault = ms(det.faultAt);
      const decided = ms(det.decidedAt);
      if (fault !== null) {
        x.isolate.push(Math.max(0, t - fault));
        if (decided !== null) x.detect.push(Math.max(0, decided - fault));
      }
    } else if (r.action === 'uncordon' && r.outcome === 'executed' && ep && r.decisionId?.startsWith('ladder:') === true) {
      const x = get(r.rule);
      x.o.returned++;
      const fault = ms(ep.faultAt);
      if (fault !== null) x.ret.push(Math.max(0, t - fault));
    } else if (r.guard === 'resolvedByPerson' && ep) {
      const x = get(r.rule);
      x.o.resolvedByPerson++;
      if (ep.repaired !== true) x.o.undoneWithoutRepair++;
    } else if (r.action === 'replace' && r.outcome === 'executed') get(r.rule).o.handedOver++;
  }
  return [...by.values()]
    .map((x) => ({ ...x.o, detectMs: medianOrNull(x.detect), isolateMs: medianOrNull(x.isolate), returnMs: medianOrNull(x.ret) }))
    .sort((a, b) => b.isolations - a.isolations || a.rule.localeCompare(b.rule));
}
