/**
 * Workload revisions as the ClusterView exposes them, derived from the
 * objects that record them: a Deployment's ReplicaSets (annotation
 * `deployment.kubernetes.io/revision`) and a DaemonSet's ControllerRevisions
 * (`.revision`). `createdAt` is the revision object's creationTimestamp.
 */
import type { WorkloadRef, WorkloadRevision } from '../../core/cluster.js';
import { controllerOf, deploymentRevisionOf, type KubeObject, type WireControllerRevision } from './wire.js';

/** The revision a ReplicaSet or ControllerRevision records, or undefined when it records none. */
export function revisionEntryOf(o: KubeObject): WorkloadRevision | undefined {
  const owner = controllerOf(o);
  const namespace = o.metadata?.namespace ?? 'default';
  const createdAt = Date.parse(o.metadata?.creationTimestamp ?? '');
  if (owner === undefined) return undefined;
  if (o.kind === 'ReplicaSet' && owner.kind === 'Deployment') {
    const revision = deploymentRevisionOf(o);
    if (revision === undefined) return undefined;
    return { kind: 'Deployment', namespace, name: owner.name, revision, createdAt: Number.isNaN(createdAt) ? 0 : createdAt };
  }
  if (o.kind === 'ControllerRevision' && owner.kind === 'DaemonSet') {
    const revision = Number((o as WireControllerRevision).revision);
    if (!Number.isInteger(revision)) return undefined;
    return { kind: 'DaemonSet', namespace, name: owner.name, revision, createdAt: Number.isNaN(createdAt) ? 0 : createdAt };
  }
  return undefined;
}

/** `kind/namespace/name`: the key revisions are grouped under. */
export function workloadKey(ref: WorkloadRef): string {
  return `${ref.kind}/${ref.namespace}/${ref.name}`;
}

/** Oldest first (by revision number, which only ever grows). */
export function sortRevisions(revs: WorkloadRevision[]): WorkloadRevision[] {
  return revs.sort((a, b) => a.revision - b.revision);
}
