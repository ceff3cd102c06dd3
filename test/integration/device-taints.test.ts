/**
 * Per-GPU scope on a REAL kube-apiserver (issue 11, docs/gpu-scope.md):
 * - a cluster that serves DeviceTaintRule (Kubernetes 1.33: resource.k8s.io/v1alpha3
 *   behind the DRADeviceTaints gate, harness option `deviceTaints`): a GPU fault
 *   through the remediator creates one DeviceTaintRule for that GPU (NoSchedule),
 *   as the engine's own ServiceAccount with the chart's RBAC; the undo deletes it;
 *   shadow mode is a server-side dry run (1.33 has no effect None); a rule someone
 *   else made is never deleted;
 * - the default cluster (API not served): the same decision cordons the node.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ManualClock, systemClock } from '../../core/clock.js';
import type { ClusterView } from '../../core/cluster.js';
import { DEFAULT_CONFIG } from '../../core/config.js';
import type { Decision, LedgerRecord } from '../../core/decision.js';
import { silentLogger } from '../../core/logger.js';
import { packageRoot } from '../../adapters/paths.js';
import { createDeviceIsolation } from '../../remediations/device-isolation.js';
import { createMemoryGuard } from '../../remediations/guard/memory-guard.js';
import { guardOptionsFromConfig } from '../../remediations/guard/policy.js';
import type { LedgerWriter } from '../../remediations/ledger/store.js';
import { createRemediator } from '../../remediations/remediator.js';
import { createPagerExecutor } from '../../remediations/pager/pager-executor.js';
import { createRecordingPager } from '../../remediations/pager/recording-pager.js';
import { createClientNodeKubeApi } from '../../remediations/kube/client-node-api.js';
import { createClientNodeDeviceTaintApi } from '../../remediations/kube/client-node-device-taints.js';
import { deviceTaintRuleName } from '../../remediations/kube/device-taint-rules.js';
import { DeviceTaintDiscovery, createDeviceTaintExecutor, type DeviceTaintApi } from '../../remediations/kube/device-taints.js';
import { KubeExecutor } from '../../remediations/kube/executors.js';
import { createClientNodeListWatch } from '../../remediations/kube/client-node-watch.js';
import { LiveCluster } from '../../remediations/kube/live-cluster.js';
import { taint as taintOf, cordon as cordonOf } from '../unit/remediations/fake-cluster.js';
import { startKube, type KubeCluster } from '../harness/kube.js';
import { FakeCluster } from '../unit/remediations/fake-cluster.js';
import { sharedKube } from './servers.js';
import type { EventEnvelope } from '../../core/envelope.js';
import { createRuleEngine } from '../../rules/engine/engine.js';
import { defaultRulesPath, loadRules } from '../../rules/language/load.js';
import { MemoryStateStore } from '../../rules/store/memory-store.js';
import { fileOnlyToggles } from '../../rules/toggles/port.js';

const RUN = randomBytes(3).toString('hex');
const UUID = `GPU-5f1c0b7e-${RUN}-4a55-9d2b-3d7c1f0e9a11`.slice(0, 40);
const CFG = DEFAULT_CONFIG.deviceTaints;

function kcFor(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

function memoryLedger(): LedgerWriter & { records: LedgerRecord[] } {
  const records: LedgerRecord[] = [];
  return { name: 'memory', records, append: (rs: readonly LedgerRecord[]) => { records.push(...rs); return Promise.resolve(); } };
}

function taintDecision(node: string, gpu: string, id = `d-${randomBytes(4).toString('hex')}`): Decision {
  return { id, at: Date.now(), rule: 'gpu-xid-fatal', action: 'taint', target: { kind: 'Device', name: gpu, node }, reason: `Xid 48 on ${node} GPU ${gpu}`, severity: 'critical' };
}

/** What the shipped pack decides for one Xid on one GPU of a node (the real engine over the default rules). */
async function packDecisions(view: ClusterView, node: string, code: number, gpu: string, message: string): Promise<Decision[]> {
  const now = Date.now();
  const engine = createRuleEngine({ rules: loadRules(defaultRulesPath()), store: new MemoryStateStore(), cluster: view, toggles: fileOnlyToggles, clock: new ManualClock(now), logger: silentLogger, config: DEFAULT_CONFIG });
  const e: EventEnvelope = { v: 1, id: `x-${randomBytes(4).toString('hex')}`, ts: new Date(now).toISOString(), node, type: 'gpu.xid', source: 'kmsg', labels: { pool: 'a' }, data: { code, gpu, pci: '0000:3b:00', message } };
  return engine.process([e]);
}

