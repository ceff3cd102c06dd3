/**
 * A decision fired by the TICK (time-driven rules: sustained, absent) in flight
 * when its replica dies (issue 10, item 1). Ticks are not redelivered, so
 * before the tick outbox a replica killed between the store write (due entry
 * popped, episode opened) and the guard lost the action for good; killed
 * between authorize and settle, nobody took it over either. Two replicas share
 * one store, guard state and cluster (the memory adapters the Redis ones are
 * contract-tested against); a replica's death is a tick whose decisions never
 * reach the guard, or an executor that never returns.
 */
import { expect } from 'chai';
import { defaultRulesPath, loadRules } from '../../../rules/language/load.js';
import { createMemoryGuard, MemoryGuardState } from '../../../remediations/guard/memory-guard.js';
import { createRuleEngine } from '../../../rules/engine/engine.js';
import type { EventEnvelope } from '../../../core/envelope.js';
import { MemoryDeduper } from '../../../rules/service/dedupe.js';
import { MemoryStateStore } from '../../../rules/store/memory-store.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import { ManualClock } from '../../../core/clock.js';
import type { Decision, LedgerRecord } from '../../../core/decision.js';
import { MemoryLedger } from '../../../remediations/ledger/memory-ledger.js';
import { silentLogger } from '../../../core/logger.js';
import { FakeCluster, FakeClusterExecutor } from '../remediations/fake-cluster.js';
import { MemoryDeadLetterSink } from '../../../rules/service/dead-letter.js';
import { BatchProcessor } from '../../../rules/service/batch-processor.js';
import { createRemediator } from '../../../remediations/remediator.js';
import { engineServiceMetrics } from '../../../rules/service/metrics.js';
import { createRegistry } from '../../../adapters/metrics.js';
import { MemoryRuleToggles } from '../../../rules/toggles/memory-toggles.js';
import type { ExecutionResult, Executor } from '../../../remediations/ports.js';
import { guardOptionsFromConfig } from '../../../remediations/guard/policy.js';

const T0 = Date.parse('2026-11-21T10:00:00.000Z');
const RULES = loadRules(defaultRulesPath());

function unreachable(id: string, node: string, ts: number): EventEnvelope {
  return { v: 1, id, ts: new Date(ts).toISOString(), node, type: 'runtime.containerd', source: 'cri', labels: { pool: 'pool-a' }, data: { state: 'unreachable', latencyMs: null, runtimeReady: null, networkReady: null } };
}

/** Records the pages it is asked to send. */
class PageRecorder implements Executor {
  readonly actions = ['page'] as const;
  readonly calls: Decision[] = [];
  execute(d: Decision): Promise<ExecutionResult> {
    this.calls.push(d);
    return Promise.resolve({ ok: true, detail: 'paged' });
  }
}

/** The executor of a replica that dies inside the action: the call never returns. */
const dying = (): Executor => ({ actions: ['cordon', 'uncordon', 'rollback'], execute: () => new Promise<ExecutionResult>(() => undefined) });

function shared() {
  const clock = new ManualClock(T0);
  return { clock, cluster: FakeCluster.fleet(20), store: new MemoryStateStore(), guardState: new MemoryGuardState(), deduper: new MemoryDeduper(clock, { windowMs: 600_000, claimTtlMs: 5000 }) };
}

function replica(s: ReturnType<typeof shared>, executor: Executor, tickOutbox = true, pager: Executor = new PageRecorder()) {
  const ledger = new MemoryLedger();
  const guard = createMemoryGuard({ view: s.cluster, options: guardOptionsFromConfig(DEFAULT_CONFIG, { maxUnavailable: '50%' }), clock: s.clock, state: s.guardState });
  const remediator = createRemediator({ guard, executors: [executor, pager], ledger: [ledger], clock: s.clock, logger: silentLogger, autoFlush: false });
  const engine = createRuleEngine({ rules: RULES, store: s.store, cluster: s.cluster, toggles: new MemoryRuleToggles(s.clock), clock: s.clock, logger: silentLogger, config: DEFAULT_CONFIG, tickOutbox });
  const processor = new BatchProcessor({ engine, remediator, deduper: s.deduper, deadLetters: new MemoryDeadLetterSink(), metrics: engineServiceMetrics(createRegistry('engine')), clock: s.clock, logger: silentLogger });
  return { engine, processor, ledger };
}

const cordons = (rs: readonly LedgerRecord[]): string[] => rs.filter((r) => r.rule === 'containerd-unresponsive' && r.action === 'cordon').map((r) => `${r.target.name} ${r.outcome}/${r.guard ?? '-'}`);

