/**
 * `trim-state` (hourly, one replica): bounds the state that TTLs do not.
 *
 * Redis:
 *  - the ledger stream: XADD keeps it near `MAXLEN ~`; the job trims it to
 *    exactly `ledgerMaxLen` and drops entries older than `ledgerMaxAge`
 *    (the Kafka ledger topic is the long-term record);
 *  - each rule's active-episode index (a sorted set refreshed by every new
 *    episode): members whose episode hash expired or ended without a ZREM.
 *  Dedupe ids, guard decisions/cooldowns/rates, rule windows and toggles all
 *  carry their own TTL or are pruned by their owners.
 * Memory (embedded engine): the state store's sweep of expired keys.
 *
 * Every trimmer runs even when another fails; the run fails if any did.
 */
import type { Redis } from 'ioredis';
import { errorMessage, NodewardenError } from '../core/errors.js';
import { ledgerStreamKey } from '../remediations/ledger/redis-stream-ledger.js';
import { StoreKeys } from '../rules/store/keys.js';
import type { Job, JobSummary } from './job.js';
import { checkAborted } from './job.js';
import { redisScript } from '../adapters/redis/scripts.js';

/** One kind of state to bound. */
export interface StateTrimmer {
  readonly name: string;
  /** Removes what is due; returns how many entries went. */
  trim(now: number, signal: AbortSignal): Promise<number>;
}

export function trimStateJob(trimmers: readonly StateTrimmer[]): Job {
  return {
    name: 'trim-state',
    scope: 'cluster',
    async run(ctx): Promise<JobSummary> {
      const out: JobSummary = {};
      const failed: string[] = [];
      for (const t of trimmers) {
        checkAborted(ctx.signal);
        try {
          out[t.name] = await t.trim(ctx.now, ctx.signal);
        } catch (err) {
          out[t.name] = null;
          failed.push(`${t.name}: ${errorMessage(err)}`);
          ctx.logger.warn({ trimmer: t.name, err: errorMessage(err) }, 'trimmer failed');
        }
      }
      if (failed.length > 0) throw new NodewardenError('UNAVAILABLE', `trim-state: ${failed.join('; ')}`, { retriable: true });
      return out;
    },
  };
}

/** The Redis ledger stream: exact MAXLEN, then MINID by age. */
export function redisLedgerTrimmer(redis: Redis, keyPrefix: string, o: { maxLen: number; maxAgeMs: number }): StateTrimmer {
  const key = ledgerStreamKey(keyPrefix);
  return {
    name: 'ledgerStream',
    async trim(now): Promise<number> {
      const byLen = await redis.xtrim(key, 'MAXLEN', '=', o.maxLen);
      // stream ids start with the append time in ms
      const byAge = await redis.xtrim(key, 'MINID', '=', `${Math.max(0, now - o.maxAgeMs)}-0`);
      return Number(byLen) + Number(byAge);
    },
  };
}

/** Members of each rule's active-episode index whose episode is no longer active (atomic per chunk). */
export function redisEpisodeIndexTrimmer(redis: Redis, keyPrefix: string, ruleIds: readonly string[], chunk = 200): StateTrimmer {
  const keys = new StoreKeys(keyPrefix);
  const script = redisScript('jobs.trim-episode-index');
  return {
    name: 'episodeIndexes',
    async trim(_now, signal): Promise<number> {
      let removed = 0;
      for (const rule of ruleIds) {
        const index = keys.episodeIndex(rule);
        const members = await redis.zrange(index, '0', '-1');
        for (let i = 0; i < members.length; i += chunk) {
          checkAborted(signal);
          const part = members.slice(i, i + chunk);
          removed += Number(await script.run(redis, [index, ...part.map((m) => keys.episode(rule, m))], part));
        }
      }
      return removed;
    },
  };
}

/** An in-process store that sweeps expired keys on demand (MemoryStateStore). */
export interface SweepableStore {
  sweep(): void;
  size(): number;
}

export function memoryStoreTrimmer(store: SweepableStore): StateTrimmer {
  return {
    name: 'memoryStore',
    trim(): Promise<number> {
      const before = store.size();
      store.sweep();
      return Promise.resolve(before - store.size());
    },
  };
}
