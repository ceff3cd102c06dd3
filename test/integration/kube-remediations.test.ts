/**
 * cordon / uncordon / rollback executors against a REAL kube-apiserver (+ etcd
 * + kube-controller-manager, so Deployments and DaemonSets get real
 * ReplicaSets and ControllerRevisions), then as the engine's own
 * ServiceAccount bound by deploy/base/rbac-engine.yaml, and the RBAC matrix of
 * both ServiceAccounts through `kubectl auth can-i`.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { NW } from '../../core/cluster.js';
import { systemClock } from '../../core/clock.js';
import type { Decision } from '../../core/decision.js';
import { packageRoot } from '../../adapters/paths.js';
import { errorMessage } from '../../core/errors.js';
import { createClientNodeKubeApi } from '../../remediations/kube/client-node-api.js';
import { KubeExecutor } from '../../remediations/kube/executors.js';
import type { KubeApi } from '../../remediations/kube/kube-api.js';
import type { KubeCluster } from '../harness/kube.js';
import { sharedKube } from './servers.js';

const ROOT = packageRoot();
const RUN = randomBytes(3).toString('hex');
const NS = `nw-kr-${RUN}`;

interface Obj {
  metadata: { name: string; annotations?: Record<string, string>; labels?: Record<string, string>; managedFields?: Array<{ manager: string; fieldsV1?: Record<string, unknown> }> };
  spec: { unschedulable?: boolean; taints?: Array<{ key: string; effect: string }>; template?: { spec: { containers: Array<{ image: string }> } } };
  revision?: number;
}

async function k(kube: KubeCluster, args: string[], input?: string, kubeconfig?: string): Promise<string> {
  const r = await kube.kubectl(args, { ...(input === undefined ? {} : { input }), ...(kubeconfig ? { kubeconfig } : {}) });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

async function getJson<T>(kube: KubeCluster, args: string[]): Promise<T> {
  return JSON.parse(await k(kube, [...args, '-o', 'json'])) as T;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${errorMessage(last)}`}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function nodeYaml(name: string): string {
  return `apiVersion: v1\nkind: Node\nmetadata:\n  name: ${name}\n  labels:\n    nodewarden.io/pool: h100-train\n    topology.kubernetes.io/zone: us-west-2a\n`;
}

function decision(over: Partial<Decision>): Decision {
  return {
    id: `it-${RUN}-${randomBytes(4).toString('hex')}`,
    at: Date.now(),
    rule: 'gpu-xid-fatal',
    action: 'cordon',
    target: { kind: 'Node', name: 'x' },
    reason: 'Xid 79 (GPU has fallen off the bus)',
    ...over,
  };
}

async function metricValue(reg: Registry, labels: Record<string, string>): Promise<number> {
  const m = (await reg.getMetricsAsJSON()).find((x) => x.name === 'nodewarden_kube_api_errors_total');
  const v = (m?.values ?? []).find((x) => Object.entries(labels).every(([kk, vv]) => (x.labels as Record<string, unknown>)[kk] === vv));
  return v?.value ?? 0;
}

function kcFor(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

const deployYaml = (image: string): string => `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ${NS}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: ${image}
        ports: [{containerPort: 8080, name: http}]
        resources: {requests: {cpu: 10m}}
`;

const dsYaml = (image: string): string => `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: driver, namespace: ${NS}}
spec:
  selector: {matchLabels: {app: driver}}
  template:
    metadata: {labels: {app: driver}}
    spec:
      nodeSelector: {nodewarden.io/never: "true"}
      containers:
      - name: driver
        image: ${image}
`;

async function replicaSetsByRevision(kube: KubeCluster): Promise<Map<number, Obj>> {
  const list = await getJson<{ items: Obj[] }>(kube, ['get', 'replicasets', '-n', NS, '-l', 'app=web']);
  return new Map(list.items.map((rs) => [Number(rs.metadata.annotations?.['deployment.kubernetes.io/revision']), rs]));
}

async function controllerRevisions(kube: KubeCluster): Promise<Obj[]> {
  return (await getJson<{ items: Obj[] }>(kube, ['get', 'controllerrevisions', '-n', NS, '-l', 'app=driver'])).items;
}

describe('kube remediations on a real kube-apiserver', function () {
  this.timeout(240_000);
  let kube: KubeCluster;
  let registry: Registry;
  let api: KubeApi;
  let ex: KubeExecutor;
  const node = (i: number): string => `nw-kr-${RUN}-${i}`;

  before(async function () {
    this.timeout(300_000);
    kube = await sharedKube();
    registry = new Registry();
    api = createClientNodeKubeApi(kcFor(kube.kubeconfigPath), { registry });
    ex = new KubeExecutor(api, { clock: systemClock, instance: 'it-engine' });
    await k(kube, ['apply', '-f', join(ROOT, 'deploy/base/namespace.yaml')]);
    await k(kube, ['apply', '-f', join(ROOT, 'deploy/base/rbac-engine.yaml'), '-f', join(ROOT, 'deploy/base/rbac-agent.yaml')]);
    await k(kube, ['create', 'namespace', NS]);
    for (let i = 0; i < 8; i++) await k(kube, ['apply', '-f', '-'], nodeYaml(node(i)));
  });

  after(async () => {
    if (!kube) return;
    await kube.kubectl(['delete', 'namespace', NS, '--wait=false']);
    await kube.kubectl(['delete', 'node', ...Array.from({ length: 8 }, (_, i) => node(i)), '--wait=false']);
  });

  it('cordon: spec.unschedulable, taint, annotations, field owner and a Warning Event — no drain', async () => {
    const d = decision({ target: { kind: 'Node', name: node(0) } });
    const res = await ex.execute(d);
    expect(res.ok, res.detail).to.equal(true);
    const n = await getJson<Obj>(kube, ['get', 'node', node(0), '--show-managed-fields']);
    expect(n.spec.unschedulable).to.equal(true);
    expect(n.spec.taints).to.deep.include({ key: NW.taintKey, value: 'true', effect: 'NoSchedule' });
    const ann = n.metadata.annotations ?? {};
    expect(ann[NW.annCordonedBy]).to.equal('nodewarden');
    expect(ann[NW.annRule]).to.equal('gpu-xid-fatal');
    expect(ann[NW.annReason]).to.equal('Xid 79 (GPU has fallen off the bus)');
    expect(ann[NW.annDecision]).to.equal(d.id);
    expect(Date.parse(ann[NW.annTime] ?? '')).to.be.closeTo(Date.now(), 60_000);
    const owners = (n.metadata.managedFields ?? []).filter((m) => JSON.stringify(m.fieldsV1 ?? {}).includes('f:unschedulable')).map((m) => m.manager);
    expect(owners).to.deep.equal(['nodewarden']);
    const events = await getJson<{ items: Array<Record<string, unknown>> }>(kube, ['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${node(0)}`]);
    const ev = events.items.find((e) => e.reason === 'NodewardenCordon');
    expect(ev, JSON.stringify(events.items)).to.not.equal(undefined);
    expect(ev).to.deep.include({ type: 'Warning', reportingComponent: 'nodewarden', reportingInstance: 'it-engine' });
    expect(ev?.involvedObject).to.deep.include({ kind: 'Node', name: node(0) });
    expect(String(ev?.message)).to.contain('gpu-xid-fatal').and.contain('Xid 79');
    // replaying the same decision changes nothing and adds no Event
    const again = await ex.execute(d);
    expect(again.ok).to.equal(true);
    const events2 = await getJson<{ items: unknown[] }>(kube, ['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${node(0)},reason=NodewardenCordon`]);
    expect(events2.items).to.have.length(1);
  });

  it('uncordons a node nodewarden cordoned', async () => {
    await ex.execute(decision({ target: { kind: 'Node', name: node(1) } }));
    const res = await ex.execute(decision({ action: 'uncordon', target: { kind: 'Node', name: node(1) }, reason: 'recovered' }));
    expect(res.ok, res.detail).to.equal(true);
    const n = await getJson<Obj>(kube, ['get', 'node', node(1)]);
    expect(n.spec.unschedulable ?? false).to.equal(false);
    expect((n.spec.taints ?? []).filter((t) => t.key === NW.taintKey)).to.deep.equal([]);
    expect(Object.keys(n.metadata.annotations ?? {}).filter((a) => a.startsWith('nodewarden.io/'))).to.deep.equal([]);
    const events = await getJson<{ items: unknown[] }>(kube, ['get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=${node(1)},reason=NodewardenUncordon`]);
    expect(events.items).to.have.length(1);
  });

  it('never uncordons a human-cordoned node, nor takes ownership of it', async () => {
    await k(kube, ['cordon', node(2)]);
    const c = await ex.execute(decision({ target: { kind: 'Node', name: node(2) } }));
    expect(c.ok).to.equal(true);
    expect(c.detail).to.match(/someone else/);
    const u = await ex.execute(decision({ action: 'uncordon', target: { kind: 'Node', name: node(2) } }));
    expect(u.ok).to.equal(false);
    expect(u.error?.code).to.equal('FORBIDDEN');
    const n = await getJson<Obj>(kube, ['get', 'node', node(2)]);
    expect(n.spec.unschedulable).to.equal(true);
    expect(n.metadata.annotations?.[NW.annCordonedBy]).to.equal(undefined);
  });

  it('never uncordons a node a human re-cordoned after uncordoning nodewarden\'s cordon (stale annotation)', async () => {
    await ex.execute(decision({ target: { kind: 'Node', name: node(3) } }));
    await k(kube, ['uncordon', node(3)]);
    await k(kube, ['cordon', node(3)]);
    const n = await getJson<Obj>(kube, ['get', 'node', node(3)]);
    expect(n.metadata.annotations?.[NW.annCordonedBy]).to.equal('nodewarden'); // still there: kubectl does not touch it
    const u = await ex.execute(decision({ action: 'uncordon', target: { kind: 'Node', name: node(3) } }));
    expect(u.ok, u.detail).to.equal(false);
    expect(u.error?.code).to.equal('FORBIDDEN');
    expect((await getJson<Obj>(kube, ['get', 'node', node(3)])).spec.unschedulable).to.equal(true);
  });

  it('a 409 between read and write is re-read and retried; the other writer\'s change survives', async () => {
    let raced = false;
    const racing: KubeApi = {
      ...api,
      getNode: async (name) => {
        const n = await api.getNode(name);
        if (!raced) {
          raced = true;
          await k(kube, ['label', 'node', name, 'team=ml']); // another client, between our read and our write
        }
        return n;
      },
    };
    const before409 = await metricValue(registry, { verb: 'patch', resource: 'nodes', code: '409' });
    const res = await new KubeExecutor(racing, { clock: systemClock }).execute(decision({ target: { kind: 'Node', name: node(4) } }));
    expect(res.ok, res.detail).to.equal(true);
    expect(await metricValue(registry, { verb: 'patch', resource: 'nodes', code: '409' })).to.equal(before409 + 1);
    const n = await getJson<Obj>(kube, ['get', 'node', node(4)]);
    expect(n.spec.unschedulable).to.equal(true);
    expect(n.metadata.labels?.team).to.equal('ml');
  });

  it('a 403 is reported clearly (FORBIDDEN, not retriable) and counted', async () => {
    // The agent's ServiceAccount may read nodes but not patch them.
    const kcPath = await kube.kubeconfigFor(await kube.tokenFor('nodewarden', 'nodewarden-agent'));
    const reg = new Registry();
    const agentApi = createClientNodeKubeApi(kcFor(kcPath), { registry: reg });
    const res = await new KubeExecutor(agentApi, { clock: systemClock }).execute(decision({ target: { kind: 'Node', name: node(5) } }));
    expect(res.ok).to.equal(false);
    expect(res.error?.code).to.equal('FORBIDDEN');
    expect(res.error?.retriable).to.equal(false);
    expect(res.detail).to.match(/403/).and.match(/cannot patch resource "nodes"/);
    expect(await metricValue(reg, { verb: 'patch', resource: 'nodes', code: '403' })).to.equal(1);
    expect((await getJson<Obj>(kube, ['get', 'node', node(5)])).spec.unschedulable).to.equal(undefined);
  });

  it('rolls a Deployment back like kubectl rollout undo: template back to v1, revision moves forward', async () => {
    await k(kube, ['apply', '-f', '-'], deployYaml('registry.example/web:v1'));
    await waitFor('ReplicaSet revision 1', async () => ((await replicaSetsByRevision(kube)).has(1) ? true : undefined));
    await k(kube, ['set', 'image', '-n', NS, 'deployment/web', 'web=registry.example/web:v2']);
    const rs = await waitFor('ReplicaSet revision 2', async () => {
      const m = await replicaSetsByRevision(kube);
      return m.has(2) ? m : undefined;
    });
    const v1Template = (await getJson<{ spec: { template: unknown } }>(kube, ['get', 'replicaset', '-n', NS, rs.get(1)?.metadata.name ?? ''])).spec.template as {
      metadata: { labels: Record<string, string> };
    };
    delete v1Template.metadata.labels['pod-template-hash'];

    const res = await ex.execute(decision({ action: 'rollback', target: { kind: 'Deployment', namespace: NS, name: 'web' }, rule: 'bad-rollout' }));
    expect(res, res.detail).to.deep.include({ ok: true, toRevision: 1 });
    const dep = await getJson<Obj & { spec: { template: unknown } }>(kube, ['get', 'deployment', '-n', NS, 'web']);
    expect(dep.spec.template?.spec.containers[0]?.image).to.equal('registry.example/web:v1');
    expect(dep.spec.template).to.deep.equal(v1Template); // nothing lost on the way through the client
    // the Deployment controller reuses the v1 ReplicaSet as revision 3
    await waitFor('revision 3 on the Deployment and the v1 ReplicaSet', async () => {
      const d = await getJson<Obj>(kube, ['get', 'deployment', '-n', NS, 'web']);
      const m = await replicaSetsByRevision(kube);
      return d.metadata.annotations?.['deployment.kubernetes.io/revision'] === '3' && m.get(3)?.spec.template?.spec.containers[0]?.image === 'registry.example/web:v1' ? true : undefined;
    });
    const history = await k(kube, ['rollout', 'history', '-n', NS, 'deployment/web']);
    expect(history).to.match(/^2\s/m).and.match(/^3\s/m).and.not.match(/^1\s/m);
    const events = await getJson<{ items: Array<{ reason: string }> }>(kube, ['get', 'events', '-n', NS, '--field-selector', 'involvedObject.kind=Deployment,reason=NodewardenRollback']);
    expect(events.items).to.have.length(1);
  });

  it('refuses to roll back a Deployment with a single revision', async () => {
    await k(kube, ['apply', '-f', '-'], deployYaml('registry.example/solo:v1').replace('name: web,', 'name: solo,').replace(/app: web/g, 'app: solo'));
    await waitFor('solo ReplicaSet', async () => {
      const l = await getJson<{ items: unknown[] }>(kube, ['get', 'replicasets', '-n', NS, '-l', 'app=solo']);
      return l.items.length > 0 ? true : undefined;
    });
    const res = await ex.execute(decision({ action: 'rollback', target: { kind: 'Deployment', namespace: NS, name: 'solo' } }));
    expect(res.ok).to.equal(false);
    expect(res.error?.code).to.equal('NOT_FOUND');
    expect(res.detail).to.match(/no previous revision/);
  });

  it('rolls a DaemonSet back to the previous ControllerRevision', async () => {
    await k(kube, ['apply', '-f', '-'], dsYaml('registry.example/driver:550.90'));
    await waitFor('ControllerRevision 1', async () => ((await controllerRevisions(kube)).length === 1 ? true : undefined));
    await k(kube, ['set', 'image', '-n', NS, 'daemonset/driver', 'driver=registry.example/driver:550.127']);
    await waitFor('ControllerRevision 2', async () => ((await controllerRevisions(kube)).length === 2 ? true : undefined));

    const res = await ex.execute(decision({ action: 'rollback', target: { kind: 'DaemonSet', namespace: NS, name: 'driver' } }));
    expect(res, res.detail).to.deep.include({ ok: true, toRevision: 1 });
    const ds = await getJson<Obj>(kube, ['get', 'daemonset', '-n', NS, 'driver']);
    expect(ds.spec.template?.spec.containers[0]?.image).to.equal('registry.example/driver:550.90');
    await waitFor('the 550.90 ControllerRevision reused as revision 3', async () => {
      const crs = await controllerRevisions(kube);
      const old = crs.find((c) => JSON.stringify(c).includes('driver:550.90'));
      return crs.length === 2 && old?.revision === 3 ? true : undefined;
    });
  });

  describe('as the engine ServiceAccount (deploy/base/rbac-engine.yaml)', () => {
    let engineKc: string;
    let engineEx: KubeExecutor;
    let engineReg: Registry;
    before(async () => {
      engineKc = await kube.kubeconfigFor(await kube.tokenFor('nodewarden', 'nodewarden-engine'));
      engineReg = new Registry();
      engineEx = new KubeExecutor(createClientNodeKubeApi(kcFor(engineKc), { registry: engineReg }), { clock: systemClock, instance: 'engine-sa' });
    });

    it('cordons, uncordons and records Events with exactly that role', async () => {
      const c = await engineEx.execute(decision({ target: { kind: 'Node', name: node(6) } }));
      expect(c.ok, c.detail).to.equal(true);
      expect(c.detail).to.not.match(/Event not recorded/);
      expect((await getJson<Obj>(kube, ['get', 'node', node(6)])).spec.unschedulable).to.equal(true);
      const u = await engineEx.execute(decision({ action: 'uncordon', target: { kind: 'Node', name: node(6) } }));
      expect(u.ok, u.detail).to.equal(true);
      expect(u.detail).to.not.match(/Event not recorded/);
      expect((await getJson<Obj>(kube, ['get', 'node', node(6)])).spec.unschedulable ?? false).to.equal(false);
    });

    it('rolls back a Deployment and a DaemonSet with exactly that role', async () => {
      // web is at revision 3 (= v1) after the earlier rollback: undo goes to revision 2 (v2)
      const d = await engineEx.execute(decision({ action: 'rollback', target: { kind: 'Deployment', namespace: NS, name: 'web' } }));
      expect(d, d.detail).to.deep.include({ ok: true, toRevision: 2 });
      expect(d.detail).to.not.match(/Event not recorded/);
      const dep = await getJson<Obj>(kube, ['get', 'deployment', '-n', NS, 'web']);
      expect(dep.spec.template?.spec.containers[0]?.image).to.equal('registry.example/web:v2');
      const ds = await engineEx.execute(decision({ action: 'rollback', target: { kind: 'DaemonSet', namespace: NS, name: 'driver' } }));
      expect(ds, ds.detail).to.deep.include({ ok: true, toRevision: 2 });
      expect((await getJson<Obj>(kube, ['get', 'daemonset', '-n', NS, 'driver'])).spec.template?.spec.containers[0]?.image).to.equal('registry.example/driver:550.127');
      expect((await engineReg.getMetricsAsJSON()).find((m) => m.name === 'nodewarden_kube_api_errors_total')?.values ?? []).to.deep.equal([]);
    });

    it('kubectl auth can-i matrix: the engine may do what it needs and nothing else', async () => {
      // `resource/sub` means a subresource (kubectl would read `nodes/status` as the node named "status").
      const can = async (kc: string, verb: string, resource: string, ns?: string): Promise<string> => {
        const [res = resource, sub] = resource.split('/');
        const r = await kube.kubectl(['auth', 'can-i', verb, res, ...(sub ? [`--subresource=${sub}`] : []), ...(ns ? ['-n', ns] : [])], { kubeconfig: kc });
        return r.stdout.trim();
      };
      const yes: Array<[string, string, string?]> = [
        ['get', 'nodes'], ['list', 'nodes'], ['watch', 'nodes'], ['patch', 'nodes'],
        ['create', 'events', 'default'], ['patch', 'events', 'default'], ['create', 'events.events.k8s.io', 'default'], ['patch', 'events.events.k8s.io', NS],
        ['get', 'daemonsets.apps', 'gpu-operator'], ['list', 'daemonsets.apps'], ['watch', 'daemonsets.apps'], ['patch', 'daemonsets.apps', NS],
        ['get', 'deployments.apps', NS], ['list', 'deployments.apps'], ['watch', 'deployments.apps'], ['patch', 'deployments.apps', NS],
        ['get', 'controllerrevisions.apps', NS], ['list', 'controllerrevisions.apps'], ['watch', 'controllerrevisions.apps'],
        ['get', 'replicasets.apps', NS], ['list', 'replicasets.apps'], ['watch', 'replicasets.apps'],
      ];
      const no: Array<[string, string, string?]> = [
        ['delete', 'nodes'], ['create', 'nodes'], ['update', 'nodes'], ['patch', 'nodes/status'],
        ['create', 'pods/eviction', 'default'], ['delete', 'pods', 'default'], ['get', 'pods', 'default'], ['create', 'pods/exec', 'default'],
        ['get', 'secrets', 'nodewarden'], ['list', 'secrets'], ['get', 'configmaps', 'nodewarden'],
        ['delete', 'daemonsets.apps', NS], ['create', 'deployments.apps', NS], ['delete', 'deployments.apps', NS], ['update', 'deployments.apps', NS],
        ['patch', 'replicasets.apps', NS], ['delete', 'replicasets.apps', NS], ['patch', 'controllerrevisions.apps', NS],
        ['delete', 'events', 'default'], ['create', 'clusterrolebindings.rbac.authorization.k8s.io'], ['*', '*'],
      ];
      const wrong: string[] = [];
      for (const [verb, res, ns] of yes) if ((await can(engineKc, verb, res, ns)) !== 'yes') wrong.push(`engine should ${verb} ${res}`);
      for (const [verb, res, ns] of no) if ((await can(engineKc, verb, res, ns)) !== 'no') wrong.push(`engine should NOT ${verb} ${res}`);

      const agentKc = await kube.kubeconfigFor(await kube.tokenFor('nodewarden', 'nodewarden-agent'));
      const agentYes: Array<[string, string, string?]> = [['get', 'pods', 'kube-system'], ['list', 'pods'], ['watch', 'pods'], ['get', 'nodes']];
      const agentNo: Array<[string, string, string?]> = [
        ['list', 'nodes'], ['patch', 'nodes'], ['delete', 'nodes'], ['create', 'nodes'],
        ['create', 'pods/exec', 'kube-system'], ['get', 'pods/exec', 'kube-system'], ['delete', 'pods', 'kube-system'], ['create', 'pods', 'default'], ['patch', 'pods', 'default'],
        ['get', 'secrets', 'nodewarden'], ['list', 'secrets'], ['create', 'events', 'default'], ['patch', 'daemonsets.apps', NS], ['*', '*'],
      ];
      for (const [verb, res, ns] of agentYes) if ((await can(agentKc, verb, res, ns)) !== 'yes') wrong.push(`agent should ${verb} ${res}`);
      for (const [verb, res, ns] of agentNo) if ((await can(agentKc, verb, res, ns)) !== 'no') wrong.push(`agent should NOT ${verb} ${res}`);
      expect(wrong).to.deep.equal([]);
    });
  });
});
