/** In-memory ledger (replay, tests): bounded. Queries are the control API's (control/backend.ts). */
import type { LedgerRecord } from '../../core/decision.js';
import { SeenLedgerKeys } from './record.js';
import type { LedgerSink } from './sink.js';

export class MemoryLedger implements LedgerSink {
  readonly name = 'memory';
  readonly records: LedgerRecord[] = [];
  /** Records dropped because the bound was reached (oldest first). */
  dropped = 0;
  private readonly seen: SeenLedgerKeys;
  constructor(private readonly maxRecords = 100_000) {
    this.seen = new SeenLedgerKeys(maxRecords);
  }

  /** Idempotent per decision attempt (record.ts `ledgerKey`). */
  write(records: readonly LedgerRecord[]): Promise<void> {
    this.records.push(...this.seen.fresh(records));
    const over = this.records.length - this.maxRecords;
    if (over > 0) {
      this.records.splice(0, over);
      this.dropped += over;
    }
    return Promise.resolve();
  }
}
