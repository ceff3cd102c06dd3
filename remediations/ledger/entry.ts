/**
 * What the ledger holds: one entry type for the remediator's decisions and the
 * operators' audited changes, and the one query over it (the control API's
 * `GET /api/v1/ledger`, the jobs' windows). Pure: types and a filter.
 */
import type { LedgerRecord, Outcome } from '../../core/decision.js';

/**
 * Audit record of one toggle change. It travels on the ledger topic (and the
 * ledger stream) next to decision records, told apart by `kind`, because a
 * `LedgerRecord.action` is limited to cordon/uncordon/rollback/page/resolve.
 * `enabled: null` means the toggle was cleared (the rule is back to its file state).
 */
export interface ToggleAuditRecord {
  ts: string;
  kind: 'rule-toggle';
  rule: string;
  enabled: boolean | null;
  reason: string;
  by: string;
  /** RFC 3339, or null for a toggle without TTL. */
  expiresAt: string | null;
}

/** An operator paused or resumed the guard (the kill switch): recorded in the ledger like a toggle. */
export interface GuardAuditRecord {
  ts: string;
  kind: 'guard-pause' | 'guard-resume';
  reason: string | null;
  by: string;
}

/** What an operator did through the control API, as the ledger records it. */
export type AuditRecord = ToggleAuditRecord | GuardAuditRecord;

/** A decision, or an operator's audited change (rule toggle, pause, resume): told apart by `kind` (audits only). */
export type LedgerEntry = LedgerRecord | AuditRecord;

/** True for an operator audit (it has a `kind`; a decision record has none). */
export function isAudit(e: LedgerEntry): e is AuditRecord {
  return 'kind' in e;
}

export function isToggleAudit(e: LedgerEntry): e is ToggleAuditRecord {
  return isAudit(e) && e.kind === 'rule-toggle';
}

export interface LedgerQuery {
  /** ms since epoch, inclusive. */
  since?: number;
  /** ms since epoch, exclusive. */
  until?: number;
  rule?: string;
  node?: string;
  outcome?: Outcome;
  limit: number;
}

/** Filters ledger entries the way the query asks: newest first (by `ts`), at most `limit`. */
export function filterLedger(entries: Iterable<LedgerEntry>, q: LedgerQuery): LedgerEntry[] {
  const out: LedgerEntry[] = [];
  for (const e of entries) {
    const t = Date.parse(e.ts);
    if (q.since !== undefined && t < q.since) continue;
    if (q.until !== undefined && t >= q.until) continue;
    if (q.rule !== undefined && (!('rule' in e) || e.rule !== q.rule)) continue;
    if (isAudit(e)) {
      // Operator audits have no node and no outcome.
      if (q.node !== undefined || q.outcome !== undefined) continue;
    } else {
      if (q.node !== undefined && !(e.target.kind === 'Node' && e.target.name === q.node)) continue;
      if (q.outcome !== undefined && e.outcome !== q.outcome) continue;
    }
    out.push(e);
  }
  out.sort((a, b) => Date.parse(b.ts) - Date.parse(a.ts));
  return out.slice(0, q.limit);
}
