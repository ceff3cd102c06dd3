/**
 * What the "as installed" tests share: the servers nodewarden talks to (real
 * Kafka and Redis, local PagerDuty/Slack receivers that check the published
 * contracts), all bound to the node harness's bridge address so that pods
 * reach them and nothing leaves the machine; the nodewarden image imported
 * into the node's containerd (built by scripts/provision/image.sh, never
 * pulled); the Secret a user creates; Prometheus with a scrape config
 * translated from the chart's ServiceMonitor; ledger reads; Node helpers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import kafkajs from 'kafkajs';
import { stringify } from 'yaml';
import type { LedgerRecord } from '../../core/decision.js';
import { decodeEnvelope, type EventEnvelope } from '../../core/envelope.js';
import { startKafka, type KafkaBroker } from '../harness/kafka.js';
import { repoRoot, run, type KubeCluster } from '../harness/kube.js';
import { HOST_IP, type NodeCluster } from '../harness/node-cluster.js';
import { startPrometheus, type PrometheusServer } from '../harness/prometheus.js';
import { startRedis, type RedisServer } from '../harness/redis.js';
import { startPagerDutyReceiver, type PagerDutyReceiver } from '../receivers/pagerduty.js';
import { startSlackReceiver, type SlackReceiver } from '../receivers/slack.js';

export const NAMESPACE = 'nodewarden';
export const TOPICS = ['nodewarden.signals', 'nodewarden.deadletter', 'nodewarden.ledger'];
/** PagerDuty routing keys are exactly 32 characters (the receiver checks). */
export const PD_ROUTING_KEY = 'nodewardennodetestroutingkey0001';
export const CONTROL_TOKEN = 'node-test-admin-token-0123456789abcdef';

export interface Backends {
  kafka: KafkaBroker;
  redis: RedisServer;
  pd: PagerDutyReceiver;
  slack: SlackReceiver;
  stop(): Promise<void>;
}

export async function startBackends(): Promise<Backends> {
  const [kafka, redis, pd, slack] = await Promise.all([
    startKafka({ host: HOST_IP, numPartitions: 3 }),
    startRedis({ host: HOST_IP }),
    startPagerDutyReceiver({ host: HOST_IP }),
    startSlackReceiver({ host: HOST_IP, minIntervalMs: 0 }),
  ]);
  await kafka.createTopics(TOPICS, 3);
  return {
    kafka,
    redis,
    pd,
    slack,
    async stop(): Promise<void> {
      await Promise.allSettled([kafka.stop(), redis.stop(), pd.close(), slack.close()]);
    },
  };
}

/** The nodewarden image archive: $NODEWARDEN_IMAGE_ARCHIVE, else scripts/provision/image.sh --check. Fails loudly. */
export async function nodewardenImageArchive(): Promise<{ archive: string; ref: string }> {
  let archive = process.env['NODEWARDEN_IMAGE_ARCHIVE'] ?? '';
  let ref = process.env['NODEWARDEN_IMAGE_NAME'] ?? '';
  if (archive === '') {
    const script = path.join(repoRoot(), 'scripts', 'provision', 'image.sh');
    if (!fs.existsSync(script)) throw new Error(`no nodewarden image: set NODEWARDEN_IMAGE_ARCHIVE or provide ${script}`);
    const r = await run('bash', [script, '--check']);
    archive = r.stdout.trim().split('\n').pop()?.trim() ?? '';
    ref ||= /IMAGE_NAME=(\S+)/.exec(r.stdout)?.[1] ?? '';
    if (r.code !== 0 || archive === '') {
      throw new Error(`the nodewarden image is not built (${script} --check exited ${r.code}): run bash scripts/provision/image.sh\n${r.stderr.trim()}`);
    }
  }
  if (!fs.existsSync(archive)) throw new Error(`nodewarden image archive ${archive} does not exist`);
  return { archive, ref: ref || 'ghcr.io/nodewarden/nodewarden:0.1.0' };
}

/** The Secret docs/operations.md tells a user to create, pointing at the local receivers. */
export async function createSecret(kube: KubeCluster, b: Backends): Promise<void> {
  const secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'nodewarden-secrets', namespace: NAMESPACE },
    stringData: {
      'pagerduty-routing-key': PD_ROUTING_KEY,
      'slack-webhook-url': b.slack.url,
      'control-tokens': `${CONTROL_TOKEN} admin node-test\n`,
    },
  };
  const ns = await kube.kubectl(['create', 'namespace', NAMESPACE]);
  if (ns.code !== 0 && !ns.stderr.includes('AlreadyExists')) throw new Error(`create namespace: ${ns.stderr}`);
  const r = await kube.kubectl(['apply', '-f', '-'], { input: JSON.stringify(secret) });
  if (r.code !== 0) throw new Error(`create secret: ${r.stderr}`);
}

