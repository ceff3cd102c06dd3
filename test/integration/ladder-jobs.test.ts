/**
 * The repair ladder's Jobs on a REAL kube-apiserver + kube-controller-manager
 * (the Job controller runs; there is no kubelet, so the test plays the kubelet
 * by setting the pod's phase through the status subresource):
 * - a reset Job rendered from the user's template is pinned to the node
 *   (nodeName), tolerates nodewarden's taint, carries the GPU UUID, and the
 *   Job controller creates its pod on that node;
 * - its status is followed to success and to failure (backoffLimit 0);
 * - a replayed decision finds its Job instead of starting a second one;
 * - a timed-out Job is stopped (deleted);
 * - as the engine's own ServiceAccount (deploy/base/rbac-engine.yaml): Jobs in
 *   its namespace only.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { DEFAULT_CONFIG } from '../../core/config.js';
import type { NodewardenConfig } from '../../core/config.js';
import type { Decision } from '../../core/decision.js';
import { NodewardenError } from '../../core/errors.js';
import { packageRoot } from '../../adapters/paths.js';
import { createRepairJobExecutor, createRepairJobWatch } from '../../remediations/ladder/job-executor.js';
import type { RepairJobsApi } from '../../remediations/ladder/job-executor.js';
import { createClientNodeRepairJobs } from '../../remediations/kube/client-node-jobs.js';
import type { KubeCluster } from '../harness/kube.js';
import { waitFor } from './engine-support.js';
import { sharedKube } from './servers.js';

const RUN = randomBytes(3).toString('hex');
/** The engine's Role lives in its own namespace (deploy/base/rbac-engine.yaml). */
const NS = 'nodewarden';
const NODE = `nw-lj-${RUN}`;
const GPU = 'GPU-5f1c0a2b-0000-1111-2222-333344445555';

const RESET = {
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { labels: { team: 'gpu-ops' } },
  spec: { template: { spec: { containers: [{ name: 'reset', image: 'registry.local/gpu-reset:1', command: ['nvidia-smi', '--gpu-reset', '-i', '{{gpu}}'] }], tolerations: [{ key: 'example.com/gpu', operator: 'Exists' }] } } },
} as const;

function repair(): NodewardenConfig['repair'] {
  return { ...DEFAULT_CONFIG.repair, enabled: true, namespace: NS, reset: { template: RESET, timeout: '5m' }, validate: { template: RESET, timeout: '5m' } };
}

function decision(id: string, action: Decision['action'] = 'reset'): Decision {
  return { id, at: Date.now(), rule: 'gpu-xid-fatal', action, target: { kind: 'Node', name: NODE, gpu: GPU }, reason: 'test', params: { episode: `${NODE}:1` } };
}

interface Pod {
  metadata: { name: string };
  spec: { nodeName?: string; tolerations?: Array<{ key?: string; effect?: string }>; containers: Array<{ command: string[] }> };
}

