import { expect } from 'chai';
import { join } from 'node:path';
import { isUnavailable, NW } from '../../../../core/cluster.js';
import { ManualClock } from '../../../../core/clock.js';
import { PoisonInputError } from '../../../../core/errors.js';
import { packageRoot } from '../../../../adapters/paths.js';
import type { Decision } from '../../../../core/decision.js';
import { createSimulatedCluster, loadClusterFile, parseClusterYaml } from '../../../../remediations/simulated/index.js';
import { applyJsonPatch, applyMergePatch, labelSelectorMatcher } from '../../../../remediations/simulated/patch.js';

const FLEET = join(packageRoot(), 'test/fixtures/cluster/fleet-100.yaml');
const SNAPSHOT = Date.parse('2026-11-21T10:00:00Z');
const DRIVER = { kind: 'DaemonSet', namespace: 'gpu-operator', name: 'nvidia-driver-daemonset' } as const;

function d(over: Partial<Decision>): Decision {
  return { id: 'd1', at: SNAPSHOT, rule: 'r', action: 'cordon', target: { kind: 'Node', name: 'gpu-node-000' }, reason: 'test', ...over };
}

describe('simulated/parse', () => {
  it('loads the kubectl List dump of the 100-node fleet', async () => {
    const objs = await loadClusterFile(FLEET);
    const count = (k: string): number => objs.filter((o) => o.kind === k).length;
    expect(count('Node')).to.equal(100);
    expect(count('DaemonSet')).to.equal(1);
    expect(count('Deployment')).to.equal(1);
    expect(count('ControllerRevision')).to.equal(2);
    expect(count('ReplicaSet')).to.equal(2);
  });

  it('accepts multi-document YAML, a single object, API-style typed lists, and skips other kinds', () => {
    const multi = parseClusterYaml('apiVersion: v1\nkind: Node\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\n');
    expect(multi.map((o) => o.metadata?.name)).to.deep.equal(['a']);
    expect(parseClusterYaml('kind: Node\nmetadata:\n  name: solo\n')).to.have.length(1);
    const typed = parseClusterYaml('apiVersion: v1\nkind: NodeList\nitems:\n- metadata: {name: x}\n- metadata: {name: y}\n');
    expect(typed.map((o) => o.kind)).to.deep.equal(['Node', 'Node']);
  });

  it('rejects a malformed file whole, naming every problem and where', () => {
    const bad = 'kind: List\nitems:\n- kind: Node\n  metadata: {}\n- kind: ControllerRevision\n  metadata: {name: cr}\n  revision: two\n- {metadata: {name: nokind}}\n';
    try {
      parseClusterYaml(bad, 'bad.yaml');
      expect.fail('should throw');
    } catch (err) {
      expect(err).to.be.instanceOf(PoisonInputError);
      const e = err as PoisonInputError;
      expect(e.source).to.equal('bad.yaml');
      expect(e.problems.map((p) => p.path)).to.deep.equal(['/items/0/metadata/name', '/items/1/revision', '/items/2/kind']);
    }
    expect(() => parseClusterYaml('kind: [unclosed')).to.throw(PoisonInputError, /YAML/);
  });
});

