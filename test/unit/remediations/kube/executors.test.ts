import { expect } from 'chai';
import { NW } from '../../../../core/cluster.js';
import { ManualClock } from '../../../../core/clock.js';
import { NodewardenError } from '../../../../core/errors.js';
import { KubeExecutor, selectorString } from '../../../../remediations/kube/executors.js';
import type { KubeApi } from '../../../../remediations/kube/kube-api.js';
import type { KubeObject, WireNode } from '../../../../remediations/kube/wire.js';
import { SimulatedApi } from '../../../../remediations/simulated/simulated-cluster.js';
import { controllerRevision, daemonSet, decision, deployment, node, replicaSet } from './helpers.js';

const T0 = Date.parse('2026-11-21T10:15:24Z');

function setup(objects: KubeObject[]): { api: SimulatedApi; clock: ManualClock } {
  const clock = new ManualClock(T0);
  return { api: new SimulatedApi(objects, clock), clock };
}

/** A KubeApi that delegates to `inner`, letting a test replace single methods. */
function wrap(inner: KubeApi, over: Partial<KubeApi>): KubeApi {
  return {
    getNode: (n) => inner.getNode(n),
    patchNode: (n, p) => inner.patchNode(n, p),
    getDeployment: (ns, n) => inner.getDeployment(ns, n),
    patchDeployment: (ns, n, p) => inner.patchDeployment(ns, n, p),
    listReplicaSets: (ns, s) => inner.listReplicaSets(ns, s),
    getDaemonSet: (ns, n) => inner.getDaemonSet(ns, n),
    patchDaemonSet: (ns, n, p) => inner.patchDaemonSet(ns, n, p),
    listControllerRevisions: (ns, s) => inner.listControllerRevisions(ns, s),
    createEvent: (ns, e) => inner.createEvent(ns, e),
    ...over,
  };
}

