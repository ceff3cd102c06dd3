/**
 * Redis adapter of the paging DocStore, shared by every engine replica:
 * each document is a hash {v, j}, written only by cas-write.lua (atomic
 * compare-and-set on v), listed through one index set per namespace.
 * Keys share the hash tag `{paging}` (one slot on Redis Cluster).
 */
import type { Redis } from 'ioredis';
import { pagingKeys, type PagingKeys } from '../../adapters/redis/keys.js';
import { redisScript } from '../../adapters/redis/scripts.js';
import type { DocStore, Versioned } from './doc-store.js';



export class RedisDocStore implements DocStore {
  private readonly keys: PagingKeys;
  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = pagingKeys(prefix);
  }

  async read<T>(ns: string, id: string): Promise<Versioned<T> | null> {
    const [v, j] = await this.redis.hmget(this.keys.doc(ns, id), 'v', 'j');
    if (v === null || v === undefined || j === null || j === undefined) return null;
    return { doc: JSON.parse(j) as T, version: Number(v) };
  }

  async write<T>(ns: string, id: string, doc: T, expected: number, ttlMs = 0): Promise<number> {
    return Number(await redisScript('paging.cas-write').run(this.redis, [this.keys.doc(ns, id), this.keys.index(ns)], [expected, JSON.stringify(doc), Math.max(0, Math.floor(ttlMs)), id]));
  }

  async remove(ns: string, id: string, expected: number): Promise<boolean> {
    return Number(await redisScript('paging.cas-write').run(this.redis, [this.keys.doc(ns, id), this.keys.index(ns)], [expected, '', 0, id])) === 1;
  }

  async ids(ns: string): Promise<string[]> {
    const ids = await this.redis.smembers(this.keys.index(ns));
    if (ids.length === 0) return [];
    // drop ids whose document expired (TTL) from the index as they are seen
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.exists(this.keys.doc(ns, id));
    const res = (await pipe.exec()) ?? [];
    const gone = ids.filter((_, i) => Number(res[i]?.[1] ?? 0) === 0);
    if (gone.length > 0) await this.redis.srem(this.keys.index(ns), ...gone);
    return ids.filter((_, i) => Number(res[i]?.[1] ?? 0) === 1).sort();
  }

  async claimOnce(ns: string, id: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.keys.claim(ns, id), '1', 'PX', Math.max(1, Math.floor(ttlMs)), 'NX')) === 'OK';
  }
}
