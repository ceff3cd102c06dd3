/**
 * The agent's lean Kubernetes client (agent/kube-api.ts) against a REAL
 * kube-apiserver + etcd, authenticated as the agent's ServiceAccount bound by
 * deploy/base/rbac-agent.yaml: its Node's labels, and the kube-proxy pod
 * list + watch that turns a restartCount increase into `kubeproxy.restart`.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCollectorContext } from '../../agent/agent.js';
import { createKubeProxyRestartCollector, kubePodSource } from '../../agent/collectors/kube-proxy.js';
import { kubeconfigTarget } from '../../agent/kube-api.js';
import { readNodeLabels } from '../../agent/node-labels.js';
import { systemClock } from '../../core/clock.js';
import type { EventEnvelope } from '../../core/envelope.js';
import { envelopeProblems } from '../../core/envelope.js';
import { silentLogger } from '../../core/logger.js';
import { createRegistry } from '../../agent/metrics.js';
import { packageRoot } from '../../adapters/paths.js';
import type { KubeCluster } from '../harness/kube.js';
import { sharedKube } from './servers.js';

const ROOT = packageRoot();
const RUN = randomBytes(3).toString('hex');
const NODE = `nw-agent-${RUN}`;
const OTHER = `nw-agent-other-${RUN}`;

async function kubectl(kube: KubeCluster, args: string[], input?: string): Promise<string> {
  const r = await kube.kubectl(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const podYaml = (name: string, node: string) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: kube-system, labels: {k8s-app: kube-proxy}}
spec:
  nodeName: ${node}
  containers: [{name: kube-proxy, image: registry.example/kube-proxy:v1}]
`;

/** Sets the kube-proxy container's restartCount (and last termination) through the status subresource, as the kubelet would. */
async function setRestarts(kube: KubeCluster, pod: string, restartCount: number): Promise<void> {
  const path = `/api/v1/namespaces/kube-system/pods/${pod}/status`;
  const cur = await kube.request('GET', path);
  const obj = cur.json as { status?: Record<string, unknown> };
  obj.status = {
    ...(obj.status ?? {}),
    containerStatuses: [
      {
        name: 'kube-proxy',
        image: 'registry.example/kube-proxy:v1',
        imageID: '',
        ready: false,
        restartCount,
        state: { waiting: { reason: 'CrashLoopBackOff' } },
        lastState: restartCount > 0 ? { terminated: { exitCode: 137, reason: 'OOMKilled' } } : {},
      },
    ],
  };
  const r = await kube.request('PUT', path, obj);
  if (r.status !== 200) throw new Error(`PUT ${path}: HTTP ${r.status} ${JSON.stringify(r.json).slice(0, 300)}`);
}

describe('agent Kubernetes client on a real kube-apiserver (agent ServiceAccount)', function () {
  this.timeout(60_000);
  let kube: KubeCluster;
  let agentKc: string;

  before(async function () {
    this.timeout(300_000);
    kube = await sharedKube();
    await kubectl(kube, ['apply', '-f', join(ROOT, 'deploy/base/namespace.yaml')]);
    await kubectl(kube, ['apply', '-f', join(ROOT, 'deploy/base/rbac-agent.yaml')]);
    for (const n of [NODE, OTHER]) await kubectl(kube, ['apply', '-f', '-'], `apiVersion: v1\nkind: Node\nmetadata: {name: ${n}, labels: {nodewarden.io/pool: pool-${RUN}, topology.kubernetes.io/zone: z1}}\n`);
    await kubectl(kube, ['apply', '-f', '-'], podYaml(`kube-proxy-${RUN}`, NODE));
    await kubectl(kube, ['apply', '-f', '-'], podYaml(`kube-proxy-other-${RUN}`, OTHER));
    await setRestarts(kube, `kube-proxy-${RUN}`, 0);
    agentKc = await kube.kubeconfigFor(await kube.tokenFor('nodewarden', 'nodewarden-agent'));
  });

  it("reads its Node's labels with the agent's token", async () => {
    const labels = await readNodeLabels(NODE, { kubeconfigPath: agentKc, inCluster: false });
    expect(labels['nodewarden.io/pool']).to.equal(`pool-${RUN}`);
    expect(labels['topology.kubernetes.io/zone']).to.equal('z1');
  });

  it('a missing Node and a bad token are one-line errors with the HTTP status', async () => {
    let err: unknown;
    await readNodeLabels(`missing-${RUN}`, { kubeconfigPath: agentKc, inCluster: false }).catch((e: unknown) => (err = e));
    expect(String(err)).to.match(/HTTP 404: nodes "missing-[0-9a-f]+" not found/).and.not.match(/\n/);
    const badKc = await kube.kubeconfigFor('not-a-token');
    err = undefined;
    await readNodeLabels(NODE, { kubeconfigPath: badKc, inCluster: false }).catch((e: unknown) => (err = e));
    expect(String(err)).to.match(/HTTP 401/);
  });

  it('lists only its node\'s kube-proxy pods, then reports a restart seen through the watch', async () => {
    const source = await kubePodSource({ kubeconfigPath: agentKc, node: NODE, labelSelector: 'k8s-app=kube-proxy' });
    const listed = await source.list();
    expect(listed.pods.map((p) => p.name)).to.deep.equal([`kube-proxy-${RUN}`]);
    expect(listed.resourceVersion).to.match(/^\d+$/);

    const ctx = createCollectorContext({ node: NODE, labels: { pool: 'p' }, hostRoot: '/', clock: systemClock, logger: silentLogger, registry: createRegistry('agent') });
    const collector = createKubeProxyRestartCollector(ctx, { source: () => Promise.resolve(source) });
    const got: EventEnvelope[] = [];
    await collector.start((evs) => got.push(...evs));
    try {
      await new Promise((r) => setTimeout(r, 1000)); // list + watch established; the baseline is restartCount 0
      await setRestarts(kube, `kube-proxy-other-${RUN}`, 5); // another node: not ours
      await setRestarts(kube, `kube-proxy-${RUN}`, 1);
      const ev = await waitFor('a kubeproxy.restart event', () => got[0]);
      expect(envelopeProblems(ev)).to.deep.equal([]);
      expect(ev.type).to.equal('kubeproxy.restart');
      expect(ev.data).to.deep.include({ pod: `kube-proxy-${RUN}`, namespace: 'kube-system', container: 'kube-proxy', restartCount: 1, previousRestartCount: 0, reason: 'OOMKilled', exitCode: 137 });
      await new Promise((r) => setTimeout(r, 500));
      expect(got).to.have.length(1);
    } finally {
      await collector.stop();
    }
  });

  it('refuses a kubeconfig whose user needs an exec plugin, in one line', async () => {
    const p = join(ROOT, 'dist', `exec-kubeconfig-${RUN}.json`);
    writeFileSync(
      p,
      JSON.stringify({
        'current-context': 'c',
        contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
        clusters: [{ name: 'k', cluster: { server: 'https://127.0.0.1:1' } }],
        users: [{ name: 'u', user: { exec: { command: 'aws' } } }],
      }),
    );
    let err: unknown;
    await kubeconfigTarget(p).catch((e: unknown) => (err = e));
    expect(String(err)).to.match(/exec\/auth-provider plugin/);
  });
});
