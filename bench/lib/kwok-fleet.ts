/**
 * A GPU fleet of KWOK Nodes on a real kube-apiserver + etcd (test/harness/kube.ts
 * with the node lifecycle controller on, test/harness/kwok.ts keeping the Nodes
 * Ready), the real engine (`nodewarden engine`, live API as its own
 * ServiceAccount, real Kafka and Redis), and the measurements of issue 13:
 * start-up to /readyz and RSS with the full node informer, a Xid storm's cordon
 * latency and guard outcome, apiserver requests by verb/resource (the
 * apiserver's own apiserver_request_total, and the audit log for the engine's
 * user alone), memory over a soak. Shared by test/integration/kwok-fleet.test.ts
 * (2,000 nodes) and bench/kwok-fleet.ts (10,000).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { fleetObjects } from '../../demo/fleet.js';
import type { FleetNode } from '../../demo/fleet.js';
import type { LedgerRecord } from '../../core/decision.js';
import { isAudit } from '../../remediations/ledger/entry.js';
import { RedisStreamLedger } from '../../remediations/ledger/redis-stream-ledger.js';
import type { KafkaBroker } from '../../test/harness/kafka.js';
import { run, startKube } from '../../test/harness/kube.js';
import type { KubeCluster } from '../../test/harness/kube.js';
import { KWOK_ANNOTATION, kwokKubeOptions, startKwok } from '../../test/harness/kwok.js';
import type { KwokProcess } from '../../test/harness/kwok.js';
import { benchFleet, GROUP_LABEL } from './fleet-traffic.js';
import { createTopics, produceAll, ROOT, spawnEngine } from './kafka-bench.js';
import type { EngineChild } from './kafka-bench.js';
import { quantile } from './stats.js';

export const ENGINE_USER = 'system:serviceaccount:nodewarden:nodewarden-engine';

// ---------------------------------------------------------------------------
// apiserver client (keep-alive, admin token)
// ---------------------------------------------------------------------------

export interface ApiClient {
  request(method: string, path: string, body?: unknown): Promise<{ status: number; text: string }>;
  close(): void;
}

export function apiClient(kube: KubeCluster, maxSockets = 8): ApiClient {
  const agent = new https.Agent({ keepAlive: true, maxSockets, rejectUnauthorized: false });
  const base = new URL(kube.server);
  return {
    request(method, path, body) {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      return new Promise((resolve, reject) => {
        const req = https.request(
          { host: base.hostname, port: base.port, path, method, agent, timeout: 60_000, headers: { Authorization: `Bearer ${kube.adminToken}`, Accept: 'application/json', ...(payload ? { 'Content-Type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json' } : {}) } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
            res.on('error', reject);
          },
        );
        req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
        req.on('error', reject);
        req.end(payload);
      });
    },
    close: () => agent.destroy(),
  };
}

// ---------------------------------------------------------------------------
// the cluster: control plane with audit log, KWOK, N GPU Nodes
// ---------------------------------------------------------------------------

export interface KwokCluster {
  kube: KubeCluster;
  kwok: KwokProcess;
  api: ApiClient;
  auditLog: string;
  fleet: FleetNode[];
  /** Kubeconfig of the engine's ServiceAccount (deploy/base/rbac-engine.yaml). */
  engineKubeconfig: string;
  /** Seconds from the first Node POST until every Node was Ready. */
  fleetReadySeconds: number;
  stop(): Promise<void>;
}

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    users: ["${ENGINE_USER}"]
  - level: None
