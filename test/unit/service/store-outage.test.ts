/**
 * A Redis outage at the batch level: the shared dedupe, state store and guard
 * all fail. Remediation must fail closed, pages must still go out (marked
 * degraded, once per event), the failure must show in the metrics, and the
 * batch must fail so it is redelivered once Redis is back (nothing lost).
 */
import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { EventEnvelope } from '../../../core/envelope.js';
import { NodewardenError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../adapters/metrics.js';
import { createMemoryGuard } from '../../../remediations/guard/memory-guard.js';
import { guardOptionsFromConfig } from '../../../remediations/guard/policy.js';
import { MemoryLedger } from '../../../remediations/ledger/memory-ledger.js';
import { createPagerExecutor } from '../../../remediations/pager/pager-executor.js';
import { createRecordingPager } from '../../../remediations/pager/recording-pager.js';
import type { ControllableGuard, ExecutionResult, GuardVerdict } from '../../../remediations/ports.js';
import type { Decision } from '../../../core/decision.js';
import { createRemediator } from '../../../remediations/remediator.js';
import { createRuleEngine } from '../../../rules/engine/engine.js';
import { defaultRulesPath, loadRules } from '../../../rules/language/load.js';
import { BatchProcessor } from '../../../rules/service/batch-processor.js';
import { MemoryDeadLetterSink } from '../../../rules/service/dead-letter.js';
import { MemoryDeduper } from '../../../rules/service/dedupe.js';
import { engineServiceMetrics } from '../../../rules/service/metrics.js';
import type { ClaimResult, EventDeduper, RawMessage } from '../../../rules/service/ports.js';
import { MemoryStateStore } from '../../../rules/store/memory-store.js';
import { MemoryRuleToggles } from '../../../rules/toggles/memory-toggles.js';
import { FakeCluster, FakeClusterExecutor } from '../remediations/fake-cluster.js';

const T0 = Date.parse('2026-11-21T10:00:00.000Z');
const RULES = loadRules(defaultRulesPath());
const down = (): NodewardenError => new NodewardenError('UNAVAILABLE', 'redis: connect ECONNREFUSED', { retriable: true });

/** Redis-backed pieces while `redisDown`: every call fails like ioredis does. */
class SwitchableDeduper implements EventDeduper {
  redisDown = false;
  constructor(private readonly inner: EventDeduper) {}
  claim(ids: readonly string[]): Promise<ClaimResult[]> {
    return this.redisDown ? Promise.reject(down()) : this.inner.claim(ids);
  }
  confirm(ids: readonly string[]): Promise<void> {
    return this.redisDown ? Promise.reject(down()) : this.inner.confirm(ids);
  }
  release(ids: readonly string[]): Promise<void> {
    return this.redisDown ? Promise.reject(down()) : this.inner.release(ids);
  }
}

function xid79(id: string, node: string): EventEnvelope {
  return { v: 1, id, ts: new Date(T0).toISOString(), node, type: 'gpu.xid', source: 'kmsg', labels: { pool: 'pool-a' }, data: { code: 79, pci: '0000:3b:00', message: 'GPU has fallen off the bus.' } };
}
let offset = 0;
const msg = (e: EventEnvelope): RawMessage => ({ topic: 'signals', partition: 0, offset: String(offset++), key: e.node, value: JSON.stringify(e) });

function setup(withDegraded: boolean) {
  const clock = new ManualClock(T0 + 5000);
  const cluster = FakeCluster.fleet(100);
  const exec = new FakeClusterExecutor(cluster);
  const pager = createRecordingPager();
  const ledger = new MemoryLedger();
  const deduper = new SwitchableDeduper(new MemoryDeduper(clock, { windowMs: 600_000, claimTtlMs: 5000 }));
  const memGuard = createMemoryGuard({ view: cluster, options: guardOptionsFromConfig(DEFAULT_CONFIG, { maxUnavailable: '10%' }), clock });
  const guard: ControllableGuard = {
    ...memGuard,
    authorize: (d: Decision): Promise<GuardVerdict> => (deduper.redisDown ? Promise.reject(down()) : memGuard.authorize(d)),
    settle: (d: Decision, v: GuardVerdict, r: ExecutionResult): Promise<void> => (deduper.redisDown ? Promise.reject(down()) : memGuard.settle(d, v, r)),
    peek: (ds: readonly Decision[]): Promise<Array<GuardVerdict | null>> => (deduper.redisDown ? Promise.reject(down()) : memGuard.peek(ds)),
  };
  const registry = createRegistry('engine');
  const metrics = engineServiceMetrics(registry);
  const remediator = createRemediator({ guard, executors: [exec, createPagerExecutor({ pagers: [pager], logger: silentLogger })], ledger: [ledger], clock, logger: silentLogger, autoFlush: false });
  const engineOf = () => createRuleEngine({ rules: RULES, store: new MemoryStateStore(), cluster, toggles: new MemoryRuleToggles(clock), clock, logger: silentLogger, config: DEFAULT_CONFIG });
  const processor = new BatchProcessor({
    engine: engineOf(),
    remediator,
    deduper,
    deadLetters: new MemoryDeadLetterSink(),
    metrics,
    clock,
    logger: silentLogger,
    ...(withDegraded ? { degraded: { engine: engineOf(), deduper: new MemoryDeduper(clock, { windowMs: 600_000, claimTtlMs: 600_000 }) } } : {}),
  });
  return { clock, cluster, exec, pager, ledger, deduper, processor, registry };
}

async function metric(registry: ReturnType<typeof createRegistry>, name: string): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values ?? []).reduce((s, v) => s + v.value, 0);
}

describe('Redis outage at the batch level', () => {
  it('pages still go out marked degraded (once per event), nothing is cordoned, the batch fails and shows in the metrics; after recovery it is evaluated for real', async () => {
    const s = setup(true);
    s.deduper.redisDown = true;
    const batch = [msg(xid79('e-1', 'gpu-007'))];
    for (let i = 0; i < 3; i++) {
      let err: unknown;
      await s.processor.process(batch).catch((e: unknown) => (err = e));
      expect(err, 'the batch fails: it is redelivered once Redis is back').to.be.instanceOf(NodewardenError);
    }
    expect(s.exec.calls, 'fail closed: no remediation without the guard').to.have.length(0);
    expect(s.pager.sent.map((p) => p.summary.slice(0, 40))).to.have.length(1);
    expect(s.pager.sent[0]!.summary).to.contain('[degraded: guard unavailable');
    expect(await metric(s.registry, 'nodewarden_engine_batch_failures_total')).to.equal(3);
    expect(await metric(s.registry, 'nodewarden_engine_degraded_events_total')).to.equal(1);

    s.deduper.redisDown = false;
    const res = await s.processor.process(batch);
    expect(res.processed).to.equal(1);
    expect(s.exec.calls.map((d) => `${d.action} ${d.target.name}`)).to.deep.equal(['cordon gpu-007']);
    // the real page has the same dedup key: the pager service folds it into the degraded one's incident
    expect(new Set(s.pager.sent.map((p) => p.dedupKey)).size).to.equal(1);
  });

  it('without the degraded path nobody is paged while Redis is down (the bug this fixes)', async () => {
    const s = setup(false);
    s.deduper.redisDown = true;
    await s.processor.process([msg(xid79('e-2', 'gpu-008'))]).catch(() => undefined);
    expect(s.pager.sent).to.have.length(0);
    expect(await metric(s.registry, 'nodewarden_engine_batch_failures_total')).to.equal(1);
  });
});
