/**
 * Every Redis key the guard uses, from one builder. All keys share the hash
 * tag `{guard}` so the multi-key Lua scripts also work on Redis Cluster (one
 * slot). Prefix = config `redis.keyPrefix` (plus a test-specific suffix).
 */
export interface GuardKeys {
  /** Hash {reason, by, at}: the global kill switch. No TTL: stays until resumed. */
  paused: string;
  /**
   * String per decision id: idempotency. `in-flight|<leaseEnd>|<reservation>`
   * from authorize, `done|<suppressedUntil>|<outcome>` from settle (policy.ts).
   * TTL = idempotency TTL.
   */
  decision(id: string): string;
  /** Hash {openUntil, trial, trialExpires} per action kind. */
  breaker(action: string): string;
  /** Sorted set of failures per action kind (member = decision id, score = time). */
  breakerFailures(action: string): string;
  /** String `until|reservation` per action kind and target. TTL = cooldown. */
  cooldown(action: string, target: string): string;
  /** Sorted set of authorized actions per kind (member = reservation, score = time). TTL = window. */
  rate(action: string): string;
  /** Hash {at, from, to, res}: the last rollback of a workload. TTL = rollback window. */
  rollback(workload: string): string;
  /** Sorted set of revisions rolled away from (member = revision, score = time). TTL = rollback window. */
  rollbackAway(workload: string): string;
  /** Hash node -> JSON {id, scopes, exp}: cordon reservations not yet (or just) visible in the view. */
  reservations: string;
  /** Hash node -> JSON {g, s, d {gpu -> {id, exp}}}: GPUs nodewarden tainted or is tainting (exp -1: until untaint). */
  gpuTaints: string;
  /** Prefix of every key above (for tests that wipe a namespace). */
  base: string;
}

export function guardKeys(prefix: string): GuardKeys {
  const base = `${prefix}{guard}:`;
  return {
    base,
    paused: `${base}paused`,
    decision: (id) => `${base}decision:${id}`,
    breaker: (action) => `${base}breaker:${action}`,
    breakerFailures: (action) => `${base}breaker:${action}:failures`,
    cooldown: (action, target) => `${base}cooldown:${action}:${target}`,
    rate: (action) => `${base}rate:${action}`,
    rollback: (workload) => `${base}rollback:${workload}`,
    rollbackAway: (workload) => `${base}rollback:${workload}:away`,
    reservations: `${base}reservations`,
    gpuTaints: `${base}gpu-taints`,
  };
}
