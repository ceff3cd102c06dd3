/**
 * Every Redis key the jobs write, from one builder (prefix = config
 * `redis.keyPrefix`). Leases and slot claims carry a TTL; the job state keys
 * are small (bounded by the rules and open pages) and kept without one.
 */
export interface JobKeys {
  /** String: the token of the replica running `job` now. TTL = the job's timeout plus slack. */
  running(job: string): string;
  /** String: which replica took cron slot `slot` (ms) of `job`. TTL = shorter than the job's period. */
  slot(job: string, slot: number): string;
  /** String: JSON state a job carries from run to run (ledger checkpoint, open pages, toggles seen). */
  state(job: string): string;
}

export function jobKeys(prefix: string): JobKeys {
  const base = `${prefix}jobs:`;
  return {
    running: (job) => `${base}running:${job}`,
    slot: (job, slot) => `${base}slot:${job}:${slot}`,
    state: (job) => `${base}state:${job}`,
  };
}
