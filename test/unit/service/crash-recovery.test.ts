/**
 * Zero lost and zero duplicate actions around crashes, at the batch level:
 * the real rule engine (default pack) on a shared memory store, the real
 * remediator and memory guard (one state shared by two "replicas"), a shared
 * deduper, and a ledger that can fail. A replica's death is an executor that
 * never returns (it stopped between guard reserve and settle).
 */
import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { Decision, LedgerRecord } from '../../../core/decision.js';
import type { EventEnvelope } from '../../../core/envelope.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../adapters/metrics.js';
import { createMemoryGuard, MemoryGuardState } from '../../../remediations/guard/memory-guard.js';
import { guardOptionsFromConfig } from '../../../remediations/guard/policy.js';
import { MemoryLedger } from '../../../remediations/ledger/memory-ledger.js';
import type { LedgerWriter } from '../../../remediations/ledger/store.js';
import type { ExecutionResult, Executor } from '../../../remediations/ports.js';
import { createRemediator } from '../../../remediations/remediator.js';
import { createRuleEngine } from '../../../rules/engine/engine.js';
import { defaultRulesPath, loadRules } from '../../../rules/language/load.js';
import { BatchProcessor, RetryLaterError } from '../../../rules/service/batch-processor.js';
import { MemoryDeadLetterSink } from '../../../rules/service/dead-letter.js';
import { MemoryDeduper } from '../../../rules/service/dedupe.js';
import { engineServiceMetrics } from '../../../rules/service/metrics.js';
import type { RawMessage } from '../../../rules/service/ports.js';
import { MemoryStateStore } from '../../../rules/store/memory-store.js';
import type { StateStore } from '../../../rules/store/state-store.js';
import { MemoryRuleToggles } from '../../../rules/toggles/memory-toggles.js';
import { FakeCluster, FakeClusterExecutor } from '../remediations/fake-cluster.js';

const T0 = Date.parse('2026-11-21T10:00:00.000Z');
const RULES = loadRules(defaultRulesPath());

function xid79(id: string, node: string, ts = T0): EventEnvelope {
  return { v: 1, id, ts: new Date(ts).toISOString(), node, type: 'gpu.xid', source: 'kmsg', labels: { pool: 'pool-a' }, data: { code: 79, pci: '0000:3b:00', message: 'GPU has fallen off the bus.' } };
}

let offset = 0;
const msg = (e: EventEnvelope): RawMessage => ({ topic: 'signals', partition: 0, offset: String(offset++), key: e.node, value: JSON.stringify(e) });

/** An executor of a replica that dies mid-action: the call never returns. */
class DyingExecutor implements Executor {
  readonly actions = ['cordon', 'uncordon', 'rollback'] as const;
  calls = 0;
  execute(): Promise<ExecutionResult> {
    this.calls++;
    return new Promise<ExecutionResult>(() => undefined);
  }
}

/** A ledger writer that fails while `failing`. */
class FlakySink implements LedgerWriter {
  readonly name = 'flaky-kafka';
  failing = false;
  readonly records: LedgerRecord[] = [];
  append(records: readonly LedgerRecord[]): Promise<void> {
    if (this.failing) return Promise.reject(new Error('broker unavailable'));
    this.records.push(...records);
    return Promise.resolve();
  }
}

/** Everything the replicas of one engine group share: store, guard state, dedupe, cluster. */
function shared(o: { nodes?: number } = {}) {
  const clock = new ManualClock(T0 + 5000);
  const cluster = FakeCluster.fleet(o.nodes ?? 100);
  const store: StateStore = new MemoryStateStore();
  return { clock, cluster, store, guardState: new MemoryGuardState(), deduper: new MemoryDeduper(clock, { windowMs: 600_000, claimTtlMs: 5000 }) };
}