describe('simulated/cluster on fleet-100', () => {
  let objects: Awaited<ReturnType<typeof loadClusterFile>> = [];
  before(async () => {
    objects = await loadClusterFile(FLEET);
  });
  // Each test gets its own cluster (the simulated API deep-copies the objects).
  function fleet(): Promise<{ cluster: ReturnType<typeof createSimulatedCluster>; clock: ManualClock }> {
    const clock = new ManualClock(SNAPSHOT);
    return Promise.resolve({ cluster: createSimulatedCluster(objects, { clock }), clock });
  }

  it('exposes nodes with pools, zones, Ready and the 3 human cordons (not nodewarden\'s)', async () => {
    const { cluster } = await fleet();
    const nodes = cluster.listNodes();
    expect(nodes).to.have.length(100);
    const unavailable = nodes.filter(isUnavailable).map((n) => n.name).sort();
    expect(unavailable).to.deep.equal(['gpu-node-007', 'gpu-node-052', 'gpu-node-091']);
    expect(nodes.filter((n) => n.cordonedByNodewarden)).to.have.length(0);
    expect(new Set(nodes.map((n) => n.labels['nodewarden.io/pool']))).to.deep.equal(new Set(['h100-train', 'a100-infer', 'h100-research']));
    expect(cluster.getNode('gpu-node-000')?.labels['topology.kubernetes.io/zone']).to.equal('us-west-2a');
  });

  it('reports workload revisions oldest first with createdAt from the revision objects', async () => {
    const { cluster } = await fleet();
    const revs = cluster.workloadRevisions(DRIVER);
    expect(revs.map((r) => r.revision)).to.deep.equal([1, 2]);
    expect(revs[1]?.createdAt).to.equal(Date.parse('2026-11-21T09:20:00Z'));
    expect(SNAPSHOT - (revs[1]?.createdAt ?? 0)).to.be.below(2 * 3_600_000);
    expect(cluster.workloadRevisions({ kind: 'Deployment', namespace: 'ml-serving', name: 'triton-inference' }).map((r) => r.revision)).to.deep.equal([1, 2]);
    expect(cluster.workloadRevisions({ kind: 'DaemonSet', namespace: 'x', name: 'nope' })).to.deep.equal([]);
  });

  it('a cordon changes what the view (and so the guard) sees next', async () => {
    const { cluster } = await fleet();
    const res = await cluster.executor.execute(d({}));
    expect(res.ok, res.detail).to.equal(true);
    expect(cluster.getNode('gpu-node-000')).to.deep.include({ unschedulable: true, cordonedByNodewarden: true });
    expect(cluster.listNodes().filter(isUnavailable)).to.have.length(4);
    expect(cluster.events.map((e) => e.reason)).to.deep.equal(['NodewardenCordon']);
    const u = await cluster.executors.uncordon.execute(d({ id: 'd2', action: 'uncordon' }));
    expect(u.ok, u.detail).to.equal(true);
    expect(cluster.listNodes().filter(isUnavailable)).to.have.length(3);
  });

  it('never uncordons the people\'s cordons', async () => {
    const { cluster } = await fleet();
    const res = await cluster.executor.execute(d({ action: 'uncordon', target: { kind: 'Node', name: 'gpu-node-052' } }));
    expect(res.ok).to.equal(false);
    expect(res.error?.code).to.equal('FORBIDDEN');
    expect(cluster.getNode('gpu-node-052')?.unschedulable).to.equal(true);
  });

  it('rolls the driver DaemonSet back; the reused revision becomes 3 and keeps its creationTimestamp', async () => {
    const { cluster, clock } = await fleet();
    clock.advance(15 * 60_000);
    const res = await cluster.executor.execute(d({ action: 'rollback', target: DRIVER }));
    expect(res, res.detail).to.deep.include({ ok: true, toRevision: 1 });
    const revs = cluster.workloadRevisions(DRIVER);
    expect(revs.map((r) => r.revision)).to.deep.equal([2, 3]);
    expect(revs[1]?.createdAt).to.equal(Date.parse('2026-10-22T14:05:11Z'));
    const ds = cluster.api.get('DaemonSet', 'gpu-operator', 'nvidia-driver-daemonset');
    expect(JSON.stringify(ds)).to.contain('driver:550.90.07').and.not.contain('550.127.05');
    expect(ds.metadata?.annotations?.['nvidia.com/last-applied-hash']).to.equal('1884417271');
  });

  it('rolls the Deployment back like kubectl rollout undo', async () => {
    const { cluster } = await fleet();
    const res = await cluster.executor.execute(d({ action: 'rollback', target: { kind: 'Deployment', namespace: 'ml-serving', name: 'triton-inference' } }));
    expect(res, res.detail).to.deep.include({ ok: true, toRevision: 1 });
    const dep = cluster.api.get('Deployment', 'ml-serving', 'triton-inference');
    expect(JSON.stringify(dep)).to.contain('tritonserver:24.08-py3');
    expect(JSON.stringify((dep as { spec?: unknown }).spec)).to.not.contain('pod-template-hash');
    expect(dep.metadata?.annotations?.['deployment.kubernetes.io/revision']).to.equal('3');
    expect(cluster.workloadRevisions({ kind: 'Deployment', namespace: 'ml-serving', name: 'triton-inference' }).map((r) => r.revision)).to.deep.equal([2, 3]);
  });

  it('updateNode lets a test make a node NotReady as the kubelet would', async () => {
    const { cluster } = await fleet();
    cluster.updateNode('gpu-node-010', (n) => {
      for (const c of n.status?.conditions ?? []) if (c.type === 'Ready') c.status = 'Unknown';
    });
    expect(cluster.getNode('gpu-node-010')?.ready).to.equal(false);
    expect(cluster.listNodes().filter(isUnavailable)).to.have.length(4);
    expect(cluster.toList().items).to.have.length(106);
    expect(NW.taintKey).to.equal('nodewarden.io/unhealthy');
  });
});

describe('simulated/patch', () => {
  it('merge patch: null deletes, maps merge, $patch: replace replaces', () => {
    expect(applyMergePatch({ a: 1, b: { c: 2, d: 3 } }, { a: null, b: { c: 4 } })).to.deep.equal({ b: { c: 4, d: 3 } });
    expect(applyMergePatch({ t: { x: 1, y: 2 } }, { t: { $patch: 'replace', y: 3 } })).to.deep.equal({ t: { y: 3 } });
    expect(applyMergePatch({ l: [1, 2] }, { l: [3] })).to.deep.equal({ l: [3] });
  });

  it('json patch: replace/add/remove/test with pointer escapes, and errors', () => {
    const doc = { metadata: { annotations: { 'a/b': '1' } }, list: [1, 2] };
    expect(applyJsonPatch(doc, [{ op: 'replace', path: '/metadata/annotations/a~1b', value: '2' }, { op: 'add', path: '/list/-', value: 3 }, { op: 'remove', path: '/list/0' }])).to.deep.equal({
      metadata: { annotations: { 'a/b': '2' } },
      list: [2, 3],
    });
    expect(() => applyJsonPatch(doc, [{ op: 'replace', path: '/nope/x', value: 1 }])).to.throw(/does not exist/);
    expect(() => applyJsonPatch(doc, [{ op: 'test', path: '/list/0', value: 9 }])).to.throw(/test failed/);
  });

  it('label selectors', () => {
    const m = labelSelectorMatcher('app=web,tier in (a,b),!canary,zone,env!=prod');
    expect(m({ app: 'web', tier: 'a', zone: 'z', env: 'dev' })).to.equal(true);
    expect(m({ app: 'web', tier: 'c', zone: 'z' })).to.equal(false);
    expect(m({ app: 'web', tier: 'a', zone: 'z', canary: '1' })).to.equal(false);
    expect(m({ app: 'web', tier: 'a', zone: 'z', env: 'prod' })).to.equal(false);
    expect(labelSelectorMatcher(undefined)({})).to.equal(true);
  });
});
