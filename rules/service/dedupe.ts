/**
 * Event-id dedupe adapters. A claim marks ids as in progress for the claim
 * TTL; confirm marks them done for the dedupe window; a refused claim tells
 * `done` (a duplicate) from another batch's `pending` (retry later).
 * On Redis (ADR 0048) an id key `<prefix>dedupe2:id:<id>` holds the token of
 * the claim that holds it, and the claim key `<prefix>dedupe2:claim:<token>`
 * says `pending` or `done`: claim and confirm are ONE Lua script call per
 * batch each (rules/service/lua/), with one write per event in all.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Clock } from '../../core/clock.js';
import { errorMessage, NodewardenError } from '../../core/errors.js';
import type { LuaScript } from '../../adapters/redis/lua-script.js';
import { dedupeClaimPrefix, dedupeKey } from '../../adapters/redis/keys.js';
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

/** What this replica knows of a claim of its own that is neither confirmed nor released. */
interface OwnClaim {
  ids: Set<string>;
  at: number;
}

/**
 * Redis dedupe by claim token (ADR 0048). One claim call marks its whole batch
 * with one token: each id key holds the token (`SET NX`, for the dedupe
 * window) and the token's claim key says whether that claim is `pending` (for
 * the claim TTL) or `done`. Confirming or releasing a claim is then ONE key,
 * whatever its size: per event one write instead of two.
 */
export class RedisDeduper implements EventDeduper {
  /** Own claims by token; forgotten on confirm/release, and when long lapsed. */
  private readonly own = new Map<string, OwnClaim>();
  /** id → token of the own claim that holds it. */
  private readonly holder = new Map<string, string>();
  private readonly tokenBase = randomBytes(6).toString('base64url');
  private seq = 0;
  private readonly claimPrefix: string;

  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly times: DedupeTimes,
  ) {
    this.claimPrefix = dedupeClaimPrefix(keyPrefix);
  }

  private key(id: string): string {
    return dedupeKey(this.keyPrefix, id);
  }

  private token(): string {
    return `${this.tokenBase}.${(this.seq++).toString(36)}`;
  }

  async claim(ids: readonly string[]): Promise<ClaimResult[]> {
    if (ids.length === 0) return [];
    this.forgetLapsed();
    const token = this.token();
    const res = (await this.run(CLAIM, [this.claimPrefix + token, ...ids.map((id) => this.key(id))], [this.times.claimTtlMs, this.times.windowMs, token, this.claimPrefix])) as number[];
    const claimed = new Set<string>();
    const out = ids.map((id, i): ClaimResult => {
      const v = res[i];
      if (v === 1) {
        claimed.add(id);
        return 'claimed';
      }
      return v === 2 ? 'pending' : 'duplicate';
    });
    if (claimed.size > 0) {
      this.own.set(token, { ids: claimed, at: Date.now() });
      for (const id of claimed) this.holder.set(id, token);
    }
    return out;
  }

  /**
   * Claims the ids cover whole are confirmed by their claim key; any other id
   * (part of a claim, or not claimed here) is re-pointed to a fresh token that
   * is confirmed in the same call.
   */
  async confirm(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const { whole, loose } = this.split(ids);
    const fresh = this.token();
    const keys = whole.map((t) => this.claimPrefix + t);
    if (loose.length > 0) keys.push(this.claimPrefix + fresh, ...loose.map((id) => this.key(id)));
    await this.run(CONFIRM, keys, [this.times.windowMs, whole.length, fresh]);
    this.forget(whole, loose);
  }

  async release(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const { whole, loose } = this.split(ids);
    const keys = [...whole.map((t) => this.claimPrefix + t), ...loose.map((id) => this.key(id))];
    try {
      await this.redis.del(...keys);
    } catch (err) {
      throw new NodewardenError('UNAVAILABLE', `redis dedupe: ${errorMessage(err)}`, { retriable: true, cause: err });
    }
    this.forget(whole, loose);
  }

  /**
   * Where each id stands in Redis: `done`, `pending`, or `none` (never claimed,
   * released, or its claim lapsed). For tests and diagnostics.
   */
  async states(ids: readonly string[]): Promise<Array<'done' | 'pending' | 'none'>> {
    if (ids.length === 0) return [];
    const tokens = await this.redis.mget(...ids.map((id) => this.key(id)));
    const claims = await this.redis.mget(...tokens.map((t) => this.claimPrefix + (t ?? '')));
    return claims.map((c, i) => (tokens[i] === null || (c !== 'done' && c !== 'pending') ? 'none' : c));
  }

  /** The own claims `ids` cover whole, and the ids left over. */
  private split(ids: readonly string[]): { whole: string[]; loose: string[] } {
    const byToken = new Map<string, string[]>();
    const loose: string[] = [];
    for (const id of new Set(ids)) {
      const t = this.holder.get(id);
      if (t === undefined) loose.push(id);
      else {
        let l = byToken.get(t);
        if (!l) byToken.set(t, (l = []));
        l.push(id);
      }
    }
    const whole: string[] = [];
    for (const [t, l] of byToken) {
      if (l.length === this.own.get(t)?.ids.size) whole.push(t);
      else loose.push(...l);
    }
    return { whole, loose };
  }

  private forget(tokens: readonly string[], ids: readonly string[]): void {
    for (const t of tokens) {
      const c = this.own.get(t);
      if (c) for (const id of c.ids) this.holder.delete(id);
      this.own.delete(t);
    }
    for (const id of ids) {
      const t = this.holder.get(id);
      if (t === undefined) continue;
      this.holder.delete(id);
      const c = this.own.get(t);
      c?.ids.delete(id);
      if (c && c.ids.size === 0) this.own.delete(t);
    }
  }

  /** Bounded memory: a claim neither confirmed nor released (a bug elsewhere) is dropped once long lapsed in Redis. */
  private forgetLapsed(): void {
    const before = Date.now() - Math.max(60_000, 10 * this.times.claimTtlMs);
    const stale: string[] = [];
    for (const [t, c] of this.own) {
      if (c.at >= before) break; // insertion order = claim order
      stale.push(t);
    }
    if (stale.length > 0) this.forget(stale, []);
  }

  private async run(script: LuaScript, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await script.run(this.redis, keys, args);
    } catch (err) {
      throw new NodewardenError('UNAVAILABLE', `redis dedupe: ${errorMessage(err)}`, { retriable: true, cause: err });
    }
  }
}
