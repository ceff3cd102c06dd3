/** Builds the one ledger record of a decision (brief §4 format). */
import type { Decision, LedgerRecord, Outcome } from '../../core/decision.js';
import type { ExecutionResult, GuardVerdict } from '../ports.js';

export interface RecordInput {
  decision: Decision;
  outcome: Outcome;
  /** ms since epoch (the injected clock: virtual in replay). */
  now: number;
  verdict?: GuardVerdict;
  result?: ExecutionResult;
  /** An error that is not the executor's (guard unavailable, no executor). */
  error?: string;
  details?: Record<string, unknown>;
}

export function buildLedgerRecord(i: RecordInput): LedgerRecord {
  const d = i.decision;
  const rec: LedgerRecord = {
    ts: new Date(i.now).toISOString(),
    rule: d.rule,
    action: d.action,
    target: { ...d.target },
    outcome: i.outcome,
    reason: d.reason,
    guard: i.verdict && !i.verdict.allowed ? i.verdict.guard : null,
    decisionId: d.id,
  };
  if (d.action === 'page' || d.action === 'resolve') {
    rec.severity = d.severity ?? 'warning';
    if (d.dedupKey !== undefined) rec.dedupKey = d.dedupKey;
  }
  if (d.action === 'rollback') {
    const planned = typeof d.params?.toRevision === 'number' ? d.params.toRevision : undefined;
    const to = i.result?.toRevision ?? planned;
    if (to !== undefined) rec.toRevision = to;
    rec.target.namespace = d.target.namespace ?? 'default';
  }
  const err = i.error ?? i.result?.error?.message;
  if (err !== undefined) rec.error = err;
  const details: Record<string, unknown> = { ...i.details };
  if (i.verdict && !i.verdict.allowed && i.verdict.reason) details.guardReason = i.verdict.reason;
  if (i.result?.detail) details.detail = i.result.detail;
  if (Object.keys(details).length > 0) rec.details = details;
  return rec;
}
