/**
 * Kubernetes API faults against a REAL kube-apiserver (+ etcd) behind the
 * fault-injecting proxy (test/harness/fault-proxy.ts): the remediator with
 * the real Kubernetes executor writes through the proxy, the guard's cluster
 * view watches the apiserver directly.
 *
 *  - 500s then healed: the cordons fail, the breaker opens, the failed
 *    actions are retried with back-off, the breaker half-opens by itself and
 *    every node ends cordoned, each by exactly one PATCH that reached the apiserver;
 *  - a hung call (timeout) and a dropped answer after the write landed: retried,
 *    never written twice;
 *  - 409: re-read and written once; slowness within the timeout: fine;
 *  - 403: final at once (no retry storm), paged as "could not be carried out".
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { systemClock } from '../../core/clock.js';
import { DEFAULT_CONFIG } from '../../core/config.js';
import type { Decision } from '../../core/decision.js';
import { silentLogger } from '../../core/logger.js';
import { createRegistry } from '../../adapters/metrics.js';
import { createMemoryGuard } from '../../remediations/guard/memory-guard.js';
import { guardOptionsFromConfig } from '../../remediations/guard/policy.js';
import { createClientNodeKubeApi } from '../../remediations/kube/client-node-api.js';
import { createClientNodeListWatch } from '../../remediations/kube/client-node-watch.js';
import { createKubeExecutor } from '../../remediations/kube/executors.js';
import { createLiveCluster } from '../../remediations/kube/live-cluster.js';
import type { LiveCluster } from '../../remediations/kube/live-cluster.js';
import { MemoryLedger } from '../../remediations/ledger/memory-ledger.js';
import { createPagerExecutor } from '../../remediations/pager/pager-executor.js';
import { createRecordingPager } from '../../remediations/pager/recording-pager.js';
import { createRemediator } from '../../remediations/remediator.js';
import type { Remediator } from '../../remediations/ports.js';
import type { Executor } from '../../remediations/ports.js';
import { startFaultProxy } from '../harness/fault-proxy.js';
import type { FaultProxy } from '../harness/fault-proxy.js';
import type { KubeCluster } from '../harness/kube.js';
import { PassThrough } from 'node:stream';
import kafkajs from 'kafkajs';
import { createLogger } from '../../adapters/logger.js';
import { createRuleEngine } from '../../rules/engine/engine.js';
import { loadRules } from '../../rules/language/load.js';
import { BatchProcessor } from '../../rules/service/batch-processor.js';
import { MemoryDeadLetterSink } from '../../rules/service/dead-letter.js';
import { MemoryDeduper } from '../../rules/service/dedupe.js';
import { EngineService } from '../../rules/service/engine-service.js';
import { engineServiceMetrics } from '../../rules/service/metrics.js';
import { MemoryStateStore } from '../../rules/store/memory-store.js';
import { MemoryRuleToggles } from '../../rules/toggles/memory-toggles.js';
import { produce, RULES_FILE, uniqueTopics, xid } from './engine-support.js';
import { sharedKafka, sharedKube } from './servers.js';

const RUN = randomBytes(3).toString('hex');
const node = (i: number): string => `nw-fault-${RUN}-${i}`;

function figure(name: string, value: number | string): void {
  process.stdout.write(`      FAULT-FIGURE ${name}=${value}\n`);
}

async function until(what: string, fn: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (!(await fn())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return Date.now() - t0;
}

function cordonOf(name: string, rule = 'fault-test'): Decision {
  return { id: `fault:${name}`, at: Date.now(), rule, action: 'cordon', target: { kind: 'Node', name }, reason: `test cordon of ${name}`, severity: 'critical', group: { pool: 'h100-train' } };
}

describe('Kubernetes API faults (real apiserver behind a fault-injecting proxy)', function () {
  this.timeout(180_000);
  let kube: KubeCluster;
  let proxy: FaultProxy;
  let view: LiveCluster;
  let remediator: Remediator;
  let ledger: MemoryLedger;
  let guard: ReturnType<typeof createMemoryGuard>;
  let executors: Executor[];
  const pager = createRecordingPager();

  before(async () => {
    kube = await sharedKube();
    const nodes = Array.from({ length: 40 }, (_, i) => `apiVersion: v1\nkind: Node\nmetadata:\n  name: ${node(i)}\n  labels:\n    nodewarden.io/pool: h100-train\n    topology.kubernetes.io/zone: us-west-2a\n`).join('---\n');
    const r = await kube.kubectl(['apply', '-f', '-'], { input: nodes });
    if (r.code !== 0) throw new Error(`creating nodes: ${r.stderr}`);
    proxy = await startFaultProxy(kube.server);
    const direct = new KubeConfig();
    direct.loadFromFile(kube.kubeconfigPath);
    view = createLiveCluster({ source: createClientNodeListWatch(direct), logger: silentLogger });
    await view.start();
    const viaProxy = new KubeConfig();
    viaProxy.loadFromOptions({
      clusters: [{ name: 'proxy', server: proxy.url, skipTLSVerify: true }],
      users: [{ name: 'admin', token: kube.adminToken }],
      contexts: [{ name: 'proxy', cluster: 'proxy', user: 'admin' }],
      currentContext: 'proxy',
    });
    const options = guardOptionsFromConfig(DEFAULT_CONFIG, {
      maxUnavailable: '50%',
      maxUnavailablePerGroup: '50%',
      breaker: { failures: 3, windowMs: 30_000, openForMs: 2000 },
      rateLimits: {},
      targetCooldownMs: 0,
    });
    ledger = new MemoryLedger();
    guard = createMemoryGuard({ view, options, clock: systemClock });
    executors = [createKubeExecutor(createClientNodeKubeApi(viaProxy, { registry: createRegistry('faults') }), { clock: systemClock, logger: silentLogger, recordEvents: false }), createPagerExecutor({ pagers: [pager], logger: silentLogger })];
    remediator = createRemediator({
      guard,
      executors,
      ledger: [ledger],
      clock: systemClock,
      logger: silentLogger,
      actionTimeoutMs: 1500,
      denialWindowMs: 1000,
      actionRetry: { maxAttempts: 8, baseMs: 500, maxMs: 2000 },
    });
  });

  after(async () => {
    await remediator?.close().catch(() => undefined);
    view?.stop();
    await proxy?.close();
  });

  const unschedulable = (name: string): boolean => view.listNodes().find((n) => n.name === name)?.unschedulable === true;
  const patches = (name: string): number => proxy.forwarded('PATCH', new RegExp(`/api/v1/nodes/${name}(\\?|$)`));

  it('500s: cordons fail, the breaker opens and half-opens by itself, every node is cordoned once after the API heals', async () => {
    proxy.setRules([{ path: /\/api\/v1\/nodes\//, fault: { kind: 'status', code: 500 } }]);
    const names = [0, 1, 2, 3, 4].map(node);
    const recs = (await remediator.submit(names.map((n) => cordonOf(n)))).records;
    expect(recs.map((r) => r.outcome)).to.deep.equal(['failed', 'failed', 'failed', 'denied', 'denied']);
    expect(recs[3]!.guard).to.equal('circuitOpen');
    expect(remediator.pendingRetries).to.equal(5);
    await new Promise((r) => setTimeout(r, 1500));
    const healed = Date.now();
    proxy.setRules([]);
    const ms = await until('all five cordoned', () => names.every(unschedulable), 60_000);
    figure('kube_500_heal_to_all_cordoned_ms', Date.now() - healed);
    figure('kube_500_attempts_max', Math.max(...names.map((n) => ledger.records.filter((r) => r.target.name === n).length)));
    expect(ms).to.be.below(60_000);
    for (const n of names) expect(patches(n), `PATCHes of ${n} that reached the apiserver`).to.equal(1);
    for (const n of names) expect(ledger.records.filter((r) => r.target.name === n && r.outcome === 'executed')).to.have.length(1);
    expect(remediator.pendingRetries).to.equal(0);
  });

  it('a hung call times out and a dropped answer after the write landed: retried, each node written once', async () => {
    const hung = node(10);
    const dropped = node(11);
    proxy.setRules([
      { method: 'GET', path: new RegExp(`/api/v1/nodes/${hung}$`), fault: { kind: 'hang' }, times: 1 },
      { method: 'PATCH', path: new RegExp(`/api/v1/nodes/${dropped}`), fault: { kind: 'drop' }, times: 1 },
    ]);
    const t0 = Date.now();
    const recs = (await remediator.submit([cordonOf(hung), cordonOf(dropped)])).records;
    figure('kube_hang_submit_ms', Date.now() - t0);
    expect(Date.now() - t0, 'bounded by the action timeout').to.be.below(5000);
    expect(recs.map((r) => r.outcome)).to.deep.equal(['failed', 'failed']);
    await until('both cordoned', () => unschedulable(hung) && unschedulable(dropped), 30_000);
    await until('no retry pending', () => remediator.pendingRetries === 0, 30_000);
    expect(patches(hung)).to.equal(1);
    expect(patches(dropped), 'the dropped write landed once; the retry saw it done and did not write again').to.equal(1);
    expect(ledger.records.filter((r) => r.target.name === dropped && r.outcome === 'executed')).to.have.length(1);
  });

  it('409 is re-read and written once; slowness within the timeout is fine', async () => {
    const conflicted = node(20);
    const slow = node(21);
    proxy.setRules([
      { method: 'PATCH', path: new RegExp(`/api/v1/nodes/${conflicted}`), fault: { kind: 'status', code: 409 }, times: 2 },
      { path: new RegExp(`/api/v1/nodes/${slow}`), fault: { kind: 'delay', ms: 400 } },
    ]);
    const recs = (await remediator.submit([cordonOf(conflicted), cordonOf(slow)])).records;
    expect(recs.map((r) => r.outcome)).to.deep.equal(['executed', 'executed']);
    await until('both cordoned', () => unschedulable(conflicted) && unschedulable(slow), 15_000);
    expect(patches(conflicted)).to.equal(1);
    expect(patches(slow)).to.equal(1);
  });

  it('a slow API call (2.5x the session timeout): the replica stays in the group and readiness reports the stall while it runs', async () => {
    const broker = await sharedKafka();
    const topics = uniqueTopics('fault-hang');
    await broker.createTopics([topics.signals], 2);
    const lines: string[] = [];
    const out = new PassThrough();
    out.on('data', (b: Buffer) => lines.push(...b.toString('utf8').split('\n').filter((l) => l.length > 0)));
    const logger = createLogger({ component: 'engine', level: 'info', destination: out });
    const clock = systemClock;
    const registry = createRegistry('engine-hang');
    const metrics = engineServiceMetrics(registry);
    const engine = createRuleEngine({ rules: loadRules(RULES_FILE), store: new MemoryStateStore(), cluster: view, toggles: new MemoryRuleToggles(clock), clock, logger, config: DEFAULT_CONFIG });
    // production action timeout (30 s): one call may outlast the session timeout several times
    const slowRemediator = createRemediator({ guard, executors, ledger: [new MemoryLedger()], clock, logger, autoFlush: false });
    const processor = new BatchProcessor({ engine, remediator: slowRemediator, deduper: new MemoryDeduper(clock, { windowMs: 600_000, claimTtlMs: 1500 }), deadLetters: new MemoryDeadLetterSink(), metrics, clock, logger });
    const kafka = new kafkajs.Kafka({ clientId: 'fault-hang', brokers: broker.brokers, logLevel: kafkajs.logLevel.NOTHING });
    const service = new EngineService({ kafka, groupId: `fault-hang-${RUN}`, topic: topics.signals, processor, metrics, clock, logger, tickMs: 0, sessionTimeoutMs: 6000, stallMs: 8000 });
    const slowNode = node(35);
    try {
      await service.start();
      await until('joined', () => service.ready, 60_000).catch((err: unknown) => {
        throw new Error(`${String(err)}: ${service.status.problem ?? ''}\n${lines.slice(-10).join('\n')}`);
      });
      // the cordon's PATCH takes 15 s: 2.5 session timeouts, well within the 30 s action timeout
      proxy.setRules([{ method: 'PATCH', path: new RegExp(`/api/v1/nodes/${slowNode}`), fault: { kind: 'delay', ms: 15_000 } }]);
      const t0 = Date.now();
      await produce(broker.brokers, topics.signals, [{ key: slowNode, value: xid(slowNode, 79) }]);
      let sawStall = false;
      await until('the slow cordon', () => {
        if (service.status.problem?.startsWith('consumer stalled')) sawStall = true;
        return unschedulable(slowNode);
      }, 60_000).catch((err: unknown) => {
        throw new Error(`${String(err)}: ${service.status.problem ?? ''}\n${lines.slice(-12).join('\n')}`);
      });
      figure('kube_slow_action_batch_ms', Date.now() - t0);
      await until('ready again', () => service.ready, 30_000);
      expect(lines.filter((l) => l.includes('joined consumer group')), 'never evicted: one join only').to.have.length(1);
      expect(lines.filter((l) => l.includes('consumer crashed'))).to.have.length(0);
      expect(sawStall, 'readiness reports the stalled batch while it runs').to.equal(true);
    } finally {
      proxy.setRules([]);
      await service.stop();
    }
  });

  it('403 is final at once: no retry, one page saying the action could not be carried out', async () => {
    const forbidden = node(30);
    proxy.setRules([{ method: 'PATCH', path: new RegExp(`/api/v1/nodes/${forbidden}`), fault: { kind: 'status', code: 403 } }]);
    const before = pager.sent.length;
    const recs = (await remediator.submit([cordonOf(forbidden, 'fault-test-403')])).records;
    expect(recs[0]).to.include({ outcome: 'failed' });
    expect(remediator.pendingRetries).to.equal(0);
    await until('the could-not page', () => pager.sent.length > before, 15_000);
    const page = pager.sent[pager.sent.length - 1]!;
    expect(page.summary).to.contain(`could not be carried out: ${forbidden}`);
    expect(proxy.log.filter((l) => l.method === 'PATCH' && l.path.includes(forbidden))).to.have.length(1);
    expect(unschedulable(forbidden)).to.equal(false);
  });
});
