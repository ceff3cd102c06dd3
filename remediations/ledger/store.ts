/**
 * The one ledger interface. Every decision, executed or not, becomes one
 * record (brief §4), and every operator change (rule toggle, pause, resume)
 * one audit record; both go to the same ledger through a `LedgerWriter`:
 * JSONL (replay, stdout), the Kafka ledger topic, a Redis stream, memory.
 * The stores that can be read back (memory, the Redis stream) are
 * `LedgerStore`s: the control API, the console and the jobs query them.
 *
 * Appends are idempotent per decision attempt (record.ts `ledgerKey`): the
 * Redis stream and memory append a key once; on the Kafka topic the key is the
 * message key, so compaction and consumers fold it (ADR 0012, ADR 0036).
 * Audit records carry no such key and are always appended.
 */
import type { LedgerEntry, LedgerQuery } from './entry.js';

export interface LedgerWriter {
  readonly name: string;
  /** Appends in order; resolves once the entries are durable in this store. */
  append(entries: readonly LedgerEntry[]): Promise<void>;
  /** Idempotent. */
  close?(): Promise<void>;
}

/** How far `trim` cuts (the trim-state job's `ledgerMaxLen`, `ledgerMaxAge`). */
export interface LedgerTrim {
  /** Keep at most this many entries (the newest). */
  maxLen: number;
  /** Drop entries appended more than this long before `now`. */
  maxAgeMs: number;
}

/** A ledger that can be read back. */
export interface LedgerStore extends LedgerWriter {
  /** Entries matching the query, newest first (by `ts`), at most `q.limit`. */
  query(q: LedgerQuery): Promise<LedgerEntry[]>;
  /** Removes what is beyond the bounds; returns how many entries went. */
  trim(now: number, bounds: LedgerTrim): Promise<number>;
}

/** A ledger reader: what the control API and the jobs need of a store. */
export type LedgerReader = Pick<LedgerStore, 'query'>;

/** One writer over several (the Kafka topic and the Redis stream): resolves once every one has the entries. */
export function fanOutLedger(writers: readonly LedgerWriter[]): LedgerWriter {
  return {
    name: writers.map((w) => w.name).join('+'),
    async append(entries) {
      await Promise.all(writers.map((w) => w.append(entries)));
    },
  };
}
