/**
 * A simulated GPU fleet for the embedded demo: Kubernetes objects shaped
 * exactly as `kubectl get nodes,daemonsets,controllerrevisions -A -o yaml`
 * prints them, so the demo's cluster is built by the same loader replay uses.
 */
export interface FleetSpec {
  /** pool name → node count */
  pools: Record<string, number>;
  zones: string[];
  /** ms since epoch: creation time of the objects */
  now: number;
  gpusPerNode: number;
}

export const DEFAULT_FLEET: Omit<FleetSpec, 'now'> = {
  pools: { 'h100-train': 96, 'h100-infer': 40, 'a100-train': 40, 'l40s-batch': 24 },
  zones: ['us-west-2a', 'us-west-2b', 'us-west-2c'],
  gpusPerNode: 8,
};

export interface FleetNode {
  name: string;
  pool: string;
  zone: string;
  gpus: Array<{ pci: string; uuid: string }>;
}

/** Deterministic pseudo-random numbers (mulberry32): the demo is reproducible for a seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hex(rand: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(rand() * 16).toString(16);
  return s;
}

export function buildFleet(spec: FleetSpec, seed = 42): FleetNode[] {
  const rand = rng(seed);
  const nodes: FleetNode[] = [];
  let i = 0;
  for (const [pool, count] of Object.entries(spec.pools)) {
    for (let k = 0; k < count; k++, i++) {
      const zone = spec.zones[i % spec.zones.length] ?? 'zone-a';
      const gpus = Array.from({ length: spec.gpusPerNode }, (_, g) => ({
        pci: `0000:${(0x18 + g * 0x10).toString(16).padStart(2, '0')}:00`,
        uuid: `GPU-${hex(rand, 8)}-${hex(rand, 4)}-${hex(rand, 4)}-${hex(rand, 4)}-${hex(rand, 12)}`,
      }));
      nodes.push({ name: `${pool}-${String(k).padStart(3, '0')}`, pool, zone, gpus });
    }
  }
  return nodes;
}

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The fleet as a `kind: List` of Nodes, the GPU driver DaemonSet and its ControllerRevisions. */
export function fleetObjects(nodes: FleetNode[], opts: { now: number; groupLabel: string; driverRevisions: number }): Record<string, unknown> {
  const items: Record<string, unknown>[] = nodes.map((n) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: n.name,
      creationTimestamp: iso(opts.now - 30 * 86_400_000),
      labels: {
        'kubernetes.io/hostname': n.name,
        [opts.groupLabel]: n.pool,
        'topology.kubernetes.io/zone': n.zone,
        'nvidia.com/gpu.present': 'true',
        'nvidia.com/gpu.count': String(n.gpus.length),
      },
    },
    spec: { taints: [{ key: 'nvidia.com/gpu', effect: 'NoSchedule' }] },
    status: {
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', lastTransitionTime: iso(opts.now - 86_400_000) }],
      capacity: { 'nvidia.com/gpu': String(n.gpus.length) },
    },
  }));
  const dsUid = '5b1d7c2e-0c1f-4a55-9a44-6d1a3b2f9e10';
  items.push({
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: {
      name: 'nvidia-driver-daemonset',
      namespace: 'gpu-operator',
      uid: dsUid,
      generation: opts.driverRevisions,
      creationTimestamp: iso(opts.now - 60 * 86_400_000),
      annotations: { 'deprecated.daemonset.template.generation': String(opts.driverRevisions) },
      labels: { app: 'nvidia-driver-daemonset' },
    },
    spec: {
      selector: { matchLabels: { app: 'nvidia-driver-daemonset' } },
      template: {
        metadata: { labels: { app: 'nvidia-driver-daemonset' } },
        spec: { containers: [{ name: 'nvidia-driver-ctr', image: `nvcr.io/nvidia/driver:${driverVersion(opts.driverRevisions)}-ubuntu22.04` }] },
      },
      updateStrategy: { type: 'OnDelete' },
    },
    status: { currentNumberScheduled: nodes.length, desiredNumberScheduled: nodes.length, numberReady: nodes.length, observedGeneration: opts.driverRevisions },
  });
  for (let r = 1; r <= opts.driverRevisions; r++) {
    items.push({
      apiVersion: 'apps/v1',
      kind: 'ControllerRevision',
      metadata: {
        name: `nvidia-driver-daemonset-${hex(rng(r), 10)}`,
        namespace: 'gpu-operator',
        creationTimestamp: iso(opts.now - (opts.driverRevisions - r + 1) * 14 * 86_400_000),
        labels: { app: 'nvidia-driver-daemonset' },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'nvidia-driver-daemonset', uid: dsUid, controller: true, blockOwnerDeletion: true }],
      },
      revision: r,
      data: {
        spec: {
          template: {
            $patch: 'replace',
            metadata: { labels: { app: 'nvidia-driver-daemonset' } },
            spec: { containers: [{ name: 'nvidia-driver-ctr', image: `nvcr.io/nvidia/driver:${driverVersion(r)}-ubuntu22.04` }] },
          },
        },
      },
    });
  }
  return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items };
}

export function driverVersion(revision: number): string {
  const versions = ['535.183.01', '550.90.07', '550.127.05', '560.35.03', '570.86.15'];
  return versions[(revision - 1) % versions.length] ?? '550.127.05';
}
