/**
 * Ledger in a Redis stream shared by every engine replica: XADD with an
 * approximate MAXLEN bound (old records fall off, memory stays bounded), read
 * back newest first by the control API (control/redis-ledger-reader.ts).
 * Idempotent: a record whose key (record.ts `ledgerKey`: decision id and
 * attempt, pending-approval apart) was appended within `seenTtlMs` is not appended again, in the same
 * atomic script (lua/append.lua), so readers need no dedupe.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { LedgerRecord } from '../../core/decision.js';
import { errorMessage, NodewardenError } from '../../core/errors.js';
import { ledgerSeenKey, ledgerStreamKey } from '../../adapters/redis/keys.js';
import { redisScript } from '../../adapters/redis/scripts.js';
import { ledgerKey } from './record.js';
import type { LedgerSink } from './sink.js';

export interface RedisStreamLedgerOptions {
  redis: Redis;
  /** Config `redis.keyPrefix`. */
  keyPrefix: string;
  /** Approximate bound on the stream length (default 100,000). */
  maxLen?: number;
  /** How long a record's key is remembered (default 24 h, the guard's idempotency TTL). */
  seenTtlMs?: number;
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
    // a record without a key (none today: remediator records all carry a decision id) gets a fresh one: always appended
    const seenKeys = records.map((r) => ledgerSeenKey(this.o.keyPrefix, ledgerKey(r) ?? `nokey:${randomUUID()}`));
    try {
      await redisScript('ledger.append').run(this.o.redis, [this.key, ...seenKeys], [this.maxLen, this.o.seenTtlMs ?? 86_400_000, ...records.map((r) => JSON.stringify(r))]);
    } catch (err) {
      throw new NodewardenError('UNAVAILABLE', `ledger: redis append: ${errorMessage(err)}`, { retriable: true, cause: err });
    }
  }
}