/** The Prometheus Operator CRDs (scripts/provision/crds.sh), so the chart's ServiceMonitor/PrometheusRule install as shipped. */
export async function installCrds(kube: KubeCluster): Promise<void> {
  let dir = process.env['NODEWARDEN_CRDS'] ?? '';
  if (dir === '') {
    const r = await run('bash', [path.join(repoRoot(), 'scripts', 'provision', 'crds.sh')]);
    dir = r.stdout.trim().split('\n').pop()?.trim() ?? '';
  }
  if (dir === '' || !fs.existsSync(dir)) throw new Error('Prometheus Operator CRDs not found: run bash scripts/provision/crds.sh (or set NODEWARDEN_CRDS)');
  const r = await kube.kubectl(['apply', '--server-side', '-f', dir], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`apply CRDs: ${r.stderr}`);
  // right after creation a CRD has no conditions yet, and `kubectl wait` errors on that
  await eventually('CRDs Established', 60_000, async () => {
    const w = await kube.kubectl(['wait', '--for=condition=Established', 'crd/servicemonitors.monitoring.coreos.com', 'crd/prometheusrules.monitoring.coreos.com', '--timeout=20s']);
    return w.code === 0 ? true : undefined;
  });
}

/** Wait until the agent DaemonSet pod and the engine Deployment pod are Ready; returns ms waited. */
export async function waitBothPodsReady(node: NodeCluster, timeoutMs = 300_000): Promise<number> {
  const start = Date.now();
  for (const sel of ['app.kubernetes.io/name=nodewarden-agent', 'app.kubernetes.io/name=nodewarden-engine']) {
    for (;;) {
      const r = await node.kube.kubectl(['-n', NAMESPACE, 'get', 'pods', '-l', sel, '-o', 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}']);
      const states = r.stdout.trim().split('\n').filter(Boolean);
      if (states.length > 0 && states.every((s) => s === 'True')) break;
      if (Date.now() - start > timeoutMs) {
        const d = await node.kube.kubectl(['-n', NAMESPACE, 'describe', 'pods', '-l', sel]);
        const logs = await node.kube.kubectl(['-n', NAMESPACE, 'logs', '-l', sel, '--tail=30', '--all-containers']);
        throw new Error(`pods ${sel} not Ready after ${timeoutMs} ms:\n${d.stdout.slice(-4000)}\n${logs.stdout}${logs.stderr}\n${node.logTails(15)}`);
      }
      await sleep(1000);
    }
  }
  return Date.now() - start;
}

/**
 * Prometheus config equivalent to the chart's ServiceMonitor `nodewarden`
 * (docs/operations.md): Endpoints of Services labelled
 * app.kubernetes.io/part-of=nodewarden in the release namespace, ports named
 * `http` (every 15s) and `metrics` (every 30s); `job` is the Service name, as
 * the Prometheus Operator sets it. Intervals are shortened for the test.
 */
export function serviceMonitorScrapeConfig(kube: KubeCluster, tokenFile: string): string {
  const job = (port: string): string =>
    [
      `  - job_name: servicemonitor/${NAMESPACE}/nodewarden/${port}`,
      '    scrape_interval: 2s',
      '    scrape_timeout: 1s',
      '    kubernetes_sd_configs:',
      '      - role: endpoints',
      `        api_server: ${JSON.stringify(kube.server)}`,
      `        namespaces: { names: [${NAMESPACE}] }`,
      `        authorization: { credentials_file: ${JSON.stringify(tokenFile)} }`,
      '        tls_config: { insecure_skip_verify: true }',
      '    relabel_configs:',
      '      - source_labels: [__meta_kubernetes_service_label_app_kubernetes_io_part_of]',
      '        regex: nodewarden',
      '        action: keep',
      '      - source_labels: [__meta_kubernetes_endpoint_port_name]',
      `        regex: ${port}`,
      '        action: keep',
      '      - source_labels: [__meta_kubernetes_service_name]',
      '        target_label: job',
      '      - source_labels: [__meta_kubernetes_pod_name]',
      '        target_label: pod',
      '      - source_labels: [__meta_kubernetes_pod_node_name]',
      '        target_label: node',
    ].join('\n');
  return ['global:', '  scrape_interval: 2s', '  evaluation_interval: 2s', 'scrape_configs:', job('http'), job('metrics'), ''].join('\n');
}

export async function startClusterPrometheus(node: NodeCluster): Promise<PrometheusServer> {
  const tokenFile = path.join(node.dir, 'prometheus.token');
  fs.writeFileSync(tokenFile, node.kube.adminToken, { mode: 0o600 });
  // Debian's prometheus is built without Kubernetes service discovery:
  // scripts/provision/prometheus-k8s.sh builds one with it.
  let bin = process.env['NODEWARDEN_PROMETHEUS_K8S'] ?? '';
  if (bin === '') {
    const r = await run('bash', [path.join(repoRoot(), 'scripts', 'provision', 'prometheus-k8s.sh'), '--check']);
    bin = r.stdout.trim().split('\n').pop()?.trim() ?? '';
    if (r.code !== 0 || bin === '') throw new Error(`no Prometheus with Kubernetes SD: run bash scripts/provision/prometheus-k8s.sh\n${r.stderr.trim()}`);
  }
  return startPrometheus([], { config: serviceMonitorScrapeConfig(node.kube, tokenFile), bin });
}

/** Every ledger record the engines wrote to Redis (stream `nw:ledger`), oldest first. */
export async function readLedger(redisUrl: string): Promise<LedgerRecord[]> {
  const r = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await r.connect();
    const entries = await r.xrange('nw:ledger', '-', '+');
    return entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('rec') + 1] ?? '{}') as LedgerRecord);
  } finally {
    r.disconnect();
  }
}

