/**
 * Who runs a job. Two leases per job, both with an expiry so a crashed
 * replica never blocks a job for longer than the lease:
 *
 * - the running lease (`tryRun`): held while a run is in progress, released at
 *   the end — a job never runs concurrently with itself, across replicas too;
 * - the slot claim (`claimSlot`): one per cron slot, never released — with the
 *   replicas' clocks a little apart, the replica whose cron fires second sees
 *   the slot taken and skips, instead of running the job a second time.
 *
 * Adapters: memory (embedded engine, one process) and Redis (`SET NX PX`).
 */
import type { Clock } from '../core/clock.js';

export interface JobLock {
  /** Takes the running lease of `job` for `ttlMs`; resolves to a token, or null when it is held. */
  tryRun(job: string, ttlMs: number): Promise<string | null>;
  /** Releases the running lease if `token` still holds it. */
  release(job: string, token: string): Promise<void>;
  /** Claims cron slot `slot` (ms since epoch) of `job` for `ttlMs`; false when another replica has it. */
  claimSlot(job: string, slot: number, ttlMs: number): Promise<boolean>;
}

/** One process: plain maps with expiry by the injected clock. */
export class MemoryJobLock implements JobLock {
  private readonly leases = new Map<string, { token: string; exp: number }>();
  private readonly slots = new Map<string, number>();
  private seq = 0;
  constructor(private readonly clock: Clock) {}

  tryRun(job: string, ttlMs: number): Promise<string | null> {
    const now = this.clock.now();
    const cur = this.leases.get(job);
    if (cur && cur.exp > now) return Promise.resolve(null);
    const token = `m${++this.seq}`;
    this.leases.set(job, { token, exp: now + ttlMs });
    return Promise.resolve(token);
  }

  release(job: string, token: string): Promise<void> {
    if (this.leases.get(job)?.token === token) this.leases.delete(job);
    return Promise.resolve();
  }

  claimSlot(job: string, slot: number, ttlMs: number): Promise<boolean> {
    const now = this.clock.now();
    for (const [k, exp] of this.slots) if (exp <= now) this.slots.delete(k);
    const key = `${job}@${slot}`;
    if (this.slots.has(key)) return Promise.resolve(false);
    this.slots.set(key, now + ttlMs);
    return Promise.resolve(true);
  }
}
