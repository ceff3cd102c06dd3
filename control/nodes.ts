/**
 * The node list the console's fleet strip draws (GET /api/v1/nodes): every
 * node of the cluster view with its group, one derived state and the last
 * ledger decision that targeted it. Pure: the cluster view and the ledger
 * entries come in, views come out.
 */
import type { NodeInfo } from '../core/cluster.js';
import type { LedgerRecord } from '../core/decision.js';
import type { LedgerEntry } from '../remediations/ledger/entry.js';

/**
 * One state per node, first match wins: cordoned by nodewarden (its
 * annotation), cordoned by anyone else, NotReady, the guard's last word on it
 * was a denial, healthy.
 */
export const NODE_STATES = ['cordoned-by-nodewarden', 'cordoned-by-person', 'not-ready', 'denied', 'healthy'] as const;
export type NodeState = (typeof NODE_STATES)[number];

export interface NodeDecision {
  ts: string;
  rule: string;
  action: LedgerRecord['action'];
  outcome: LedgerRecord['outcome'];
  guard: string | null;
  reason: string;
}

export interface NodeView {
  name: string;
  /** Value of the group label (`labels.group` in the config), null when the node has none. */
  group: string | null;
  ready: boolean;
  unschedulable: boolean;
  cordonedByNodewarden: boolean;
  state: NodeState;
  /** The newest ledger record whose target is this node, among the entries read. */
  lastDecision: NodeDecision | null;
}

export function nodeState(n: NodeInfo, last: NodeDecision | null): NodeState {
  if (n.unschedulable && n.cordonedByNodewarden) return 'cordoned-by-nodewarden';
  if (n.unschedulable) return 'cordoned-by-person';
  if (!n.ready) return 'not-ready';
  if (last?.outcome === 'denied') return 'denied';
  return 'healthy';
}

/** Node views sorted by group then name; `entries` newest first (as the ledger reader returns them). */
export function nodeViews(nodes: readonly NodeInfo[], entries: readonly LedgerEntry[], groupLabel: string): NodeView[] {
  const last = new Map<string, NodeDecision>();
  for (const e of entries) {
    if ('kind' in e || e.target.kind !== 'Node' || last.has(e.target.name)) continue;
    last.set(e.target.name, { ts: e.ts, rule: e.rule, action: e.action, outcome: e.outcome, guard: e.guard, reason: e.reason });
  }
  return nodes
    .map((n): NodeView => {
      const d = last.get(n.name) ?? null;
      return {
        name: n.name,
        group: n.labels[groupLabel] ?? null,
        ready: n.ready,
        unschedulable: n.unschedulable,
        cordonedByNodewarden: n.cordonedByNodewarden,
        state: nodeState(n, d),
        lastDecision: d,
      };
    })
    .sort((a, b) => (a.group ?? '\uffff').localeCompare(b.group ?? '\uffff') || a.name.localeCompare(b.name));
}
