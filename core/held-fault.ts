/**
 * A held fault (ADR 0034): a fault event that matched an isolating rule (one
 * with a `cordon` or `taint` action) on a node scope, whose condition held,
 * but which did not fire because the rule had already fired there — its
 * episode is active or cooling down. The engine emits it next to its
 * decisions; the repair ladder (remediations/ladder) reads it as "the fault is
 * back" when the node's (or the GPU's) episode is in validation or in its quiet
 * period, so a fault during the rule's cooldown is not swallowed. Pure data.
 */
export interface HeldFault {
  rule: string;
  node: string;
  /** The GPU the event names (UUID, else PCI bus id), or null. */
  gpu: string | null;
  eventId: string;
  /** The event's time (ms since epoch). */
  at: number;
  /** Short, for the episode's history (e.g. `gpu.xid Xid 79`). */
  reason: string;
  /** The Xid the event carries, bounded (as in a decision's `evidence.xid`): where a new fault would start the ladder. */
  xid: { code: number | null; message: string; gpu: string | null } | null;
}

/** Most held faults one engine batch hands on (the rest are dropped; one per node and GPU is all the ladder needs). */
export const MAX_HELD_FAULTS_PER_BATCH = 1000;

/** A rule's episode on one scope (the engine's scope key, e.g. `n:<node>|<gpu>`): what isolated a node or GPU. */
export interface RuleScope {
  rule: string;
  scope: string;
}

/**
 * The rule engine's episodes, as the repair ladder needs them (ADR 0034,
 * "Return ends the rule's episode"): when a node or GPU is back in service —
 * returned by the ladder, or by a person — the rule episodes that isolated it
 * end, cooldown included, so the next fault fires the rule again (a new cordon
 * or taint, a new page, a new ladder episode). Adapter: the rule engine.
 */
export interface RuleEpisodes {
  /** Ends these episodes and their cooldowns; unknown rules are skipped. Returns how many there were. */
  release(episodes: readonly RuleScope[]): Promise<number>;
}

/** Most rule episodes one ladder episode remembers as its isolation (the first rule, and others that isolated it again). */
export const MAX_ISOLATING_EPISODES = 8;