function remediatorOn(view: ClusterView, kc: KubeConfig, discovery: DeviceTaintDiscovery, api: DeviceTaintApi, ledger: LedgerWriter) {
  const clock = systemClock;
  const exec = createDeviceTaintExecutor({ api, discovery, config: CFG, clock });
  return {
    exec,
    remediator: createRemediator({
      guard: createMemoryGuard({ view, options: guardOptionsFromConfig(DEFAULT_CONFIG, { maxUnavailablePerGroup: '100%' }), clock: new ManualClock(Date.now()) }),
      // the pack's page goes to a recording pager (no paging service here)
      executors: [new KubeExecutor(createClientNodeKubeApi(kc), { clock }), exec, createPagerExecutor({ pagers: [createRecordingPager('test')], logger: silentLogger })],
      ledger: [ledger],
      clock,
      logger: silentLogger,
      autoFlush: false,
      isolation: createDeviceIsolation({ config: CFG, discovery, logger: silentLogger }),
    }),
  };
}

/** The device-taint API, discovery, a fake fleet of 20 (with `gpus` GPUs per node when given), a memory ledger and the remediator over them, as `kc`. */
function onApiserver(kc: KubeConfig, gpus?: number) {
  const api = createClientNodeDeviceTaintApi(kc);
  const discovery = new DeviceTaintDiscovery({ api, clock: systemClock, ttlMs: 60_000 });
  const fleet = FakeCluster.fleet(20, ['a']);
  const view = gpus === undefined ? fleet : fleet.withGpus(gpus);
  const ledger = memoryLedger();
  return { api, discovery, view, ledger, ...remediatorOn(view, kc, discovery, api, ledger) };
}

