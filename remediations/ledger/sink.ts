/**
 * Where ledger records go. Every decision, executed or not, becomes one record
 * (brief §4) and is written to each configured sink: JSONL (replay, stdout),
 * a Redis stream (queried by the control API), the Kafka ledger topic, memory.
 */
import type { LedgerRecord, Outcome } from '../../core/decision.js';

export interface LedgerSink {
  readonly name: string;
  write(records: readonly LedgerRecord[]): Promise<void>;
  /** Idempotent. */
  close?(): Promise<void>;
}

/** Filter of the control API's ledger query; every field optional. */
export interface LedgerQuery {
  /** Inclusive lower bound on `ts` (ms since epoch or ISO time). */
  since?: number | string;
  /** Inclusive upper bound on `ts`. */
  until?: number | string;
  rule?: string;
  /** Node name: matches records whose target is that node. */
  node?: string;
  outcome?: Outcome;
  /** At most this many records, newest first. Default 100, max 10,000. */
  limit?: number;
}

/** A sink the control API can read back. */
export interface QueryableLedger extends LedgerSink {
  /** Matching records, newest first. */
  queryLedger(q: LedgerQuery): Promise<LedgerRecord[]>;
}

export const DEFAULT_QUERY_LIMIT = 100;
export const MAX_QUERY_LIMIT = 10_000;

function toMs(v: number | string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v;
  const n = Date.parse(v);
  return Number.isNaN(n) ? undefined : n;
}

/** Normalised bounds of a query (ms) and its limit. */
export function queryBounds(q: LedgerQuery): { since: number; until: number; limit: number } {
  return {
    since: toMs(q.since) ?? -Infinity,
    until: toMs(q.until) ?? Infinity,
    limit: Math.max(1, Math.min(MAX_QUERY_LIMIT, Math.floor(q.limit ?? DEFAULT_QUERY_LIMIT))),
  };
}

export function matchesQuery(r: LedgerRecord, q: LedgerQuery, b = queryBounds(q)): boolean {
  const ts = Date.parse(r.ts);
  if (ts < b.since || ts > b.until) return false;
  if (q.rule !== undefined && r.rule !== q.rule) return false;
  if (q.outcome !== undefined && r.outcome !== q.outcome) return false;
  if (q.node !== undefined && !(r.target.kind === 'Node' && r.target.name === q.node)) return false;
  return true;
}
