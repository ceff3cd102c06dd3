/**
 * Kubernetes remediations: executors (cordon, uncordon, rollback) over the
 * KubeApi port, its client-node adapter, and the live ClusterView.
 * The pure decision functions are exported for the simulated cluster and tests.
 */
export type { KubeApi, MergePatch, JsonPatchOp, StrategicMergePatch } from './kube-api.js';
export { KubeExecutor, createKubeExecutor, selectorString, type KubeExecutorOptions } from './executors.js';
export { createClientNodeKubeApi, kubeApiErrorCounter, mapClientNodeError, KUBE_API_ERRORS_METRIC, type ClientNodeKubeApiOptions } from './client-node-api.js';
export { createClientNodeListWatch, type ClientNodeWatchOptions } from './client-node-watch.js';
export { LiveCluster, createLiveCluster, type LiveClusterOptions, type ListWatchSource, type WatchedResource, type WatchHandle } from './live-cluster.js';
export { planCordon, planUncordon, isCordonedByNodewarden, nodeInfoOf, unschedulableManager, NW_TAINT, FIELD_MANAGER, type NodePlan } from './node-decisions.js';
export {
  planDeploymentRollback,
  planDaemonSetRollback,
  pickDeploymentRevision,
  pickDaemonSetRevision,
  equalIgnoreHash,
  NW_ROLLBACK,
  ANNOTATIONS_TO_SKIP,
  type RollbackPlan,
} from './rollback-decisions.js';
export { revisionEntryOf, workloadKey } from './revisions.js';
export { buildEvent, eventName } from './events.js';
export * from './wire.js';
