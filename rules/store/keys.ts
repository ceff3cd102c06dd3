/**
 * Every state key name, from one builder (both adapters use these strings;
 * the Redis adapter prefixes nothing further). Scope keys are already
 * escaped by the engine (see rules/engine/scope.ts).
 */
import type { WorkloadRef } from '../../core/cluster.js';

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
  /** Distinct nodes seen per group: the group-size fallback when the cluster view has none. */
  groupSeen(label: string, value: string): string {
    return `${this.prefix}rs:gs:${label}:${value}`;
  }
}
