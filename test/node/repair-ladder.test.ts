/**
 * The repair ladder on the real node (docs/repair-ladder.md): nodewarden
 * installed with helm as a user would turn the ladder on (`repair` values),
 * an Xid in the node's real /dev/kmsg, and the reset / reboot / validation
 * Jobs run by the real kubelet and containerd.
 *
 * The "fake GPU tools": every Job template runs the nodewarden image (already
 * imported for the install, so nothing new is built or pulled) with /bin/sh,
 * and exits with the code the test wrote for that step into the ConfigMap
 * `nw-fake-repair`, mounted into the Job's pod. The test flips it at runtime:
 * a step succeeds or fails on command.
 *
 * Three cases, each on a fresh install (fresh Redis, fresh rule state):
 * 1. reset and validation pass -> quiet period -> nodewarden uncordons the
 *    node (returned to service; ledger: reset, validate, uncordon executed);
 * 2. validation fails every time -> reset, validation failed, reboot (a Job),
 *    validation failed, hand-over (critical page with the history); the node
 *    stays cordoned and nothing more is tried (no loop);
 * 3. a second Xid during the quiet period (gpu-xid-fatal is in its 1 h
 *    cooldown, so the rule does not fire: a held fault, ADR 0034) -> no
 *    return, the ladder climbs to the reboot, validates, returns the node; a
 *    third Xid after the return (still inside the rule's cooldown) isolates
 *    the node again and opens a new episode.
 * Values changed for the test: quietPeriod 15s, retry 5s (a step denied by the
 * 20s target cooldown of the shared install values is asked for again sooner).
 */
import assert from 'node:assert/strict';
import type { LedgerRecord } from '../../core/decision.js';
import type { NodeCluster } from '../harness/node-cluster.js';
import { sharedNode } from './shared.js';
import {
  NAMESPACE,
  eventuallyOnNode,
  getNode,
  helmInstall,
  helmUninstall,
  isCordoned,
  kubeProxyHealthFromAgent,
  nodewardenImageArchive,
  readLedger,
  sleep,
  startBackends,
  uncordon,
  writeKmsg,
  type Backends,
} from './install.js';

const QUIET_MS = 15_000;
const FAKE_CM = 'nw-fake-repair';
/** The PCI address of the faulty GPU in the injected Xid (the agent normalises it to this). */
const GPU = '0000:3b:00';

const figures: string[] = [];
function figure(s: string): void {
  figures.push(s);
  process.stdout.write(`      [figure] ${s}\n`);
}

type Step = 'reset' | 'reboot' | 'validate';

/** A Job template a user would write, with the fake tool's command: exit with the code the test set for `step`. */
function fakeJob(step: Step, image: string, say: string): Record<string, unknown> {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { labels: { 'app.kubernetes.io/part-of': 'nodewarden-test' } },
    spec: {
      template: {
        spec: {
          automountServiceAccountToken: false,
          containers: [
            {
              name: step,
              image,
              imagePullPolicy: 'Never',
              command: ['/bin/sh', '-c', `code=$(cat /fake/${step}); echo "${say}: exit $code"; sleep 1; exit "$code"`],
              volumeMounts: [{ name: 'fake', mountPath: '/fake', readOnly: true }],
              resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
            },
          ],
          volumes: [{ name: 'fake', configMap: { name: FAKE_CM } }],
        },
      },
    },
  };
}

/** The `repair` values: what docs/repair-ladder.md shows, with the fake tools and short periods. */
function repairValues(image: string): Record<string, unknown> {
  return {
    enabled: true,
    quietPeriod: `${QUIET_MS / 1000}s`,
    retry: '5s',
    reset: { timeout: '2m', template: fakeJob('reset', image, 'reset GPU {{gpu}} on {{node}}') },
    reboot: { mode: 'job', timeout: '2m', template: fakeJob('reboot', image, 'reboot {{node}}') },
    validate: { timeout: '2m', template: fakeJob('validate', image, 'validate {{node}} (episode {{episode}})') },
  };
}

