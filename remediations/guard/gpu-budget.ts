/**
 * GPU budget arithmetic (issue 11, docs/gpu-scope.md) — pure, shared by the
 * memory guard and mirrored line by line in lua/authorize.lua.
 *
 * A node's weight toward `maxUnavailable` is 1 when it is unschedulable or
 * NotReady (or reserved for a cordon), else tainted/gpus of a node for its
 * tainted GPUs, capped at 1. A node whose GPU count is unknown counts whole as
 * soon as one GPU is tainted (the safe side). A decision is allowed when the
 * scope's total weight after it stays within the limit; totals are sums of
 * fractions, so the comparison allows {@link BUDGET_EPSILON} of rounding.
 */

/** Rounding slack of a sum of a few thousand fractions (1/3 + 1/3 + 1/3 must fit a limit of 1). */
export const BUDGET_EPSILON = 1e-9;

export interface NodeGpuState {
  /** Unschedulable, NotReady, or reserved for a cordon: counts as one whole node. */
  unavailable: boolean;
  /** The node's GPU count; null when unknown. */
  gpus: number | null;
  /** GPUs of this node tainted now (view ∪ the guard's own records). */
  tainted: number;
}

/** A node's share of one node toward maxUnavailable, in [0, 1]. */
export function nodeWeight(s: NodeGpuState): number {
  if (s.unavailable) return 1;
  if (s.tainted <= 0) return 0;
  if (s.gpus === null || !(s.gpus > 0)) return 1;
  return Math.min(1, s.tainted / s.gpus);
}

/** What cordoning the node adds to its scopes. */
export function cordonCost(s: NodeGpuState): number {
  return 1 - nodeWeight(s);
}

/** What tainting one more GPU of the node adds (0 for a GPU already tainted). */
export function taintCost(s: NodeGpuState, alreadyTainted: boolean): number {
  if (alreadyTainted) return 0;
  return nodeWeight({ ...s, tainted: s.tainted + 1 }) - nodeWeight(s);
}

/** Total weight of a scope's nodes. */
export function scopeWeight(nodes: Iterable<NodeGpuState>): number {
  let total = 0;
  for (const n of nodes) total += nodeWeight(n);
  return total;
}

/** True when `used + cost` stays within `limit` nodes. */
export function fitsBudget(used: number, cost: number, limit: number): boolean {
  return cost <= 0 || used + cost <= limit + BUDGET_EPSILON;
}

/**
 * Per-node cap on tainted GPUs: `50%` of the node's GPUs (at least 1 when the
 * percentage is non-zero; 1 when the count is unknown) or an absolute count.
 */
export function gpuCapFor(spec: string, gpus: number | null): number {
  if (spec.endsWith('%')) {
    const pct = Number(spec.slice(0, -1));
    if (!(pct > 0)) return 0;
    if (gpus === null || !(gpus > 0)) return 1;
    return Math.max(1, Math.floor((pct / 100) * gpus));
  }
  return Number(spec);
}
