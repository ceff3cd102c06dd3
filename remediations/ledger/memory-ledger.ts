/** In-memory ledger (demo, replay, tests): bounded, queryable. */
import type { LedgerRecord } from '../../core/decision.js';
import type { LedgerQuery, QueryableLedger } from './sink.js';
import { matchesQuery, queryBounds } from './sink.js';

export class MemoryLedger implements QueryableLedger {
  readonly name = 'memory';
  readonly records: LedgerRecord[] = [];
  /** Records dropped because the bound was reached (oldest first). */
  dropped = 0;
  constructor(private readonly maxRecords = 100_000) {}

  write(records: readonly LedgerRecord[]): Promise<void> {
    this.records.push(...records);
    const over = this.records.length - this.maxRecords;
    if (over > 0) {
      this.records.splice(0, over);
      this.dropped += over;
    }
    return Promise.resolve();
  }

  queryLedger(q: LedgerQuery): Promise<LedgerRecord[]> {
    const b = queryBounds(q);
    const out: LedgerRecord[] = [];
    for (let i = this.records.length - 1; i >= 0 && out.length < b.limit; i--) {
      const r = this.records[i];
      if (r && matchesQuery(r, q, b)) out.push(r);
    }
    return Promise.resolve(out);
  }
}
