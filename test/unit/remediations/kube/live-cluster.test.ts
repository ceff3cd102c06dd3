import { expect } from 'chai';
import { LiveCluster, type ListWatchSource, type WatchedResource } from '../../../../remediations/kube/live-cluster.js';
import type { KubeObject } from '../../../../remediations/kube/wire.js';
import { NW } from '../../../../core/cluster.js';
import { controllerRevision, node, replicaSet } from './helpers.js';

interface OpenWatch {
  resource: WatchedResource;
  rv: string;
  onEvent: (type: string, obj: KubeObject) => void;
  onDone: (err?: unknown) => void;
  stopped: boolean;
}

/** An in-memory API: lists return `state`, watches are driven by the test. */
class FakeSource implements ListWatchSource {
  state: Record<WatchedResource, KubeObject[]> = { nodes: [], replicasets: [], controllerrevisions: [], devicetaintrules: [], resourceslices: [] };
  rv = 10;
  watches: OpenWatch[] = [];
  lists: WatchedResource[] = [];
  failLists = 0;
  /** discoverDeviceTaintApis answers this (an Error: it fails). */
  draServed: boolean | Error = false;
  discoveries = 0;

  discoverDeviceTaintApis(): Promise<boolean> {
    this.discoveries++;
    return this.draServed instanceof Error ? Promise.reject(this.draServed) : Promise.resolve(this.draServed);
  }

  list(resource: WatchedResource): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    this.lists.push(resource);
    if (this.failLists > 0) {
      this.failLists--;
      return Promise.reject(new Error('connect ECONNREFUSED'));
    }
    return Promise.resolve({ items: structuredClone(this.state[resource]), resourceVersion: String(this.rv) });
  }

  watch(resource: WatchedResource, rv: string, onEvent: OpenWatch['onEvent'], onDone: OpenWatch['onDone']): Promise<{ stop(): void }> {
    const w: OpenWatch = { resource, rv, onEvent, onDone, stopped: false };
    this.watches.push(w);
    return Promise.resolve({ stop: () => void (w.stopped = true) });
  }

  open(resource: WatchedResource): OpenWatch {
    const w = this.watches.filter((x) => x.resource === resource && !x.stopped).at(-1);
    if (!w) throw new Error(`no open watch on ${resource}`);
    return w;
  }
}

