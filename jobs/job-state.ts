/**
 * State a job carries from one run to the next (a ledger checkpoint, the
 * open pages or toggles it has seen). Cluster-scoped jobs run on whichever
 * replica wins the slot, so in production the state lives in Redis; the
 * embedded engine keeps it in memory. Values are JSON.
 */
import type { Redis } from 'ioredis';
import { errorMessage, NodewardenError } from '../core/errors.js';
import { jobKeys } from '../adapters/redis/keys.js';
import type { JobKeys } from '../adapters/redis/keys.js';

export interface JobStateStore {
  /** The stored value, or null when none (or unreadable: a job then starts over). */
  load<T>(job: string): Promise<T | null>;
  save(job: string, value: unknown): Promise<void>;
}

export class MemoryJobState implements JobStateStore {
  private readonly values = new Map<string, string>();
  load<T>(job: string): Promise<T | null> {
    const v = this.values.get(job);
    return Promise.resolve(v === undefined ? null : (JSON.parse(v) as T));
  }
  save(job: string, value: unknown): Promise<void> {
    this.values.set(job, JSON.stringify(value));
    return Promise.resolve();
  }
}

export class RedisJobState implements JobStateStore {
  readonly keys: JobKeys;
  constructor(
    private readonly redis: Redis,
    keyPrefix: string,
  ) {
    this.keys = jobKeys(keyPrefix);
  }

  async load<T>(job: string): Promise<T | null> {
    let text: string | null;
    try {
      text = await this.redis.get(this.keys.state(job));
    } catch (err) {
      throw new NodewardenError('UNAVAILABLE', `job state ${job}: redis: ${errorMessage(err)}`, { retriable: true, cause: err });
    }
    if (text === null) return null;
    try {
      return JSON.parse(text) as T;
    } catch {
      return null;
    }
  }

  async save(job: string, value: unknown): Promise<void> {
    try {
      await this.redis.set(this.keys.state(job), JSON.stringify(value));
    } catch (err) {
      throw new NodewardenError('UNAVAILABLE', `job state ${job}: redis: ${errorMessage(err)}`, { retriable: true, cause: err });
    }
  }
}
