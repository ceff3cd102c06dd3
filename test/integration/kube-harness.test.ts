import { expect } from 'chai';
import { startKube, type ExecResult, type KubeCluster } from '../harness/kube.js';

/**
 * Proves the real control plane of test/harness/kube.ts works. Needs the
 * binaries from `bash scripts/provision/kube.sh` (or NODEWARDEN_KUBE_BIN):
 * when they are missing, `before` fails — it never skips.
 */

interface Owned {
  metadata?: { name?: string; ownerReferences?: Array<{ kind?: string; name?: string }> };
}
interface ItemList {
  items?: Owned[];
}

function ok(r: ExecResult, what: string): string {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function eventually<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('kube harness (real etcd + kube-apiserver + kube-controller-manager)', function () {
  this.timeout(90_000);
  let cluster: KubeCluster | undefined;

  const kube = (): KubeCluster => {
    if (!cluster) throw new Error('cluster did not start');
    return cluster;
  };

  before(async function () {
    this.timeout(180_000);
    cluster = await startKube();
  });

  after(async function () {
    this.timeout(30_000);
    await cluster?.stop();
  });

  it('serves the API and reports ready', async () => {
    const r = await kube().request('GET', '/readyz');
    expect(r.status).to.equal(200);
    const v = ok(await kube().kubectl(['version', '-o', 'json']), 'kubectl version');
    const parsed = JSON.parse(v) as { serverVersion?: { gitVersion?: string } };
    expect(parsed.serverVersion?.gitVersion).to.match(/^v1\.\d+\.\d+/);
  });

  it('lets the admin create a Node object', async () => {
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'gpu-node-1', labels: { 'nvidia.com/gpu.present': 'true' } },
      spec: {},
    };
    ok(await kube().kubectl(['apply', '-f', '-'], { input: JSON.stringify(node) }), 'apply node');
    const got = JSON.parse(ok(await kube().kubectl(['get', 'node', 'gpu-node-1', '-o', 'json']), 'get node')) as {
      metadata?: { labels?: Record<string, string> };
    };
    expect(got.metadata?.labels?.['nvidia.com/gpu.present']).to.equal('true');
  });

  it('runs the deployment controller: a Deployment gets a ReplicaSet', async () => {
    ok(await kube().kubectl(['create', 'namespace', 'harness-deploy']), 'create ns');
    ok(
      await kube().kubectl(['-n', 'harness-deploy', 'create', 'deployment', 'web', '--image=registry.invalid/web:1', '--replicas=1']),
      'create deployment',
    );
    const rs = await eventually('a ReplicaSet owned by deployment/web', 60_000, async () => {
      const out = ok(await kube().kubectl(['-n', 'harness-deploy', 'get', 'replicasets', '-o', 'json']), 'get rs');
      const list = JSON.parse(out) as ItemList;
      return list.items?.find((i) => i.metadata?.ownerReferences?.some((o) => o.kind === 'Deployment' && o.name === 'web'));
    });
    expect(rs.metadata?.name).to.match(/^web-/);
  });

  it('runs the daemonset controller: a DaemonSet gets a ControllerRevision', async () => {
    ok(await kube().kubectl(['create', 'namespace', 'harness-ds']), 'create ns');
    const ds = {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'gpu-agent', namespace: 'harness-ds' },
      spec: {
        selector: { matchLabels: { app: 'gpu-agent' } },
        template: {
          metadata: { labels: { app: 'gpu-agent' } },
          spec: { containers: [{ name: 'agent', image: 'registry.invalid/agent:1' }] },
        },
      },
    };
    ok(await kube().kubectl(['apply', '-f', '-'], { input: JSON.stringify(ds) }), 'apply daemonset');
    const rev = await eventually('a ControllerRevision owned by daemonset/gpu-agent', 60_000, async () => {
      const out = ok(await kube().kubectl(['-n', 'harness-ds', 'get', 'controllerrevisions', '-o', 'json']), 'get revisions');
      const list = JSON.parse(out) as ItemList;
      return list.items?.find((i) => i.metadata?.ownerReferences?.some((o) => o.kind === 'DaemonSet' && o.name === 'gpu-agent'));
    });
    expect(rev.metadata?.name).to.match(/^gpu-agent-/);
  });

  it('mints ServiceAccount tokens that RBAC confines: no rights means no listing nodes', async () => {
    ok(await kube().kubectl(['create', 'namespace', 'harness-rbac']), 'create ns');
    ok(await kube().kubectl(['-n', 'harness-rbac', 'create', 'serviceaccount', 'nobody']), 'create sa');
    const token = await kube().tokenFor('harness-rbac', 'nobody');
    expect(token.split('.')).to.have.length(3); // a JWT
    const kubeconfig = await kube().kubeconfigFor(token);

    const who = ok(await kube().kubectl(['auth', 'whoami', '-o', 'json'], { kubeconfig }), 'auth whoami');
    expect(who).to.contain('system:serviceaccount:harness-rbac:nobody');

    const canI = await kube().kubectl(['auth', 'can-i', 'list', 'nodes'], { kubeconfig });
    expect(canI.stdout.trim()).to.equal('no');
    expect(canI.code).to.not.equal(0);

    const list = await kube().kubectl(['get', 'nodes'], { kubeconfig });
    expect(list.code).to.not.equal(0);
    expect(list.stderr).to.match(/forbidden/i);

    // The admin, by contrast, may.
    const adminCanI = await kube().kubectl(['auth', 'can-i', 'list', 'nodes']);
    expect(adminCanI.stdout.trim()).to.equal('yes');
  });
});