/** The test's switch: the exit code of each fake step. */
async function setOutcomes(node: NodeCluster, codes: Record<Step, 0 | 1>): Promise<void> {
  const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: FAKE_CM, namespace: NAMESPACE }, data: Object.fromEntries(Object.entries(codes).map(([k, v]) => [k, String(v)])) };
  const r = await node.kube.kubectl(['apply', '-f', '-'], { input: JSON.stringify(cm) });
  assert.equal(r.code, 0, `apply ConfigMap ${FAKE_CM}: ${r.stderr}`);
}

/** An Xid whose NVIDIA action is RESET_GPU (Xid 95, uncontained memory error): the ladder starts at the reset. */
function xid95(): string {
  return `NVRM: Xid (PCI:${GPU}): 95, pid=4242, name=python3, Uncontained memory error`;
}

interface JobView {
  name: string;
  created: string;
  state: 'running' | 'succeeded' | 'failed';
  nodeName: string;
  tolerations: string[];
}

/** The repair Jobs of `step` on the node, oldest first, as the API has them. */
async function jobsOf(node: NodeCluster, step: Step): Promise<JobView[]> {
  const r = await node.kube.kubectl(['-n', NAMESPACE, 'get', 'jobs', '-l', `nodewarden.io/repair-step=${step},nodewarden.io/node=${node.nodeName}`, '-o', 'json']);
  if (r.code !== 0) throw new Error(`get jobs: ${r.stderr}`);
  interface Raw {
    metadata: { name: string; creationTimestamp: string };
    spec: { template: { spec: { nodeName?: string; tolerations?: Array<{ key?: string }> } } };
    status?: { conditions?: Array<{ type: string; status: string }> };
  }
  const items = (JSON.parse(r.stdout) as { items: Raw[] }).items;
  return items
    .map((j) => {
      const c = (t: string): boolean => (j.status?.conditions ?? []).some((x) => x.type === t && x.status === 'True');
      return {
        name: j.metadata.name,
        created: j.metadata.creationTimestamp,
        state: c('Complete') ? ('succeeded' as const) : c('Failed') ? ('failed' as const) : ('running' as const),
        nodeName: j.spec.template.spec.nodeName ?? '',
        tolerations: (j.spec.template.spec.tolerations ?? []).map((t) => t.key ?? ''),
      };
    })
    .sort((a, b) => a.created.localeCompare(b.created) || a.name.localeCompare(b.name));
}

/** Waits for the `index`-th Job of `step` to finish as `want`; checks that it ran on the real node (its pod, its log). Returns when the test saw it finish. */
async function jobFinished(node: NodeCluster, step: Step, index: number, want: 'succeeded' | 'failed', say: RegExp): Promise<number> {
  const job = await eventuallyOnNode(node, `${step} Job #${index + 1} ${want}`, 180_000, async () => {
    const j = (await jobsOf(node, step))[index];
    if (j === undefined || j.state === 'running') return undefined;
    return j;
  });
  const at = Date.now();
  assert.equal(job.state, want, `${step} Job ${job.name} ${job.state}, expected ${want}`);
  assert.equal(job.nodeName, node.nodeName, `${step} Job ${job.name} is pinned to ${job.nodeName}`);
  assert.ok(job.tolerations.includes('nodewarden.io/unhealthy') && job.tolerations.includes('node.kubernetes.io/unschedulable'), `${step} Job ${job.name} tolerations: ${job.tolerations.join(',')}`);
  // the pod really ran on the kubelet: its container terminated with the code the test set
  const p = await node.kube.kubectl(['-n', NAMESPACE, 'get', 'pods', '-l', `job-name=${job.name}`, '-o', 'json']);
  const pods = (JSON.parse(p.stdout) as { items: Array<{ metadata: { name: string }; spec: { nodeName?: string }; status: { phase?: string; containerStatuses?: Array<{ state?: { terminated?: { exitCode: number } } }> } }> }).items;
  assert.equal(pods.length, 1, `${step} Job ${job.name}: ${pods.length} pods (backoffLimit 0)`);
  const pod = pods[0];
  assert.ok(pod !== undefined);
  assert.equal(pod.spec.nodeName, node.nodeName);
  assert.equal(pod.status.phase, want === 'succeeded' ? 'Succeeded' : 'Failed');
  assert.equal(pod.status.containerStatuses?.[0]?.state?.terminated?.exitCode, want === 'succeeded' ? 0 : 1);
  const log = await node.kube.kubectl(['-n', NAMESPACE, 'logs', pod.metadata.name]);
  assert.match(log.stdout, say, `${step} pod log: ${log.stdout}${log.stderr}`);
  return at;
}