function replica(s: ReturnType<typeof shared>, executor: Executor, sinks: LedgerWriter[] = [new MemoryLedger()]) {
  const registry = createRegistry('engine');
  const guard = createMemoryGuard({ view: s.cluster, options: guardOptionsFromConfig(DEFAULT_CONFIG, { maxUnavailable: '10%' }), clock: s.clock, state: s.guardState });
  const remediator = createRemediator({ guard, executors: [executor], ledger: sinks, clock: s.clock, logger: silentLogger, autoFlush: false });
  const engine = createRuleEngine({ rules: RULES, store: s.store, cluster: s.cluster, toggles: new MemoryRuleToggles(s.clock), clock: s.clock, logger: silentLogger, config: DEFAULT_CONFIG });
  const processor = new BatchProcessor({ engine, remediator, deduper: s.deduper, deadLetters: new MemoryDeadLetterSink(), metrics: engineServiceMetrics(registry), clock: s.clock, logger: silentLogger });
  return { processor, remediator };
}

const cordons = (records: readonly LedgerRecord[]): LedgerRecord[] => records.filter((r) => r.rule === 'gpu-xid-node-fatal' && r.action === 'cordon');

describe('crash recovery: no lost and no duplicate actions', () => {
  // The store answers a re-fire at the episode's start with that start (episode.fire, the
  // state-store contract); without it the redelivery would decide nothing and the action be lost.
  it('a redelivered event re-derives the decision of the episode it fired', async () => {
    const s = shared();
    const engine = createRuleEngine({ rules: RULES, store: s.store, cluster: s.cluster, toggles: new MemoryRuleToggles(s.clock), clock: s.clock, logger: silentLogger, config: DEFAULT_CONFIG });
    const e = xid79('x-1', 'gpu-001');
    const cordonIds = async (events: EventEnvelope[]): Promise<string[]> => (await engine.process(events)).filter((d: Decision) => d.action === 'cordon').map((d) => d.id);
    const first = await cordonIds([e]);
    expect(first).to.have.length(1);
    expect(await cordonIds([e]), 'same episode, same decision id').to.deep.equal(first);
    expect(await cordonIds([xid79('x-2', 'gpu-001', T0 + 1000)]), 'a later event of the active episode decides nothing').to.deep.equal([]);
  });

  it('a replica that dies between guard reserve and settle: the redelivery is retried (not suppressed) and cordons once the lease lapses', async () => {
    const s = shared();
    const a = replica(s, new DyingExecutor());
    const batch = [msg(xid79('e-1', 'gpu-007'))];
    void a.processor.process(batch); // dies inside the cordon: authorized, never settled, never committed
    await new Promise((r) => setImmediate(r));
    s.clock.advance(6000); // its dedupe claims lapse; the partition moves to B

    const bExec = new FakeClusterExecutor(s.cluster);
    const bLedger = new MemoryLedger();
    const b = replica(s, bExec, [bLedger]);
    let err: unknown;
    await b.processor.process(batch).catch((e: unknown) => (err = e));
    expect(err, 'in flight on the dead replica: the batch fails and is redelivered').to.be.instanceOf(RetryLaterError);
    expect((err as RetryLaterError).retriable).to.equal(true);
    expect(bExec.calls).to.have.length(0);
    expect(cordons(bLedger.records), 'nothing recorded for a decision that is retried').to.deep.equal([]);

    s.clock.advance(60_000); // the in-flight lease (2 × action timeout) lapses
    const res = await b.processor.process(batch);
    expect(res.processed).to.equal(1);
    expect(bExec.calls.map((d) => `${d.action} ${d.target.name}`)).to.deep.equal(['cordon gpu-007']);
    expect(cordons(bLedger.records).map((r) => r.outcome)).to.deep.equal(['executed']);
    expect(s.cluster.getNode('gpu-007')?.unschedulable).to.equal(true);

    // further redeliveries (the commit was lost) are suppressed: never acted twice, never recorded twice
    for (let i = 0; i < 3; i++) {
      await s.deduper.release(['e-1']);
      const again = await b.processor.process(batch);
      expect(again.records.filter((r) => r.action === 'cordon').map((r) => r.guard)).to.deep.equal(['idempotency']);
    }
    expect(bExec.calls).to.have.length(1);
    expect(cordons(bLedger.records).map((r) => `${r.outcome}/${r.guard ?? '-'}`)).to.deep.equal(['executed/-']);
  });

  it('a ledger write that fails fails the batch; the redelivery acts again idempotently and the record reaches the ledger exactly once', async () => {
    const s = shared();
    const exec = new FakeClusterExecutor(s.cluster);
    const sink = new FlakySink();
    const r = replica(s, exec, [sink]);
    const batch = [msg(xid79('f-1', 'gpu-011')), msg(xid79('f-2', 'gpu-012'))];
    sink.failing = true;
    let err: unknown;
    await r.processor.process(batch).catch((e: unknown) => (err = e));
    expect(err, 'the batch is not committed').to.be.instanceOf(Error);
    expect(exec.calls).to.have.length(2); // the cordons happened...
    expect(sink.records).to.deep.equal([]); // ...their records did not reach the ledger
    sink.failing = false;

    // redelivered while the (unsettled) decisions are still in flight: retried, not suppressed
    err = undefined;
    await r.processor.process(batch).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(RetryLaterError);
    s.clock.advance(60_000);
    await r.processor.process(batch);
    const recs = cordons(sink.records);
    expect(recs.map((x) => `${x.target.name} ${x.outcome}`).sort()).to.deep.equal(['gpu-011 executed', 'gpu-012 executed']);
    expect(new Set(recs.map((x) => x.decisionId)).size).to.equal(2);
    expect(new Set(exec.calls.map((d) => d.id)).size, 'the same two decisions, re-run idempotently').to.equal(2);
  });

  it('a denied decision whose ledger write failed is decided again on redelivery: one denied record, never two', async () => {
    const s = shared({ nodes: 10 }); // maxUnavailable 10 % of 10 = 1
    s.cluster.cordon('gpu-000'); // a human cordon uses the whole budget
    const sink = new FlakySink();
    const r = replica(s, new FakeClusterExecutor(s.cluster), [sink]);
    const batch = [msg(xid79('g-1', 'gpu-003'))];
    sink.failing = true;
    await r.processor.process(batch).catch(() => undefined);
    sink.failing = false;
    await r.processor.process(batch);
    await s.deduper.release(['g-1']);
    await r.processor.process(batch); // once more after the ledger is fine: suppressed, not denied again, not recorded again
    expect(cordons(sink.records).map((x) => `${x.outcome}/${x.guard ?? '-'}`)).to.deep.equal(['denied/maxUnavailable']);
  });

  it('records a tick (not redelivered) could not write are kept and written first at the next submit', async () => {
    const s = shared();
    const exec = new FakeClusterExecutor(s.cluster);
    const sink = new FlakySink();
    const { remediator } = replica(s, exec, [sink]);
    const d: Decision = { id: 'tick-1', at: s.clock.now(), rule: 'containerd-unreachable', action: 'cordon', target: { kind: 'Node', name: 'gpu-020' }, reason: 'containerd unreachable for 60s' };
    sink.failing = true;
    let err: unknown;
    await remediator.submit([d], { redeliverable: false }).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(Error);
    sink.failing = false;
    const next = await remediator.submit([]);
    expect(next).to.deep.equal({ records: [], retryLater: [] });
    expect(sink.records.map((x) => `${x.decisionId} ${x.outcome}`)).to.deep.equal(['tick-1 executed']);
    // and it was settled once written: a replay is suppressed
    const replay = await remediator.submit([d]);
    expect(replay.records.map((x) => `${x.outcome}/${x.guard ?? '-'}`)).to.deep.equal(['suppressed/idempotency']);
    expect(exec.calls).to.have.length(1);
  });
});
