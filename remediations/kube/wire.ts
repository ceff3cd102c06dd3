/**
 * Kubernetes objects in their wire shape: exactly what the API server returns
 * as JSON and what `kubectl get -o yaml` prints. The pure decision logic works
 * on these (not on @kubernetes/client-node's typed models), so the same code
 * runs against the real API and against a simulated cluster loaded from a
 * kubectl dump. Only the fields nodewarden reads are typed; everything else is
 * carried through untouched.
 */
import { isRecord } from '../../core/records.js';

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  [key: string]: unknown;
}

export interface OwnerReference {
  apiVersion?: string;
  kind: string;
  name: string;
  uid?: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [key: string]: unknown;
}

export interface Taint {
  key: string;
  value?: string;
  /** NoSchedule, PreferNoSchedule or NoExecute. */
  effect: string;
  timeAdded?: string;
}

export interface NodeCondition {
  type: string;
  status: string;
  [key: string]: unknown;
}

export interface WireNode extends KubeObject {
  spec?: { unschedulable?: boolean; taints?: Taint[]; [key: string]: unknown };
  status?: { conditions?: NodeCondition[]; [key: string]: unknown };
}

/** A pod template, kept as raw JSON so no field the client does not know is lost. */
export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string>; [key: string]: unknown };
  spec?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface WireDeployment extends KubeObject {
  spec?: { paused?: boolean; template?: PodTemplate; selector?: LabelSelector; [key: string]: unknown };
}

export interface WireReplicaSet extends KubeObject {
  spec?: { template?: PodTemplate; selector?: LabelSelector; [key: string]: unknown };
}

export interface WireDaemonSet extends KubeObject {
  spec?: { template?: PodTemplate; selector?: LabelSelector; [key: string]: unknown };
}

export interface WireControllerRevision extends KubeObject {
  revision: number;
  /** For DaemonSets: a strategic merge patch `{"spec":{"template":{…,"$patch":"replace"}}}`. */
  data?: unknown;
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

/** core/v1 Event, the fields nodewarden writes. */
export interface WireEvent extends KubeObject {
  involvedObject: { apiVersion?: string; kind: string; name: string; namespace?: string; uid?: string };
  reason: string;
  message: string;
  type: 'Normal' | 'Warning';
  source?: { component?: string; host?: string };
  reportingComponent?: string;
  reportingInstance?: string;
  firstTimestamp?: string;
  lastTimestamp?: string;
  eventTime?: string | null;
  count?: number;
  action?: string;
}

/** The annotation the Deployment controller keeps the revision number in. */
export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';
/** Label the Deployment controller adds to each ReplicaSet's template (and kubectl strips on rollback). */
export const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';

export function annotationsOf(o: KubeObject): Record<string, string> {
  return o.metadata?.annotations ?? {};
}

export function labelsOf(o: KubeObject): Record<string, string> {
  return o.metadata?.labels ?? {};
}

/** Parses `deployment.kubernetes.io/revision`; undefined when absent or not an integer (kubectl skips those). */
export function deploymentRevisionOf(o: KubeObject): number | undefined {
  const v = annotationsOf(o)[REVISION_ANNOTATION];
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}

/**
 * True when `child` is controlled by `owner` (ownerReferences with controller=true).
 * The uid is compared when both sides carry one; hand-written dumps may lack uids.
 */
export function isControlledBy(child: KubeObject, owner: KubeObject, ownerKind: string): boolean {
  const refs = child.metadata?.ownerReferences ?? [];
  const ownerUid = owner.metadata?.uid;
  return refs.some(
    (r) =>
      r.controller === true &&
      r.kind === ownerKind &&
      r.name === owner.metadata?.name &&
      (ownerUid === undefined || r.uid === undefined || r.uid === ownerUid),
  );
}

/** The controller owner of an object, if any. */
export function controllerOf(o: KubeObject): OwnerReference | undefined {
  return (o.metadata?.ownerReferences ?? []).find((r) => r.controller === true);
}

/**
 * Structural equality of JSON values (key order ignored). A key holding null
 * equals an absent key, as Kubernetes serialises unset fields either way
 * (e.g. a template's `creationTimestamp: null`).
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined && ao[k] !== null);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined && bo[k] !== null);
  if (ak.length !== bk.length) return false;
  return ak.every((k) => bo[k] !== undefined && bo[k] !== null && jsonEqual(ao[k], bo[k]));
}

/** Deep copy of a JSON value. */
export function clone<T>(v: T): T {
  return structuredClone(v);
}

export { isRecord };