`;

function nodeBody(o: Record<string, unknown>): Record<string, unknown> {
  const meta = o['metadata'] as { name: string; labels: Record<string, string> };
  const status = o['status'] as { capacity?: Record<string, string> };
  const capacity = { cpu: '192', memory: '2Ti', pods: '110', ...status.capacity };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: meta.name, labels: { ...meta.labels, 'type': 'kwok' }, annotations: { [KWOK_ANNOTATION]: 'fake' } },
    spec: o['spec'],
    status: { capacity, allocatable: capacity },
  };
}

async function pool<T>(items: readonly T[], concurrency: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/** Counts Ready Nodes (paged LIST as admin; used only outside measured windows). */
export async function countNodes(api: ApiClient): Promise<{ total: number; ready: number; unschedulable: string[]; tainted: string[] }> {
  let cont = '';
  const out = { total: 0, ready: 0, unschedulable: [] as string[], tainted: [] as string[] };
  do {
    const r = await api.request('GET', `/api/v1/nodes?limit=1000${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`);
    if (r.status !== 200) throw new Error(`list nodes: HTTP ${r.status} ${r.text.slice(0, 200)}`);
    const body = JSON.parse(r.text) as { items: Array<{ metadata: { name: string }; spec?: { unschedulable?: boolean; taints?: Array<{ key: string }> }; status?: { conditions?: Array<{ type: string; status: string }> } }>; metadata: { continue?: string } };
    for (const n of body.items) {
      out.total++;
      if (n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) out.ready++;
      if (n.spec?.unschedulable === true) out.unschedulable.push(n.metadata.name);
      if (n.spec?.taints?.some((t) => t.key.startsWith('nodewarden.io/'))) out.tainted.push(n.metadata.name);
    }
    cont = body.metadata.continue ?? '';
  } while (cont);
  return out;
}

export async function startKwokCluster(nodes: number, log: (s: string) => void = () => {}): Promise<KwokCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'nw-kwok-'));
  const policy = join(dir, 'audit-policy.yaml');
  const auditLog = join(dir, 'audit.log');
  writeFileSync(policy, AUDIT_POLICY);
  const base = kwokKubeOptions();
  const kube = await startKube({ ...base, apiserverArgs: [`--audit-policy-file=${policy}`, `--audit-log-path=${auditLog}`, '--audit-log-format=json', '--audit-log-maxsize=0'] });
  let kwok: KwokProcess | undefined;
  const api = apiClient(kube, 16);
  try {
    kwok = await startKwok(kube);
    for (const f of ['deploy/base/namespace.yaml', 'deploy/base/rbac-engine.yaml']) {
      const r = await kube.kubectl(['apply', '-f', join(ROOT, f)]);
      if (r.code !== 0) throw new Error(`kubectl apply ${f}: ${r.stderr}`);
    }
    const engineKubeconfig = await kube.kubeconfigFor(await kube.tokenFor('nodewarden', 'nodewarden-engine', 24 * 3600));
    const fleet = benchFleet(nodes);
    const objects = ((fleetObjects(fleet, { now: Date.now(), groupLabel: GROUP_LABEL, driverRevisions: 3 }) as { items: unknown[] }).items as Array<Record<string, unknown>>).filter((o) => (o as { kind?: string }).kind === 'Node');
    const t0 = Date.now();
    await pool(objects, 16, async (o) => {
      const r = await api.request('POST', '/api/v1/nodes', nodeBody(o));
      if (r.status !== 201) throw new Error(`create node: HTTP ${r.status} ${r.text.slice(0, 200)}`);
    });
    log(`created ${objects.length} Nodes in ${((Date.now() - t0) / 1000).toFixed(1)} s; waiting for KWOK to make them Ready`);
    for (;;) {
      const c = await countNodes(api);
      if (c.ready >= nodes) break;
      if (Date.now() - t0 > Math.max(180_000, nodes * 120)) throw new Error(`only ${c.ready}/${nodes} Nodes Ready after ${Date.now() - t0} ms; kwok log:\n${readFileSync(kwok.logPath, 'utf8').slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 2000));
    }
    const fleetReadySeconds = (Date.now() - t0) / 1000;
    log(`${nodes} Nodes Ready ${fleetReadySeconds.toFixed(1)} s after the first POST`);
    const k = kwok;
    return {
      kube,
      kwok,
      api,
      auditLog,
      fleet,
      engineKubeconfig,
      fleetReadySeconds,
      async stop() {
        api.close();
        await k.stop();
        await kube.stop();
      },
    };
  } catch (err) {
    api.close();
    await kwok?.stop();
    await kube.stop();
    throw err;
  }
}