async function waitCordoned(node: NodeCluster): Promise<number> {
  await eventuallyOnNode(node, 'node cordoned', 90_000, async () => (isCordoned(await getNode(node.kube, node.nodeName)) ? true : undefined));
  return Date.now();
}

/** The ladder's records for the node (decision ids `ladder:<episode>:<seq>:<action>`). */
async function ladderRecords(node: NodeCluster, b: Backends): Promise<LedgerRecord[]> {
  return (await readLedger(b.redis.url)).filter((r) => r.decisionId?.startsWith(`ladder:${node.nodeName}:`) === true);
}

/** The ladder episode a record belongs to (decision ids `ladder:<episode>:…`; episode ids are `<node>:<detected at>`). */
function episodeOf(r: LedgerRecord | undefined): string | undefined {
  const p = r?.decisionId?.split(':') ?? [];
  return p.length > 3 ? `${p[1]}:${p[2]}` : undefined;
}

function count(recs: LedgerRecord[], action: string, outcome = 'executed'): number {
  return recs.filter((r) => r.action === action && r.outcome === outcome).length;
}

const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const re = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('repair ladder on a real node (helm install, Jobs on the kubelet)', function () {
  this.timeout(900_000);
  let node: NodeCluster;
  let b: Backends | undefined;
  let image = '';

  async function install(): Promise<Backends> {
    if (b !== undefined) await uninstall(); // an earlier case that failed half-way
    // ... and may have left the node cordoned: the engine pod (on this one node) could not be scheduled
    await uncordon(node.kube, node.nodeName);
    const backends = await startBackends();
    b = backends;
    const r = await helmInstall(node, backends, node.dir, { repair: repairValues(image) });
    figure(`helm install (repair ladder on) -> pods Ready: ${r.readyMs} ms`);
    // the agent's collectors run (a signal on the topic) before the Xid is written
    await kubeProxyHealthFromAgent(node, backends);
    return backends;
  }

  async function uninstall(): Promise<void> {
    await helmUninstall(node);
    // the next install's agent pod uses the node's network namespace: the old one must be gone
    await node.kube.kubectl(['-n', NAMESPACE, 'wait', '--for=delete', 'pods', '-l', 'app.kubernetes.io/part-of=nodewarden', '--timeout=120s'], { timeoutMs: 130_000 });
    await node.kube.kubectl(['-n', NAMESPACE, 'delete', 'jobs', '-l', 'app.kubernetes.io/managed-by=nodewarden', '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 });
    await b?.stop();
    b = undefined;
  }

  /** A fresh install, the validation's exit code set, an Xid 95 → cordon → the reset Job (told to pass) done on the node. */
  async function episode(validate: 0 | 1): Promise<{ backends: Backends; t0: number; tCordon: number; tReset: number }> {
    const backends = await install();
    assert.equal(isCordoned(await getNode(node.kube, node.nodeName)), false, 'the node must start uncordoned');
    await setOutcomes(node, { reset: 0, reboot: 0, validate });
    const t0 = Date.now();
    writeKmsg(xid95());
    const tCordon = await waitCordoned(node);
    const tReset = await jobFinished(node, 'reset', 0, 'succeeded', new RegExp(`reset GPU ${GPU} on ${re(node.nodeName)}: exit 0`));
    return { backends, t0, tCordon, tReset };
  }

  before(async () => {
    node = await sharedNode();
    image = (await nodewardenImageArchive()).ref;
  });

  after(async () => {
    if (figures.length > 0) process.stdout.write(`\n  repair ladder figures:\n${figures.map((f) => `    ${f}`).join('\n')}\n`);
    if (node === undefined) return;
    if (b !== undefined) await uninstall();
    // a handed-over node is a person's: the operator returns it (docs/operations.md)
    await uncordon(node.kube, node.nodeName);
    await node.kube.kubectl(['delete', 'namespace', NAMESPACE, '--wait=true', '--timeout=120s'], { timeoutMs: 150_000 });
  });

  it('Xid 95 -> cordon -> reset Job and validation Job pass on the kubelet -> quiet period -> nodewarden uncordons the node', async () => {
    const { backends, t0, tCordon, tReset } = await episode(0);
    const tValid = await jobFinished(node, 'validate', 0, 'succeeded', new RegExp(`validate ${re(node.nodeName)} \\(episode ${re(node.nodeName)}-\\d+\\): exit 0`));
    await eventuallyOnNode(node, 'node returned to service by nodewarden', 120_000, async () => {
      const n = await getNode(node.kube, node.nodeName);
      return n.spec?.unschedulable !== true && !(n.spec?.taints ?? []).some((t) => t.key === 'nodewarden.io/unhealthy') ? true : undefined;
    });
    const tBack = Date.now();
    // the quiet period began when the engine saw the validation Job complete (at or after the test did)
    // (slack: the test may see the Job complete up to a poll of kubectl later than the engine does)
    assert.ok(tBack - tValid >= QUIET_MS - 3000, `uncordoned ${tBack - tValid} ms after the validation passed; quiet period ${QUIET_MS} ms`);

    const recs = await eventuallyOnNode(node, 'the uncordon in the ledger', 30_000, async () => {
      const l = await ladderRecords(node, backends);
      return count(l, 'uncordon') === 1 ? l : undefined;
    });
    const summary = JSON.stringify(recs.map((r) => [r.action, r.outcome, r.guard]));
    assert.equal(count(recs, 'reset'), 1, summary);
    assert.equal(count(recs, 'validate'), 1, summary);
    assert.equal(recs.filter((r) => r.action === 'reboot' || r.action === 'replace').length, 0, summary);
    const back = recs.find((r) => r.action === 'uncordon' && r.outcome === 'executed');
    assert.equal(back?.rule, 'gpu-xid-fatal');
    assert.equal(back?.target.name, node.nodeName);
    assert.ok(back?.details?.['episode'] !== undefined, `the uncordon record names its episode: ${JSON.stringify(back)}`);
    const reset = recs.find((r) => r.action === 'reset' && r.outcome === 'executed');
    assert.equal((reset?.target as { gpu?: string } | undefined)?.gpu, GPU, JSON.stringify(reset));
    assert.equal((await jobsOf(node, 'reboot')).length, 0);

    figure(
      `ladder, validation passes: Xid 95 -> cordon ${s(tCordon - t0)}; cordon -> reset Job complete ${s(tReset - tCordon)}; -> validation Job complete ${s(tValid - tReset)}; -> uncordoned by nodewarden ${s(tBack - tValid)} (quiet period ${s(QUIET_MS)}); fault -> returned to service ${s(tBack - t0)}`,
    );
    await uninstall();
  });

  it('validation fails on command -> reset, reboot, each validated and failed -> hand-over page; the node stays cordoned, nothing loops', async () => {
    const { backends, t0, tCordon, tReset } = await episode(1);
    const tVal1 = await jobFinished(node, 'validate', 0, 'failed', /: exit 1/);
    const tReboot = await jobFinished(node, 'reboot', 0, 'succeeded', new RegExp(`reboot ${re(node.nodeName)}: exit 0`));
    const tVal2 = await jobFinished(node, 'validate', 1, 'failed', /: exit 1/);
    const dedup = `nodewarden/repair/${node.nodeName}`;
    const page = await eventuallyOnNode(node, 'the hand-over page', 60_000, () => backends.pd.accepted.find((e) => e.event_action === 'trigger' && e.dedup_key === dedup));
    const tPage = Date.now();
    assert.equal(page.payload?.severity, 'critical');
    assert.match(page.payload?.summary ?? '', /needs a person/);
    const evidence = page.payload?.custom_details?.['evidence'] as { history?: unknown } | undefined;
    const history = Array.isArray(evidence?.history) ? evidence.history.map(String) : [];
    assert.equal(history.filter((h) => /validation failed/.test(h)).length >= 2, true, `the page carries the history: ${JSON.stringify(page.payload?.custom_details)}`);
    assert.ok(history.some((h) => /reset requested/.test(h)) && history.some((h) => /reboot requested/.test(h)), JSON.stringify(history));

    // no loop: through several engine ticks and past the quiet period, nothing more is tried
    await sleep(QUIET_MS + 10_000);
    const n = await getNode(node.kube, node.nodeName);
    assert.equal(isCordoned(n), true, 'a handed-over node stays cordoned');
    const jobs = { reset: (await jobsOf(node, 'reset')).length, reboot: (await jobsOf(node, 'reboot')).length, validate: (await jobsOf(node, 'validate')).length };
    assert.deepEqual(jobs, { reset: 1, reboot: 1, validate: 2 });
    const recs = await ladderRecords(node, backends);
    const summary = JSON.stringify(recs.map((r) => [r.action, r.outcome, r.guard]));
    assert.equal(count(recs, 'reset'), 1, summary);
    assert.equal(count(recs, 'reboot'), 1, summary);
    assert.equal(count(recs, 'validate'), 2, summary);
    assert.equal(count(recs, 'replace'), 1, summary);
    assert.equal(recs.filter((r) => r.action === 'uncordon').length, 0, summary);
    assert.equal(backends.pd.accepted.filter((e) => e.dedup_key === dedup).length, 1, 'one hand-over page');

    figure(
      `ladder, validation fails: Xid 95 -> cordon ${s(tCordon - t0)}; -> reset Job complete ${s(tReset - tCordon)}; -> validation failed ${s(tVal1 - tReset)}; -> reboot Job complete ${s(tReboot - tVal1)}; -> validation failed ${s(tVal2 - tReboot)}; -> hand-over page ${s(tPage - tVal2)}; fault -> hand-over ${s(tPage - t0)}`,
    );
  });

  it('a fault during the quiet period (rule cooling down) is not swallowed: no return, the ladder reboots; after the return a new fault isolates the node again', async () => {
    const { backends, t0 } = await episode(0);
    const tValid = await jobFinished(node, 'validate', 0, 'succeeded', /: exit 0/);
    // inside the 15 s quiet period (or still validating: both count); gpu-xid-fatal cools down for 1 h
    await sleep(2_000);
    writeKmsg(xid95());
    const tHeld = Date.now();
    const tReboot = await jobFinished(node, 'reboot', 0, 'succeeded', new RegExp(`reboot ${re(node.nodeName)}: exit 0`));
    assert.equal(isCordoned(await getNode(node.kube, node.nodeName)), true, 'not returned while the repair goes on');
    const tValid2 = await jobFinished(node, 'validate', 1, 'succeeded', /: exit 0/);
    await eventuallyOnNode(node, 'node returned to service after the reboot', 120_000, async () => {
      const n = await getNode(node.kube, node.nodeName);
      return n.spec?.unschedulable !== true ? true : undefined;
    });
    const tBack = Date.now();
    const first = await eventuallyOnNode(node, 'the uncordon in the ledger', 30_000, async () => {
      const l = await ladderRecords(node, backends);
      return count(l, 'uncordon') === 1 ? l : undefined;
    });
    const summary1 = JSON.stringify(first.map((r) => [r.action, r.outcome, r.guard]));
    assert.equal(count(first, 'reset'), 1, summary1);
    assert.equal(count(first, 'reboot'), 1, summary1);
    assert.equal(count(first, 'validate'), 2, summary1);
    const ep1 = episodeOf(first.find((r) => r.action === 'uncordon'));
    assert.ok(ep1 !== undefined, summary1);

    // past the shared values' 20 s target cooldown of the first cordon; the rule's own 1 h cooldown still runs
    await sleep(Math.max(0, 21_000 - (Date.now() - t0)));
    const t3 = Date.now();
    writeKmsg(xid95());
    const tAgain = await waitCordoned(node);
    const second = await eventuallyOnNode(node, 'a new ladder episode', 60_000, async () => {
      const l = await ladderRecords(node, backends);
      return new Set(l.map(episodeOf)).size >= 2 ? l : undefined;
    });
    const eps = [...new Set(second.map(episodeOf))];
    assert.ok(eps.includes(ep1) && eps.length === 2, JSON.stringify(eps));
    figure(
      `ladder, fault in the quiet period: held fault -> reboot Job complete ${s(tReboot - tHeld)} (validation passed ${s(tHeld - tValid)} before the fault); -> validation ${s(tValid2 - tReboot)}; -> returned ${s(tBack - tValid2)}; new fault after the return -> cordoned again ${s(tAgain - t3)}, new episode`,
    );
  });
});
