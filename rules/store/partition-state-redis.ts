/**
 * The Redis side of partition-local state (ADR 0045, ADR 0047): per consumed
 * partition, a hash of its node-scoped entries (the last snapshot), a list of
 * op-log entries since that snapshot, and an owner epoch (a counter). A
 * replica that starts using a partition INCRs the epoch, reads the hash with
 * HSCAN and then the log with LRANGE, both in bounded chunks; its writes carry
 * that epoch inside the state store's batch script (rules/store/lua/batch.lua,
 * ARGV[2]), atomic with the call's shared ops, and fail when another replica
 * has taken the partition since.
 */
import type { Redis } from 'ioredis';
import { NodewardenError, errorMessage } from '../../core/errors.js';
import { StoreKeys } from '../../adapters/redis/keys.js';
import type { PartitionFlush, PartitionStateBackend } from './partition-local-store.js';
import type { RedisStateStore } from './redis-store.js';
import type { StoreOp, StoreResult } from './state-store.js';

export interface RedisPartitionStateOptions {
  client: Redis;
  shared: RedisStateStore;
  keyPrefix: string;
  groupId: string;
  topic: string;
  /** Fields per HSCAN call (default 1000). */
  chunk?: number;
  /** Op-log entries per LRANGE call (default 16; an entry is at most maxAppendChars of the store). */
  logChunk?: number;
}

export class RedisPartitionState implements PartitionStateBackend {
  readonly shared: RedisStateStore;
  private readonly keys: StoreKeys;
  private readonly chunk: number;
  private readonly logChunk: number;

  constructor(private readonly o: RedisPartitionStateOptions) {
    this.shared = o.shared;
    this.keys = new StoreKeys(o.keyPrefix);
    this.chunk = Math.max(1, o.chunk ?? 1000);
    this.logChunk = Math.max(1, o.logChunk ?? 16);
  }

  private hash(p: number): string {
    return this.keys.partitionState(this.o.groupId, this.o.topic, p);
  }
  private log(p: number): string {
    return this.keys.partitionLog(this.o.groupId, this.o.topic, p);
  }
  private epoch(p: number): string {
    return this.keys.partitionEpoch(this.o.groupId, this.o.topic, p);
  }

  async claim(partition: number): Promise<number> {
    try {
      return await this.o.client.incr(this.epoch(partition));
    } catch (err) {
      throw new NodewardenError('UNAVAILABLE', `partition ${partition}: taking the owner epoch failed: ${errorMessage(err)}`, { retriable: true, cause: err });
    }
  }

  async load(partition: number, each: (entries: ReadonlyArray<readonly [string, string]>) => void): Promise<void> {
    const key = this.hash(partition);
    let cursor = '0';
    try {
      do {
        const [next, flat] = await this.o.client.hscan(key, cursor, 'COUNT', this.chunk);
        const entries: Array<[string, string]> = [];
        for (let i = 0; i + 1 < flat.length; i += 2) entries.push([flat[i] as string, flat[i + 1] as string]);
        if (entries.length > 0) each(entries);
        cursor = next;
      } while (cursor !== '0');
    } catch (err) {
      throw new NodewardenError('UNAVAILABLE', `partition ${partition}: restoring its state failed: ${errorMessage(err)}`, { retriable: true, cause: err });
    }
  }

  async loadLog(partition: number, each: (entries: readonly string[]) => void): Promise<void> {
    const key = this.log(partition);
    try {
      // the epoch was just taken: no earlier owner appends any more, so the list is read as it stands
      for (let from = 0; ; from += this.logChunk) {
        const entries = await this.o.client.lrange(key, from, from + this.logChunk - 1);
        if (entries.length > 0) each(entries);
        if (entries.length < this.logChunk) break;
      }
    } catch (err) {
      throw new NodewardenError('UNAVAILABLE', `partition ${partition}: restoring its op log failed: ${errorMessage(err)}`, { retriable: true, cause: err });
    }
  }

  execFlush(ops: readonly StoreOp[], flushes: readonly PartitionFlush[]): Promise<StoreResult[]> {
    return this.shared.execWith(
      ops,
      flushes.map((f) => ({ ...f, hashKey: this.hash(f.partition), epochKey: this.epoch(f.partition), logKey: this.log(f.partition) })),
    );
  }
}