// ---------------------------------------------------------------------------
// request counts
// ---------------------------------------------------------------------------

export type RequestCounts = Map<string, number>;

/** apiserver_request_total summed by "VERB resource[/subresource]" (all clients). */
export async function apiserverRequests(api: ApiClient): Promise<RequestCounts> {
  const r = await api.request('GET', '/metrics');
  if (r.status !== 200) throw new Error(`apiserver /metrics: HTTP ${r.status}`);
  const out: RequestCounts = new Map();
  for (const line of r.text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels: Record<string, string> = {};
    for (const m of line.matchAll(/(\w+)="([^"]*)"/g)) labels[m[1] as string] = m[2] as string;
    const key = `${labels['verb'] ?? '?'} ${labels['resource'] ?? '?'}${labels['subresource'] ? `/${labels['subresource']}` : ''}`;
    out.set(key, (out.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

export function diffCounts(before: RequestCounts, after: RequestCounts): RequestCounts {
  const out: RequestCounts = new Map();
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d > 0) out.set(k, d);
  }
  return out;
}

/** Requests by the engine's user in the audit log between two times: "VERB resource[/sub]" → count (one per request; Kubernetes verbs in capitals: GET, LIST, WATCH, PATCH, CREATE). */
export function engineRequests(auditLog: string, fromMs: number, toMs: number): RequestCounts {
  const out: RequestCounts = new Map();
  if (!existsSync(auditLog)) return out;
  const seen = new Set<string>();
  for (const line of readFileSync(auditLog, 'utf8').split('\n')) {
    if (!line.includes(ENGINE_USER)) continue;
    const e = JSON.parse(line) as { auditID: string; verb: string; user?: { username?: string }; objectRef?: { resource?: string; subresource?: string }; requestReceivedTimestamp: string };
    if (e.user?.username !== ENGINE_USER || seen.has(e.auditID)) continue;
    const t = Date.parse(e.requestReceivedTimestamp);
    if (t < fromMs || t > toMs) continue;
    seen.add(e.auditID);
    const key = `${e.verb.toUpperCase()} ${e.objectRef?.resource ?? '?'}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''}`;
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

export function formatCounts(c: RequestCounts): string {
  return [...c].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(', ') || '(none)';
}

export function sumWhere(c: RequestCounts, pred: (key: string) => boolean): number {
  let n = 0;
  for (const [k, v] of c) if (pred(k)) n += v;
  return n;
}

// ---------------------------------------------------------------------------
// the engine against the fleet
// ---------------------------------------------------------------------------

export interface FleetEngine {
  engine: EngineChild;
  redis: Redis;
  keyPrefix: string;
  topics: { signals: string; deadLetter: string; ledger: string };
  /** ms from spawn to /readyz 200 (the initial paged LIST of every Node done). */
  startMs: number;
  controlToken: string;
  stop(): Promise<void>;
}

export interface FleetEngineOptions {
  cluster: KwokCluster;
  kafka: KafkaBroker;
  redisUrl: string;
  /** guard.maxUnavailable (a count of nodes). */
  maxUnavailable: number;
  tag: string;
  /** guard.actionConcurrency (default: the config's, 8). */
  actionConcurrency?: number;
}

export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * A full GC in the engine through its inspector (the engine runs with
 * `--inspect=127.0.0.1:0`), then its heap used, MiB: what the process retains.
 * A helper `node --experimental-websocket` speaks the DevTools protocol
 * (HeapProfiler.collectGarbage, then process.memoryUsage()).
 */
const GC_CLIENT = `const ws = new WebSocket(process.argv[1]); let id = 0;
const send = (method, params = {}) => new Promise((res) => { const i = ++id; const h = (ev) => { const m = JSON.parse(ev.data); if (m.id === i) { ws.removeEventListener('message', h); res(m); } }; ws.addEventListener('message', h); ws.send(JSON.stringify({ id: i, method, params })); });
ws.onopen = async () => { await send('HeapProfiler.collectGarbage'); const r = await send('Runtime.evaluate', { expression: 'process.memoryUsage().heapUsed', returnByValue: true }); console.log(r.result.result.value); ws.close(); process.exit(0); };
ws.onerror = () => { console.error('cannot reach the inspector at ' + process.argv[1]); process.exit(1); };`;

export async function heapAfterFullGc(fe: FleetEngine): Promise<number> {
  const url = /Debugger listening on (ws:\/\/\S+)/.exec(fe.engine.log())?.[1];
  if (url === undefined) throw new Error('the engine has no inspector (start it with --inspect=127.0.0.1:0)');
  const r = await run(process.execPath, ['--experimental-websocket', '-e', GC_CLIENT, url], { timeoutMs: 30_000 });
  const bytes = Number(r.stdout.trim());
  if (r.code !== 0 || !Number.isFinite(bytes)) throw new Error(`forced GC failed (${r.code}): ${r.stderr.trim().slice(0, 300)}`);
  return bytes / 2 ** 20;
}

export async function startFleetEngine(o: FleetEngineOptions): Promise<FleetEngine> {
  const s = `${o.tag}-${process.pid}-${Date.now().toString(36)}`;
  const topics = { signals: `sig-${s}`, deadLetter: `dlq-${s}`, ledger: `ledger-${s}` };
  await createTopics(o.kafka, [topics.signals, topics.deadLetter, topics.ledger], 6);
  const keyPrefix = `nw${s}:`;
  const dir = mkdtempSync(join(tmpdir(), 'nw-kwok-engine-'));
  const controlToken = `kwok-admin-${randomBytes(12).toString('hex')}`;
  const tokensFile = join(dir, 'tokens');
  writeFileSync(tokensFile, `${controlToken} admin bench\n`, { mode: 0o600 });
  const t0 = Date.now();
  const engine = await spawnEngine({
    brokers: o.kafka.brokers,
    redisUrl: o.redisUrl,
    keyPrefix,
    groupId: `engine-${s}`,
    topics,
    kubeconfig: o.cluster.engineKubeconfig,
    readyTimeoutMs: 180_000,
    extraConfig: {
      control: { tokensFile },
      guard: {
        maxUnavailable: String(o.maxUnavailable),
        maxUnavailablePerGroup: '100%',
        ...(o.actionConcurrency !== undefined ? { actionConcurrency: o.actionConcurrency } : {}),
        rateLimits: { cordon: { count: 100_000, per: '10m' }, uncordon: { count: 10, per: '10m' }, rollback: { count: 1, per: '1h' }, page: { count: 100_000, per: '1m' } },
      },
    },
    args: ['--session-timeout', '10s'],
    // 'batch phases' / 'submit phases' (where a storm's time goes: stormPhases)
    logLevel: 'debug',
    // for heapAfterFullGc (loopback only)
    nodeArgs: ['--inspect=127.0.0.1:0'],
  });
  const startMs = Date.now() - t0;
  const redis = new Redis(o.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 3 });
  return {
    engine,
    redis,
    keyPrefix,
    topics,
    startMs,
    controlToken,
    async stop() {
      await engine.kill('SIGTERM');
      redis.disconnect();
    },
  };
}

/** The engine's decision records, through its ledger store (the Redis stream; operator audits left out). */
export async function readLedger(fe: FleetEngine): Promise<LedgerRecord[]> {
  const entries = await new RedisStreamLedger({ redis: fe.redis, keyPrefix: fe.keyPrefix }).query({ limit: 100_000 });
  return entries.filter((e): e is LedgerRecord => !isAudit(e));
}

export function xidEvent(n: FleetNode, ts: number, seq: number): { key: string; value: string } {
  const pci = n.gpus[0]?.pci ?? '0000:18:00';
  return {
    key: n.name,
    value: JSON.stringify({ v: 1, id: `storm-${n.name}-${ts}-${seq}`, ts: new Date(ts).toISOString(), node: n.name, type: 'gpu.xid', source: 'kmsg', labels: { pool: n.pool, zone: n.zone }, data: { code: 79, pci, message: 'GPU has fallen off the bus.' } }),
  };
}

export function heartbeatEvent(n: FleetNode, ts: number, seq: number): { key: string; value: string } {
  return { key: n.name, value: JSON.stringify({ v: 1, id: `hb-${n.name}-${ts}-${seq}`, ts: new Date(ts).toISOString(), node: n.name, type: 'agent.heartbeat', source: 'agent', labels: { pool: n.pool, zone: n.zone }, data: { version: '0.1.0' } }) };
}

export interface StormResult {
  stormNodes: number;
  maxUnavailable: number;
  /** Cordons the ledger says were executed / denied (and by which guard). */
  executed: number;
  denied: number;
  deniedBy: Record<string, number>;
  /** Nodes the cluster shows unschedulable / with the nodewarden taint after the storm. */
  unschedulable: number;
  tainted: number;
  /** Event publish → Node seen unschedulable+tainted through a watch, ms, over the executed cordons. */
  latencyMs: number[];
  p50: number;
  p99: number;
  /** Seconds from the first event to the last cordon decision in the ledger. */
  drainSeconds: number;
  /** apiserver_request_total deltas over the storm (all clients) and the engine's own requests (audit). */
  allRequests: RequestCounts;
  engineRequests: RequestCounts;
  /** Engine requests per cordon decision (executed + denied). */
  engineRequestsPerDecision: number;
  engineListsDuringStorm: number;
  /** Where the storm's time went in the engine: its debug 'batch phases' / 'submit phases' lines, summed. */
  phases: StormPhases;
  /** Redis commands (INFO commandstats, every client) over the storm, per cordon decision: "cmd" → calls. */
  redisCallsPerDecision: Record<string, number>;
  incidents: Array<{ dedupKey?: string; members?: unknown[] }>;
}

interface WatchedNode {
  unschedulable: boolean;
  tainted: boolean;
}

/** A raw watch on Nodes (from `rv`): calls `on` for each MODIFIED object. */
function watchNodes(cluster: KwokCluster, rv: string, on: (name: string, n: WatchedNode) => void): { stop(): void } {
  const base = new URL(cluster.kube.server);
  const req = https.request({ host: base.hostname, port: base.port, path: `/api/v1/nodes?watch=1&resourceVersion=${rv}&allowWatchBookmarks=false`, method: 'GET', rejectUnauthorized: false, headers: { Authorization: `Bearer ${cluster.kube.adminToken}` } }, (res) => {
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line.trim()) continue;
        const ev = JSON.parse(line) as { type: string; object: { metadata: { name: string }; spec?: { unschedulable?: boolean; taints?: Array<{ key: string }> } } };
        if (ev.type !== 'MODIFIED' && ev.type !== 'ADDED') continue;
        on(ev.object.metadata.name, { unschedulable: ev.object.spec?.unschedulable === true, tainted: ev.object.spec?.taints?.some((t) => t.key.startsWith('nodewarden.io/')) === true });
      }
    });
    res.on('error', () => {});
  });
  req.on('error', () => {});
  req.end();
  return { stop: () => req.destroy() };
}

