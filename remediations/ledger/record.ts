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
    const to = i.result?.toRevision ?? d.params?.toRevision;
    if (to !== undefined) rec.toRevision = to;
    rec.target.namespace = d.target.namespace ?? 'default';
  }
  const err = i.error ?? i.result?.error?.message;
  if (err !== undefined) rec.error = err;
  const details: Record<string, unknown> = { ...i.details };
  if (i.verdict && !i.verdict.allowed && i.verdict.reason) details.guardReason = i.verdict.reason;
  if (i.result?.detail) details.detail = i.result.detail;
  if (i.result?.job) details.job = i.result.job;
  // a cordon says when its fault happened and when it was decided: time to detect and to isolate, from the ledger alone
  if (d.action === 'cordon' && typeof d.evidence?.eventTs === 'string') {
    details.faultAt = d.evidence.eventTs;
    details.decidedAt = new Date(d.at).toISOString();
  }
  // the repair ladder's steps name their episode (remediations/ladder): outcome figures are read from the ledger
  if (d.id.startsWith('ladder:') && d.evidence?.episode !== undefined) details.episode = d.evidence.episode;
  if (Object.keys(details).length > 0) rec.details = details;
  return rec;
}

/**
 * The idempotency key of a record: one decision attempt (a retried action's
 * attempts are distinct, a degraded page is distinct from the guarded one
 * that follows, a decision's `pending-approval` record is distinct from the
 * outcome it gets once a person decides: the same decision id carries both),
 * or null for a record without a decision id (always written).
 * Ledgers append a record at most once per key (the Kafka topic: consumers fold by it).
 */
export function ledgerKey(r: Partial<LedgerRecord>): string | null {
  if (r.decisionId === undefined) return null;
  const attempt = typeof r.details?.attempt === 'number' ? r.details.attempt : 1;
  return `${r.decisionId}#${attempt}${r.details?.degraded === undefined ? '' : '#degraded'}${r.outcome === 'pending-approval' ? '#pending' : ''}`;
}

/** Remembers the keys of the newest `max` records appended to the memory ledger: the same key is appended once. */
export class SeenLedgerKeys {
  private readonly seen = new Set<string>();
  constructor(private readonly max = 100_000) {}

  /** The records whose key was not seen yet (records without a key always pass); remembers them. */
  fresh<T extends object>(records: readonly T[]): T[] {
    const out: T[] = [];
    for (const r of records) {
      const k = 'decisionId' in r ? ledgerKey(r as Partial<LedgerRecord>) : null;
      if (k !== null) {
        if (this.seen.has(k)) continue;
        this.seen.add(k);
        // a Set iterates in insertion order: the first key is the oldest
        if (this.seen.size > this.max) for (const old of this.seen) { this.seen.delete(old); break; }
      }
      out.push(r);
    }
    return out;
  }
}