const tick = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('kube/live-cluster (reflectors over a ListWatchSource)', () => {
  let src: FakeSource;
  let view: LiveCluster;
  beforeEach(() => {
    src = new FakeSource();
  });
  afterEach(() => view.stop());

  it('lists, then applies watch events: add, modify (cordon), delete', async () => {
    src.state.nodes = [node('a'), node('b', { ready: false })];
    view = new LiveCluster({ source: src, reconcileIntervalMs: 0, retryDelayMs: 1 });
    await view.start();
    expect(view.listNodes().map((n) => n.name).sort()).to.deep.equal(['a', 'b']);
    expect(view.getNode('b')?.ready).to.equal(false);
    const w = src.open('nodes');
    expect(w.rv).to.equal('10');
    w.onEvent('ADDED', { ...node('c'), metadata: { ...node('c').metadata, resourceVersion: '11' } });
    w.onEvent('MODIFIED', node('a', { unschedulable: true, annotations: { [NW.annCordonedBy]: 'nodewarden' }, rv: '12' }));
    w.onEvent('DELETED', node('b', { rv: '13' }));
    expect(view.listNodes().map((n) => n.name).sort()).to.deep.equal(['a', 'c']);
    expect(view.getNode('a')).to.deep.include({ unschedulable: true, cordonedByNodewarden: true });
    // what a cordon plans from (ADR 0041): the latest resourceVersion the watch delivered, gone with the Node
    expect(view.nodeForPlan('a')?.metadata?.resourceVersion).to.equal('12');
    expect(view.nodeForPlan('a')?.spec?.unschedulable).to.equal(true);
    expect(view.nodeForPlan('c')?.metadata?.resourceVersion).to.equal('11');
    expect(view.nodeForPlan('b')).to.equal(undefined);
  });

  it('listedAt: 0 until every resource was listed, then the oldest full list; watch events do not move it', async () => {
    let now = 1_000;
    view = new LiveCluster({ source: src, reconcileIntervalMs: 0, retryDelayMs: 1, now: () => now });
    expect(view.listedAt()).to.equal(0);
    await view.start();
    expect(view.listedAt()).to.equal(1_000);
    now = 5_000;
    src.open('nodes').onEvent('ADDED', node('x', { rv: '11' }));
    expect(view.listedAt()).to.equal(1_000);
    await view.reconcile();
    expect(view.listedAt()).to.equal(5_000);
  });

  it('re-watches from the last resourceVersion when the watch ends, and re-lists on 410 Gone', async () => {
    src.state.nodes = [node('a')];
    view = new LiveCluster({ source: src, reconcileIntervalMs: 0, retryDelayMs: 1, watchWorkloads: false });
    await view.start();
    const w1 = src.open('nodes');
    w1.onEvent('MODIFIED', node('a', { rv: '15' }));
    w1.onEvent('BOOKMARK', { kind: 'Node', metadata: { resourceVersion: '20' } });
    w1.onDone();
    await tick();
    const w2 = src.open('nodes');
    expect(w2).to.not.equal(w1);
    expect(w2.rv).to.equal('20');
    // events from the closed stream are ignored
    w1.onEvent('DELETED', node('a'));
    expect(view.getNode('a')).to.not.equal(undefined);

    src.state.nodes = [node('a'), node('z')];
    const listsBefore = src.lists.length;
    w2.onEvent('ERROR', { kind: 'Status', code: 410, metadata: {} });
    await tick();
    expect(src.lists.length).to.equal(listsBefore + 1);
    expect(view.getNode('z')).to.not.equal(undefined);
    expect(w2.stopped).to.equal(true);
  });

  it('the periodic reconcile repairs a missed delete', async () => {
    src.state.nodes = [node('a'), node('gone')];
    view = new LiveCluster({ source: src, reconcileIntervalMs: 20, retryDelayMs: 1, watchWorkloads: false });
    await view.start();
    src.state.nodes = [node('a')]; // the DELETED event was lost
    await tick(60);
    expect(view.getNode('gone')).to.equal(undefined);
    expect(view.stats().nodes?.lists).to.be.greaterThan(1);
  });

  it('keeps serving the last state while the API is down and recovers', async () => {
    src.state.nodes = [node('a')];
    view = new LiveCluster({ source: src, reconcileIntervalMs: 0, retryDelayMs: 1, watchWorkloads: false });
    await view.start();
    src.failLists = 2;
    src.state.nodes = [node('a'), node('b')];
    src.open('nodes').onEvent('ERROR', { kind: 'Status', code: 410, metadata: {} });
    await tick(10);
    expect(view.getNode('a')).to.not.equal(undefined);
    await tick(40);
    expect(view.getNode('b')).to.not.equal(undefined);
  });

  it('tracks workload revisions from ReplicaSets and ControllerRevisions', async () => {
    src.state.replicasets = [replicaSet('web:v1', 1, 'aaa'), replicaSet('web:v2', 2, 'bbb')];
    src.state.controllerrevisions = [controllerRevision('d:1', 1, '2026-10-01T00:00:00Z'), controllerRevision('d:2', 2, '2026-11-21T09:20:00Z')];
    view = new LiveCluster({ source: src, reconcileIntervalMs: 0, retryDelayMs: 1 });
    await view.start();
    const ds = view.workloadRevisions({ kind: 'DaemonSet', namespace: 'gpu-operator', name: 'driver' });
    expect(ds.map((r) => [r.revision, r.createdAt])).to.deep.equal([
      [1, Date.parse('2026-10-01T00:00:00Z')],
      [2, Date.parse('2026-11-21T09:20:00Z')],
    ]);
    expect(view.workloadRevisions({ kind: 'Deployment', namespace: 'apps', name: 'web' }).map((r) => r.revision)).to.deep.equal([1, 2]);
    // the DaemonSet controller reuses revision 1 as 3 on a rollback
    const reused = { ...controllerRevision('d:1', 1, '2026-10-01T00:00:00Z'), revision: 3 };
    src.open('controllerrevisions').onEvent('MODIFIED', reused);
    expect(view.workloadRevisions({ kind: 'DaemonSet', namespace: 'gpu-operator', name: 'driver' }).map((r) => r.revision)).to.deep.equal([2, 3]);
    src.open('replicasets').onEvent('DELETED', replicaSet('web:v1', 1, 'aaa'));
    expect(view.workloadRevisions({ kind: 'Deployment', namespace: 'apps', name: 'web' }).map((r) => r.revision)).to.deep.equal([2]);
  });

  it('start() rejects when the first list fails (bad credentials must be loud)', async () => {
    src.failLists = 1;
    view = new LiveCluster({ source: src, reconcileIntervalMs: 0, watchWorkloads: false });
    let err: unknown;
    try {
      await view.start();
    } catch (e) {
      err = e;
    }
    expect(String(err)).to.match(/ECONNREFUSED/);
  });

  describe('GPUs tainted by others (DeviceTaintRules + ResourceSlices)', () => {
    const DT = { driver: 'gpu.nvidia.com', uuidAttribute: 'uuid', pciAttribute: 'pciBusID' };
    const slice = (nodeName: string, rv = '20'): KubeObject =>
      ({
        metadata: { name: `${nodeName}-slice`, resourceVersion: rv },
        spec: { driver: DT.driver, nodeName, pool: { name: nodeName, generation: 1, resourceSliceCount: 1 }, devices: [0, 1, 2, 3].map((i) => ({ name: `gpu-${i}`, attributes: { uuid: { string: `GPU-${nodeName}-${i}` } } })) },
      });
    const rule = (name: string, deviceSelector: Record<string, unknown>, rv = '21'): KubeObject =>
      ({ metadata: { name, resourceVersion: rv }, spec: { deviceSelector, taint: { key: 'k', effect: 'NoSchedule' } } });

    it('served: lists and watches them; others\' GPUs land on their node; nothing is listed per read', async () => {
      src.draServed = true;
      src.state.nodes = [node('a'), node('b')];
      src.state.resourceslices = [slice('a'), slice('b')];
      src.state.devicetaintrules = [rule('theirs', { driver: DT.driver, pool: 'a', device: 'gpu-1' })];
      view = new LiveCluster({ source: src, reconcileIntervalMs: 0, retryDelayMs: 1, watchWorkloads: false, deviceTaints: DT });
      await view.start();
      expect(src.lists.sort()).to.deep.equal(['devicetaintrules', 'nodes', 'resourceslices']);
      expect(view.getNode('a')?.otherTaintedGpus).to.deep.equal(['GPU-a-1']);
      expect(view.getNode('b')?.otherTaintedGpus).to.equal(undefined);
      src.open('devicetaintrules').onEvent('ADDED', rule('cel', { driver: DT.driver, selectors: [{ cel: { expression: 'device.attributes["gpu.nvidia.com"].uuid == "GPU-b-3"' } }] }, '22'));
      expect(view.listNodes().find((n) => n.name === 'b')?.otherTaintedGpus).to.deep.equal(['GPU-b-3']);
      src.open('devicetaintrules').onEvent('ADDED', rule('opaque', { selectors: [{ cel: { expression: 'device.capacity["x"].value > 1' } }] }, '23'));
      expect(view.unplacedDeviceTaints()).to.deep.equal({ rules: [{ rule: 'opaque', reason: 'a CEL selector outside the supported subset, not bounded by a pool or device' }], count: 1 });
      src.open('devicetaintrules').onEvent('DELETED', rule('opaque', {}, '24'));
      src.open('devicetaintrules').onEvent('DELETED', rule('theirs', {}, '25'));
      expect(view.unplacedDeviceTaints().count).to.equal(0);
      expect(view.getNode('a')?.otherTaintedGpus).to.equal(undefined);
      src.open('resourceslices').onEvent('DELETED', slice('b', '26'));
      expect(view.getNode('b')?.otherTaintedGpus).to.equal(undefined);
      const lists = src.lists.length;
      for (let i = 0; i < 100; i++) view.listNodes();
      expect(src.lists.length).to.equal(lists);
    });

    it('not served (or discovery failed): nothing changes; a reconcile asks again', async () => {
      src.draServed = new Error('connect ECONNREFUSED');
      src.state.nodes = [node('a')];
      view = new LiveCluster({ source: src, reconcileIntervalMs: 0, retryDelayMs: 1, watchWorkloads: false, deviceTaints: DT });
      await view.start();
      expect(src.lists).to.deep.equal(['nodes']);
      expect(view.unplacedDeviceTaints()).to.deep.equal({ rules: [], count: 0 });
      src.draServed = false;
      await view.reconcile();
      expect(src.lists).to.deep.equal(['nodes', 'nodes']);
      src.draServed = true;
      src.state.devicetaintrules = [rule('opaque', { deviceClassName: 'gpu' })];
      await view.reconcile();
      expect(src.discoveries).to.equal(3);
      expect(view.unplacedDeviceTaints().count).to.equal(1);
      await view.reconcile();
      expect(src.discoveries).to.equal(3); // watching: not asked again
    });

    it('without the deviceTaints option the source is never asked', async () => {
      src.draServed = true;
      view = new LiveCluster({ source: src, reconcileIntervalMs: 0, retryDelayMs: 1, watchWorkloads: false });
      await view.start();
      expect(src.discoveries).to.equal(0);
      expect(view.unplacedDeviceTaints().count).to.equal(0);
    });
  });
});