export interface StormPhases {
  batches: number;
  /** ms from the first batch with a decision to the end of the last one. */
  spanMs: number;
  /** Summed over the storm's batches, ms: dedupe claim, evaluation, submit, ledger topic append, the rest. */
  batch: Record<string, number>;
  /** Summed over the storm's submits: step → {calls, ms} (concurrent steps overlap). */
  submit: Record<string, { calls: number; ms: number }>;
  /**
   * Each batch with decisions, in the order they ended, ms after `fromMs` (the storm's publish): when it was
   * handed over (start), its turn in the serial queue came (queued), evaluated, submitted and done; and its
   * submit's steps (hoisted: the concurrent cordons; inOrder: pages; commit: ledger + settles).
   */
  timeline: Array<{ decisions: number; start: number; queued: number; evaluated: number; begun: number; submitted: number; done: number; steps: Record<string, number> }>;
}

/** Sums the engine's debug 'batch phases' and 'submit phases' lines logged at or after `fromMs`. */
export function stormPhases(log: string, fromMs: number): StormPhases {
  const out: StormPhases = { batches: 0, spanMs: 0, batch: {}, submit: {}, timeline: [] };
  // a batch's submit logs its 'submit phases' line just before the batch's own line (batches are serial)
  let lastSubmit: Record<string, number> = {};
  let first = Infinity;
  let last = 0;
  for (const line of log.split('\n')) {
    if (!line.startsWith('{') || !line.includes('phases"')) continue;
    let r: { msg?: string; time?: string; phases?: Record<string, { calls: number; ms: number }> } & Record<string, unknown>;
    try {
      r = JSON.parse(line) as typeof r;
    } catch {
      continue;
    }
    const t = Date.parse(r.time ?? '');
    if (!(t >= fromMs)) continue;
    if (r.msg === 'batch phases') {
      out.batches++;
      const done = Number(r.done);
      first = Math.min(first, t - done);
      last = Math.max(last, t);
      const claimed = Number(r.claimed);
      const evaluated = Number(r.evaluated);
      const submitted = Number(r.submitted);
      const appended = Number(r.appended);
      // engines before the 'queued' mark count the wait for the queue as evaluation
      const queued = Number.isFinite(Number(r.queued)) ? Number(r.queued) : claimed;
      const add = (k: string, v: number): void => void (out.batch[k] = (out.batch[k] ?? 0) + (Number.isFinite(v) ? v : 0));
      add('decode+claim', claimed);
      add('queueWait', queued - claimed);
      add('evaluate', evaluated - queued);
      add('submit', submitted - evaluated);
      add('ledgerTopic', appended - submitted);
      add('confirm+rest', done - appended);
      const start = t - done - fromMs;
      // begun (ADR 0050): the batch's cordons were over and the rest of its submit was left to the ordered completions
      const begun = Number(r.begun) > 0 ? start + Number(r.begun) : NaN;
      out.timeline.push({ decisions: Number(r.decisions), start, queued: start + queued, evaluated: start + evaluated, begun, submitted: start + submitted, done: t - fromMs, steps: lastSubmit });
      lastSubmit = {};
    } else if (r.msg === 'submit phases' && r.phases) {
      lastSubmit = Object.fromEntries(['hoisted', 'inOrder', 'commit'].map((k) => [k, r.phases?.[k]?.ms ?? 0]));
      for (const [k, v] of Object.entries(r.phases)) {
        const cur = out.submit[k] ?? { calls: 0, ms: 0 };
        cur.calls += v.calls;
        cur.ms += v.ms;
        out.submit[k] = cur;
      }
    }
  }
  out.spanMs = out.batches > 0 ? last - first : 0;
  return out;
}

