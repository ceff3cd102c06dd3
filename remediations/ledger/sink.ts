/**
 * Where ledger records go. Every decision, executed or not, becomes one record
 * (brief §4) and is written to each configured sink: JSONL (replay, stdout),
 * a Redis stream (read back by the control API: control/redis-ledger-reader.ts),
 * the Kafka ledger topic, memory.
 */
import type { LedgerRecord } from '../../core/decision.js';

export interface LedgerSink {
  readonly name: string;
  write(records: readonly LedgerRecord[]): Promise<void>;
  /** Idempotent. */
  close?(): Promise<void>;
}
