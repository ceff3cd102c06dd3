/**
 * Event-id dedupe adapters. Keys: `<prefix>dedupe:<event id>`.
 * A claim is `SET key pending NX PX <claimTtl>`; confirm overwrites it with
 * `done` for the dedupe window; a refused claim tells `done` (a duplicate) from
 * another batch's `pending` (retry later). On Redis each of claim and confirm
 * is ONE Lua script call per batch (rules/service/lua/): per-id pipelined
 * commands cost ~20 µs of Redis CPU per event, inside one script ~2 µs.
 */
import type { Redis } from 'ioredis';
import type { Clock } from '../../core/clock.js';
import { errorMessage, NodewardenError } from '../../core/errors.js';
import type { LuaScript } from '../../adapters/redis/lua-script.js';
import { dedupeKey } from '../../adapters/redis/keys.js';
import { redisScript } from '../../adapters/redis/scripts.js';
import type { ClaimResult, EventDeduper } from './ports.js';

export interface DedupeTimes {
  /** How long a confirmed id is remembered (config `engine.dedupeWindow`). */
  windowMs: number;
  /** How long an unconfirmed claim holds; keep it below the consumer session timeout. */
  claimTtlMs: number;
}

export class MemoryDeduper implements EventDeduper {
  /** id → expiry (ms) and whether it is confirmed. */
  private readonly seen = new Map<string, { until: number; done: boolean }>();
  private lastSweep = 0;
  constructor(
    private readonly clock: Clock,
    private readonly times: DedupeTimes,
  ) {}

  claim(ids: readonly string[]): Promise<ClaimResult[]> {
    const now = this.clock.now();
    this.sweep(now);
    return Promise.resolve(
      ids.map((id): ClaimResult => {
        const s = this.seen.get(id);
        if (s !== undefined && s.until > now) return s.done ? 'duplicate' : 'pending';
        this.seen.set(id, { until: now + this.times.claimTtlMs, done: false });
        return 'claimed';
      }),
    );
  }

  confirm(ids: readonly string[]): Promise<void> {
    const until = this.clock.now() + this.times.windowMs;
    for (const id of ids) this.seen.set(id, { until, done: true });
    return Promise.resolve();
  }

  release(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.seen.delete(id);
    return Promise.resolve();
  }

  /** Bounded memory: drop expired ids at most once a second. */
  private sweep(now: number): void {
    if (now - this.lastSweep < 1000) return;
    this.lastSweep = now;
    for (const [id, s] of this.seen) if (s.until <= now) this.seen.delete(id);
  }

  get size(): number {
    return this.seen.size;
  }
}

const CLAIM = redisScript('dedupe.claim');
const CONFIRM = redisScript('dedupe.confirm');

export class RedisDeduper implements EventDeduper {
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly times: DedupeTimes,
  ) {}

  private key(id: string): string {
    return dedupeKey(this.keyPrefix, id);
  }

  async claim(ids: readonly string[]): Promise<ClaimResult[]> {
    if (ids.length === 0) return [];
    // One script call per batch: per-id commands were ~20 µs of Redis CPU per event.
    const res = await this.run(CLAIM, ids, this.times.claimTtlMs);
    return (res as number[]).map((v) => (v === 1 ? 'claimed' : v === 2 ? 'pending' : 'duplicate'));
  }

  async confirm(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.run(CONFIRM, ids, this.times.windowMs);
  }

  private async run(script: LuaScript, ids: readonly string[], ttlMs: number): Promise<unknown> {
    try {
      return await script.run(this.redis, ids.map((id) => this.key(id)), [ttlMs]);
    } catch (err) {
      throw new NodewardenError('UNAVAILABLE', `redis dedupe: ${errorMessage(err)}`, { retriable: true, cause: err });
    }
  }

  async release(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.redis.del(...ids.map((id) => this.key(id)));
  }
}
