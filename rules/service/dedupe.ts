/**
 * Event-id dedupe adapters. Keys: `<prefix>dedupe:<event id>`.
 * A claim is `SET key pending NX PX <claimTtl>`; confirm overwrites it with
 * `done` for the dedupe window; a refused claim is read back to tell `done`
 * (a duplicate) from another batch's `pending` (retry later); all calls of a batch go in one pipeline (one
 * round trip), which is as fast as a batched Lua script and simpler to reason about.
 */
import type { Redis } from 'ioredis';
import type { Clock } from '../../core/clock.js';
import { NodewardenError } from '../../core/errors.js';
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

export class RedisDeduper implements EventDeduper {
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly times: DedupeTimes,
  ) {}

  private key(id: string): string {
    return `${this.keyPrefix}dedupe:${id}`;
  }

  async claim(ids: readonly string[]): Promise<ClaimResult[]> {
    if (ids.length === 0) return [];
    const p = this.redis.pipeline();
    for (const id of ids) p.set(this.key(id), 'pending', 'PX', this.times.claimTtlMs, 'NX');
    const out: ClaimResult[] = check(await p.exec()).map((v) => (v === 'OK' ? 'claimed' : 'duplicate'));
    // Refused claims are rare (redeliveries): one more round trip tells done from someone else's pending.
    const refused = ids.filter((_, i) => out[i] !== 'claimed');
    if (refused.length === 0) return out;
    const q = this.redis.pipeline();
    for (const id of refused) q.get(this.key(id));
    const states = check(await q.exec());
    let j = 0;
    ids.forEach((_, i) => {
      if (out[i] !== 'claimed') out[i] = states[j++] === 'pending' ? 'pending' : 'duplicate';
    });
    return out;
  }

  async confirm(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const p = this.redis.pipeline();
    for (const id of ids) p.set(this.key(id), 'done', 'PX', this.times.windowMs);
    await p.exec();
  }

  async release(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.redis.del(...ids.map((id) => this.key(id)));
  }
}

function check(res: Array<[Error | null, unknown]> | null): unknown[] {
  if (!res) throw new NodewardenError('UNAVAILABLE', 'redis dedupe: pipeline aborted', { retriable: true });
  return res.map(([err, v]) => {
    if (err) throw new NodewardenError('UNAVAILABLE', `redis dedupe: ${err.message}`, { retriable: true, cause: err });
    return v;
  });
}
