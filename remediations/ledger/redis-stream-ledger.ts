/**
 * Ledger in a Redis stream shared by every engine replica: XADD with an
 * approximate MAXLEN bound (old records fall off, memory stays bounded), read
 * back newest first by the control API's `queryLedger`.
 */
import type { Redis } from 'ioredis';
import type { LedgerRecord } from '../../core/decision.js';
import { errorMessage, NodewardenError } from '../../core/errors.js';
import type { LedgerQuery, QueryableLedger } from './sink.js';
import { matchesQuery, queryBounds } from './sink.js';

export interface RedisStreamLedgerOptions {
  redis: Redis;
  /** Config `redis.keyPrefix`. */
  keyPrefix: string;
  /** Approximate bound on the stream length (default 100,000). */
  maxLen?: number;
  /** Entries read per XREVRANGE round trip while querying (default 500). */
  pageSize?: number;
}

export function ledgerStreamKey(prefix: string): string {
  return `${prefix}ledger`;
}

export class RedisStreamLedger implements QueryableLedger {
  readonly name = 'redis-stream';
  readonly key: string;
  private readonly maxLen: number;
  private readonly pageSize: number;
  constructor(private readonly o: RedisStreamLedgerOptions) {
    this.key = ledgerStreamKey(o.keyPrefix);
    this.maxLen = o.maxLen ?? 100_000;
    this.pageSize = o.pageSize ?? 500;
  }

  async write(records: readonly LedgerRecord[]): Promise<void> {
    if (records.length === 0) return;
    const p = this.o.redis.pipeline();
    for (const r of records) p.xadd(this.key, 'MAXLEN', '~', this.maxLen, '*', 'rec', JSON.stringify(r));
    let res: Array<[Error | null, unknown]> | null;
    try {
      res = await p.exec();
    } catch (err) {
      throw new NodewardenError('UNAVAILABLE', `ledger: redis XADD: ${errorMessage(err)}`, { retriable: true, cause: err });
    }
    const failed = (res ?? []).find(([e]) => e !== null);
    if (failed?.[0]) throw new NodewardenError('UNAVAILABLE', `ledger: redis XADD: ${failed[0].message}`, { retriable: true, cause: failed[0] });
  }

  /** Newest first. Scans back through the stream (bounded by MAXLEN) until `limit` records match. */
  async queryLedger(q: LedgerQuery): Promise<LedgerRecord[]> {
    const b = queryBounds(q);
    const out: LedgerRecord[] = [];
    let end = '+';
    for (;;) {
      const page = await this.o.redis.xrevrange(this.key, end, '-', 'COUNT', this.pageSize);
      for (const [, fields] of page) {
        const i = fields.indexOf('rec');
        const text = i >= 0 ? fields[i + 1] : undefined;
        if (text === undefined) continue;
        const r = JSON.parse(text) as LedgerRecord;
        if (matchesQuery(r, q, b)) {
          out.push(r);
          if (out.length >= b.limit) return out;
        }
      }
      if (page.length < this.pageSize) return out;
      const lastId = page[page.length - 1]?.[0];
      if (lastId === undefined) return out;
      end = `(${lastId}`;
    }
  }
}
