/**
 * The rule engine's state, behind one port. Operations are BATCHED: the engine
 * collects the operations of a whole batch of events and sends them at once,
 * so the Redis adapter runs them as ONE Lua script call (rules/store/lua/
 * batch.lua: every op, and the batch as a whole, atomic across engine
 * replicas) and the memory adapter runs them synchronously with no promise per
 * event. Results come back in op order and each op sees the effects of the ops
 * before it.
 *
 * Times are milliseconds (event time in replay, clock time live). `member`
 * values make additions idempotent: re-processing an event after a crash
 * (same event id) never counts it twice.
 */

/** Count of members in the window `(ts - windowMs, ts]` after adding `member` at `ts`. */
import type { StoreKeys } from '../../adapters/redis/keys.js';
import { NodewardenError } from '../../core/errors.js';

export interface WindowAddOp { op: 'window.add'; key: string; member: string; ts: number; windowMs: number; ttlMs: number }
export interface WindowCountOp { op: 'window.count'; key: string; now: number; windowMs: number }
/** Distinct members (e.g. nodes) whose latest `ts` lies in `(ts - windowMs, ts]`. */
export interface DistinctAddOp { op: 'distinct.add'; key: string; member: string; ts: number; windowMs: number; ttlMs: number }
export interface DistinctCountOp { op: 'distinct.count'; key: string; now: number; windowMs: number }
/** The members themselves, sorted. */
export interface DistinctMembersOp { op: 'distinct.members'; key: string; now: number; windowMs: number }
/**
 * A sample of a cumulative counter. Returns the increase over the samples in
 * `[ts - windowMs, ts]`: the sum over consecutive samples (by ts, then arrival)
 * of `v - prev`, or of `v` when `v < prev` (a reset: the counter restarted from
 * zero). Samples older than `ts - windowMs` are dropped for good. Both adapters
 * keep running sums of those steps and answer with a difference of two of
 * them, so they agree to the bit, fractions included (integers are exact up to
 * 2^53 of accumulated increase).
 */
export interface CounterAddOp { op: 'counter.add'; key: string; member: string; ts: number; value: number; windowMs: number; ttlMs: number }
export interface CounterIncreaseOp { op: 'counter.increase'; key: string; now: number; windowMs: number }
/**
 * One observation of a sustained predicate. Returns the time since which it has
 * held without interruption, or null. While it holds, `member` sits in the
 * `index` sorted set scored by that time so `due.pop` finds deadlines on tick.
 * Observations older than the last one are ignored.
 */
export interface SustainedObserveOp { op: 'sustained.observe'; key: string; index: string; member: string; ts: number; holds: boolean; ttlMs: number }
export interface SustainedGetOp { op: 'sustained.get'; key: string }
/** Removes and returns (sorted) the members of `index` scored ≤ `before`. */
export interface DuePopOp { op: 'due.pop'; index: string; before: number }
/** Absent-detection: records that `member` was seen at `ts` (max). Returns the previous time or null. */
export interface SeenTouchOp { op: 'seen.touch'; index: string; member: string; ts: number; ttlMs: number }
/**
 * Starts a firing episode unless one is active or the cooldown runs. Returns
 * the episode start (`now`) when it fired, else null. `autoExpireMs ≥ 0`: an
 * episode with no clear condition ends by itself that long after it fired.
 *
 * `by` names what fires: the event id, or '' for a time-driven tick. Re-fired
 * by what fired the active episode at its own start (`now == firedAt`, same
 * `by`: the event redelivered after its batch failed or its replica died), it
 * returns that start again and writes nothing: the same episode, hence the same
 * decision ids, which the guard turns into `suppressed` (done), "retry later"
 * (in flight) or a takeover (lease lapsed) — never a second action, never a
 * lost one. Another event (or a tick) at the same time gets null, as any later one.
 */
