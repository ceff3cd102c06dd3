/**
 * The one registry of nodewarden's Redis keys: every key family, its owner
 * and its builder. Every key starts with config `redis.keyPrefix` (default
 * `nw:`). Keys are data: a change here orphans what running replicas wrote,
 * so test/unit/adapters/redis-keys.test.ts lists an example of each family
 * and any change shows up there. Only strings here: no client, no I/O.
 *
 * | family | owner | shape |
 * |---|---|---|
 * | rule state (leaves, indexes, episodes, tick outbox, workload changes, group sizes) | rules/store (state stores), rules/engine | `<p>rs:…` |
 * | event dedupe | rules/service/dedupe.ts | `<p>dedupe2:id:<event id>`, `<p>dedupe2:claim:<token>` |
 * | consumer watermarks | rules/service/watermark.ts | `<p>engine:watermarks:<group>:<topic>` |
 * | rule toggles (hash, pub/sub channel) | rules/toggles | `<p>toggles`, `<p>toggles:changed` |
 * | blast-radius guard | remediations/guard | `<p>{guard}:…` |
 * | paging documents (incidents, approvals, silences, ladder episodes) | remediations/incidents/redis-doc-store.ts | `<p>{paging}:<ns>:…` |
 * | ledger stream (decisions and toggle audits) | remediations/ledger | `<p>ledger` |
 * | scheduled jobs (leases, cron slots, state) | jobs/ | `<p>jobs:…` |
 */
import type { WorkloadRef } from '../../core/cluster.js';

// ---- rule state (rules/store: memory and Redis state stores use the same names)

/** Scope keys are already escaped by the engine (see rules/engine/scope.ts). */
export type LeafKind = 'w' | 'd' | 'cs' | 's' | 'q';

export class StoreKeys {
  constructor(readonly prefix: string = 'nw:') {}
  /**
   * count (w) / distinct (d) / counter series (cs) / sustained (s) / sequence (q)
   * state of one leaf of a rule on one scope. A kind names its encoding too:
   * when an encoding changes, the kind changes (counters were sorted sets under
   * `c`, now packed strings under `cs`), so replicas of two versions sharing
   * one Redis during a rolling upgrade never read each other's format
   * (WRONGTYPE would fail whole batches); the old keys expire by their TTL.
   */
  leaf(kind: LeafKind, rule: string, slot: number, scope: string): string {
    return `${this.prefix}rs:${kind}:${rule}:${slot}:${scope}`;
  }
  /** Sorted set of scopes with a pending sustained deadline (score = since). */
  sustainedIndex(rule: string, slot: number): string {
    return `${this.prefix}rs:si:${rule}:${slot}`;
  }
  /** Sorted set of scopes last seen (score = time) for absent detection. */
  seenIndex(rule: string, slot: number): string {
    return `${this.prefix}rs:a:${rule}:${slot}`;
  }
  episode(rule: string, scope: string): string {
    return `${this.prefix}rs:e:${rule}:${scope}`;
  }
  /** Sorted set of active episodes of a rule (score = last matching event). */
  episodeIndex(rule: string): string {
    return `${this.prefix}rs:ei:${rule}`;
  }
  /**
   * Firings of the tick (time-driven rules), written atomically with the
   * episode they open (a distinct set, member = JSON [rule, scope, firedAt]):
   * any replica re-derives their decisions when the one that fired died
   * before the guard saw them (rules/engine/engine.ts, tick outbox).
   */
  tickOutbox(): string {
    return `${this.prefix}rs:to`;
  }
  /** Last time a workload got a new revision (from workload.revision events). */
  workloadChange(ref: WorkloadRef): string {
    return `${this.prefix}rs:wl:${ref.kind}:${ref.namespace}:${ref.name}`;
  }
  /**
   * Partition-local state (ADR 0045): one hash per consumed partition (field =
   * state key, value = the entry's JSON), written behind by its owner.
   */
  partitionState(group: string, topic: string, partition: number): string {
    return `${this.prefix}rs:pl:${group}:${topic}:${partition}`;
  }
  /** Partition-local state's op log since the hash's snapshot (ADR 0047): a list of encoded entries, one per write. */
  partitionLog(group: string, topic: string, partition: number): string {
    return `${this.prefix}rs:plog:${group}:${topic}:${partition}`;
  }
  /** The partition's owner epoch (a counter): a write-behind carrying an older one fails. */
  partitionEpoch(group: string, topic: string, partition: number): string {
    return `${this.prefix}rs:pe:${group}:${topic}:${partition}`;
  }
  /** Distinct nodes seen per group: the group-size fallback when the cluster view has none. */
  groupSeen(label: string, value: string): string {
    return `${this.prefix}rs:gs:${label}:${value}`;
  }
}

