/**
 * Reads the shared Redis ledger stream back for `GET /api/v1/ledger`: decision
 * records (field `rec`) and toggle audits (field `audit`), newest first,
 * paging back with XREVRANGE until `limit` entries match. The stream is
 * bounded by MAXLEN, so a query never scans more than that.
 */
import type { Redis } from 'ioredis';
import { ledgerStreamKey } from '../adapters/redis/keys.js';
import { AUDIT_FIELD } from '../rules/toggles/redis-audit-sink.js';
import type { LedgerEntry, LedgerQuery } from './api.js';
import type { LedgerReader } from './backend.js';
import { filterLedger } from './backend.js';

export class RedisLedgerReader implements LedgerReader {
  private readonly key: string;
  constructor(
    private readonly redis: Redis,
    keyPrefix: string,
    private readonly pageSize = 500,
  ) {
    this.key = ledgerStreamKey(keyPrefix);
  }

  async query(q: LedgerQuery): Promise<LedgerEntry[]> {
    const out: LedgerEntry[] = [];
    // Always from the newest entry: a record's `ts` need not be its append time
    // (backfills, replays), so stream ids cannot bound `until`; MAXLEN bounds the scan.
    let end = '+';
    for (;;) {
      const page = await this.redis.xrevrange(this.key, end, '-', 'COUNT', this.pageSize);
      const entries: LedgerEntry[] = [];
      for (const [, fields] of page) {
        for (let i = 0; i + 1 < fields.length; i += 2) {
          if (fields[i] !== 'rec' && fields[i] !== AUDIT_FIELD) continue;
          try {
            entries.push(JSON.parse(fields[i + 1] as string) as LedgerEntry);
          } catch {
            // a malformed entry is skipped, never fatal to a query
          }
        }
      }
      out.push(...filterLedger(entries, { ...q, limit: q.limit - out.length }));
      if (out.length >= q.limit || page.length < this.pageSize) break;
      const lastId = page[page.length - 1]?.[0];
      if (lastId === undefined) break;
      // Older than `since` by append time (with a minute of clock slack between replicas): stop.
      if (q.since !== undefined && Number(lastId.split('-')[0]) < q.since - 60_000) break;
      end = `(${lastId}`;
    }
    return out.sort((a, b) => Date.parse(b.ts) - Date.parse(a.ts)).slice(0, q.limit);
  }
}
