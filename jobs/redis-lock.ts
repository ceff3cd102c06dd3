/**
 * Job leases in Redis, shared by every engine replica: `SET key token NX PX
 * ttl` takes a lease, a compare-and-delete script releases it (only by its
 * holder). Slot claims are never released; they expire.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { errorMessage, NodewardenError } from '../core/errors.js';
import { redisScript } from '../adapters/redis/scripts.js';
import type { JobLock } from './lock.js';
import { jobKeys } from '../adapters/redis/keys.js';
import type { JobKeys } from '../adapters/redis/keys.js';


function unavailable(op: string, err: unknown): NodewardenError {
  return new NodewardenError('UNAVAILABLE', `job lock ${op}: redis: ${errorMessage(err)}`, { retriable: true, cause: err });
}

export class RedisJobLock implements JobLock {
  readonly keys: JobKeys;
  constructor(
    private readonly redis: Redis,
    keyPrefix: string,
    /** Names this replica in the lease value (logs, debugging). */
    private readonly owner = `${process.pid}`,
  ) {
    this.keys = jobKeys(keyPrefix);
  }

  async tryRun(job: string, ttlMs: number): Promise<string | null> {
    const token = `${this.owner}:${randomUUID()}`;
    try {
      const ok = await this.redis.set(this.keys.running(job), token, 'PX', Math.max(1, Math.round(ttlMs)), 'NX');
      return ok === 'OK' ? token : null;
    } catch (err) {
      throw unavailable('acquire', err);
    }
  }

  async release(job: string, token: string): Promise<void> {
    const releaseScript = redisScript('jobs.release-lock');
    try {
      await releaseScript.run(this.redis, [this.keys.running(job)], [token]);
    } catch (err) {
      throw unavailable('release', err);
    }
  }

  async claimSlot(job: string, slot: number, ttlMs: number): Promise<boolean> {
    try {
      const ok = await this.redis.set(this.keys.slot(job, slot), this.owner, 'PX', Math.max(1, Math.round(ttlMs)), 'NX');
      return ok === 'OK';
    } catch (err) {
      throw unavailable('claim slot', err);
    }
  }
}