describe('repair ladder Jobs on a real apiserver + Job controller', function () {
  this.timeout(180_000);
  let kube: KubeCluster;
  let api: RepairJobsApi;

  async function kubectl(args: string[], input?: string, kubeconfig?: string): Promise<string> {
    const r = await kube.kubectl(args, { ...(input === undefined ? {} : { input }), ...(kubeconfig ? { kubeconfig } : {}) });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r.stdout;
  }

  /** The Job's pod, once the Job controller made it. */
  async function podOf(job: string): Promise<Pod> {
    return waitFor(`pod of ${job}`, async () => {
      const list = JSON.parse(await kubectl(['get', 'pods', '-n', NS, '-l', `job-name=${job}`, '-o', 'json'])) as { items: Pod[] };
      return list.items[0];
    }, 60_000, 250);
  }

  /** Plays the kubelet: the pod ran to `phase`. */
  async function finish(pod: string, phase: 'Succeeded' | 'Failed'): Promise<void> {
    const now = new Date().toISOString();
    const state = { terminated: { exitCode: phase === 'Succeeded' ? 0 : 1, reason: phase === 'Succeeded' ? 'Completed' : 'Error', startedAt: now, finishedAt: now } };
    await kubectl(['patch', 'pod', pod, '-n', NS, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { phase, containerStatuses: [{ name: 'reset', image: 'registry.local/gpu-reset:1', imageID: '', ready: false, restartCount: 0, state }] } })]);
  }

  before(async () => {
    kube = await sharedKube();
    await kubectl(['apply', '-f', '-'], `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${NS}\n`);
    await kubectl(['apply', '-f', '-'], `apiVersion: v1\nkind: Node\nmetadata:\n  name: ${NODE}\nspec:\n  unschedulable: true\n  taints:\n  - {key: nodewarden.io/unhealthy, value: "true", effect: NoSchedule}\n`);
    await kubectl(['apply', '-f', join(packageRoot(), 'deploy/base/rbac-engine.yaml')]);
    const kc = new KubeConfig();
    kc.loadFromFile(kube.kubeconfigPath);
    api = createClientNodeRepairJobs(kc);
  });

  after(async () => {
    if (!kube) return;
    await kube.kubectl(['delete', 'node', NODE, '--ignore-not-found']);
    await kube.kubectl(['delete', 'jobs', '-n', NS, '-l', `nodewarden.io/node=${NODE}`, '--ignore-not-found']);
  });

  it('a reset Job is pinned to the node, tolerates the taint, names the GPU; its success is followed', async () => {
    const exec = createRepairJobExecutor({ api, repair: repair() });
    const watch = createRepairJobWatch(api);
    const res = await exec.execute(decision(`ladder:${NODE}:1:1:reset`));
    expect(res.ok, res.error?.message).to.equal(true);
    const job = res.job ?? '';
    const name = job.split('/')[1] ?? '';
    const j = JSON.parse(await kubectl(['get', 'job', name, '-n', NS, '-o', 'json'])) as { metadata: { labels: Record<string, string> }; spec: { backoffLimit: number; activeDeadlineSeconds: number } };
    expect(j.metadata.labels).to.include({ team: 'gpu-ops', 'app.kubernetes.io/managed-by': 'nodewarden', 'nodewarden.io/repair-step': 'reset' });
    expect(j.spec).to.include({ backoffLimit: 0, activeDeadlineSeconds: 300 });
    const pod = await podOf(name);
    expect(pod.spec.nodeName).to.equal(NODE);
    expect(pod.spec.tolerations?.map((t) => t.key)).to.include.members(['nodewarden.io/unhealthy', 'node.kubernetes.io/unschedulable', 'example.com/gpu']);
    expect(pod.spec.containers[0]?.command).to.deep.equal(['nvidia-smi', '--gpu-reset', '-i', GPU]);
    expect((await watch.status(job)).state).to.equal('running');
    await finish(pod.metadata.name, 'Succeeded');
    expect(await waitFor('Job complete', async () => (await watch.status(job)).state === 'succeeded', 60_000, 250)).to.equal(true);
    // the same decision again (a replay after a crash): the same Job, not a second one
    const again = await exec.execute(decision(`ladder:${NODE}:1:1:reset`));
    expect(again.job).to.equal(job);
    const list = JSON.parse(await kubectl(['get', 'jobs', '-n', NS, '-l', `nodewarden.io/node=${NODE},nodewarden.io/repair-step=reset`, '-o', 'json'])) as { items: unknown[] };
    expect(list.items).to.have.length(1);
  });

  it("a failing validation Job is followed to failure (the ladder escalates); a timed-out one is stopped", async () => {
    const exec = createRepairJobExecutor({ api, repair: repair() });
    const watch = createRepairJobWatch(api);
    const res = await exec.execute(decision(`ladder:${NODE}:1:2:validate`, 'validate'));
    const job = res.job ?? '';
    const pod = await podOf(job.split('/')[1] ?? '');
    await finish(pod.metadata.name, 'Failed');
    const s = await waitFor('Job failed', async () => {
      const st = await watch.status(job);
      return st.state === 'failed' ? st : undefined;
    }, 60_000, 250);
    expect(s.detail).to.match(/BackoffLimitExceeded/);
    const slow = await exec.execute(decision(`ladder:${NODE}:1:3:validate`, 'validate'));
    await podOf(slow.job?.split('/')[1] ?? '');
    await watch.stop(slow.job ?? '');
    expect((await watch.status(slow.job ?? '')).state).to.equal('missing');
  });

  it("as the engine's ServiceAccount: Jobs in its namespace, nowhere else", async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(await kube.kubeconfigFor(await kube.tokenFor(NS, 'nodewarden-engine')));
    const sa = createClientNodeRepairJobs(kc);
    const exec = createRepairJobExecutor({ api: sa, repair: repair() });
    const ok = await exec.execute(decision(`ladder:${NODE}:2:1:reset`));
    expect(ok.ok).to.equal(true);
    expect((await createRepairJobWatch(sa).status(ok.job ?? '')).state).to.equal('running');
    const elsewhere = createRepairJobExecutor({ api: sa, repair: { ...repair(), namespace: 'default' } });
    let err: unknown;
    try {
      await elsewhere.execute(decision(`ladder:${NODE}:2:2:reset`));
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(NodewardenError);
    expect((err as NodewardenError).code).to.equal('FORBIDDEN');
  });
});