export interface EpisodeFireOp { op: 'episode.fire'; key: string; index: string; member: string; now: number; by: string; cooldownMs: number; autoExpireMs: number; ttlMs: number }
/** A matching event while active: remembers the time (for `clear.after`). */
export interface EpisodeTouchOp { op: 'episode.touch'; key: string; index: string; member: string; now: number }
/** Ends the active episode (only if its last match is ≤ `quietBefore`, when given). Returns its start, or null. */
export interface EpisodeClearOp { op: 'episode.clear'; key: string; index: string; member: string; now: number; quietBefore: number | null }
/**
 * Ends the episode AND its cooldown, whether it is active or cooling down: the
 * next match fires (the repair ladder returned what the rule isolated, or a
 * person did; ADR 0034, "Return ends the rule's episode"). Returns the start of
 * the episode it ended, or null when there was none.
 */
export interface EpisodeReleaseOp { op: 'episode.release'; key: string; index: string; member: string }
/** Active episodes whose last match is ≤ `before` (sorted members). */
export interface EpisodeQuietOp { op: 'episode.quiet'; index: string; before: number }
/** The active episode's start, or null. */
export interface EpisodeGetOp { op: 'episode.get'; key: string }
/**
 * Ordered sequence: an event matched step `step` (0-based) of `steps` at `ts`.
 * Returns true when the last step completes a chain whose first step is
 * within `windowMs` (and resets the chain).
 */
export interface SequenceStepOp { op: 'sequence.step'; key: string; step: number; steps: number; ts: number; windowMs: number; ttlMs: number }
/** Keeps the maximum of a numeric value (e.g. the last time a workload changed). Returns the stored value. */
export interface MaxSetOp { op: 'max.set'; key: string; value: number; ttlMs: number }
export interface MaxGetOp { op: 'max.get'; key: string }

export type StoreOp =
  | WindowAddOp
  | WindowCountOp
  | DistinctAddOp
  | DistinctCountOp
  | DistinctMembersOp
  | CounterAddOp
  | CounterIncreaseOp
  | SustainedObserveOp
  | SustainedGetOp
  | DuePopOp
  | SeenTouchOp
  | EpisodeFireOp
  | EpisodeTouchOp
  | EpisodeClearOp
  | EpisodeReleaseOp
  | EpisodeQuietOp
  | EpisodeGetOp
  | SequenceStepOp
  | MaxSetOp
  | MaxGetOp;

/** number for counts/times, null for "none", string[] for member lists, boolean for sequence completion. */
export type StoreResult = number | null | string[] | boolean;

/** What `StateStore.trim` needs to find the store's long-lived indexes. */
export interface StoreTrimScope {
  keys: StoreKeys;
  /** The ids of the loaded rules (one episode index each). */
  rules: readonly string[];
  signal: AbortSignal;
}

export interface StateStore {
  /** Runs the ops in order; result i belongs to op i. */
  exec(ops: readonly StoreOp[]): Promise<StoreResult[]>;
  /** Present on in-process adapters: the same, without a promise (the engine's fast path). */
  execSync?(ops: readonly StoreOp[]): StoreResult[];
  /**
   * Present on stores that hold state in memory behind a write-behind
   * (partition-local state, ADR 0045): the same as `exec`, and in the same
   * atomic call everything changed in memory since the last such call is made
   * durable. The engine makes its LAST store call of a batch, a tick or a
   * release with it (an empty one when there is nothing left to run), before
   * any decision leaves the engine.
   */
  execFinal?(ops: readonly StoreOp[]): Promise<StoreResult[]>;
  /**
   * Removes state that outlived its use (the trim-state job): keys past their
   * TTL, index members of episodes that ended. Safe while the engine runs.
   * Returns how many entries went.
   */
  trim(scope: StoreTrimScope): Promise<number>;
  close(): Promise<void>;
}

/** A flush carried an epoch another replica has since replaced: this replica lost the partition. */
export class StaleEpochError extends NodewardenError {
  constructor(readonly partition: number) {
    super('CONFLICT', `partition ${partition}: owner epoch is stale (another replica took the partition); the batch will be redelivered to its owner`, { retriable: true });
    this.name = 'StaleEpochError';
  }
}
