/**
 * STAND-IN used by the rule unit tests (rules/testing), which test rules and
 * not guards; `nodewarden replay` uses the real remediations/simulated cluster
 * and the guarded replay remediator. The stand-in: a ClusterView read from a
 * `kubectl get nodes,daemonsets,deployments,controllerrevisions,replicasets -A -o yaml`
 * dump (a List, or multi-document YAML), and a Remediator that records every
 * decision as `executed` (or `dry-run`) and applies cordon/uncordon to that
 * view so later decisions see their effects. No guard runs here.
 *
 * Swap point: `createStandinRemediator` / `createStaticCluster` in
 * rules/testing/run-rule-tests.ts.
 */
import type { ClusterView, NodeInfo, WorkloadRef, WorkloadRevision } from '../../core/cluster.js';
import { NW } from '../../core/cluster.js';
import type { Decision, LedgerRecord } from '../../core/decision.js';
import { PoisonInputError } from '../../core/errors.js';
import { CLUSTER_DUMP_MAX_BYTES } from '../../core/yaml.js';
import { readTextFile } from '../../adapters/text-file.js';
import type { Remediator, SubmitResult } from '../../remediations/ports.js';
import type { KubeObject } from '../../remediations/kube/wire.js';
import { parseClusterYaml } from '../../remediations/simulated/parse.js';
import { isRecord } from '../../core/records.js';

type Obj = Record<string, unknown>;

/** A ClusterView whose nodes can be changed (by the stand-in remediator). */
export interface MutableClusterView extends ClusterView {
  setUnschedulable(node: string, value: boolean, byNodewarden: boolean): void;
}

export function createStaticCluster(nodes: NodeInfo[], revisions: WorkloadRevision[]): MutableClusterView {
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const list = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  return {
    listNodes: () => list,
    getNode: (name) => byName.get(name),
    workloadRevisions: (ref: WorkloadRef) =>
      revisions
        .filter((r) => r.kind === ref.kind && r.namespace === ref.namespace && r.name === ref.name)
        .sort((a, b) => a.revision - b.revision),
    setUnschedulable(node, value, byNodewarden) {
      const n = byName.get(node);
      if (!n) return;
      n.unschedulable = value;
      n.cordonedByNodewarden = value && byNodewarden;
    },
  };
}

function meta(o: Obj): Obj {
  return isRecord(o.metadata) ? o.metadata : {};
}
function strMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isRecord(v)) for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}
function owner(o: Obj, kind: string): string | null {
  const refs = meta(o).ownerReferences;
  if (!Array.isArray(refs)) return null;
  for (const r of refs) if (isRecord(r) && r.kind === kind && typeof r.name === 'string') return r.name;
  return null;
}

/** Builds a view from Kubernetes objects as parseClusterYaml returns them (Lists already flattened). */
export function clusterFromObjects(objects: readonly KubeObject[]): MutableClusterView {
  const nodes: NodeInfo[] = [];
  const revisions: WorkloadRevision[] = [];
  for (const o of objects) {
    const m = meta(o);
    const name = typeof m.name === 'string' ? m.name : '';
    const ns = typeof m.namespace === 'string' ? m.namespace : '';
    const created = typeof m.creationTimestamp === 'string' ? Date.parse(m.creationTimestamp) : NaN;
    if (o.kind === 'Node') {
      const ann = strMap(m.annotations);
      const spec = isRecord(o.spec) ? o.spec : {};
      const conds = isRecord(o.status) && Array.isArray(o.status.conditions) ? o.status.conditions : [];
      const ready = conds.some((c) => isRecord(c) && c.type === 'Ready' && c.status === 'True');
      nodes.push({ name, labels: strMap(m.labels), unschedulable: spec.unschedulable === true, ready, cordonedByNodewarden: ann[NW.annCordonedBy] !== undefined });
    } else if (o.kind === 'ControllerRevision') {
      const ds = owner(o, 'DaemonSet');
      if (ds && typeof o.revision === 'number' && !Number.isNaN(created)) revisions.push({ kind: 'DaemonSet', namespace: ns, name: ds, revision: o.revision, createdAt: created });
    } else if (o.kind === 'ReplicaSet') {
      const dep = owner(o, 'Deployment');
      const rev = Number(strMap(m.annotations)['deployment.kubernetes.io/revision']);
      if (dep && Number.isInteger(rev) && !Number.isNaN(created)) revisions.push({ kind: 'Deployment', namespace: ns, name: dep, revision: rev, createdAt: created });
    }
  }
  return createStaticCluster(nodes, revisions);
}

/** Parses the text of a kubectl YAML dump (through the one dump parser, remediations/simulated/parse.ts). */
export function parseClusterText(text: string, source: string): MutableClusterView {
  return clusterFromObjects(parseClusterYaml(text, source, 'REQUEST_INVALID'));
}

export function loadClusterFile(path: string): MutableClusterView {
  let text: string;
  try {
    text = readTextFile(path, CLUSTER_DUMP_MAX_BYTES);
  } catch (err) {
    throw new PoisonInputError('REQUEST_INVALID', path, [{ path: '', message: `cannot read: ${(err as Error).message}` }], err);
  }
  return parseClusterText(text, path);
}


/** One ledger record per decision, fields in a fixed order (byte-identical output). */
export function ledgerRecord(d: Decision, outcome: LedgerRecord['outcome'], extra: Partial<LedgerRecord> = {}): LedgerRecord {
  const r: LedgerRecord = { ts: new Date(d.at).toISOString(), rule: d.rule, action: d.action, target: d.target, outcome, reason: d.reason, guard: null };
  if (d.severity) r.severity = d.severity;
  if (d.dedupKey) r.dedupKey = d.dedupKey;
  const to = d.action === 'rollback' ? d.params?.toRevision : undefined;
  if (to !== undefined) r.toRevision = to;
  r.decisionId = d.id;
  return { ...r, ...extra };
}

export function createStandinRemediator(opts: { cluster: MutableClusterView; dryRun: boolean }): Pick<Remediator, 'submit'> {
  return {
    submit(decisions: readonly Decision[]): Promise<SubmitResult> {
      const out: LedgerRecord[] = [];
      for (const d of decisions) {
        if (!opts.dryRun && d.target.kind === 'Node') {
          if (d.action === 'cordon') opts.cluster.setUnschedulable(d.target.name, true, true);
          if (d.action === 'uncordon') opts.cluster.setUnschedulable(d.target.name, false, false);
        }
        out.push(ledgerRecord(d, opts.dryRun ? 'dry-run' : 'executed'));
      }
      return Promise.resolve({ records: out, retryLater: [] });
    },
  };
}
