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
