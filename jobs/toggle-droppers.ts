/**
 * ExpiredToggleDropper adapters. Redis: the toggles' own atomic prune script
 * (rules/toggles/lua/prune-toggles.lua judges expiry on the value present at
 * delete time, so a toggle re-set meanwhile survives). Memory: reading the
 * toggles at `now` drops the expired ones (MemoryRuleToggles judges on read).
 */
import type { Redis } from 'ioredis';
import { errorMessage, NodewardenError } from '../core/errors.js';
import { redisScript } from '../adapters/redis/scripts.js';
import { toggleKeys } from '../rules/toggles/keys.js';
import type { RuleToggles } from '../rules/toggles/port.js';
import type { ExpiredToggleDropper } from './expire-toggles.js';

export function redisToggleDropper(redis: Redis, keyPrefix: string): ExpiredToggleDropper {
  const script = redisScript('toggles.prune');
  const key = toggleKeys(keyPrefix).hash;
  return {
    async dropExpired(now: number): Promise<number> {
      try {
        return Number(await script.run(redis, [key], [String(now)]));
      } catch (err) {
        throw new NodewardenError('UNAVAILABLE', `toggles prune: redis: ${errorMessage(err)}`, { retriable: true, cause: err });
      }
    },
  };
}

export function memoryToggleDropper(toggles: RuleToggles): ExpiredToggleDropper {
  return {
    dropExpired(now: number): Promise<number> {
      toggles.list(now);
      return Promise.resolve(0);
    },
  };
}
