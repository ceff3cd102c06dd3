/**
 * Rule toggles shared by every engine replica through Redis.
 *
 * `isEnabled` sits on the engine's hot path, so it reads a local cache only.
 * The cache is refreshed on a pub/sub message (immediate) and by a poll
 * (default 500 ms, the safety net when a message is lost across a reconnect),
 * so every replica honours a change within one second. Expiry is judged on
 * read against the caller's `now`; `dropExpired` (the expire-toggles job)
 * removes expired fields with an atomic Lua script.
 */
import type { Redis } from 'ioredis';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import { errorMessage, NodewardenError } from '../../core/errors.js';
import { redisScript } from '../../adapters/redis/scripts.js';
import { toggleKeys } from '../../adapters/redis/keys.js';
import type { ToggleKeys } from '../../adapters/redis/keys.js';
import { isExpired } from './memory-toggles.js';
import type { ClosableRuleToggles, RuleToggle } from './port.js';

export interface RedisRuleTogglesOptions {
  /** Command connection (shared with other components is fine). */
  redis: Redis;
  /** Key prefix (config `redis.keyPrefix`). */
  keyPrefix: string;
  clock: Clock;
  logger: Logger;
  /** Safety-net poll interval; must stay ≤ 1 s for the one-second promise. Default 500 ms. */
  pollMs?: number;
}

export class RedisRuleToggles implements ClosableRuleToggles {
  private cache = new Map<string, RuleToggle>();
  private readonly keys: ToggleKeys;
  private readonly pollMs: number;
  private subscriber: Redis | undefined;
  private timer: NodeJS.Timeout | undefined;
  private started: Promise<void> | undefined;
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  private closed = false;
  /** ms since epoch of the last successful refresh (0 = never). */
  lastRefresh = 0;

  constructor(private readonly opts: RedisRuleTogglesOptions) {
    this.keys = toggleKeys(opts.keyPrefix);
    this.pollMs = Math.min(opts.pollMs ?? 500, 1000);
  }

  isEnabled(rule: string, fileEnabled: boolean, now: number): boolean {
    const t = this.cache.get(rule);
    if (t === undefined || isExpired(t, now)) return fileEnabled;
    return t.enabled;
  }

  list(now: number): RuleToggle[] {
    return [...this.cache.values()]
      .filter((t) => !isExpired(t, now))
      .map((t) => ({ ...t }))
      .sort((a, b) => a.rule.localeCompare(b.rule));
  }

  async set(toggle: RuleToggle): Promise<void> {
    await this.opts.redis
      .multi()
      .hset(this.keys.hash, toggle.rule, JSON.stringify(toggle))
      .publish(this.keys.channel, toggle.rule)
      .exec();
    // Our own replica sees its change at once, without waiting for the message.
    this.cache.set(toggle.rule, { ...toggle });
  }

  async clear(rule: string): Promise<void> {
    await this.opts.redis.multi().hdel(this.keys.hash, rule).publish(this.keys.channel, rule).exec();
    this.cache.delete(rule);
  }

  start(): Promise<void> {
    this.started ??= this.doStart();
    return this.started;
  }

  private async doStart(): Promise<void> {
    const sub = this.opts.redis.duplicate();
    this.subscriber = sub;
    sub.on('message', (channel: string) => {
      if (channel === this.keys.channel) this.kick();
    });
    // ioredis re-subscribes after a reconnect; a reload then catches anything missed meanwhile.
    sub.on('ready', () => this.kick());
    sub.on('error', (err: unknown) => this.opts.logger.warn({ err: errorMessage(err) }, 'toggles subscriber error'));
    await sub.subscribe(this.keys.channel);
    await this.refresh();
    this.timer = setInterval(() => this.kick(), this.pollMs);
    this.timer.unref();
  }

  /** Reloads the whole hash (it is small: one field per toggled rule). Coalesces concurrent calls. */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.refreshAgain = false;
          const all = await this.opts.redis.hgetall(this.keys.hash);
          const next = new Map<string, RuleToggle>();
          for (const [rule, json] of Object.entries(all)) {
            const t = parseToggle(rule, json);
            if (t) next.set(rule, t);
            else this.opts.logger.warn({ rule }, 'ignoring malformed toggle in Redis');
          }
          this.cache = next;
          this.lastRefresh = this.opts.clock.now();
        } while (this.refreshAgain && !this.closed);
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private kick(): void {
    if (this.closed) return;
    this.refresh().catch((err: unknown) => this.opts.logger.warn({ err: errorMessage(err) }, 'toggles refresh failed; keeping the cached toggles'));
  }

  /** lua/prune-toggles.lua judges expiry on the value present at delete time: a toggle re-set meanwhile survives. */
  async dropExpired(now: number): Promise<number> {
    try {
      return Number(await redisScript('toggles.prune').run(this.opts.redis, [this.keys.hash], [String(now)]));
    } catch (err) {
      throw new NodewardenError('UNAVAILABLE', `toggles prune: redis: ${errorMessage(err)}`, { retriable: true, cause: err });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    const sub = this.subscriber;
    this.subscriber = undefined;
    if (sub) {
      await sub.quit().catch(() => sub.disconnect());
    }
  }
}

function parseToggle(rule: string, json: string): RuleToggle | null {
  try {
    const v = JSON.parse(json) as Partial<RuleToggle>;
    if (typeof v.enabled !== 'boolean') return null;
    const expiresAt = typeof v.expiresAt === 'number' ? v.expiresAt : null;
    return {
      rule,
      enabled: v.enabled,
      reason: typeof v.reason === 'string' ? v.reason : '',
      by: typeof v.by === 'string' ? v.by : '',
      at: typeof v.at === 'number' ? v.at : 0,
      expiresAt,
    };
  } catch {
    return null;
  }
}
