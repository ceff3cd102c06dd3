/**
 * nodewarden as a user installs it: `helm install` of deploy/helm/nodewarden
 * onto the real single-node cluster (test/harness/node-cluster.ts), the image
 * imported into containerd (no pull), Kafka/Redis/receivers on the node's
 * bridge address. Then the end-to-end scenarios on the real node, each
 * asserting the ledger, the Node object and the pages at the receivers, and
 * printing its signal-to-action time.
 *
 * Values changed from the chart's defaults, and why (docs/operations.md,
 * "Try it on a single-node cluster"): kafka/redis/pager endpoints (the test's
 * servers); engine.replicas 1 (the engine's required anti-affinity allows one
 * replica per node); guard.dryRun false (the scenarios assert actions);
 * guard.maxUnavailable 50% (5% of one node is 0); guard.targetCooldown 20s
 * (the scenarios cordon the same node several times within minutes).
 * No rule window is shortened.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { NodeCluster } from '../harness/node-cluster.js';
import type { PrometheusServer } from '../harness/prometheus.js';
import { FakeFleet } from './fleet.js';
import type { FakeNode } from './fleet.js';
import { POOL, sharedNode } from './shared.js';
import { ControlClient } from '../../control/client.js';
import {
  CONTROL_TOKEN,
  NAMESPACE,
  enginePodIp,
  ledgerRecordWithin,
  eventuallyOnNode,
  getNode,
  helmInstall,
  helmUninstall,
  isCordoned,
  kubeProxyHealthFromAgent,
  ledgerRecord,
  readLedger,

  startBackends,
  startClusterPrometheus,
  uncordon,
  writeKmsg,
  xidLine,
  type Backends,
} from './install.js';

const figures: string[] = [];
function figure(s: string): void {
  figures.push(s);
  process.stdout.write(`      [figure] ${s}\n`);
}

describe('nodewarden installed with helm on a real node', function () {
  this.timeout(900_000);
  let node: NodeCluster;
  let b: Backends;
  let prom: PrometheusServer | undefined;
  let fleet: FakeFleet | undefined;

  before(async () => {
    node = await sharedNode();
    b = await startBackends();
    const r = await helmInstall(node, b, node.dir);
    figure(`image import into containerd: ${r.importMs} ms (${r.archiveMiB.toFixed(1)} MiB archive)`);
    figure(`helm install -> agent and engine pods Ready: ${r.readyMs} ms`);
  });

  after(async () => {
    if (figures.length > 0) process.stdout.write(`\n  node figures:\n${figures.map((f) => `    ${f}`).join('\n')}\n`);
    await fleet?.stop();
    await prom?.stop();
    if (node !== undefined) {
      // nodes without a kubelet first: the pod GC then removes their pods at once
      await node.kube.kubectl(['delete', 'nodes', '-l', 'nodewarden.io/fake=true']);
      await helmUninstall(node);
      await node.kube.kubectl(['delete', 'namespace', NAMESPACE, 'gpu-operator', '--wait=true', '--timeout=120s'], { timeoutMs: 150_000 });
    }
    await b?.stop();
  });

  it('runs the agent as the DaemonSet pod with the chart mounts and the engine with its ServiceAccount', async () => {
    const agent = await node.kube.kubectl(['-n', NAMESPACE, 'get', 'pods', '-l', 'app.kubernetes.io/name=nodewarden-agent', '-o', 'json']);
    const pods = (JSON.parse(agent.stdout) as { items: Array<{ spec: { nodeName: string; volumes: Array<{ name: string; hostPath?: { path: string } }> } }> }).items;
    assert.equal(pods.length, 1);
    assert.equal(pods[0]?.spec.nodeName, node.nodeName);
    const hostPaths = (pods[0]?.spec.volumes ?? []).flatMap((v) => (v.hostPath ? [v.hostPath.path] : [])).sort();
    assert.deepEqual(hostPaths, ['/dev/kmsg', '/proc', '/run/containerd']);
    const engine = await node.kube.kubectl(['-n', NAMESPACE, 'get', 'pods', '-l', 'app.kubernetes.io/name=nodewarden-engine', '-o', 'jsonpath={.items[0].spec.serviceAccountName}']);
    assert.equal(engine.stdout.trim(), 'nodewarden-engine');
  });

  it("reads kube-proxy's /healthz from the DaemonSet pod (the node's network namespace, default kubeProxyHealthUrl)", async () => {
    const t0 = Date.now();
    const e = await kubeProxyHealthFromAgent(node, b);
    assert.equal(e.data['url'], 'http://127.0.0.1:10256/healthz');
    assert.equal(typeof e.data['lastUpdatedAgeMs'], 'number', JSON.stringify(e.data));
    figure(`kube-proxy health read by the agent pod: healthy, HTTP 200 (found ${Date.now() - t0} ms after the test started)`);
  });

  it('is discovered and scraped by Prometheus through kubernetes_sd (the ServiceMonitor, translated)', async () => {
    prom = await startClusterPrometheus(node);
    await prom.waitForTarget('nodewarden-engine', 60_000);
    await prom.waitForTarget('nodewarden-agent', 60_000);
    const up = await prom.queryVector('up{job=~"nodewarden-(agent|engine)"}');
    assert.deepEqual(up.map((s) => `${s.metric['job']}=${s.value[1]}`).sort(), ['nodewarden-agent=1', 'nodewarden-engine=1']);
    const agentMetrics = await eventuallyOnNode(node, 'an agent metric in Prometheus', 30_000, async () => {
      const v = await prom?.queryVector('count({job="nodewarden-agent",__name__=~"nodewarden_agent_.+"})');
      return v !== undefined && v.length > 0 && Number(v[0]?.value[1]) > 0 ? v : undefined;
    });
    assert.ok(agentMetrics.length > 0);
  });

  it('Xid 79 in the real kernel log -> the real node is cordoned (taint, annotations, Event) and a critical page goes out', async () => {
    const t0 = Date.now();
    writeKmsg(xidLine(79));
    const cordoned = await eventuallyOnNode(node, 'node cordoned', 90_000, async () => {
      const n = await getNode(node.kube, node.nodeName);
      return isCordoned(n) ? n : undefined;
    });
    const cordonMs = Date.now() - t0;
    const annotations = Object.keys(cordoned.metadata.annotations ?? {}).filter((k) => k.startsWith('nodewarden.io/'));
    assert.ok(annotations.length > 0, `no nodewarden.io annotations on ${node.nodeName}`);
    const page = await eventuallyOnNode(node, 'critical page', 60_000, () =>
      b.pd.accepted.find((e) => e.event_action === 'trigger' && /gpu-xid-(node-)?fatal/.test(e.dedup_key ?? '')),
    );
    const pageMs = Date.now() - t0;
    assert.equal(page.payload?.severity, 'critical');
    const events = await node.kube.kubectl(['get', 'events', '-A', '--field-selector', `involvedObject.kind=Node,involvedObject.name=${node.nodeName}`, '-o', 'jsonpath={range .items[*]}{.reason}{"\\n"}{end}']);
    assert.match(events.stdout, /nodewarden|Cordon/i, `no cordon Event for ${node.nodeName}: ${events.stdout}`);
    const rec = await ledgerRecord(node, b.redis.url, 'gpu-xid-node-fatal cordon', (l) => l.rule === 'gpu-xid-node-fatal' && l.action === 'cordon' && l.target.name === node.nodeName);
    assert.equal(rec.outcome, 'executed', JSON.stringify(rec));
    figure(`Xid 79 in /dev/kmsg -> node cordoned: ${cordonMs} ms; -> critical page: ${pageMs} ms`);
    await uncordon(node.kube, node.nodeName);
  });

  it('kube-proxy pod killed 3 times -> a warning page, no cordon', async () => {
    const restarts = async (): Promise<number> => {
      const r = await node.kube.kubectl(['-n', 'kube-system', 'get', 'pods', '-l', 'k8s-app=kube-proxy', '-o', 'jsonpath={.items[0].status.containerStatuses[0].restartCount}']);
      return Number(r.stdout.trim() || '0');
    };
    const running = async (): Promise<boolean> => {
      const r = await node.kube.kubectl(['-n', 'kube-system', 'get', 'pods', '-l', 'k8s-app=kube-proxy', '-o', 'jsonpath={.items[0].status.containerStatuses[0].state.running.startedAt}']);
      return r.stdout.trim() !== '';
    };
    const before = await restarts();
    let t0 = 0;
    for (let i = 1; i <= 3; i++) {
      await eventuallyOnNode(node, 'kube-proxy running', 120_000, async () => ((await running()) ? true : undefined));
      const pid = kubeProxyPid();
      assert.ok(pid !== undefined, 'kube-proxy process not found');
      process.kill(pid, 'SIGKILL');
      t0 = Date.now();
      await eventuallyOnNode(node, `kube-proxy restart ${i}`, 120_000, async () => ((await restarts()) >= before + i ? true : undefined));
    }
    const page = await eventuallyOnNode(node, 'warning page for the kube-proxy restart loop', 120_000, () =>
      b.pd.accepted.find((e) => e.event_action === 'trigger' && (e.dedup_key ?? '').includes('kubeproxy-restart-loop')),
    );
    figure(`3rd kube-proxy restart recorded -> warning page: ${Date.now() - t0} ms`);
    assert.equal(page.payload?.severity, 'warning');
    assert.equal(isCordoned(await getNode(node.kube, node.nodeName)), false, 'a kube-proxy restart loop must not cordon');
    const ledger = await eventuallyOnNode(node, 'the page in the ledger', 30_000, async () => {
      const l = await readLedger(b.redis.url);
      return l.some((r) => r.rule === 'kubeproxy-restart-loop' && r.action === 'page') ? l : undefined;
    });
    assert.ok(!ledger.some((l) => l.rule === 'kubeproxy-restart-loop' && l.action === 'cordon'));
  });

  it('containerd frozen (SIGSTOP) past the rule window -> cordon + critical page; SIGCONT -> the page resolves', async () => {
    // pages are grouped into incidents: the dedup key names the rule, not necessarily the node
    let dedup = '';
    assert.equal(isCordoned(await getNode(node.kube, node.nodeName)), false, 'the node must start uncordoned');
    const t0 = Date.now();
    process.kill(node.containerd.pid, 'SIGSTOP');
    let cordonMs: number;
    try {
      await eventuallyOnNode(node, 'node cordoned for containerd', 180_000, async () => (isCordoned(await getNode(node.kube, node.nodeName)) ? true : undefined));
      cordonMs = Date.now() - t0;
      const page = await eventuallyOnNode(node, 'critical containerd page', 120_000, () => b.pd.accepted.find((e) => e.event_action === 'trigger' && (e.dedup_key ?? '').includes('containerd-unresponsive')));
      dedup = page.dedup_key ?? '';
      assert.equal(page.payload?.severity, 'critical');
    } finally {
      process.kill(node.containerd.pid, 'SIGCONT');
    }
    const t1 = Date.now();
    await eventuallyOnNode(node, 'the containerd page resolves', 180_000, () => (b.pd.alerts.get(dedup) === 'resolved' ? true : undefined));
    figure(`containerd SIGSTOP -> cordon: ${cordonMs} ms (rule window 60s); SIGCONT -> page resolved: ${Date.now() - t1} ms (clear window 30s)`);
    await ledgerRecord(node, b.redis.url, 'containerd-unresponsive cordon', (l) => l.rule === 'containerd-unresponsive' && l.action === 'cordon' && l.outcome === 'executed');
    await uncordon(node.kube, node.nodeName);
  });

  it('driver DaemonSet rolled, then Xids on 3 nodes of its pool -> the engine rolls it back and the old pod comes back', async () => {
    fleet = new FakeFleet(node.kube, node.dir, b.kafka.brokers);
    const ds = {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'nvidia-driver-daemonset', namespace: 'gpu-operator' },
      spec: {
        selector: { matchLabels: { app: 'nvidia-driver' } },
        template: {
          metadata: { labels: { app: 'nvidia-driver' } },
          spec: {
            // the real node only: the extra Nodes have no kubelet
            nodeSelector: { 'kubernetes.io/hostname': node.nodeName },
            // like the GPU operator's driver DaemonSet: it runs on a tainted GPU node too (the Xid 79 below cordons
            // and taints the real node again: the person's uncordon of an earlier case ended that rule's episode)
            tolerations: [{ operator: 'Exists' }],
            terminationGracePeriodSeconds: 1,
            automountServiceAccountToken: false,
            containers: [
              {
                name: 'driver',
                image: node.images.proxy,
                imagePullPolicy: 'Never',
                command: ['/bin/busybox', 'sh', '-c', 'trap "exit 0" TERM; while true; do sleep 1; done'],
                env: [{ name: 'DRIVER_VERSION', value: '550.54.15' }],
              },
            ],
          },
        },
      },
    };
    await node.kube.kubectl(['create', 'namespace', 'gpu-operator']);
    const applied = await node.kube.kubectl(['apply', '-f', '-'], { input: JSON.stringify(ds) });
    assert.equal(applied.code, 0, applied.stderr);
    const rs = (args: string[]): Promise<unknown> => node.kube.kubectl(['-n', 'gpu-operator', 'rollout', 'status', 'ds/nvidia-driver-daemonset', '--timeout=180s', ...args], { timeoutMs: 190_000 });
    await rs([]);
    const oldPod = (await node.kube.kubectl(['-n', 'gpu-operator', 'get', 'pods', '-l', 'app=nvidia-driver', '-o', 'jsonpath={.items[0].metadata.name}'])).stdout.trim();
    // the new revision, as an operator rolls it
    const set = await node.kube.kubectl(['-n', 'gpu-operator', 'set', 'env', 'ds/nvidia-driver-daemonset', 'DRIVER_VERSION=560.28.03']);
    assert.equal(set.code, 0, set.stderr);
    await rs([]);
    const running = async (version: string): Promise<string | undefined> => {
      const r = await node.kube.kubectl(['-n', 'gpu-operator', 'get', 'pods', '-l', 'app=nvidia-driver', '-o', 'jsonpath={range .items[*]}{.metadata.name} {.spec.containers[0].env[0].value} {.status.phase}{"\\n"}{end}']);
      return r.stdout.split('\n').find((l) => l.endsWith(` ${version} Running`))?.split(' ')[0];
    };
    const newPod = await eventuallyOnNode(node, 'the new revision\'s pod Running', 120_000, () => running('560.28.03'));
    assert.notEqual(newPod, oldPod);

    const f1 = await fleet.add('nw-fake-1', { 'nodewarden.io/pool': POOL });
    const f2 = await fleet.add('nw-fake-2', { 'nodewarden.io/pool': POOL });
    // the engine's cluster view (what its guard counts) lists the new nodes in the pool
    const engineApi = `http://${await enginePodIp(node)}:9102`;
    const ctl = new ControlClient({ server: engineApi, token: CONTROL_TOKEN });
    await engineSeesNodes(node, engineApi, [f1.name, f2.name]);
    writeKmsg(xidLine(79, '0000:18:00'));
    f1.kmsg(xidLine(48, '0000:18:00'));
    f2.kmsg(xidLine(79, '0000:3b:00'));
    const t0 = Date.now();
    const envNow = async (): Promise<string> =>
      (await node.kube.kubectl(['-n', 'gpu-operator', 'get', 'ds', 'nvidia-driver-daemonset', '-o', 'jsonpath={.spec.template.spec.containers[0].env[0].value}'])).stdout.trim();
    // main's default incidents.approvals.requiredFor is [rollback]: the engine
    // records the rollback as pending-approval and changes nothing until a
    // person approves it. The chart keeps that default, so the test does what
    // the on-call does (docs/paging.md): approve it through the control API
    // with the admin token of the Secret, and asserts the DaemonSet was NOT
    // touched before the approval.
    const pending = await ledgerRecordWithin(node, b.redis.url, 'rollback pending approval', 120_000, (l) => l.rule === 'gpu-driver-rollout-regression' && l.action === 'rollback' && l.outcome === 'pending-approval');
    const pendingMs = Date.now() - t0;
    assert.equal(await envNow(), '560.28.03', 'the rollback ran before it was approved');
    const approvals = await ctl.approvals();
    const decisionId = pending.decisionId ?? '';
    assert.notEqual(decisionId, '', JSON.stringify(pending));
    const approval = approvals.approvals.find((a) => a['id'] === decisionId);
    assert.equal(approval?.['state'], 'pending', JSON.stringify(approvals));
    const tApprove = Date.now();
    const decided = await ctl.decideApproval(decisionId, 'approve');
    assert.equal(decided.approval['state'], 'approved', JSON.stringify(decided));
    await eventuallyOnNode(node, 'DaemonSet rolled back to the old driver', 120_000, async () => ((await envNow()) === '550.54.15' ? true : undefined));
    const rollbackMs = Date.now() - t0;
    const approvedToRollbackMs = Date.now() - tApprove;
    // the real DaemonSet controller and kubelet bring the old revision's pod back
    const backPod = await eventuallyOnNode(node, 'the old revision\'s pod Running again', 180_000, () => running('550.54.15'));
    const backMs = Date.now() - t0;
    assert.notEqual(backPod, oldPod);
    const page = await eventuallyOnNode(node, 'rollback page', 60_000, () =>
      // the rollout rule's page joins the storm's incident (ADR 0020): an update of the gpu-xid-fatal incident of the pool
      b.pd.accepted.find((e) => e.event_action === 'trigger' && e.dedup_key === `nodewarden/incident/gpu-xid-fatal/pool=${POOL}` && /rollout|driver/i.test(e.payload?.summary ?? '')),
    );
    assert.equal(page.payload?.severity, 'critical');
    assert.match(page.payload?.summary ?? '', /rollout|driver/i);
    const rec = await ledgerRecord(node, b.redis.url, 'rollback executed', (l) => l.rule === 'gpu-driver-rollout-regression' && l.action === 'rollback' && l.outcome === 'executed');
    assert.equal(rec.decisionId, decisionId, 'the approved decision is the one executed');
    figure(
      `Xids on 3 nodes of ${POOL} -> rollback pending approval: ${pendingMs} ms; approve -> DaemonSet template rolled back: ${approvedToRollbackMs} ms (Xids -> rolled back ${rollbackMs} ms); -> old revision's pod Running: ${backMs} ms`,
    );
    // the on-call returns the real node (cordoned by the Xid 79 above); the next installs schedule their engine on it
    await uncordon(node.kube, node.nodeName);
  });

  it('a storm larger than the budget -> the guard holds at maxUnavailable, counting nodes unavailable for other reasons', async () => {
    assert.ok(fleet !== undefined, 'needs the fleet of the previous test');
    const f = fleet;
    const storm: FakeNode[] = [];
    for (let i = 1; i <= 5; i++) storm.push(await f.add(`nw-storm-${i}`, { 'nodewarden.io/pool': 'gpu-storm' }));
    // unavailable for another reason: an operator cordoned it
    await f.add('nw-maintenance', { 'nodewarden.io/pool': 'gpu-storm' });
    await node.kube.kubectl(['cordon', 'nw-maintenance']);
    await engineSeesNodes(node, `http://${await enginePodIp(node)}:9102`, [...storm.map((n) => n.name), 'nw-maintenance'], ['nw-maintenance']);
    const unavailable = async (): Promise<string[]> => {
      const r = await node.kube.request('GET', '/api/v1/nodes');
      const items = (r.json as { items: Array<{ metadata: { name: string }; spec?: { unschedulable?: boolean }; status?: { conditions?: Array<{ type: string; status: string }> } }> }).items;
      return items
        .filter((n) => n.spec?.unschedulable === true || !(n.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'))
        .map((n) => n.metadata.name);
    };
    const total = (await node.kube.request('GET', '/api/v1/nodes')).json as { items: unknown[] };
    const limit = Math.max(1, Math.floor(0.5 * total.items.length));
    // the fresh storm nodes report Ready first: a snapshot taken before their first status
    // would count them as unavailable while the engine (rightly) sees them Ready a moment later
    await eventuallyOnNode(node, 'the storm nodes Ready', 60_000, async () => {
      const u = await unavailable();
      return storm.every((n) => !u.includes(n.name)) ? true : undefined;
    });
    const before = await unavailable();
    assert.ok(before.includes('nw-maintenance'));
    const t0 = Date.now();
    for (const n of storm) n.kmsg(xidLine(79));
    const denied = await eventuallyOnNode(node, 'maxUnavailable denials', 120_000, async () => {
      const l = (await readLedger(b.redis.url)).filter((r) => r.rule === 'gpu-xid-node-fatal' && r.target.name.startsWith('nw-storm-'));
      const decided = new Set(l.filter((r) => r.outcome === 'executed' || r.outcome === 'denied').map((r) => r.target.name));
      return decided.size === storm.length ? l : undefined;
    });
    const holdMs = Date.now() - t0;
    const after = await unavailable();
    const executed = denied.filter((r) => r.action === 'cordon' && r.outcome === 'executed');
    const refused = denied.filter((r) => r.action === 'cordon' && r.outcome === 'denied');
    const detail = `unavailable after the storm: ${after.join(',')} (limit ${limit}, before ${before.join(',')}); ledger: ${JSON.stringify(denied.map((r) => [r.target.name, r.action, r.outcome, r.guard]))}`;
    // The guard holds: never more unavailable nodes than the limit, and the
    // node an operator cordoned counts against the budget. (The engine may
    // count one more than this test's snapshot: a node still reserved by an
    // earlier decision, so "at most", not "exactly".)
    assert.ok(after.length <= limit, detail);
    assert.ok(executed.length >= 1 && executed.length <= limit - before.length, detail);
    assert.equal(refused.length, storm.length - executed.length, detail);
    assert.ok(refused.every((r) => r.guard === 'maxUnavailable'), JSON.stringify(refused.map((r) => r.guard)));
    figure(`storm of ${storm.length} Xids (${total.items.length} nodes, limit ${limit}, ${before.length} already unavailable) -> ${executed.length} cordoned, ${refused.length} denied, all decided in ${holdMs} ms`);
  });
});

/** Waits until the engine's cluster view (GET /api/v1/nodes) lists `names`, and `cordoned` as unschedulable. */
async function engineSeesNodes(node: NodeCluster, engineApi: string, names: string[], cordoned: string[] = []): Promise<void> {
  await eventuallyOnNode(node, `the engine's cluster view lists ${names.join(', ')}`, 60_000, async () => {
    const r = await fetchNodes(engineApi);
    const seen = new Map(r.map((n) => [n.name, n]));
    return names.every((n) => seen.has(n)) && cordoned.every((n) => seen.get(n)?.unschedulable === true) ? true : undefined;
  });
}

/** GET /api/v1/nodes of the engine (the ControlClient has no call for it: the console reads it). */
async function fetchNodes(engineApi: string): Promise<Array<{ name: string; unschedulable: boolean }>> {
  const res = await fetch(`${engineApi}/api/v1/nodes`, { headers: { authorization: `Bearer ${CONTROL_TOKEN}` }, signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET /api/v1/nodes: HTTP ${res.status}`);
  return ((await res.json()) as { nodes: Array<{ name: string; unschedulable: boolean }> }).nodes;
}

/** PID of the kube-proxy process of the static pod (host PID namespace view). */
function kubeProxyPid(): number | undefined {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (cmd[0] === '/usr/local/bin/kube-proxy' && cmd.includes('--config=/etc/kube-proxy/config.json')) return Number(d);
    } catch {
      /* gone */
    }
  }
  return undefined;
}


