/**
 * A simulated cluster built from a kubectl dump: an in-memory API server
 * (the KubeApi port, with resourceVersion preconditions, merge/JSON/strategic
 * patches, and just enough of the Deployment and DaemonSet controllers to
 * record revisions the way real ones do) plus a ClusterView over it.
 *
 * Its executor is the very same KubeExecutor that drives the real API, so
 * replay and demo make the same ownership decisions as production, and every
 * action changes the objects the guard reads next.
 */
import { createHash } from 'node:crypto';
import type { ClusterView, NodeInfo, WorkloadRef, WorkloadRevision } from '../../core/cluster.js';
import type { Clock } from '../../core/clock.js';
import { NodewardenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { ActionKind, Decision } from '../../core/decision.js';
import type { ExecutionResult, Executor } from '../ports.js';
import { KubeExecutor } from '../kube/executors.js';
import type { JsonPatchOp, KubeApi, MergePatch, StrategicMergePatch } from '../kube/kube-api.js';
import { FIELD_MANAGER, nodeInfoOf } from '../kube/node-decisions.js';
import { revisionEntryOf, sortRevisions, workloadKey } from '../kube/revisions.js';
import { equalIgnoreHash, revisionTemplate } from '../kube/rollback-decisions.js';
import {
  POD_TEMPLATE_HASH_LABEL,
  REVISION_ANNOTATION,
  clone,
  deploymentRevisionOf,
  isControlledBy,
  isRecord,
  jsonEqual,
  labelsOf,
  type KubeObject,
  type PodTemplate,
  type WireControllerRevision,
  type WireDaemonSet,
  type WireDeployment,
  type WireEvent,
  type WireNode,
  type WireReplicaSet,
} from '../kube/wire.js';
import { applyJsonPatch, applyMergePatch, labelSelectorMatcher } from './patch.js';
import { SIMULATED_KINDS } from './parse.js';

export interface SimulatedClusterOptions {
  /** Time of simulated writes (cordon annotations, new revisions, Events). */
  clock: Clock;
  logger?: Logger;
  /** Record Events in `events` (default true). */
  recordEvents?: boolean;
}

const CLUSTER_SCOPED = new Set(['Node']);

function key(kind: string, namespace: string | undefined, name: string): string {
  return CLUSTER_SCOPED.has(kind) ? `${kind}//${name}` : `${kind}/${namespace ?? 'default'}/${name}`;
}

function notFound(kind: string, ns: string | undefined, name: string): NodewardenError {
  return new NodewardenError('NOT_FOUND', `${kind.toLowerCase()}s "${ns ? `${ns}/` : ''}${name}" not found`);
}

function conflict(kind: string, name: string): NodewardenError {
  return new NodewardenError(
    'CONFLICT',
    `Operation cannot be fulfilled on ${kind.toLowerCase()}s "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { retriable: true },
  );
}

function shortHash(v: unknown): string {
  return createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 10);
}

/**
 * The in-memory API server. Exposed for tests and the demo (e.g. to make a
 * node NotReady, or to write as "another client" between read and write).
 */
export class SimulatedApi implements KubeApi {
  private readonly objects = new Map<string, KubeObject>();
  readonly events: WireEvent[] = [];
  private rv = 1000;
  /** Bumped on every write; views cache on it. */
  version = 0;

  constructor(
    objects: readonly KubeObject[],
    private readonly clock: Clock,
  ) {
    for (const o of objects) {
      const c = clone(o);
      const n = Number(c.metadata?.resourceVersion);
      if (Number.isInteger(n) && n > this.rv) this.rv = n;
      this.objects.set(key(c.kind ?? '', c.metadata?.namespace, c.metadata?.name ?? ''), c);
    }
    for (const o of this.objects.values()) {
      const meta = (o.metadata ??= {});
      if (meta.resourceVersion === undefined) meta.resourceVersion = String(++this.rv);
      if (!CLUSTER_SCOPED.has(o.kind ?? '') && meta.namespace === undefined) meta.namespace = 'default';
      if (meta.uid === undefined) meta.uid = `sim-${shortHash([o.kind, meta.namespace, meta.name])}`;
    }
  }

  /** Every object, as a kubectl dump would show it now. */
  list(kind?: string): KubeObject[] {
    return [...this.objects.values()].filter((o) => kind === undefined || o.kind === kind).map((o) => clone(o));
  }

  get<T extends KubeObject>(kind: string, namespace: string | undefined, name: string): T {
    const o = this.objects.get(key(kind, namespace, name));
    if (!o) throw notFound(kind, namespace, name);
    return clone(o) as T;
  }

  /** Writes an object as a client would (no precondition); returns the stored copy. */
  put<T extends KubeObject>(obj: T): T {
    const c = clone(obj);
    const meta = (c.metadata ??= {});
    meta.resourceVersion = String(++this.rv);
    if (!CLUSTER_SCOPED.has(c.kind ?? '')) meta.namespace ??= 'default';
    meta.uid ??= `sim-${shortHash([c.kind, meta.namespace, meta.name, this.rv])}`;
    meta.creationTimestamp ??= new Date(this.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    this.objects.set(key(c.kind ?? '', meta.namespace, meta.name ?? ''), c);
    this.version++;
    return clone(c);
  }

  /** Read-modify-write of one object (for tests and the demo: "someone else" changing it). */
  mutate<T extends KubeObject>(kind: string, namespace: string | undefined, name: string, fn: (o: T) => void): T {
    const o = this.get<T>(kind, namespace, name);
    fn(o);
    return this.put(o);
  }

  private checkPrecondition(current: KubeObject, wanted: unknown, kind: string, name: string): void {
    if (wanted !== undefined && wanted !== current.metadata?.resourceVersion) throw conflict(kind, name);
  }

  // ------------------------------------------------------------------ KubeApi

  getNode(name: string): Promise<WireNode> {
    return this.async(() => this.get<WireNode>('Node', undefined, name));
  }

  patchNode(name: string, patch: MergePatch): Promise<WireNode> {
    return this.async(() => {
      const cur = this.get<WireNode>('Node', undefined, name);
      const meta = isRecord(patch.metadata) ? patch.metadata : {};
      this.checkPrecondition(cur, meta.resourceVersion, 'Node', name);
      const next = applyMergePatch(cur, patch) as WireNode;
      if (isRecord(patch.spec) && 'unschedulable' in patch.spec) takeFieldOwnership(next, FIELD_MANAGER, this.clock.now());
      return this.put(next);
    });
  }

  getDeployment(namespace: string, name: string): Promise<WireDeployment> {
    return this.async(() => this.get<WireDeployment>('Deployment', namespace, name));
  }

  patchDeployment(namespace: string, name: string, patch: JsonPatchOp[]): Promise<WireDeployment> {
    return this.async(() => {
      const cur = this.get<WireDeployment>('Deployment', namespace, name);
      const next = applyJsonPatch(cur, patch);
      this.checkPrecondition(cur, next.metadata?.resourceVersion, 'Deployment', name);
      const changed = !jsonEqual(cur.spec?.template, next.spec?.template);
      if (changed) next.metadata = { ...next.metadata, generation: (cur.metadata?.generation ?? 1) + 1 };
      let stored = this.put(next);
      if (changed) stored = this.syncDeployment(stored);
      return stored;
    });
  }

  listReplicaSets(namespace: string, labelSelector?: string): Promise<WireReplicaSet[]> {
    return this.async(() => this.listNs<WireReplicaSet>('ReplicaSet', namespace, labelSelector));
  }

  getDaemonSet(namespace: string, name: string): Promise<WireDaemonSet> {
    return this.async(() => this.get<WireDaemonSet>('DaemonSet', namespace, name));
  }

  patchDaemonSet(namespace: string, name: string, patch: StrategicMergePatch): Promise<WireDaemonSet> {
    return this.async(() => {
      const cur = this.get<WireDaemonSet>('DaemonSet', namespace, name);
      const meta = isRecord(patch.metadata) ? patch.metadata : {};
      this.checkPrecondition(cur, meta.resourceVersion, 'DaemonSet', name);
      const next = applyMergePatch(cur, patch) as WireDaemonSet;
      const changed = !jsonEqual(cur.spec?.template, next.spec?.template);
      if (changed) {
        const gen = (cur.metadata?.generation ?? 1) + 1;
        next.metadata = {
          ...next.metadata,
          generation: gen,
          annotations: { ...(next.metadata?.annotations ?? {}), 'deprecated.daemonset.template.generation': String(gen) },
        };
      }
      const stored = this.put(next);
      if (changed) this.syncDaemonSetHistory(stored);
      return stored;
    });
  }

  listControllerRevisions(namespace: string, labelSelector?: string): Promise<WireControllerRevision[]> {
    return this.async(() => this.listNs<WireControllerRevision>('ControllerRevision', namespace, labelSelector));
  }

  createEvent(namespace: string, event: WireEvent): Promise<void> {
    return this.async(() => {
      const name = event.metadata?.name ?? '';
      if (this.events.some((e) => e.metadata?.name === name && e.metadata.namespace === namespace)) {
        throw new NodewardenError('CONFLICT', `events "${name}" already exists`, { retriable: false });
      }
      this.events.push({ ...clone(event), metadata: { ...event.metadata, namespace } });
    });
  }

  // ------------------------------------------------------- controller emulation

  private listNs<T extends KubeObject>(kind: string, namespace: string, selector: string | undefined): T[] {
    const match = labelSelectorMatcher(selector);
    return [...this.objects.values()]
      .filter((o) => o.kind === kind && o.metadata?.namespace === namespace && match(labelsOf(o)))
      .map((o) => clone(o) as T);
  }

  /**
   * What the Deployment controller does when the template changes: reuse the
   * ReplicaSet whose template matches (giving it revision max+1 and recording
   * its old number in revision-history) or create one; the Deployment's
   * revision annotation follows.
   */
  private syncDeployment(d: WireDeployment): WireDeployment {
    const ns = d.metadata?.namespace ?? 'default';
    const owned = this.listNs<WireReplicaSet>('ReplicaSet', ns, undefined).filter((rs) => isControlledBy(rs, d, 'Deployment'));
    const max = Math.max(0, ...owned.map((rs) => deploymentRevisionOf(rs) ?? 0));
    const match = owned.find((rs) => equalIgnoreHash(rs.spec?.template, d.spec?.template));
    let newRev = max;
    const replicas = (d.spec as { replicas?: number } | undefined)?.replicas ?? 1;
    for (const rs of owned) {
      if (rs === match) continue;
      if ((rs.spec as { replicas?: number } | undefined)?.replicas !== 0) this.mutate<WireReplicaSet>('ReplicaSet', ns, rs.metadata?.name ?? '', (o) => ((o.spec ??= {}).replicas = 0));
    }
    if (match) {
      const cur = deploymentRevisionOf(match);
      if (cur !== max) {
        newRev = max + 1;
        this.mutate<WireReplicaSet>('ReplicaSet', ns, match.metadata?.name ?? '', (o) => {
          const ann = (o.metadata ??= {}).annotations ?? {};
          const history = [ann['deployment.kubernetes.io/revision-history'], cur].filter((x) => x !== undefined && x !== '').join(',');
          o.metadata.annotations = { ...ann, [REVISION_ANNOTATION]: String(newRev), ...(history ? { 'deployment.kubernetes.io/revision-history': history } : {}) };
          (o.spec ??= {}).replicas = replicas;
        });
      }
    } else {
      newRev = max + 1;
      const template: PodTemplate = clone<PodTemplate>(d.spec?.template ?? {});
      const hash = shortHash(template);
      template.metadata = { ...(template.metadata ?? {}), labels: { ...(template.metadata?.labels ?? {}), [POD_TEMPLATE_HASH_LABEL]: hash } };
      const name = `${d.metadata?.name ?? ''}-${hash}`;
      this.put<WireReplicaSet>({
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: {
          name,
          namespace: ns,
          labels: { ...(template.metadata.labels ?? {}) },
          annotations: { [REVISION_ANNOTATION]: String(newRev) },
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata?.name ?? '', uid: d.metadata?.uid, controller: true, blockOwnerDeletion: true }],
        },
        spec: { replicas, selector: { matchLabels: { ...(d.spec?.selector?.matchLabels ?? {}), [POD_TEMPLATE_HASH_LABEL]: hash } }, template },
      });
    }
    return this.mutate<WireDeployment>('Deployment', ns, d.metadata?.name ?? '', (o) => {
      (o.metadata ??= {}).annotations = { ...(o.metadata.annotations ?? {}), [REVISION_ANNOTATION]: String(newRev) };
    });
  }

  /**
   * What the DaemonSet controller does: the ControllerRevision whose template
   * matches becomes revision max+1 (keeping its creationTimestamp), or a new
   * one is created.
   */
  private syncDaemonSetHistory(ds: WireDaemonSet): void {
    const ns = ds.metadata?.namespace ?? 'default';
    const history = this.listNs<WireControllerRevision>('ControllerRevision', ns, undefined).filter((cr) => isControlledBy(cr, ds, 'DaemonSet'));
    const max = Math.max(0, ...history.map((cr) => Number(cr.revision)));
    const template = ds.spec?.template ?? {};
    const match = history.find((cr) => jsonEqual(revisionTemplate(cr), template));
    if (match) {
      if (Number(match.revision) !== max) this.mutate<WireControllerRevision>('ControllerRevision', ns, match.metadata?.name ?? '', (o) => (o.revision = max + 1));
      return;
    }
    const hash = shortHash(template);
    this.put<WireControllerRevision>({
      apiVersion: 'apps/v1',
      kind: 'ControllerRevision',
      metadata: {
        name: `${ds.metadata?.name ?? ''}-${hash}`,
        namespace: ns,
        labels: { ...(template.metadata?.labels ?? {}), 'controller-revision-hash': hash },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: ds.metadata?.name ?? '', uid: ds.metadata?.uid, controller: true, blockOwnerDeletion: true }],
      },
      data: { spec: { template: { ...clone(template), $patch: 'replace' } } },
      revision: max + 1,
    });
  }

  /** Resolve on a later tick, like a network call: callers cannot rely on synchronous effects. */
  private async async<T>(fn: () => T): Promise<T> {
    await Promise.resolve();
    return fn();
  }
}

/** Moves ownership of spec.unschedulable to `manager` when the object tracks managedFields. */
function takeFieldOwnership(node: WireNode, manager: string, now: number): void {
  const entries = node.metadata?.managedFields;
  if (!Array.isArray(entries)) return;
  for (const e of entries) {
    if (!isRecord(e) || !isRecord(e.fieldsV1)) continue;
    const spec = e.fieldsV1['f:spec'];
    if (isRecord(spec)) delete spec['f:unschedulable'];
  }
  entries.push({
    manager,
    operation: 'Update',
    apiVersion: 'v1',
    time: new Date(now).toISOString(),
    fieldsType: 'FieldsV1',
    fieldsV1: { 'f:spec': { 'f:unschedulable': {} } },
  });
}

/**
 * Where the simulated cluster records its DRA device taints: a JSON array of
 * GPU ids on the node (the simulated API has no DeviceTaintRule objects).
 */
export const SIMULATED_DEVICE_TAINTS_ANNOTATION = 'nodewarden.io/simulated-device-taints';

function simulatedTaints(node: WireNode): string[] {
  const raw = node.metadata?.annotations?.[SIMULATED_DEVICE_TAINTS_ANNOTATION];
  if (raw === undefined) return [];
  try {
    const v: unknown = JSON.parse(raw);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

export class SimulatedCluster implements ClusterView {
  readonly api: SimulatedApi;
  /** cordon, uncordon and rollback against the simulated objects. */
  readonly executor: KubeExecutor;
  private nodeCache: { version: number; byName: Map<string, NodeInfo> } | undefined;
  private revCache: { version: number; byWorkload: Map<string, WorkloadRevision[]> } | undefined;

  constructor(objects: readonly KubeObject[], opts: SimulatedClusterOptions) {
    const known = objects.filter((o) => (SIMULATED_KINDS as readonly string[]).includes(o.kind ?? ''));
    this.api = new SimulatedApi(known, opts.clock);
    this.executor = new KubeExecutor(this.api, {
      clock: opts.clock,
      ...(opts.logger ? { logger: opts.logger } : {}),
      recordEvents: opts.recordEvents ?? true,
      instance: 'simulated',
    });
  }

  /** Executors by action (all the same KubeExecutor; taint/untaint of one GPU recorded on its node). */
  get executors(): { cordon: Executor; uncordon: Executor; rollback: Executor; device: Executor } {
    return { cordon: this.executor, uncordon: this.executor, rollback: this.executor, device: this.deviceExecutor };
  }

  /**
   * `taint` / `untaint` of one GPU (a Device target with its node), recorded
   * on the simulated node and reported as its `taintedGpus`. Idempotent like
   * the DeviceTaintRule executor: tainting a tainted GPU and untainting an
   * untainted one succeed without a change.
   */
  readonly deviceExecutor: Executor = {
    actions: ['taint', 'untaint'] as readonly ActionKind[],
    execute: (d: Decision): Promise<ExecutionResult> => this.asyncDevice(d),
  };

  private async asyncDevice(d: Decision): Promise<ExecutionResult> {
    await Promise.resolve();
    const t = d.target;
    const node = t.kind === 'Device' ? t.node : undefined;
    if (t.kind !== 'Device' || node === undefined || node === '') {
      const message = `${d.action} needs a Device target with a node, got ${t.kind}`;
      return { ok: false, detail: message, error: new NodewardenError('REQUEST_INVALID', message) };
    }
    if (this.nodes().get(node) === undefined) {
      const message = `node ${node} not found`;
      return { ok: false, detail: `${d.action} GPU ${t.name}: ${message}`, error: new NodewardenError('NOT_FOUND', message) };
    }
    let changed = false;
    this.api.mutate<WireNode>('Node', undefined, node, (n) => {
      const cur = simulatedTaints(n);
      const has = cur.includes(t.name);
      if (d.action === 'taint' ? has : !has) return;
      const next = d.action === 'taint' ? [...cur, t.name] : cur.filter((g) => g !== t.name);
      n.metadata = { ...(n.metadata ?? {}) };
      const ann = { ...(n.metadata.annotations ?? {}) };
      if (next.length === 0) delete ann[SIMULATED_DEVICE_TAINTS_ANNOTATION];
      else ann[SIMULATED_DEVICE_TAINTS_ANNOTATION] = JSON.stringify(next);
      n.metadata.annotations = ann;
      changed = true;
    });
    const verb = d.action === 'taint' ? 'tainted' : 'untainted';
    return { ok: true, detail: changed ? `GPU ${t.name} of ${node} ${verb} (simulated)` : `GPU ${t.name} of ${node} already ${verb} (simulated)` };
  }

  /** Events the executors recorded. */
  get events(): readonly WireEvent[] {
    return this.api.events;
  }

  private nodes(): Map<string, NodeInfo> {
    if (this.nodeCache?.version !== this.api.version) {
      const byName = new Map<string, NodeInfo>();
      for (const n of this.api.list('Node') as WireNode[]) {
        const info = nodeInfoOf(n);
        info.taintedGpus = simulatedTaints(n); // known here: empty = no GPU tainted
        byName.set(info.name, info);
      }
      this.nodeCache = { version: this.api.version, byName };
    }
    return this.nodeCache.byName;
  }

  listNodes(): NodeInfo[] {
    return [...this.nodes().values()].map((n) => ({ ...n, labels: { ...n.labels }, taintedGpus: [...(n.taintedGpus ?? [])] }));
  }

  getNode(name: string): NodeInfo | undefined {
    const n = this.nodes().get(name);
    return n ? { ...n, labels: { ...n.labels } } : undefined;
  }

  workloadRevisions(ref: WorkloadRef): WorkloadRevision[] {
    if (this.revCache?.version !== this.api.version) {
      const byWorkload = new Map<string, WorkloadRevision[]>();
      for (const o of [...this.api.list('ReplicaSet'), ...this.api.list('ControllerRevision')]) {
        const r = revisionEntryOf(o);
        if (!r) continue;
        const k = workloadKey(r);
        const arr = byWorkload.get(k) ?? [];
        arr.push(r);
        byWorkload.set(k, arr);
      }
      for (const arr of byWorkload.values()) sortRevisions(arr);
      this.revCache = { version: this.api.version, byWorkload };
    }
    return (this.revCache.byWorkload.get(workloadKey(ref)) ?? []).map((r) => ({ ...r }));
  }

  /** Test/demo hook: change a node as someone else would (e.g. NotReady, a human cordon). */
  updateNode(name: string, fn: (node: WireNode) => void): void {
    this.api.mutate<WireNode>('Node', undefined, name, fn);
  }

  /** The cluster as a kubectl dump (`kind: List`), e.g. to save the state after a replay. */
  toList(): { apiVersion: 'v1'; kind: 'List'; items: KubeObject[]; metadata: { resourceVersion: string } } {
    return { apiVersion: 'v1', kind: 'List', items: this.api.list(), metadata: { resourceVersion: '' } };
  }
}

export function createSimulatedCluster(objects: readonly KubeObject[], opts: SimulatedClusterOptions): SimulatedCluster {
  return new SimulatedCluster(objects, opts);
}