/** containerd unreachable on gpu-004 for 10 s by events, then silent: only a tick can fire the 60 s rule. */
async function feed(engine: ReturnType<typeof replica>['engine']): Promise<void> {
  await engine.process([unreachable('c-1', 'gpu-004', T0), unreachable('c-2', 'gpu-004', T0 + 10_000)]);
}

describe('tick-fired decision in flight during a replica kill', () => {
  it('killed between the store write and the guard: the other replica carries it out once (lost before the outbox)', async () => {
    for (const outbox of [true, false]) {
      const s = shared();
      const a = replica(s, new FakeClusterExecutor(s.cluster), outbox);
      await feed(a.engine);
      s.clock.set(T0 + 61_000);
      const fired = (await a.engine.tick(T0 + 61_000)).filter((d) => d.action === 'cordon');
      expect(fired.map((d) => d.target.name), 'the tick fires').to.deep.equal(['gpu-004']);
      // ...and replica A dies right here: its decisions never reach the guard.

      const bExec = new FakeClusterExecutor(s.cluster);
      const pages = new PageRecorder();
      const b = replica(s, bExec, outbox, pages);
      let firstAt: number | undefined;
      for (let t = T0 + 62_000; t <= T0 + 180_000; t += 1000) {
        s.clock.set(t);
        await b.processor.tick(t);
        if (firstAt === undefined && bExec.calls.length > 0) firstAt = t - (T0 + 61_000);
      }
      if (!outbox) {
        expect(bExec.calls, 'without the outbox the cordon is lost').to.have.length(0);
        expect(s.cluster.getNode('gpu-004')?.unschedulable).to.not.equal(true);
        continue;
      }
      expect(firstAt, 'taken over within grace + one tick').to.be.at.most(6000);
      console.log(`      FAULT-FIGURE tick_kill_before_guard_takeover_ms=${firstAt}`);
      expect(bExec.calls.map((d) => `${d.action} ${d.target.name} ${d.id}`)).to.deep.equal([`cordon gpu-004 ${fired[0]?.id}`]);
      expect(cordons(b.ledger.records), 'one decision, one ledger record').to.deep.equal(['gpu-004 executed/-']);
      expect(s.cluster.getNode('gpu-004')?.unschedulable).to.equal(true);
      expect(pages.calls.map((d) => `${d.action} ${d.target.name}`), 'paged once').to.deep.equal(['page gpu-004']);
      const ids = b.ledger.records.map((r) => r.decisionId);
      expect(new Set(ids).size, 'no decision recorded twice').to.equal(ids.length);
    }
  });

  it('killed between authorize and settle: the other replica takes it over once the in-flight lease lapses, exactly once', async () => {
    const s = shared();
    const a = replica(s, dying());
    await feed(a.engine);
    s.clock.set(T0 + 61_000);
    void a.processor.tick(T0 + 61_000); // authorized, the cordon never returns: A died in it
    await new Promise((r) => setImmediate(r));

    const bExec = new FakeClusterExecutor(s.cluster);
    const b = replica(s, bExec);
    let takenOverAfter: number | undefined;
    for (let t = T0 + 62_000; t <= T0 + 240_000; t += 1000) {
      s.clock.set(t);
      await b.processor.tick(t);
      if (takenOverAfter === undefined && bExec.calls.length > 0) takenOverAfter = t - (T0 + 61_000);
    }
    expect(bExec.calls.map((d) => `${d.action} ${d.target.name}`)).to.deep.equal(['cordon gpu-004']);
    expect(cordons(b.ledger.records)).to.deep.equal(['gpu-004 executed/-']);
    // the 15 s in-flight lease (ADR 0026; nobody renews a dead replica's) plus at most one outbox re-check period (15 s)
    expect(takenOverAfter).to.be.within(15_000, 31_000);
    console.log(`      FAULT-FIGURE tick_kill_after_authorize_takeover_ms=${takenOverAfter}`);
  });

  it('with nobody killed, two replicas ticking on the same store act once and record once (re-checks are suppressed, not written)', async () => {
    const s = shared();
    const exec = new FakeClusterExecutor(s.cluster);
    const pages = new PageRecorder();
    const a = replica(s, exec, true, pages);
    const b = replica(s, exec, true, pages);
    await feed(a.engine);
    for (let t = T0 + 55_000; t <= T0 + 240_000; t += 1000) {
      s.clock.set(t);
      await a.processor.tick(t);
      await b.processor.tick(t);
    }
    expect(exec.calls.map((d) => `${d.action} ${d.target.name}`)).to.deep.equal(['cordon gpu-004']);
    expect(pages.calls).to.have.length(1);
    const recs = [...a.ledger.records, ...b.ledger.records];
    expect(recs.map((r) => `${r.action} ${r.outcome}`).sort()).to.deep.equal(['cordon executed', 'page executed']);
  });
});
