/**
 * ADR 0041: a cordon patches with the watch-fed view's resourceVersion (one
 * request; GET only on a 409 or when the view cannot decide), and the
 * Kubernetes Event is recorded after the action from a bounded queue.
 */
import { expect } from 'chai';
import { NW } from '../../../../core/cluster.js';
import { ManualClock } from '../../../../core/clock.js';
import { NodewardenError } from '../../../../core/errors.js';
import { createRegistry } from '../../../../adapters/metrics.js';
import { KubeExecutor } from '../../../../remediations/kube/executors.js';
import type { KubeApi } from '../../../../remediations/kube/kube-api.js';
import { planNodeOf, planCordon, planUncordon } from '../../../../remediations/kube/node-decisions.js';
import type { KubeObject, WireEvent, WireNode } from '../../../../remediations/kube/wire.js';
import { SimulatedApi } from '../../../../remediations/simulated/simulated-cluster.js';
import { decision, node } from './helpers.js';

const T0 = Date.parse('2026-12-03T10:15:24Z');

/** Counts the requests made through it; `createEvent` can be held or failed. */
class CountingApi implements KubeApi {
  readonly calls: string[] = [];
  holdEvents: Promise<void> | undefined;
  failEvents = false;
  constructor(readonly inner: SimulatedApi) {}
  getNode(n: string): Promise<WireNode> {
    this.calls.push(`GET ${n}`);
    return this.inner.getNode(n);
  }
  patchNode(n: string, p: Parameters<KubeApi['patchNode']>[1]): Promise<WireNode> {
    this.calls.push(`PATCH ${n}`);
    return this.inner.patchNode(n, p);
  }
  getDeployment: KubeApi['getDeployment'] = (ns, n) => this.inner.getDeployment(ns, n);
  patchDeployment: KubeApi['patchDeployment'] = (ns, n, p) => this.inner.patchDeployment(ns, n, p);
  listReplicaSets: KubeApi['listReplicaSets'] = (ns, s) => this.inner.listReplicaSets(ns, s);
  getDaemonSet: KubeApi['getDaemonSet'] = (ns, n) => this.inner.getDaemonSet(ns, n);
  patchDaemonSet: KubeApi['patchDaemonSet'] = (ns, n, p) => this.inner.patchDaemonSet(ns, n, p);
  listControllerRevisions: KubeApi['listControllerRevisions'] = (ns, s) => this.inner.listControllerRevisions(ns, s);
  async createEvent(ns: string, e: WireEvent): Promise<void> {
    this.calls.push(`EVENT ${e.involvedObject.name}`);
    if (this.holdEvents) await this.holdEvents;
    if (this.failEvents) throw new NodewardenError('UNAVAILABLE', 'apiserver said 503', { retriable: true });
    await this.inner.createEvent(ns, e);
  }
}

function setup(objects: KubeObject[]) {
  const clock = new ManualClock(T0);
  const sim = new SimulatedApi(objects, clock);
  return { clock, sim, api: new CountingApi(sim) };
}

