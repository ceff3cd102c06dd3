/**
 * A ClusterView fake for guard and remediator tests: N nodes in pools, with
 * helpers to cordon (as nodewarden or as a human), mark NotReady, and an
 * Executor that mutates it so the guard sees its own effects.
 */
import type { ClusterView, NodeInfo, UnplacedDeviceTaint, WorkloadRef, WorkloadRevision } from '../../../core/cluster.js';
import type { ActionKind, Decision } from '../../../core/decision.js';
import { NodewardenError } from '../../../core/errors.js';
import type { ExecutionResult, Executor } from '../../../remediations/ports.js';

export const POOL_LABEL = 'nodewarden.io/pool';
const ZONE_LABEL = 'topology.kubernetes.io/zone';

export class FakeCluster implements ClusterView {
  readonly nodes = new Map<string, NodeInfo>();
  readonly revisions = new Map<string, WorkloadRevision[]>();
  /** Foreign DeviceTaintRules the view "cannot place" (unplacedDeviceTaints). */
  unplaced: UnplacedDeviceTaint[] = [];

  /** `count` nodes named `${prefix}-NNN`, spread round-robin over `pools`. */
  static fleet(count: number, pools: readonly string[] = ['pool-a'], prefix = 'gpu'): FakeCluster {
    const c = new FakeCluster();
    for (let i = 0; i < count; i++) {
      const name = `${prefix}-${String(i).padStart(3, '0')}`;
      c.nodes.set(name, {
        name,
        labels: { [POOL_LABEL]: pools[i % pools.length] ?? 'pool-a', [ZONE_LABEL]: 'zone-1' },
        unschedulable: false,
        ready: true,
        cordonedByNodewarden: false,
      });
    }
    return c;
  }

  listNodes(): NodeInfo[] {
    return [...this.nodes.values()].map((n) => ({ ...n, labels: { ...n.labels } }));
  }
  getNode(name: string): NodeInfo | undefined {
    const n = this.nodes.get(name);
    return n ? { ...n, labels: { ...n.labels } } : undefined;
  }
  workloadRevisions(ref: WorkloadRef): WorkloadRevision[] {
    return [...(this.revisions.get(`${ref.kind}/${ref.namespace}/${ref.name}`) ?? [])];
  }

  unplacedDeviceTaints(): { rules: readonly UnplacedDeviceTaint[]; count: number } {
    return { rules: [...this.unplaced], count: this.unplaced.length };
  }

  setRevisions(ref: WorkloadRef, revs: number[]): void {
    this.revisions.set(
      `${ref.kind}/${ref.namespace}/${ref.name}`,
      revs.map((revision, i) => ({ ...ref, revision, createdAt: i * 1000 })),
    );
  }

  cordon(name: string, byNodewarden = false): void {
    const n = this.must(name);
    n.unschedulable = true;
    n.cordonedByNodewarden = byNodewarden;
  }
  uncordon(name: string): void {
    const n = this.must(name);
    n.unschedulable = false;
    n.cordonedByNodewarden = false;
  }
  notReady(name: string): void {
    this.must(name).ready = false;
  }
  /** Sets every node's GPU count (as capacity nvidia.com/gpu would). */
  withGpus(gpus: number | null): this {
    for (const n of this.nodes.values()) n.gpus = gpus;
    return this;
  }
  /** The view shows these GPUs of the node under a device taint (someone else's, or ours after the fact). */
  setTaintedGpus(name: string, gpus: string[]): void {
    this.must(name).taintedGpus = [...gpus];
  }
  /** The view shows these GPUs of the node under someone else's device taint (NodeInfo.otherTaintedGpus). */
  setOtherTaintedGpus(name: string, gpus: string[]): void {
    this.must(name).otherTaintedGpus = [...gpus];
  }
  unavailableCount(filter?: (n: NodeInfo) => boolean): number {
    return [...this.nodes.values()].filter((n) => (n.unschedulable || !n.ready) && (!filter || filter(n))).length;
  }
  private must(name: string): NodeInfo {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }
}

/** Executor over the fake: cordon/uncordon mutate it; rollback moves the revision list. Records every call. */
export class FakeClusterExecutor implements Executor {
  readonly actions: readonly ActionKind[] = ['cordon', 'uncordon', 'rollback'];
  readonly calls: Decision[] = [];
  /** Make the next N executions fail. */
  failNext = 0;
  constructor(private readonly cluster: FakeCluster) {}

  execute(d: Decision): Promise<ExecutionResult> {
    this.calls.push(d);
    if (this.failNext > 0) {
      this.failNext--;
      return Promise.resolve({ ok: false, error: new NodewardenError('UNAVAILABLE', 'injected failure', { retriable: true }) });
    }
    if (d.action === 'cordon') this.cluster.cordon(d.target.name, true);
    else if (d.action === 'uncordon') this.cluster.uncordon(d.target.name);
    else if (d.action === 'rollback') {
      const to = d.params?.toRevision ?? 1;
      return Promise.resolve({ ok: true, toRevision: to, detail: `rolled back to ${to}` });
    }
    return Promise.resolve({ ok: true, detail: `${d.action} ${d.target.name}` });
  }
}

let seq = 0;
/** A decision with sensible defaults; ids unique unless given. */
export function decision(over: Partial<Decision> & Pick<Decision, 'action'>): Decision {
  seq++;
  return {
    id: over.id ?? `d-${seq}`,
    at: over.at ?? 0,
    rule: over.rule ?? 'gpu-xid-fatal',
    target: over.target ?? { kind: 'Node', name: 'gpu-000' },
    reason: over.reason ?? 'Xid 79 (GPU has fallen off the bus)',
    ...over,
  };
}

/** A taint decision of GPU `gpu` (UUID or PCI) on `node`. */
export function taint(node: string, gpu: string, over: Partial<Decision> = {}): Decision {
  return decision({ action: 'taint', target: { kind: 'Device', name: gpu, node }, severity: 'critical', reason: `Xid 48 (double bit ECC) on ${node} GPU ${gpu}`, ...over });
}

export function untaint(node: string, gpu: string, over: Partial<Decision> = {}): Decision {
  return decision({ action: 'untaint', target: { kind: 'Device', name: gpu, node }, reason: `GPU ${gpu} of ${node} validated`, ...over });
}

export function cordon(node: string, over: Partial<Decision> = {}): Decision {
  return decision({ action: 'cordon', target: { kind: 'Node', name: node }, severity: 'critical', reason: `Xid 79 (GPU has fallen off the bus) on ${node}`, ...over });
}