describe('kube/executors (KubeExecutor over the KubeApi port)', () => {
  it('cordons a node and records a Warning Event about it', async () => {
    const { api, clock } = setup([node('gpu-node-001')]);
    const ex = new KubeExecutor(api, { clock, instance: 'engine-0' });
    const res = await ex.execute(decision());
    expect(res.ok, res.detail).to.equal(true);
    const n = api.get<WireNode>('Node', undefined, 'gpu-node-001');
    expect(n.spec?.unschedulable).to.equal(true);
    expect(n.spec?.taints?.map((t) => `${t.key}:${t.effect}`)).to.deep.equal([`${NW.taintKey}:NoSchedule`]);
    expect(n.metadata?.annotations?.[NW.annCordonedBy]).to.equal('nodewarden');
    expect(api.events).to.have.length(1);
    const ev = api.events[0];
    expect(ev).to.deep.include({ reason: 'NodewardenCordon', type: 'Warning', reportingComponent: 'nodewarden', reportingInstance: 'engine-0' });
    expect(ev?.involvedObject).to.deep.include({ kind: 'Node', name: 'gpu-node-001', uid: 'uid-gpu-node-001' });
    expect(ev?.metadata?.namespace).to.equal('default');
    expect(ev?.message).to.contain('gpu-xid-fatal').and.contain('Xid 79');
  });

  it('a replayed cordon is ok, writes nothing and does not duplicate the Event', async () => {
    const { api, clock } = setup([node('gpu-node-001')]);
    const ex = new KubeExecutor(api, { clock });
    await ex.execute(decision());
    const v = api.version;
    const again = await ex.execute(decision());
    expect(again.ok).to.equal(true);
    expect(again.detail).to.match(/already cordoned by nodewarden/);
    expect(api.version).to.equal(v);
    expect(api.events).to.have.length(1);
  });

  it('leaves a human-cordoned node alone on cordon and refuses to uncordon it (FORBIDDEN)', async () => {
    const { api, clock } = setup([node('gpu-node-001', { unschedulable: true })]);
    const ex = new KubeExecutor(api, { clock });
    const c = await ex.execute(decision());
    expect(c.ok).to.equal(true);
    expect(c.detail).to.match(/someone else/);
    const n = api.get<WireNode>('Node', undefined, 'gpu-node-001');
    expect(n.metadata?.annotations?.[NW.annCordonedBy]).to.equal(undefined);
    expect(n.spec?.taints).to.equal(undefined);
    const u = await ex.execute(decision({ id: 'dec-2', action: 'uncordon' }));
    expect(u.ok).to.equal(false);
    expect(u.error?.code).to.equal('FORBIDDEN');
    expect(u.error?.retriable).to.equal(false);
    expect(api.get<WireNode>('Node', undefined, 'gpu-node-001').spec?.unschedulable).to.equal(true);
  });

  it('uncordons what it cordoned', async () => {
    const { api, clock } = setup([node('gpu-node-001')]);
    const ex = new KubeExecutor(api, { clock });
    await ex.execute(decision());
    const u = await ex.execute(decision({ id: 'dec-2', action: 'uncordon', reason: 'containerd healthy again' }));
    expect(u.ok, u.detail).to.equal(true);
    const n = api.get<WireNode>('Node', undefined, 'gpu-node-001');
    expect(n.spec?.unschedulable).to.equal(undefined);
    expect(n.spec?.taints ?? []).to.deep.equal([]);
    expect(Object.keys(n.metadata?.annotations ?? {}).filter((k) => k.startsWith('nodewarden.io/'))).to.deep.equal([]);
    expect(api.events.map((e) => e.reason)).to.deep.equal(['NodewardenCordon', 'NodewardenUncordon']);
  });

  it('on a 409 re-reads and decides again; another writer\'s change survives', async () => {
    const { api, clock } = setup([node('gpu-node-001')]);
    let raced = false;
    const racing = wrap(api, {
      getNode: async (name) => {
        const n = await api.getNode(name);
        if (!raced) {
          raced = true; // another client writes between our read and our write
          api.mutate<WireNode>('Node', undefined, name, (o) => ((o.metadata ??= {}).labels = { ...o.metadata.labels, 'team': 'ml' }));
        }
        return n;
      },
    });
    const res = await new KubeExecutor(racing, { clock }).execute(decision());
    expect(res.ok, res.detail).to.equal(true);
    const n = api.get<WireNode>('Node', undefined, 'gpu-node-001');
    expect(n.spec?.unschedulable).to.equal(true);
    expect(n.metadata?.labels?.team).to.equal('ml');
  });

  it('gives up after bounded conflicts with a retriable CONFLICT', async () => {
    const { api, clock } = setup([node('gpu-node-001')]);
    let patches = 0;
    const always = wrap(api, {
      patchNode: () => {
        patches++;
        return Promise.reject(new NodewardenError('CONFLICT', 'the object has been modified', { retriable: true }));
      },
    });
    const res = await new KubeExecutor(always, { clock, maxConflictRetries: 3 }).execute(decision());
    expect(res.ok).to.equal(false);
    expect(res.error?.code).to.equal('CONFLICT');
    expect(res.error?.retriable).to.equal(true);
    expect(patches).to.equal(3);
  });

  it('reports 403 as FORBIDDEN (not retriable) and network failures as retriable', async () => {
    const { api, clock } = setup([node('gpu-node-001')]);
    const forbidden = wrap(api, { patchNode: () => Promise.reject(new NodewardenError('FORBIDDEN', 'patch nodes gpu-node-001: HTTP 403: forbidden')) });
    const r1 = await new KubeExecutor(forbidden, { clock }).execute(decision());
    expect(r1).to.deep.include({ ok: false });
    expect(r1.error?.code).to.equal('FORBIDDEN');
    expect(r1.error?.retriable).to.equal(false);
    expect(r1.detail).to.match(/403/);
    const down = wrap(api, { getNode: () => Promise.reject(new NodewardenError('UNAVAILABLE', 'connect ECONNREFUSED', { retriable: true })) });
    const r2 = await new KubeExecutor(down, { clock }).execute(decision());
    expect(r2.error?.code).to.equal('UNAVAILABLE');
    expect(r2.error?.retriable).to.equal(true);
  });

  it('an Event that cannot be written does not fail the cordon', async () => {
    const { api, clock } = setup([node('gpu-node-001')]);
    const noEvents = wrap(api, { createEvent: () => Promise.reject(new NodewardenError('FORBIDDEN', 'events is forbidden')) });
    const res = await new KubeExecutor(noEvents, { clock }).execute(decision());
    expect(res.ok).to.equal(true);
    expect(res.detail).to.match(/Event not recorded/);
  });

  it('rolls a Deployment back to the previous revision; the revision moves forward', async () => {
    const { api, clock } = setup([deployment('web:v2', 2), replicaSet('web:v1', 1, 'aaa'), replicaSet('web:v2', 2, 'bbb')]);
    const res = await new KubeExecutor(api, { clock }).execute(
      decision({ action: 'rollback', target: { kind: 'Deployment', namespace: 'apps', name: 'web' } }),
    );
    expect(res, res.detail).to.deep.include({ ok: true, toRevision: 1 });
    const d = api.get<KubeObject & { spec: { template: { spec: { containers: Array<{ image: string }> } } } }>('Deployment', 'apps', 'web');
    expect(d.spec.template.spec.containers[0]?.image).to.equal('web:v1');
    expect(d.metadata?.annotations?.['deployment.kubernetes.io/revision']).to.equal('3');
    expect(api.get('ReplicaSet', 'apps', 'web-aaa').metadata?.annotations?.['deployment.kubernetes.io/revision']).to.equal('3');
    expect(api.events.map((e) => e.reason)).to.deep.equal(['NodewardenRollback']);
  });

  it('rolls a DaemonSet back via ControllerRevisions and refuses when there is no previous one', async () => {
    const { api, clock } = setup([daemonSet('driver:new'), controllerRevision('driver:old', 1), controllerRevision('driver:new', 2)]);
    const ex = new KubeExecutor(api, { clock });
    const d = decision({ action: 'rollback', target: { kind: 'DaemonSet', namespace: 'gpu-operator', name: 'driver' } });
    const res = await ex.execute(d);
    expect(res, res.detail).to.deep.include({ ok: true, toRevision: 1 });
    expect(api.get<KubeObject & { revision: number }>('ControllerRevision', 'gpu-operator', 'driver-1').revision).to.equal(3);
    // the same decision again: no flip back to driver:new
    const again = await ex.execute(d);
    expect(again).to.deep.include({ ok: true, toRevision: 1 });
    expect(JSON.stringify(api.get('DaemonSet', 'gpu-operator', 'driver'))).to.contain('driver:old');

    const lone = setup([daemonSet('driver:new'), controllerRevision('driver:new', 2)]);
    const refused = await new KubeExecutor(lone.api, { clock: lone.clock }).execute(d);
    expect(refused.ok).to.equal(false);
    expect(refused.error?.code).to.equal('NOT_FOUND');
    expect(lone.api.events).to.have.length(0);
  });

  it('rejects targets and actions it does not handle', async () => {
    const { api, clock } = setup([]);
    const ex = new KubeExecutor(api, { clock });
    expect((await ex.execute(decision({ action: 'page' }))).error?.code).to.equal('REQUEST_INVALID');
    expect((await ex.execute(decision({ target: { kind: 'Group', name: 'x' } }))).error?.code).to.equal('REQUEST_INVALID');
    expect((await ex.execute(decision({ target: { kind: 'Node', name: 'missing' } }))).error?.code).to.equal('NOT_FOUND');
  });

  it('selectorString renders matchLabels and matchExpressions', () => {
    expect(selectorString({ matchLabels: { a: 'b' }, matchExpressions: [{ key: 'c', operator: 'In', values: ['x', 'y'] }, { key: 'd', operator: 'DoesNotExist' }] })).to.equal(
      'a=b,c in (x,y),!d',
    );
  });
});
