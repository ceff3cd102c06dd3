/**
 * `guard-reconcile` (every minute, on every replica): the guard counts real
 * unavailable capacity from this replica's cluster view, which the watch keeps
 * current; the view is re-listed in full (repairing anything a dropped watch
 * event left stale) only when its last full list is older than `maxViewAgeMs`
 * (default 5 min): at 10,000 nodes a LIST of every Node each minute on every
 * replica was the largest apiserver load the engine made (issue 13). Then
 * cordon reservations that no longer mean anything are released: expired
 * ones (a crashed replica's in-flight cordon), and those of nodes that left
 * the cluster. Both would otherwise hold budget until the next authorize
 * happens to prune them.
 */
import type { ClusterView } from '../core/cluster.js';
import { isUnavailable } from '../core/cluster.js';
import type { ControllableGuard, ReservationEntry } from '../remediations/ports.js';
import type { Job, JobSummary } from './job.js';
import { checkAborted } from './job.js';

/** A view that can re-list everything now (the live cluster view). */
export interface ReconcilableView {
  reconcile(): Promise<void>;
  /** ms since epoch of the oldest of its last full lists (0: never listed). */
  listedAt(): number;
}

/** Default age of the view's last full list past which the job re-lists it. */
export const DEFAULT_MAX_VIEW_AGE_MS = 5 * 60_000;


/** Pure: a reservation is stale once expired, or when its node is gone from a view that knows nodes. */
export function staleReservation(now: number, view: ClusterView): (r: ReservationEntry) => boolean {
  const known = view.listNodes().length > 0;
  return (r) => r.exp <= now || (known && view.getNode(r.node) === undefined);
}

export interface GuardReconcileDeps {
  view: ClusterView;
  /** Present when the view can re-list (live cluster); a simulated cluster is always current. */
  reconcilable?: ReconcilableView;
  /** The guard whose stale cordon reservations are released. */
  guard?: Pick<ControllableGuard, 'pruneReservations'>;
  /** Re-list only when the last full list is at least this old (default 5 min). */
  maxViewAgeMs?: number;
}

export function guardReconcileJob(d: GuardReconcileDeps): Job {
  return {
    name: 'guard-reconcile',
    scope: 'replica',
    async run(ctx): Promise<JobSummary> {
      const relist = d.reconcilable !== undefined && ctx.now - d.reconcilable.listedAt() >= (d.maxViewAgeMs ?? DEFAULT_MAX_VIEW_AGE_MS);
      if (relist) await d.reconcilable?.reconcile();
      checkAborted(ctx.signal);
      const released = d.guard ? await d.guard.pruneReservations(staleReservation(ctx.now, d.view)) : 0;
      const nodes = d.view.listNodes();
      return { relisted: relist, nodes: nodes.length, unavailable: nodes.filter(isUnavailable).length, reservationsReleased: released };
    },
  };
}
