/**
 * The port between nodewarden's Kubernetes executors and an API server.
 * Two adapters: `createClientNodeKubeApi` (the real API through
 * @kubernetes/client-node) and the simulated cluster's in-memory API (replay,
 * demo, unit tests). Executors only ever talk to this interface, so the same
 * read–decide–patch–retry code runs against both.
 *
 * Objects are in wire shape (see wire.ts). Every method rejects with a
 * `NodewardenError` whose code tells what happened: `CONFLICT` (HTTP 409,
 * retriable), `FORBIDDEN` (403), `UNAUTHORIZED` (401), `NOT_FOUND` (404),
 * `REQUEST_INVALID` (400/422), `RATE_LIMITED` (429, retriable),
 * `UNAVAILABLE` (5xx or network, retriable), `TIMEOUT` (retriable).
 */
import type {
  WireControllerRevision,
  WireDaemonSet,
  WireDeployment,
  WireEvent,
  WireNode,
  WireReplicaSet,
} from './wire.js';

/** RFC 7386 JSON merge patch. `null` deletes a key. */
export type MergePatch = Record<string, unknown>;

/** RFC 6902 JSON patch operation (nodewarden uses replace/add/remove/test). */
export interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace' | 'test';
  path: string;
  value?: unknown;
}

/**
 * Strategic merge patch. nodewarden only sends the ControllerRevision data of a
 * DaemonSet (whose template carries `"$patch": "replace"`) plus metadata.
 */
export type StrategicMergePatch = Record<string, unknown>;

export interface KubeApi {
  getNode(name: string): Promise<WireNode>;
  /**
   * Merge-patches a Node. When the patch carries `metadata.resourceVersion`
   * the API server applies it only if the object is still at that version
   * (409 otherwise): optimistic concurrency.
   */
  patchNode(name: string, patch: MergePatch): Promise<WireNode>;

  getDeployment(namespace: string, name: string): Promise<WireDeployment>;
  /** JSON-patches a Deployment (as `kubectl rollout undo` does). */
  patchDeployment(namespace: string, name: string, patch: JsonPatchOp[]): Promise<WireDeployment>;
  /** ReplicaSets of a namespace matching a label selector (`a=b,c=d`). */
  listReplicaSets(namespace: string, labelSelector?: string): Promise<WireReplicaSet[]>;

  getDaemonSet(namespace: string, name: string): Promise<WireDaemonSet>;
  /** Strategic-merge-patches a DaemonSet (as `kubectl rollout undo daemonset` does). */
  patchDaemonSet(namespace: string, name: string, patch: StrategicMergePatch): Promise<WireDaemonSet>;
  listControllerRevisions(namespace: string, labelSelector?: string): Promise<WireControllerRevision[]>;

  /** Creates a core/v1 Event in `namespace`. */
  createEvent(namespace: string, event: WireEvent): Promise<void>;
}
