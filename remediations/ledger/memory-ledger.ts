/**
 * The ledger in memory (replay, the demo, an engine without Redis, tests):
 * bounded to the newest `maxEntries`, idempotent per decision attempt
 * (record.ts `ledgerKey`) like the Redis stream.
 */
import type { LedgerRecord } from '../../core/decision.js';
import type { LedgerEntry, LedgerQuery } from './entry.js';
import { filterLedger, isAudit } from './entry.js';
import { SeenLedgerKeys } from './record.js';
import type { LedgerStore, LedgerTrim } from './store.js';

export class MemoryLedger implements LedgerStore {
  readonly name: string;
  /** Oldest first, in append order. */
  readonly entries: LedgerEntry[] = [];
  /** Entries dropped because the bound was reached (oldest first). */
  dropped = 0;
  /** When each entry of `entries` was appended (ms since epoch), for `trim` by age. */
  private readonly appendedAt: number[] = [];
  private readonly seen: SeenLedgerKeys;
  private readonly now: () => number;
  constructor(
    private readonly maxEntries = 100_000,
    o: { name?: string; now?: () => number } = {},
  ) {
    this.seen = new SeenLedgerKeys(maxEntries);
    this.name = o.name ?? 'memory';
    this.now = o.now ?? Date.now;
  }

  /** The decision records (no audits), oldest first. */
  get records(): LedgerRecord[] {
    return this.entries.filter((e): e is LedgerRecord => !isAudit(e));
  }

  append(entries: readonly LedgerEntry[]): Promise<void> {
    const fresh = this.seen.fresh(entries);
    const at = this.now();
    this.entries.push(...fresh);
    for (let i = 0; i < fresh.length; i++) this.appendedAt.push(at);
    this.drop(this.entries.length - this.maxEntries);
    return Promise.resolve();
  }

  query(q: LedgerQuery): Promise<LedgerEntry[]> {
    return Promise.resolve(filterLedger(this.entries, q));
  }

  trim(now: number, bounds: LedgerTrim): Promise<number> {
    const byLen = Math.max(0, this.entries.length - bounds.maxLen);
    let byAge = byLen;
    while (byAge < this.entries.length && (this.appendedAt[byAge] ?? 0) < now - bounds.maxAgeMs) byAge++;
    this.entries.splice(0, byAge);
    this.appendedAt.splice(0, byAge);
    return Promise.resolve(byAge);
  }

  private drop(over: number): void {
    if (over <= 0) return;
    this.entries.splice(0, over);
    this.appendedAt.splice(0, over);
    this.dropped += over;
  }
}