describe('kube/executors: view resourceVersion and queued Events (ADR 0041)', () => {
  it('cordons with ONE request when the view has the Node current (no GET)', async () => {
    const { clock, sim, api } = setup([node('gpu-node-001')]);
    const view = planNodeOf(await sim.getNode('gpu-node-001'));
    const ex = new KubeExecutor(api, { clock, recordEvents: false, nodeView: () => view });
    const res = await ex.execute(decision());
    expect(res.ok, res.detail).to.equal(true);
    expect(api.calls).to.deep.equal(['PATCH gpu-node-001']);
    const n = await sim.getNode('gpu-node-001');
    expect(n.spec?.unschedulable).to.equal(true);
    expect(n.metadata?.annotations?.[NW.annCordonedBy]).to.equal('nodewarden');
  });

  it('a stale view: 409 → GET → decide again → PATCH, and keeps a taint added meanwhile', async () => {
    const { clock, sim, api } = setup([node('gpu-node-001')]);
    const stale = planNodeOf(await sim.getNode('gpu-node-001'));
    // someone writes after the view's copy: a taint of theirs
    await sim.patchNode('gpu-node-001', { spec: { taints: [{ key: 'other.io/maintenance', effect: 'NoSchedule' }] } });
    const ex = new KubeExecutor(api, { clock, recordEvents: false, nodeView: () => stale });
    const res = await ex.execute(decision());
    expect(res.ok, res.detail).to.equal(true);
    expect(api.calls).to.deep.equal(['PATCH gpu-node-001', 'GET gpu-node-001', 'PATCH gpu-node-001']);
    const n = await sim.getNode('gpu-node-001');
    expect(n.spec?.taints?.map((t) => t.key).sort()).to.deep.equal([NW.taintKey, 'other.io/maintenance'].sort());
  });

  it('never trusts a noop from the view: a view that says "cordoned by someone else" is checked with a GET', async () => {
    const { clock, sim, api } = setup([node('gpu-node-001')]);
    // the view still shows a human's cordon that has since been lifted
    const stale: WireNode = planNodeOf(node('gpu-node-001', { unschedulable: true, rv: '1' }));
    const ex = new KubeExecutor(api, { clock, recordEvents: false, nodeView: () => stale });
    const res = await ex.execute(decision());
    expect(res.ok, res.detail).to.equal(true);
    expect(api.calls).to.deep.equal(['GET gpu-node-001', 'PATCH gpu-node-001']);
    expect((await sim.getNode('gpu-node-001')).spec?.unschedulable).to.equal(true);
  });

  it('without a resourceVersion in the view (or the Node not in it) reads first', async () => {
    const { clock, api } = setup([node('gpu-node-001')]);
    const noRv: WireNode = { metadata: { name: 'gpu-node-001' }, spec: {} };
    await new KubeExecutor(api, { clock, recordEvents: false, nodeView: () => noRv }).execute(decision());
    expect(api.calls).to.deep.equal(['GET gpu-node-001', 'PATCH gpu-node-001']);
  });

  it('planNodeOf keeps what the plans read: same plan on the copy as on the whole Node', () => {
    const cases: WireNode[] = [
      node('a'),
      node('b', { unschedulable: true }),
      node('c', { unschedulable: true, annotations: { [NW.annCordonedBy]: 'nodewarden', [NW.annDecision]: 'd1', 'x/y': 'z' }, taints: [{ key: NW.taintKey, value: 'true', effect: 'NoSchedule' }, { key: 'o', effect: 'NoExecute' }] }),
      node('d', { unschedulable: true, annotations: { [NW.annCordonedBy]: 'nodewarden' }, managedFields: [{ manager: 'kubectl', fieldsV1: { 'f:spec': { 'f:unschedulable': {} } } }] }),
      node('e', { annotations: { [NW.annCordonedBy]: 'nodewarden' }, taints: [{ key: NW.taintKey, value: 'true', effect: 'NoSchedule' }] }),
    ];
    const d = decision();
    for (const n of cases) {
      expect(planCordon(planNodeOf(n), d, T0), n.metadata?.name).to.deep.equal(planCordon(n, d, T0));
      expect(planUncordon(planNodeOf(n), d), n.metadata?.name).to.deep.equal(planUncordon(n, d));
    }
  });

  it('with a queue, the cordon returns before its Event is recorded; the Event follows', async () => {
    const { clock, sim, api } = setup([node('gpu-node-001')]);
    let release!: () => void;
    api.holdEvents = new Promise<void>((r) => (release = r));
    const ex = new KubeExecutor(api, { clock, eventQueue: { max: 10 } });
    const res = await ex.execute(decision());
    expect(res.ok, res.detail).to.equal(true);
    expect((await sim.getNode('gpu-node-001')).spec?.unschedulable).to.equal(true);
    expect(sim.events).to.have.length(0); // without the queue the cordon waited for its Event
    release();
    await ex.drainEvents(1000);
    expect(sim.events.map((e) => e.reason)).to.deep.equal(['NodewardenCordon']);
    expect(ex.eventStats).to.deep.equal({ recorded: 1, failed: 0, dropped: 0 });
  });

  it('counts and logs Events that failed or were dropped (queue full); the action still succeeds', async () => {
    const nodes = ['n1', 'n2', 'n3', 'n4'].map((n) => node(n));
    const { clock, api } = setup(nodes);
    let release!: () => void;
    api.holdEvents = new Promise<void>((r) => (release = r));
    api.failEvents = true;
    const registry = createRegistry('test');
    const ex = new KubeExecutor(api, { clock, registry, eventQueue: { max: 2, concurrency: 1 } });
    const results = [];
    for (const n of ['n1', 'n2', 'n3', 'n4']) results.push(await ex.execute(decision({ id: `d-${n}`, target: { kind: 'Node', name: n } })));
    expect(results.every((r) => r.ok)).to.equal(true);
    // n1 is being created (held), n2 and n3 wait, n4 finds the queue full
    expect(results[3]?.detail).to.match(/Event not recorded: event queue full/);
    release();
    await ex.drainEvents(1000);
    expect(ex.eventStats).to.deep.equal({ recorded: 0, failed: 3, dropped: 1 });
    const text = await registry.metrics();
    expect(text).to.match(/nodewarden_kube_events_total\{result="failed"[^}]*\} 3/);
    expect(text).to.match(/nodewarden_kube_events_total\{result="dropped"[^}]*\} 1/);
  });

  it('rejects an unbounded event queue', () => {
    const { clock, api } = setup([]);
    expect(() => new KubeExecutor(api, { clock, eventQueue: { max: 0 } })).to.throw(/event queue/);
    expect(() => new KubeExecutor(api, { clock, eventQueue: { max: 10, concurrency: 17 } })).to.throw(/event queue/);
  });
});