export interface NodeView {
  metadata: { name: string; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec?: { unschedulable?: boolean; taints?: Array<{ key: string; effect: string }> };
}

export async function getNode(kube: KubeCluster, name: string): Promise<NodeView> {
  const r = await kube.request('GET', `/api/v1/nodes/${name}`);
  if (r.status !== 200) throw new Error(`GET node ${name}: HTTP ${r.status}`);
  return r.json as NodeView;
}

export function isCordoned(n: NodeView): boolean {
  return n.spec?.unschedulable === true && (n.spec.taints ?? []).some((t) => t.key === 'nodewarden.io/unhealthy');
}

/** What an operator does after a cordon (docs/operations.md, "Undo a cordon"). */
export async function uncordon(kube: KubeCluster, name: string): Promise<void> {
  await kube.kubectl(['uncordon', name]);
  await kube.kubectl(['taint', 'node', name, 'nodewarden.io/unhealthy-']);
}

/** Write one record to the node's real kernel log (user facility, as root). */
export function writeKmsg(line: string): void {
  // <12> = facility user (1), level warning (4)
  fs.writeFileSync('/dev/kmsg', `<12>${line}\n`);
}

export function xidLine(code: number, pci = '0000:3b:00'): string {
  return `NVRM: Xid (PCI:${pci}): ${code}, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.`;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll until `check` returns a value (not undefined); throws with `what` after timeoutMs. */
export async function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
    await sleep(500);
  }
}

/**
 * `helm install nodewarden deploy/helm/nodewarden` with the values a user of a
 * single-node cluster sets (docs/operations.md): the test's endpoints, one
 * engine replica (required anti-affinity: one per node), actions on, a budget
 * that lets one node of a small cluster be cordoned, a short target cooldown;
 * `extraValues` adds top-level values (e.g. `repair`). Imports the image
 * first (no pull). Returns ms from `helm install` to both pods Ready.
 */
export async function helmInstall(node: NodeCluster, b: Backends, dir: string, extraValues: Record<string, unknown> = {}): Promise<{ readyMs: number; importMs: number; archiveMiB: number }> {
  const { image, importMs, archiveMiB } = await prepareInstall(node, b);
  const cut = image.ref.lastIndexOf(':');
  const values = {
    ...extraValues,
    image: { repository: image.ref.slice(0, cut), tag: image.ref.slice(cut + 1) },
    kafka: { brokers: b.kafka.brokers },
    redis: { url: b.redis.url },
    pager: { pagerdutyUrl: `${b.pd.url}/v2/enqueue` },
    guard: { dryRun: false, maxUnavailable: '50%', maxUnavailablePerGroup: '100%', targetCooldown: '20s' },
    engine: { replicas: 1 },
  };
  const valuesFile = path.join(dir, 'values.yaml');
  fs.writeFileSync(valuesFile, stringify(values));
  const t1 = Date.now();
  const r = await run(path.join(node.kube.binDir, 'helm'), ['install', 'nodewarden', path.join(repoRoot(), 'deploy', 'helm', 'nodewarden'), '-n', NAMESPACE, '--kubeconfig', node.kube.kubeconfigPath, '-f', valuesFile], {
    timeoutMs: 120_000,
  });
  if (r.code !== 0) throw new Error(`helm install failed: ${r.stderr.trim()}`);
  await waitBothPodsReady(node);
  return { readyMs: Date.now() - t1, importMs, archiveMiB };
}

