/**
 * ReservationPruner adapters over the two guard stores. The decision (which
 * reservation is stale) is the pure `staleReservation`; the Redis delete is
 * compare-and-delete, so a reservation rewritten meanwhile is kept.
 */
import type { Redis } from 'ioredis';
import { errorMessage, NodewardenError } from '../core/errors.js';
import { guardKeys } from '../remediations/guard/keys.js';
import type { MemoryGuardState } from '../remediations/guard/memory-guard.js';
import type { ReservationEntry, ReservationPruner } from './guard-reconcile.js';
import { redisScript } from '../adapters/redis/scripts.js';

export function memoryReservationPruner(state: MemoryGuardState): ReservationPruner {
  return {
    prune(isStale): Promise<number> {
      let n = 0;
      for (const [node, r] of state.reservations) {
        if (isStale({ node, exp: r.exp })) {
          state.reservations.delete(node);
          n++;
        }
      }
      return Promise.resolve(n);
    },
  };
}

/** Parses one field of the guard's reservations hash (`{id, scopes, exp}`); null when malformed. */
export function parseReservation(node: string, json: string): ReservationEntry | null {
  try {
    const v = JSON.parse(json) as { exp?: unknown };
    const exp = typeof v.exp === 'number' ? v.exp : typeof v.exp === 'string' ? Number(v.exp) : NaN;
    return Number.isFinite(exp) ? { node, exp } : null;
  } catch {
    return null;
  }
}

export function redisReservationPruner(redis: Redis, keyPrefix: string): ReservationPruner {
  const key = guardKeys(keyPrefix).reservations;
  const script = redisScript('jobs.hdel-if-equal');
  return {
    async prune(isStale): Promise<number> {
      try {
        const all = await redis.hgetall(key);
        const args: string[] = [];
        for (const [node, json] of Object.entries(all)) {
          const r = parseReservation(node, json);
          // a malformed entry never counts for anything useful: release it too
          if (r === null || isStale(r)) args.push(node, json);
        }
        if (args.length === 0) return 0;
        return Number(await script.run(redis, [key], args));
      } catch (err) {
        throw new NodewardenError('UNAVAILABLE', `guard reservations: redis: ${errorMessage(err)}`, { retriable: true, cause: err });
      }
    },
  };
}