async function redisCommandStats(redis: FleetEngine['redis']): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1] ?? '?', Number(m[2]));
  return out;
}

/** One Xid 79 on each of `stormNodes` nodes, published at once through Kafka; waits for every cordon decision. */
export async function runStorm(cluster: KwokCluster, fe: FleetEngine, kafka: KafkaBroker, stormNodes: number, maxUnavailable: number, timeoutMs = 120_000): Promise<StormResult> {
  const targets = cluster.fleet.filter((_, i) => i % Math.max(1, Math.floor(cluster.fleet.length / stormNodes)) === 0).slice(0, stormNodes);
  const rvRes = await cluster.api.request('GET', '/api/v1/nodes?limit=1');
  const rv = (JSON.parse(rvRes.text) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
  const seenAt = new Map<string, number>();
  const w = watchNodes(cluster, rv, (name, n) => {
    if (n.unschedulable && n.tainted && !seenAt.has(name)) seenAt.set(name, Date.now());
  });
  await new Promise((r) => setTimeout(r, 500));
  const before = await apiserverRequests(cluster.api);
  const redisBefore = await redisCommandStats(fe.redis);
  const t0 = Date.now();
  await produceAll(kafka.brokers, fe.topics.signals, targets.map((n, i) => xidEvent(n, t0, i)), 500, 2);
  const targetNames = new Set(targets.map((n) => n.name));
  let cordons: LedgerRecord[];
  for (;;) {
    cordons = (await readLedger(fe)).filter((r) => r.action === 'cordon' && targetNames.has(r.target.name));
    if (cordons.length >= stormNodes) break;
    if (Date.now() - t0 > timeoutMs) throw new Error(`storm: only ${cordons.length}/${stormNodes} cordon decisions after ${timeoutMs} ms\n${fe.engine.log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const lastDecision = Math.max(...cordons.map((r) => Date.parse(r.ts)));
  // let the watch catch up with the last patch
  await new Promise((r) => setTimeout(r, 1500));
  const tEnd = Date.now();
  const after = await apiserverRequests(cluster.api);
  const redisAfter = await redisCommandStats(fe.redis);
  w.stop();
  const executed = cordons.filter((r) => r.outcome === 'executed');
  const denied = cordons.filter((r) => r.outcome === 'denied');
  const deniedBy: Record<string, number> = {};
  for (const r of denied) deniedBy[r.guard ?? '?'] = (deniedBy[r.guard ?? '?'] ?? 0) + 1;
  const latencyMs = executed.map((r) => (seenAt.get(r.target.name) ?? NaN) - t0).sort((a, b) => a - b);
  const nodes = await countNodes(cluster.api);
  const eng = engineRequests(cluster.auditLog, t0 - 200, tEnd);
  const inc = await fetch(`${fe.engine.url}/api/v1/incidents`, { headers: { Authorization: `Bearer ${fe.controlToken}` } });
  const incidents = inc.status === 200 ? ((await inc.json()) as { incidents: StormResult['incidents'] }).incidents : [];
  return {
    stormNodes,
    maxUnavailable,
    executed: executed.length,
    denied: denied.length,
    deniedBy,
    unschedulable: nodes.unschedulable.length,
    tainted: nodes.tainted.length,
    latencyMs,
    p50: quantile(latencyMs, 0.5),
    p99: quantile(latencyMs, 0.99),
    drainSeconds: (lastDecision - t0) / 1000,
    allRequests: diffCounts(before, after),
    engineRequests: eng,
    engineRequestsPerDecision: sumWhere(eng, () => true) / cordons.length,
    engineListsDuringStorm: sumWhere(eng, (k) => k.startsWith('LIST ')),
    phases: stormPhases(fe.engine.log(), t0),
    redisCallsPerDecision: Object.fromEntries(
      [...redisAfter].map(([k, v]): [string, number] => [k, Math.round((100 * (v - (redisBefore.get(k) ?? 0))) / cordons.length) / 100]).filter(([, v]) => v > 0),
    ),
    incidents,
  };
}

export interface SoakResult {
  seconds: number;
  events: number;
  /** [seconds since start, heap used MiB, RSS MiB], one a second. */
  samples: Array<[number, number, number]>;
  /** Lowest heap used (MiB) in each quarter of the run: the post-GC floors, what is actually retained. */
  heapFloorsMiB: number[];
  /** Floor of the last quarter minus the floor of the second (the first is warm-up), MiB. */
  heapFloorGrowthMiB: number;
  /** [seconds, heap used MiB] right after a full GC forced through the engine's inspector, every 10 s: what is retained. */
  afterFullGcMiB: Array<[number, number]>;
  /** Retained heap at the end minus at 10 s (after warm-up), MiB. */
  retainedGrowthMiB: number;
  rssFirstMiB: number;
  rssLastMiB: number;
  churnedNodes: number;
  /** Nodes in the engine's view (guard fleet total) at the end. */
  viewNodesAtEnd: number;
}

async function guardFleetTotal(fe: FleetEngine): Promise<number> {
  const r = await fetch(`${fe.engine.url}/api/v1/guard`, { headers: { Authorization: `Bearer ${fe.controlToken}` } });
  return ((await r.json()) as { fleet?: { total?: number } }).fleet?.total ?? NaN;
}

/**
 * Heartbeats from every node at `eventsPerSecond` total for `seconds`, plus node
 * churn (a batch of fresh Nodes created and the previous batch deleted every
 * 5 s: new names each time, as an autoscaled fleet has), sampling the engine's
 * heap and RSS every second.
 */
export async function runSoak(cluster: KwokCluster, fe: FleetEngine, kafka: KafkaBroker, seconds: number, eventsPerSecond: number, churnPerRound = 50): Promise<SoakResult> {
  const heapOf = async (): Promise<number> => (await fe.engine.metric('nodewarden_nodejs_heap_size_used_bytes')) / 2 ** 20;
  const t0 = Date.now();
  const samples: Array<[number, number, number]> = [];
  const afterFullGcMiB: Array<[number, number]> = [];
  let nextGc = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const heap = await heapOf();
      samples.push([(Date.now() - t0) / 1000, heap, rssMiB(fe.engine.pid)]);
      if (Date.now() - t0 >= nextGc) {
        afterFullGcMiB.push([(Date.now() - t0) / 1000, await heapAfterFullGc(fe)]);
        nextGc += 10_000;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  let events = 0;
  let seq = 0;
  let churned = 0;
  let round = 0;
  const churnName = (r: number, i: number): string => `churn-${r}-${i}`;
  const deleteRound = (r: number): Promise<void> =>
    pool(Array.from({ length: churnPerRound }, (_, i) => churnName(r, i)), 8, async (name) => {
      await cluster.api.request('DELETE', `/api/v1/nodes/${name}`);
    });
  while (Date.now() - t0 < seconds * 1000) {
    const roundStart = Date.now();
    const batch: Array<{ key: string; value: string }> = [];
    for (let i = 0; i < eventsPerSecond * 5; i++) batch.push(heartbeatEvent(cluster.fleet[(seq + i) % cluster.fleet.length] as FleetNode, Date.now(), seq + i));
    seq += batch.length;
    await produceAll(kafka.brokers, fe.topics.signals, batch, 1000, 2);
    events += batch.length;
    await pool(Array.from({ length: churnPerRound }, (_, i) => churnName(round, i)), 8, async (name) => {
      const r = await cluster.api.request('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { [GROUP_LABEL]: 'churn' }, annotations: { [KWOK_ANNOTATION]: 'fake' } } });
      if (r.status !== 201) throw new Error(`create ${name}: HTTP ${r.status}`);
    });
    if (round > 0) await deleteRound(round - 1);
    churned += churnPerRound;
    round++;
    const wait = 5000 - (Date.now() - roundStart);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  sampling = false;
  await sampler;
  await deleteRound(round - 1);
  const end = (Date.now() - t0) / 1000;
  const quarter = (q: number): number[] => samples.filter(([t]) => t >= (end * q) / 4 && t < (end * (q + 1)) / 4).map(([, h]) => h);
  const heapFloorsMiB = [0, 1, 2, 3].map((q) => Math.min(...quarter(q)));
  let viewNodesAtEnd = NaN;
  for (let i = 0; i < 20; i++) {
    viewNodesAtEnd = await guardFleetTotal(fe);
    if (viewNodesAtEnd === cluster.fleet.length) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  return {
    seconds: end,
    events,
    samples,
    heapFloorsMiB,
    heapFloorGrowthMiB: (heapFloorsMiB[3] ?? NaN) - (heapFloorsMiB[1] ?? NaN),
    afterFullGcMiB,
    retainedGrowthMiB: (afterFullGcMiB[afterFullGcMiB.length - 1]?.[1] ?? NaN) - (afterFullGcMiB[1]?.[1] ?? NaN),
    rssFirstMiB: samples[0]?.[2] ?? NaN,
    rssLastMiB: samples[samples.length - 1]?.[2] ?? NaN,
    churnedNodes: churned,
    viewNodesAtEnd,
  };
}
