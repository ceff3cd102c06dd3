/** Builders for wire-shape objects and decisions used by the kube/simulated unit tests. */
import type { Decision } from '../../../../core/decision.js';
import type { Taint, WireControllerRevision, WireDaemonSet, WireDeployment, WireNode, WireReplicaSet } from '../../../../remediations/kube/wire.js';

export function decision(over: Partial<Decision> = {}): Decision {
  return {
    id: 'dec-1',
    at: Date.parse('2026-11-21T10:15:24Z'),
    rule: 'gpu-xid-fatal',
    action: 'cordon',
    target: { kind: 'Node', name: 'gpu-node-001' },
    reason: 'Xid 79 (GPU has fallen off the bus) on gpu-node-001',
    ...over,
  };
}

export function node(name: string, over: { unschedulable?: boolean; annotations?: Record<string, string>; taints?: Taint[]; ready?: boolean; rv?: string; managedFields?: unknown[] } = {}): WireNode {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      uid: `uid-${name}`,
      resourceVersion: over.rv ?? '100',
      labels: { 'nodewarden.io/pool': 'h100-train', 'topology.kubernetes.io/zone': 'us-west-2a' },
      ...(over.annotations ? { annotations: over.annotations } : {}),
      ...(over.managedFields ? { managedFields: over.managedFields } : {}),
    },
    spec: {
      ...(over.unschedulable === undefined ? {} : { unschedulable: over.unschedulable }),
      ...(over.taints ? { taints: over.taints } : {}),
    },
    status: { conditions: [{ type: 'Ready', status: over.ready === false ? 'False' : 'True' }] },
  };
}

export function template(image: string, hash?: string): { metadata: { labels: Record<string, string> }; spec: Record<string, unknown> } {
  return {
    metadata: { labels: { app: 'web', ...(hash ? { 'pod-template-hash': hash } : {}) } },
    spec: { containers: [{ name: 'web', image }] },
  };
}

export function deployment(image: string, revision: number, over: { paused?: boolean; annotations?: Record<string, string> } = {}): WireDeployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'web',
      namespace: 'apps',
      uid: 'uid-web',
      resourceVersion: '500',
      annotations: { 'deployment.kubernetes.io/revision': String(revision), ...(over.annotations ?? {}) },
    },
    spec: { selector: { matchLabels: { app: 'web' } }, template: template(image), ...(over.paused ? { paused: true } : {}) },
  };
}

export function replicaSet(image: string, revision: number, hash: string, over: { owner?: string; annotations?: Record<string, string> } = {}): WireReplicaSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `web-${hash}`,
      namespace: 'apps',
      uid: `uid-rs-${hash}`,
      creationTimestamp: new Date(Date.parse('2026-11-20T00:00:00Z') + revision * 3_600_000).toISOString(),
      labels: { app: 'web', 'pod-template-hash': hash },
      annotations: { 'deployment.kubernetes.io/revision': String(revision), ...(over.annotations ?? {}) },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: over.owner ?? 'web', uid: over.owner ? `uid-${over.owner}` : 'uid-web', controller: true }],
    },
    spec: { selector: { matchLabels: { app: 'web', 'pod-template-hash': hash } }, template: template(image, hash) },
  };
}

export function daemonSet(image: string): WireDaemonSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'driver', namespace: 'gpu-operator', uid: 'uid-driver', resourceVersion: '700', generation: 2 },
    spec: { selector: { matchLabels: { app: 'driver' } }, template: { metadata: { labels: { app: 'driver' } }, spec: { containers: [{ name: 'd', image }] } } },
  };
}

export function controllerRevision(image: string, revision: number, createdAt = '2026-11-21T09:20:00Z'): WireControllerRevision {
  return {
    apiVersion: 'apps/v1',
    kind: 'ControllerRevision',
    metadata: {
      name: `driver-${revision}`,
      namespace: 'gpu-operator',
      uid: `uid-cr-${revision}`,
      creationTimestamp: createdAt,
      labels: { app: 'driver' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'driver', uid: 'uid-driver', controller: true }],
    },
    revision,
    data: { spec: { template: { metadata: { labels: { app: 'driver' } }, spec: { containers: [{ name: 'd', image }] }, $patch: 'replace' } } },
  };
}
