/**
 * A read-only view of the cluster that the engine (group sizes, recent
 * workload revisions) and the guard (real unavailable capacity) consult.
 * Adapters: a simulated cluster built from `kubectl get -o yaml` dumps
 * (replay, demo) and a live one kept in sync with the API by watch + reconcile.
 */
export interface NodeInfo {
  name: string;
  labels: Record<string, string>;
  /** spec.unschedulable */
  unschedulable: boolean;
  /** Ready condition is True. */
  ready: boolean;
  /** True when nodewarden itself cordoned it (annotation `nodewarden.io/cordoned-by`). */
  cordonedByNodewarden: boolean;
  /** GPUs in the node (capacity `nvidia.com/gpu`, else the GPU count label); absent/null = unknown. */
  gpus?: number | null;
  /** GPUs of this node under a DRA device taint, where the view knows (ids as in Device targets). */
  taintedGpus?: readonly string[];
  /**
   * GPUs of this node under a device taint someone else made (a DeviceTaintRule
   * not nodewarden's, or the DRA driver's own device taint), ids as in Device
   * targets; bounded (remediations/kube/device-taint-view.ts). The guard counts
   * them with its own (a GPU in both counts once).
   */
  otherTaintedGpus?: readonly string[];
}

/** A DeviceTaintRule of someone else's that the view cannot map to devices (the guard denies new isolation until it can). */
export interface UnplacedDeviceTaint {
  rule: string;
  reason: string;
}

export interface WorkloadRef {
  kind: 'DaemonSet' | 'Deployment';
  namespace: string;
  name: string;
}

export interface WorkloadRevision extends WorkloadRef {
  revision: number;
  /** When this revision was created (ms since epoch). */
  createdAt: number;
}

export interface ClusterView {
  /** Every node known right now. */
  listNodes(): NodeInfo[];
  getNode(name: string): NodeInfo | undefined;
  /** Revisions of a workload, oldest first; empty when unknown. */
  workloadRevisions(ref: WorkloadRef): WorkloadRevision[];
  /** Foreign DeviceTaintRules the view cannot place (first few, and how many); absent = the view does not watch them. */
  unplacedDeviceTaints?(): { rules: readonly UnplacedDeviceTaint[]; count: number };
}

/** Every GPU of the node the view shows tainted: own (`taintedGpus`) ∪ others' (`otherTaintedGpus`). */
export function viewTaintedGpus(n: NodeInfo): string[] {
  if (!n.otherTaintedGpus || n.otherTaintedGpus.length === 0) return [...(n.taintedGpus ?? [])];
  return [...new Set([...(n.taintedGpus ?? []), ...n.otherTaintedGpus])];
}

/** A node counts against the unavailable budget when it cannot take work, whoever made it so. */
export function isUnavailable(n: NodeInfo): boolean {
  return n.unschedulable || !n.ready;
}

/** Annotation and taint names nodewarden writes (one place, used by executors, views and tests). */
export const NW = {
  taintKey: 'nodewarden.io/unhealthy',
  annCordonedBy: 'nodewarden.io/cordoned-by',
  annRule: 'nodewarden.io/rule',
  annReason: 'nodewarden.io/reason',
  annTime: 'nodewarden.io/cordoned-at',
  annDecision: 'nodewarden.io/decision-id',
  /** Labels of the DeviceTaintRules nodewarden creates (remediations/kube/device-taints.ts). */
  labelManagedBy: 'app.kubernetes.io/managed-by',
  labelTaintNode: 'nodewarden.io/node',
  labelTaintGpu: 'nodewarden.io/gpu',
} as const;

/** Default node label with the GPU count (GPU feature discovery); config `guard.gpuCountLabel`. */
export const DEFAULT_GPU_COUNT_LABEL = 'nvidia.com/gpu.count';