describe('per-GPU scope on a real kube-apiserver', function () {
  this.timeout(240_000);

  describe('where DeviceTaintRule is served (1.33: v1alpha3 + DRADeviceTaints)', () => {
    let kube: KubeCluster;
    let engineKc: KubeConfig;
    before(async () => {
      kube = await startKube({ deviceTaints: true });
      // the engine's own ServiceAccount with the RBAC as the kustomize base ships it
      const r = await kube.kubectl(['apply', '-f', join(packageRoot(), 'deploy/base/namespace.yaml'), '-f', join(packageRoot(), 'deploy/base/rbac-engine.yaml')]);
      expect(r.code, r.stderr).to.equal(0);
      engineKc = kcFor(await kube.kubeconfigFor(await kube.tokenFor('nodewarden', 'nodewarden-engine')));
    });
    after(async () => {
      await kube?.stop();
    });

    const get = async (name: string): Promise<{ status: number; json: unknown }> => kube.request('GET', `/apis/resource.k8s.io/v1alpha3/devicetaintrules/${name}`);

    it('discovers resource.k8s.io/v1alpha3 and caches the answer', async () => {
      const api = createClientNodeDeviceTaintApi(engineKc);
      let calls = 0;
      const counting: DeviceTaintApi = { ...api, discover: () => { calls++; return api.discover(); } };
      const discovery = new DeviceTaintDiscovery({ api: counting, clock: systemClock, ttlMs: 60_000 });
      expect(await discovery.apiVersion()).to.equal('resource.k8s.io/v1alpha3');
      expect(await discovery.apiVersion()).to.equal('resource.k8s.io/v1alpha3');
      expect(calls).to.equal(1);
    });

    it('a GPU fault taints just that GPU (NoSchedule, as the engine ServiceAccount); the undo removes it; a replay changes nothing', async () => {
      const { remediator, exec } = onApiserver(engineKc, 8);
      const d = taintDecision('gpu-003', UUID);
      const [rec] = (await remediator.submit([d])).records;
      expect(rec).to.deep.include({ action: 'taint', outcome: 'executed', target: { kind: 'Device', name: UUID, node: 'gpu-003' } });
      const name = deviceTaintRuleName({ node: 'gpu-003', gpu: UUID });
      const got = await get(name);
      expect(got.status).to.equal(200);
      const rule = got.json as { metadata: { labels: Record<string, string>; annotations: Record<string, string> }; spec: { deviceSelector: { driver: string; selectors: Array<{ cel: { expression: string } }> }; taint: { key: string; effect: string; value: string } } };
      expect(rule.spec.taint).to.include({ key: 'nodewarden.io/unhealthy', effect: 'NoSchedule', value: 'gpu-xid-fatal' });
      expect(rule.spec.deviceSelector.driver).to.equal('gpu.nvidia.com');
      expect(rule.spec.deviceSelector.selectors[0]?.cel.expression).to.equal(`"uuid" in device.attributes["gpu.nvidia.com"] && device.attributes["gpu.nvidia.com"].uuid == "${UUID}"`);
      expect(rule.metadata.labels).to.include({ 'app.kubernetes.io/managed-by': 'nodewarden', 'nodewarden.io/node': 'gpu-003' });
      expect(rule.metadata.annotations).to.include({ 'nodewarden.io/decision-id': d.id, 'nodewarden.io/gpu': UUID });

      // the repair ladder's check of the GPU's taint (as the engine ServiceAccount)
      expect(await exec.owner('gpu-003', UUID)).to.equal('own');

      // the same GPU again (a later firing): the existing rule is kept
      const again = await exec.execute(taintDecision('gpu-003', UUID));
      expect(again).to.include({ ok: true });
      expect(again.detail).to.match(/already tainted/);

      // the explicit undo (the repair ladder's return to service)
      const undo = await exec.untaintDevice({ node: 'gpu-003', gpu: UUID });
      expect(undo).to.include({ ok: true });
      expect((await get(name)).status).to.equal(404);
      expect(await exec.owner('gpu-003', UUID)).to.equal('none');
      expect(await exec.untaintDevice({ node: 'gpu-003', gpu: UUID })).to.include({ ok: true, detail: `no DeviceTaintRule ${name}: GPU not tainted` });
    });

    it('the shipped pack: a GPU-level Xid (119, RESET_GPU) taints just that GPU; a node-level one (79, RESTART_BM) cordons', async () => {
      const { view, remediator, exec } = onApiserver(engineKc, 8);
      const gpu = `GPU-7a2d0c11-${RUN}-4b66-8e3c-4d8e2f1fab22`.slice(0, 40);
      const decisions = await packDecisions(view, 'gpu-004', 119, gpu, 'Timeout after 6s of waiting for RPC response from GPU0 GSP!');
      const recs = (await remediator.submit(decisions)).records;
      expect(recs.map((r) => [r.rule, r.action, r.outcome])).to.deep.equal([
        ['gpu-xid-fatal', 'taint', 'executed'],
        ['gpu-xid-fatal', 'page', 'executed'],
      ]);
      expect(recs[0]?.target).to.deep.equal({ kind: 'Device', name: gpu, node: 'gpu-004' });
      const got = await get(deviceTaintRuleName({ node: 'gpu-004', gpu }));
      expect(got.status).to.equal(200);
      expect((got.json as { spec: { taint: { effect: string; value: string } } }).spec.taint).to.include({ effect: 'NoSchedule', value: 'gpu-xid-fatal' });
      // the node itself stays schedulable: nothing cordoned it
      expect(recs.some((r) => r.action === 'cordon')).to.equal(false);
      expect(await exec.untaintDevice({ node: 'gpu-004', gpu })).to.include({ ok: true });

      // Xid 79 on the same kind of event: the pack cordons (the node is not on this apiserver: the executor says so, but the decision is a cordon)
      const off = await packDecisions(view, 'gpu-005', 79, gpu, 'GPU has fallen off the bus.');
      expect(off.map((d) => [d.rule, d.action, d.target.kind])).to.deep.equal([
        ['gpu-xid-node-fatal', 'cordon', 'Node'],
        ['gpu-xid-node-fatal', 'page', 'Node'],
      ]);
    });

    it('a PCI-only GPU is selected by the pciBusID attribute within its node\'s pool', async () => {
      const api = createClientNodeDeviceTaintApi(engineKc);
      const exec = createDeviceTaintExecutor({ api, discovery: new DeviceTaintDiscovery({ api, clock: systemClock, ttlMs: 60_000 }), config: CFG, clock: systemClock });
      expect(await exec.execute(taintDecision('gpu-004', '0000:3b:00'))).to.include({ ok: true });
      const rule = (await get(deviceTaintRuleName({ node: 'gpu-004', gpu: '0000:3b:00' }))).json as { spec: { deviceSelector: { pool: string; selectors: Array<{ cel: { expression: string } }> } } };
      expect(rule.spec.deviceSelector.pool).to.equal('gpu-004');
      expect(rule.spec.deviceSelector.selectors[0]?.cel.expression).to.equal('"pciBusID" in device.attributes["gpu.nvidia.com"] && device.attributes["gpu.nvidia.com"].pciBusID.matches("(?i)^0*0:3b:00([.][0-7])?$")');
      expect(await exec.untaintDevice({ node: 'gpu-004', gpu: '0000:3b:00' })).to.include({ ok: true });
    });

    it('shadow mode: effect None is refused by 1.33, so the real rule is validated by a server-side dry run and nothing is stored', async () => {
      const api = createClientNodeDeviceTaintApi(engineKc);
      const discovery = new DeviceTaintDiscovery({ api, clock: systemClock, ttlMs: 60_000 });
      const dry = createDeviceTaintExecutor({ api, discovery, config: CFG, clock: systemClock, dryRun: true });
      const r = await dry.execute(taintDecision('gpu-005', UUID));
      expect(r).to.include({ ok: true, dryRun: true });
      expect(r.detail).to.match(/validated by the API server, not stored \(this server has no effect None\)/);
      expect((await discovery.support()).effectNone).to.equal(false);
      expect((await get(deviceTaintRuleName({ node: 'gpu-005', gpu: UUID }))).status).to.equal(404);
    });

    it("GPUs tainted by someone else (their DeviceTaintRules, created directly) count in the guard, as the engine's view sees them through its RBAC; an unplaceable rule denies", async () => {
      const DRIVER = CFG.driver;
      const nodes = [`nw-other-a-${RUN}`, `nw-other-b-${RUN}`];
      const [nodeA = '', nodeB = ''] = nodes;
      const gpuUuid = (node: string, i: number): string => `GPU-${RUN}-${node.slice(-8)}-${i}`.slice(0, 60);
      for (const n of nodes) {
        const r = await kube.kubectl(['apply', '-f', '-'], { input: `apiVersion: v1\nkind: Node\nmetadata:\n  name: ${n}\n  labels:\n    nodewarden.io/pool: other-${RUN}\n    nvidia.com/gpu.count: "8"\n` });
        expect(r.code, r.stderr).to.equal(0);
        const now = new Date().toISOString();
        const ready = await kube.kubectl(['patch', 'node', n, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ok', lastHeartbeatTime: now, lastTransitionTime: now }] } })]);
        expect(ready.code, ready.stderr).to.equal(0);
        // what NVIDIA's DRA driver publishes: one pool per node, its GPUs with uuid attributes
        const slice = {
          apiVersion: 'resource.k8s.io/v1beta2',
          kind: 'ResourceSlice',
          metadata: { name: `${n}-gpus` },
          spec: { driver: DRIVER, nodeName: n, pool: { name: n, generation: 1, resourceSliceCount: 1 }, devices: [0, 1, 2, 3, 4, 5, 6, 7].map((i) => ({ name: `gpu-${i}`, attributes: { uuid: { string: gpuUuid(n, i) }, index: { int: i } } })) },
        };
        const c = await kube.request('POST', '/apis/resource.k8s.io/v1beta2/resourceslices', slice);
        expect(c.status, JSON.stringify(c.json)).to.equal(201);
      }
      const rule = (name: string, deviceSelector: Record<string, unknown>): unknown => ({ apiVersion: 'resource.k8s.io/v1alpha3', kind: 'DeviceTaintRule', metadata: { name }, spec: { deviceSelector, taint: { key: 'example.com/quarantine', effect: 'NoSchedule' } } });
      const theirs = [
        rule(`other-${RUN}-1`, { driver: DRIVER, pool: nodeA, device: 'gpu-1' }),
        rule(`other-${RUN}-2`, { driver: DRIVER, selectors: [{ cel: { expression: `device.attributes["${DRIVER}"].uuid == "${gpuUuid(nodeA, 2)}"` } }] }),
        rule(`other-${RUN}-b`, { driver: DRIVER, pool: nodeB, device: 'gpu-0' }),
        rule(`other-${RUN}-3`, { driver: DRIVER, pool: nodeA, selectors: [{ cel: { expression: `device.attributes["${DRIVER}"].index == 3` } }] }), // outside the subset, bounded by the pool: all 8 counted
      ];
      // page size 1: the lists of slices and rules page (CustomObjectsApi's plain `continue`)
      const view = new LiveCluster({ source: createClientNodeListWatch(engineKc, { pageSize: 1 }), reconcileIntervalMs: 0, watchWorkloads: false, deviceTaints: { driver: DRIVER, uuidAttribute: CFG.uuidAttribute, pciAttribute: CFG.pciAttribute } });
      const created: string[] = [];
      const until = async (what: string, ok: () => boolean): Promise<void> => {
        for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 100));
        expect(ok(), what).to.equal(true);
      };
      try {
        await view.start();
        expect(Object.keys(view.stats()).sort()).to.deep.equal(['devicetaintrules', 'nodes', 'resourceslices']);
        for (const r of theirs.slice(0, 3)) {
          const c = await kube.request('POST', '/apis/resource.k8s.io/v1alpha3/devicetaintrules', r);
          expect(c.status, JSON.stringify(c.json)).to.equal(201);
          created.push((r as { metadata: { name: string } }).metadata.name);
        }
        await until('the watch shows their two GPUs on node A', () => view.getNode(nodeA)?.otherTaintedGpus?.length === 2);
        expect(view.getNode(nodeA)?.otherTaintedGpus).to.deep.equal([gpuUuid(nodeA, 1), gpuUuid(nodeA, 2)]);
        // node B's slice came on the second page of the list (page size 1): its pool is known
        await until('node B: one GPU', () => view.getNode(nodeB)?.otherTaintedGpus?.length === 1);
        expect(view.getNode(nodeB)?.otherTaintedGpus).to.deep.equal([gpuUuid(nodeB, 0)]);
        expect(view.unplacedDeviceTaints().count).to.equal(0);
        const guard = createMemoryGuard({ view, options: guardOptionsFromConfig(DEFAULT_CONFIG, { maxUnavailable: '100%', maxUnavailablePerGroup: '100%', maxTaintedGpusPerNode: '3' }), clock: new ManualClock(Date.now()) });
        // the per-node cap of 3 counts their 2: one more is allowed, a second not
        const first = await guard.authorize(taintOf(nodeA, gpuUuid(nodeA, 5)));
        expect(first.allowed, first.reason).to.equal(true);
        await guard.settle(taintOf(nodeA, gpuUuid(nodeA, 5)), first, { ok: true });
        const capped = await guard.authorize(taintOf(nodeA, gpuUuid(nodeA, 6)));
        expect(capped).to.include({ allowed: false, guard: 'maxTaintedGpusPerNode' });
        expect(capped.reason).to.match(new RegExp(`^${nodeA} already has 3 tainted GPU\\(s\\), the per-node cap of 3`));
        // their GPU tainted by us too counts once (no cap hit, no cost)
        expect((await guard.authorize(taintOf(nodeA, gpuUuid(nodeA, 1)))).allowed).to.equal(true);
        expect((await guard.status()).gpus.find((n) => n.node === nodeA)).to.deep.include({ tainted: [gpuUuid(nodeA, 1), gpuUuid(nodeA, 2), gpuUuid(nodeA, 5)].sort(), gpus: 8 });
        // a rule outside the CEL subset but bounded by node A's pool: all of node A counts (upper bound)
        const c3 = await kube.request('POST', '/apis/resource.k8s.io/v1alpha3/devicetaintrules', theirs[3]);
        expect(c3.status, JSON.stringify(c3.json)).to.equal(201);
        created.push(`other-${RUN}-3`);
        await until('the whole pool of node A counted', () => view.getNode(nodeA)?.otherTaintedGpus?.length === 8);
        // an unbounded rule the view cannot evaluate: new cordons are denied until it is gone; node B is untouched
        const opaque = rule(`other-${RUN}-opaque`, { selectors: [{ cel: { expression: 'device.attributes["gpu.nvidia.com"].uuid.startsWith("GPU-")' } }] });
        const c4 = await kube.request('POST', '/apis/resource.k8s.io/v1alpha3/devicetaintrules', opaque);
        expect(c4.status, JSON.stringify(c4.json)).to.equal(201);
        created.push(`other-${RUN}-opaque`);
        await until('the opaque rule is reported', () => view.unplacedDeviceTaints().count > 0);
        const denied = await guard.authorize(cordonOf(nodeB));
        expect(denied).to.include({ allowed: false, guard: 'unplacedDeviceTaint' });
        expect(denied.reason).to.include(`DeviceTaintRule other-${RUN}-opaque, not nodewarden's, cannot be mapped to GPUs`);
        expect((await kube.request('DELETE', `/apis/resource.k8s.io/v1alpha3/devicetaintrules/other-${RUN}-opaque`)).status).to.equal(200);
        await until('the opaque rule is gone from the view', () => view.unplacedDeviceTaints().count === 0);
        expect((await guard.authorize(cordonOf(nodeB))).allowed).to.equal(true);
        // decisions read the watched view: no list was made for any of them
        expect(view.stats().devicetaintrules?.lists).to.equal(1);
        expect(view.stats().resourceslices?.lists).to.equal(1);
        expect(view.stats().nodes?.lists).to.equal(1);
      } finally {
        view.stop();
        for (const name of created) await kube.request('DELETE', `/apis/resource.k8s.io/v1alpha3/devicetaintrules/${name}`);
        for (const n of nodes) {
          await kube.request('DELETE', `/apis/resource.k8s.io/v1beta2/resourceslices/${n}-gpus`);
          await kube.kubectl(['delete', 'node', n, '--wait=false']);
        }
      }
    });

    it('never deletes a DeviceTaintRule it did not make', async () => {
      const name = deviceTaintRuleName({ node: 'gpu-006', gpu: UUID });
      const theirs = { apiVersion: 'resource.k8s.io/v1alpha3', kind: 'DeviceTaintRule', metadata: { name }, spec: { deviceSelector: { driver: 'gpu.nvidia.com' }, taint: { key: 'example.com/maintenance', effect: 'NoSchedule' } } };
      expect((await kube.request('POST', '/apis/resource.k8s.io/v1alpha3/devicetaintrules', theirs)).status).to.equal(201);
      const api = createClientNodeDeviceTaintApi(engineKc);
      const exec = createDeviceTaintExecutor({ api, discovery: new DeviceTaintDiscovery({ api, clock: systemClock, ttlMs: 60_000 }), config: CFG, clock: systemClock });
      expect(await exec.owner('gpu-006', UUID)).to.equal('other');
      const r = await exec.untaintDevice({ node: 'gpu-006', gpu: UUID });
      expect(r.ok).to.equal(false);
      expect(r.error?.code).to.equal('FORBIDDEN');
      const t = await exec.execute(taintDecision('gpu-006', UUID));
      expect(t.ok).to.equal(false);
      expect((await get(name)).status).to.equal(200);
    });
  });

  describe('where DeviceTaintRule is not served (the default apiserver)', () => {
    let kube: KubeCluster;
    const node = `nw-gpu-${RUN}`;
    before(async () => {
      kube = await sharedKube();
      const r = await kube.kubectl(['apply', '-f', '-'], { input: `apiVersion: v1\nkind: Node\nmetadata:\n  name: ${node}\n  labels:\n    nodewarden.io/pool: a\n` });
      expect(r.code, r.stderr).to.equal(0);
    });
    after(async () => {
      await kube?.kubectl(['delete', 'node', node, '--wait=false']);
    });

    it('the cluster view does not watch DeviceTaintRules or ResourceSlices: nothing changes', async () => {
      const view = new LiveCluster({ source: createClientNodeListWatch(kcFor(kube.kubeconfigPath)), reconcileIntervalMs: 0, watchWorkloads: false, deviceTaints: { driver: CFG.driver, uuidAttribute: CFG.uuidAttribute, pciAttribute: CFG.pciAttribute } });
      try {
        await view.start();
        expect(Object.keys(view.stats())).to.deep.equal(['nodes']);
        expect(view.unplacedDeviceTaints()).to.deep.equal({ rules: [], count: 0 });
        expect(view.getNode(node)?.otherTaintedGpus).to.equal(undefined);
      } finally {
        view.stop();
      }
    });

    it('discovery answers null, and the GPU fault cordons the node instead (ledger: cordon, with the GPU in the evidence)', async () => {
      const kc = kcFor(kube.kubeconfigPath);
      const { discovery, remediator } = onApiserver(kc);
      expect(await discovery.apiVersion()).to.equal(null);
      const d = taintDecision(node, UUID);
      const [rec] = (await remediator.submit([d])).records;
      expect(rec).to.deep.include({ action: 'cordon', outcome: 'executed', target: { kind: 'Node', name: node }, decisionId: `${d.id}-node` });
      expect(rec?.reason).to.match(/DeviceTaintRule is not served by this cluster; cordoning the node/);
      const got = JSON.parse((await kube.kubectl(['get', 'node', node, '-o', 'json'])).stdout) as { spec: { unschedulable?: boolean } };
      expect(got.spec.unschedulable).to.equal(true);
    });

    it('the shipped pack on this apiserver: the GPU-level Xid cordons the node (the automatic fallback)', async () => {
      await kube.kubectl(['uncordon', node]);
      const kc = kcFor(kube.kubeconfigPath);
      const { view, remediator } = onApiserver(kc);
      const decisions = await packDecisions(view, node, 119, UUID, 'Timeout after 6s of waiting for RPC response from GPU0 GSP!');
      expect(decisions.map((d) => d.action)).to.deep.equal(['taint', 'page']);
      const recs = (await remediator.submit(decisions)).records;
      expect(recs.map((r) => [r.rule, r.action, r.outcome])).to.deep.equal([
        ['gpu-xid-fatal', 'cordon', 'executed'],
        ['gpu-xid-fatal', 'page', 'executed'],
      ]);
      expect(recs[0]?.decisionId).to.equal(`${decisions[0]?.id ?? ''}-node`);
      const got = JSON.parse((await kube.kubectl(['get', 'node', node, '-o', 'json'])).stdout) as { spec: { unschedulable?: boolean } };
      expect(got.spec.unschedulable).to.equal(true);
    });
  });
});