/** What precedes either install: the image imported (no pull), the operator CRDs, the namespace and Secret. */
export async function prepareInstall(node: NodeCluster, b: Backends): Promise<{ image: { archive: string; ref: string }; importMs: number; archiveMiB: number }> {
  const image = await nodewardenImageArchive();
  const t0 = Date.now();
  await node.importImage(image.archive);
  const importMs = Date.now() - t0;
  await installCrds(node.kube);
  await createSecret(node.kube, b);
  return { image, importMs, archiveMiB: fs.statSync(image.archive).size / 1048576 };
}

export async function helmUninstall(node: NodeCluster): Promise<void> {
  await run(path.join(node.kube.binDir, 'helm'), ['uninstall', 'nodewarden', '-n', NAMESPACE, '--kubeconfig', node.kube.kubeconfigPath, '--wait', '--timeout', '120s'], { timeoutMs: 150_000 });
}

/** The agent's and engine's recent logs, for failure messages. */
export async function podLogs(node: NodeCluster, lines = 40): Promise<string> {
  const out: string[] = [];
  for (const name of ['nodewarden-agent', 'nodewarden-engine']) {
    const r = await node.kube.kubectl(['-n', NAMESPACE, 'logs', '-l', `app.kubernetes.io/name=${name}`, `--tail=${lines}`]);
    out.push(`--- ${name} ---\n${r.stdout}${r.stderr}`);
  }
  return out.join('\n');
}

/** `eventually`, with the pods' logs appended to the error. */
export async function eventuallyOnNode<T>(node: NodeCluster, what: string, timeoutMs: number, check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  try {
    return await eventually(what, timeoutMs, check);
  } catch (e) {
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${await podLogs(node)}`, { cause: e });
  }
}

/** The first ledger record matching `pred`, waiting for it: the engine writes the ledger after it acts. */
export async function ledgerRecord(node: NodeCluster, redisUrl: string, what: string, pred: (r: LedgerRecord) => boolean): Promise<LedgerRecord> {
  return ledgerRecordWithin(node, redisUrl, what, 30_000, pred);
}

/** `ledgerRecord` with its own timeout (a decision that follows a rule window). */
export async function ledgerRecordWithin(node: NodeCluster, redisUrl: string, what: string, timeoutMs: number, pred: (r: LedgerRecord) => boolean): Promise<LedgerRecord> {
  return eventuallyOnNode(node, `ledger record: ${what}`, timeoutMs, async () => (await readLedger(redisUrl)).find(pred));
}

/** The engine pod's IP on the node's bridge (reachable from the test): its control API listens on the `http` port. */
export async function enginePodIp(node: NodeCluster): Promise<string> {
  const r = await node.kube.kubectl(['-n', NAMESPACE, 'get', 'pods', '-l', 'app.kubernetes.io/name=nodewarden-engine', '-o', 'jsonpath={.items[0].status.podIP}']);
  const ip = r.stdout.trim();
  if (ip === '') throw new Error(`no engine pod IP: ${r.stderr.trim()}`);
  return ip;
}

/**
 * The first `kubeproxy.health` signal the agent pod of `nodeName` published
 * with `healthy: true` (HTTP 200 from kube-proxy's /healthz at the agent's
 * default URL), read from the signals topic; throws with the unhealthy ones
 * seen (e.g. ECONNREFUSED from a pod's own network namespace) after timeoutMs.
 */
export async function kubeProxyHealthFromAgent(node: NodeCluster, b: Backends, timeoutMs = 60_000): Promise<EventEnvelope> {
  const kafka = new kafkajs.Kafka({ clientId: 'nw-node-test-signals', brokers: b.kafka.brokers, logLevel: kafkajs.logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `nw-node-test-kubeproxy-${Date.now()}`, maxWaitTimeInMs: 200 });
  const seen: EventEnvelope[] = [];
  let found: EventEnvelope | undefined;
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: 'nodewarden.signals', fromBeginning: true });
    await consumer.run({
      eachMessage: ({ message }) => {
        try {
          const e = decodeEnvelope(message.value?.toString('utf8') ?? '');
          if (e.type !== 'kubeproxy.health' || e.node !== node.nodeName) return Promise.resolve();
          seen.push(e);
          if (e.data['healthy'] === true && e.data['statusCode'] === 200) found ??= e;
        } catch {
          // not an envelope: not ours to judge here
        }
        return Promise.resolve();
      },
    });
    return await eventuallyOnNode(node, `a healthy kubeproxy.health signal from the agent pod on ${node.nodeName}`, timeoutMs, () => {
      if (found !== undefined) return found;
      const last = seen.at(-1);
      if (last !== undefined) throw new Error(`last kubeproxy.health: ${JSON.stringify(last.data)}`);
      return undefined;
    });
  } finally {
    await consumer.disconnect();
  }
}