// ---- event dedupe (rules/service/dedupe.ts)

/** String per event id: the token of the claim that holds it (dedupe-claim.lua; ADR 0048). */
export function dedupeKey(prefix: string, eventId: string): string {
  return `${prefix}dedupe2:id:${eventId}`;
}

/** Prefix of the claim keys: `<prefix>dedupe2:claim:<token>` is 'pending', then 'done' (dedupe-claim.lua, dedupe-confirm.lua). */
export function dedupeClaimPrefix(prefix: string): string {
  return `${prefix}dedupe2:claim:`;
}

// ---- consumer watermarks (rules/service/watermark.ts)

/** Hash partition → event-time watermark of one consumer group on one topic. */
export function watermarkKey(prefix: string, groupId: string, topic: string): string {
  return `${prefix}engine:watermarks:${groupId}:${topic}`;
}

// ---- rule toggles (rules/toggles)

/** Every Redis key and channel the toggles use, from one builder (prefix = config `redis.keyPrefix`). */
export interface ToggleKeys {
  /** Hash: field = rule id, value = JSON RuleToggle. */
  hash: string;
  /** Pub/sub channel: message = the rule id that changed. */
  channel: string;
}

export function toggleKeys(prefix: string): ToggleKeys {
  return { hash: `${prefix}toggles`, channel: `${prefix}toggles:changed` };
}

// ---- blast-radius guard (remediations/guard)

/**
 * All guard keys share the hash tag `{guard}` so the multi-key Lua scripts
 * also work on Redis Cluster (one slot).
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

// ---- paging documents (remediations/incidents/redis-doc-store.ts)

/** Paging DocStore keys; they share the hash tag `{paging}` (one slot on Redis Cluster). */
export interface PagingKeys {
  /** Hash {v, j} of one document of namespace `ns`. */
  doc: (ns: string, id: string) => string;
  /** Set of the document ids of `ns`. */
  index: (ns: string) => string;
  /** Claim marker of one id of `ns`. */
  claim: (ns: string, id: string) => string;
  /** Prefix of every key above (for tests that wipe a namespace). */
  base: string;
}

export function pagingKeys(prefix: string): PagingKeys {
  const base = `${prefix}{paging}:`;
  return {
    base,
    doc: (ns, id) => `${base}${ns}:doc:${id}`,
    index: (ns) => `${base}${ns}:ids`,
    claim: (ns, id) => `${base}${ns}:seen:${id}`,
  };
}

// ---- ledger stream (remediations/ledger RedisStreamLedger: decisions and operator audits, query, trim)

/** The ledger stream: decisions and operator audits (toggles, pause, resume). */
export function ledgerStreamKey(prefix: string): string {
  return `${prefix}ledger`;
}

/** String per appended record key (record.ts `ledgerKey`): append.lua appends a key once. TTL = seen TTL. */
export function ledgerSeenKey(prefix: string, recordKey: string): string {
  return `${ledgerStreamKey(prefix)}:seen:${recordKey}`;
}

// ---- scheduled jobs (jobs/)

/** Leases and slot claims carry a TTL; job state keys are small and kept without one. */
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
