/**
 * Reading the ledger incrementally: the jobs that follow it (resolve-cleared,
 * expire-toggles) keep a checkpoint and re-read a little before it each run,
 * because records can land with a `ts` slightly older than the newest one
 * already read (replicas' clocks, batches in flight). Re-reading is safe: the
 * jobs apply records idempotently.
 */
import type { LedgerEntry } from '../remediations/ledger/entry.js';
import type { LedgerReader } from '../remediations/ledger/store.js';

/** How far before the checkpoint each run re-reads. */
export const LEDGER_SLACK_MS = 2 * 60_000;
/** Most records one run reads (a first run over a long lookback on a busy fleet). */
export const LEDGER_READ_LIMIT = 50_000;

export interface LedgerWindow {
  /** Oldest first; records of equal `ts` in the order they were appended. */
  entries: LedgerEntry[];
  /** The limit was reached: older records in the window were not read. */
  truncated: boolean;
}

export async function readLedgerWindow(reader: LedgerReader, since: number, until: number, limit = LEDGER_READ_LIMIT): Promise<LedgerWindow> {
  const newestFirst = await reader.query({ since, until: until + 1, limit });
  return { entries: newestFirst.slice().reverse(), truncated: newestFirst.length >= limit };
}

/** Where a run starts reading: the checkpoint minus the slack, or `lookbackMs` before now on a first run. */
export function windowStart(checkpoint: number | null | undefined, now: number, lookbackMs: number): number {
  const first = now - lookbackMs;
  if (typeof checkpoint !== 'number' || !Number.isFinite(checkpoint)) return first;
  return Math.max(first, checkpoint - LEDGER_SLACK_MS);
}
