/**
 * Ledger in a Redis stream shared by every engine replica: XADD with an
 * approximate MAXLEN bound (old records fall off, memory stays bounded), read
 * back newest first by the control API (control/redis-ledger-reader.ts).
 */
import type { Redis } from 'ioredis';
import type { LedgerRecord } from '../../core/decision.js';
import { errorMessage, NodewardenError } from '../../core/errors.js';
import type { LedgerSink } from './sink.js';

export interface RedisStreamLedgerOptions {
  redis: Redis;
  /** Config `redis.keyPrefix`. */
  keyPrefix: string;
  /** Approximate bound on the stream length (default 100,000). */
  maxLen?: number;
}

export function ledgerStreamKey(prefix: string): string {
  return `${prefix}ledger`;
}

export class RedisStreamLedger implements LedgerSink {
  readonly name = 'redis-stream';
  readonly key: string;
  private readonly maxLen: number;
  constructor(private readonly o: RedisStreamLedgerOptions) {
    this.key = ledgerStreamKey(o.keyPrefix);
    this.maxLen = o.maxLen ?? 100_000;
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
}
