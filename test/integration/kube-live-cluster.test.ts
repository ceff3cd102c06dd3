/**
 * LiveCluster (list + watch + reconcile through client-node) against a REAL
 * kube-apiserver, authenticated as the engine's ServiceAccount: changes made
 * by other clients show up in the view through the watch.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { systemClock } from '../../core/clock.js';
import { packageRoot } from '../../adapters/paths.js';
import { createClientNodeKubeApi } from '../../remediations/kube/client-node-api.js';
import { createClientNodeListWatch } from '../../remediations/kube/client-node-watch.js';
import { KubeExecutor } from '../../remediations/kube/executors.js';
import { LiveCluster } from '../../remediations/kube/live-cluster.js';
import type { KubeCluster } from '../harness/kube.js';
import { sharedKube } from './servers.js';

const RUN = randomBytes(3).toString('hex');
const NS = `nw-lc-${RUN}`;

async function k(kube: KubeCluster, args: string[], input?: string): Promise<string> {
  const r = await kube.kubectl(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

async function waitFor(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('kube LiveCluster on a real kube-apiserver (engine ServiceAccount)', function () {
  this.timeout(180_000);
  let kube: KubeCluster;
  let view: LiveCluster;
  const node = (i: number): string => `nw-lc-${RUN}-${i}`;

  before(async function () {
    this.timeout(300_000);
    kube = await sharedKube();
    const root = packageRoot();
    await k(kube, ['apply', '-f', join(root, 'deploy/base/namespace.yaml')]);
    await k(kube, ['apply', '-f', join(root, 'deploy/base/rbac-engine.yaml')]);
    await k(kube, ['create', 'namespace', NS]);
    for (const i of [0, 3, 4]) await k(kube, ['apply', '-f', '-'], `apiVersion: v1\nkind: Node\nmetadata:\n  name: ${node(i)}\n  labels: {nodewarden.io/pool: a100-infer}\n`);
    const kc = new KubeConfig();
    kc.loadFromFile(await kube.kubeconfigFor(await kube.tokenFor('nodewarden', 'nodewarden-engine')));
    view = new LiveCluster({ source: createClientNodeListWatch(kc, { pageSize: 2 }), reconcileIntervalMs: 0, retryDelayMs: 200 });
    await view.start();
  });

  after(async () => {
    view?.stop();
    if (!kube) return;
    await kube.kubectl(['delete', 'namespace', NS, '--wait=false']);
    await kube.kubectl(['delete', 'node', node(0), node(1), node(2), node(3), node(4), '--ignore-not-found', '--wait=false']);
  });

  it('lists existing nodes (in pages of 2) with labels', () => {
    for (const i of [0, 3, 4]) expect(view.getNode(node(i)), node(i)).to.not.equal(undefined);
    const n = view.getNode(node(0));
    expect(n).to.deep.include({ unschedulable: false, ready: false, cordonedByNodewarden: false });
    expect(n?.labels['nodewarden.io/pool']).to.equal('a100-infer');
  });

  it('follows other clients through the watch: new node, Ready status, human cordon, delete', async () => {
    const events0 = view.stats().nodes?.watchEvents ?? 0;
    await k(kube, ['apply', '-f', '-'], `apiVersion: v1\nkind: Node\nmetadata:\n  name: ${node(1)}\n`);
    await waitFor('new node in the view', () => view.getNode(node(1)) !== undefined);
    await k(kube, ['patch', 'node', node(1), '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ok', lastHeartbeatTime: new Date().toISOString(), lastTransitionTime: new Date().toISOString() }] } })]);
    await waitFor('Ready', () => view.getNode(node(1))?.ready === true);
    await k(kube, ['cordon', node(1)]);
    await waitFor('human cordon', () => view.getNode(node(1))?.unschedulable === true);
    expect(view.getNode(node(1))?.cordonedByNodewarden).to.equal(false);
    await k(kube, ['delete', 'node', node(1)]);
    await waitFor('node gone', () => view.getNode(node(1)) === undefined);
    expect(view.stats().nodes?.watchEvents ?? 0).to.be.greaterThan(events0);
    expect(view.stats().nodes?.lists).to.equal(1); // all of it through the watch, no re-list
  });

  it('sees nodewarden\'s own cordon as cordonedByNodewarden', async () => {
    await k(kube, ['apply', '-f', '-'], `apiVersion: v1\nkind: Node\nmetadata:\n  name: ${node(2)}\n`);
    const kc = new KubeConfig();
    kc.loadFromFile(kube.kubeconfigPath);
    const ex = new KubeExecutor(createClientNodeKubeApi(kc), { clock: systemClock });
    const res = await ex.execute({ id: `lc-${RUN}`, at: Date.now(), rule: 'r', action: 'cordon', target: { kind: 'Node', name: node(2) }, reason: 'test' });
    expect(res.ok, res.detail).to.equal(true);
    await waitFor('nodewarden cordon', () => view.getNode(node(2))?.cordonedByNodewarden === true);
  });

  it('tracks Deployment revisions with createdAt = the ReplicaSet creationTimestamp', async () => {
    const dep = (image: string): string =>
      `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: ${NS}}\nspec:\n  replicas: 0\n  selector: {matchLabels: {app: api}}\n  template:\n    metadata: {labels: {app: api}}\n    spec: {containers: [{name: api, image: ${image}}]}\n`;
    await k(kube, ['apply', '-f', '-'], dep('registry.example/api:v1'));
    await waitFor('revision 1', () => view.workloadRevisions({ kind: 'Deployment', namespace: NS, name: 'api' }).length === 1);
    await k(kube, ['apply', '-f', '-'], dep('registry.example/api:v2'));
    await waitFor('revision 2', () => view.workloadRevisions({ kind: 'Deployment', namespace: NS, name: 'api' }).length === 2);
    const revs = view.workloadRevisions({ kind: 'Deployment', namespace: NS, name: 'api' });
    expect(revs.map((r) => r.revision)).to.deep.equal([1, 2]);
    const rsList = JSON.parse(await k(kube, ['get', 'replicasets', '-n', NS, '-o', 'json'])) as { items: Array<{ metadata: { creationTimestamp: string; annotations: Record<string, string> } }> };
    const rs2 = rsList.items.find((r) => r.metadata.annotations['deployment.kubernetes.io/revision'] === '2');
    expect(revs[1]?.createdAt).to.equal(Date.parse(rs2?.metadata.creationTimestamp ?? ''));
  });

  it('tracks DaemonSet ControllerRevisions', async () => {
    const ds = (image: string): string =>
      `apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: drv, namespace: ${NS}}\nspec:\n  selector: {matchLabels: {app: drv}}\n  template:\n    metadata: {labels: {app: drv}}\n    spec:\n      nodeSelector: {nodewarden.io/never: "true"}\n      containers: [{name: drv, image: ${image}}]\n`;
    await k(kube, ['apply', '-f', '-'], ds('registry.example/drv:1'));
    await k(kube, ['apply', '-f', '-'], ds('registry.example/drv:2'));
    await waitFor('two ControllerRevisions', () => view.workloadRevisions({ kind: 'DaemonSet', namespace: NS, name: 'drv' }).length === 2);
    expect(view.workloadRevisions({ kind: 'DaemonSet', namespace: NS, name: 'drv' }).map((r) => r.revision)).to.deep.equal([1, 2]);
  });

  it('a full reconcile re-lists and agrees with the watch', async () => {
    const before = view.listNodes().map((n) => n.name).sort();
    await view.reconcile();
    expect(view.listNodes().map((n) => n.name).sort()).to.deep.equal(before);
    expect(view.stats().nodes?.lists).to.equal(2);
  });
});
