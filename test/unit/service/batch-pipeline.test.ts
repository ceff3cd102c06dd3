/**
 * ADR 0050: a batch's cordons are carried out in the serial queue; the rest of
 * its submit (pages, ledger, settles) completes after the batches before it, in
 * batch order, while the next batch is evaluated and its cordons run. A batch
 * resolves (its offsets may be committed) only once its own rest is durable.
 */
import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { Decision, LedgerRecord } from '../../../core/decision.js';
import type { EventEnvelope } from '../../../core/envelope.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../adapters/metrics.js';
import { createMemoryGuard } from '../../../remediations/guard/memory-guard.js';
import { guardOptionsFromConfig } from '../../../remediations/guard/policy.js';
import type { LedgerWriter } from '../../../remediations/ledger/store.js';
import type { ExecutionResult, Executor, Remediator, SubmitResult } from '../../../remediations/ports.js';
import { createRemediator } from '../../../remediations/remediator.js';
import type { RuleEngine } from '../../../rules/engine/engine.js';
import { BatchProcessor } from '../../../rules/service/batch-processor.js';
import { MemoryDeadLetterSink } from '../../../rules/service/dead-letter.js';
import { MemoryDeduper } from '../../../rules/service/dedupe.js';
import { engineServiceMetrics } from '../../../rules/service/metrics.js';
import type { RawMessage } from '../../../rules/service/ports.js';
import { cordon, decision, FakeCluster } from '../remediations/fake-cluster.js';

const T0 = Date.parse('2026-12-03T19:00:00.000Z');

let offset = 0;
function msg(id: string, node: string): RawMessage {
  const e: EventEnvelope = { v: 1, id, ts: new Date(T0).toISOString(), node, type: 'gpu.xid', source: 'kmsg', labels: { pool: 'p' }, data: { code: 79, pci: '0000:3b:00', message: 'GPU has fallen off the bus.' } };
  return { topic: 'signals', partition: 0, offset: String(offset++), key: node, value: JSON.stringify(e) };
}

class Deferred {
  resolve: () => void = () => undefined;
  reject: (e: Error) => void = () => undefined;
  readonly promise = new Promise<void>((res, rej) => {
    this.resolve = res;
    this.reject = rej;
  });
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** One cordon per event; logs what happens when. */
class LoggingEngine implements RuleEngine {
  constructor(private readonly log: string[]) {}
  process(events: EventEnvelope[]): Promise<Decision[]> {
    this.log.push(`evaluate ${events.map((e) => e.id).join(',')}`);
    return Promise.resolve(events.map((e): Decision => ({ id: `d-${e.id}`, at: T0, rule: 'gpu-xid-fatal', action: 'cordon', target: { kind: 'Node', name: e.node }, reason: 'xid 79' })));
  }
  tick(): Promise<Decision[]> {
    this.log.push('tick');
    return Promise.resolve([]);
  }
}

/** A remediator in two parts whose rests wait for the test to let them go. */
class TwoPartRemediator implements Pick<Remediator, 'submit' | 'begin'> {
  readonly rests = new Map<string, Deferred>();
  constructor(private readonly log: string[]) {}
  submit(ds: readonly Decision[]): Promise<SubmitResult> {
    this.log.push(`submit ${ds.map((d) => d.id).join(',')}`);
    return Promise.resolve({ records: [], retryLater: [] });
  }
  begin(ds: readonly Decision[]): Promise<() => Promise<SubmitResult>> {
    const ids = ds.map((d) => d.id).join(',');
    this.log.push(`begin ${ids}`);
    const gate = new Deferred();
    this.rests.set(ids, gate);
    return Promise.resolve(async () => {
      this.log.push(`rest ${ids}`);
      await gate.promise;
      this.log.push(`rest done ${ids}`);
      return { records: ds.map((d): LedgerRecord => ({ ts: new Date(T0).toISOString(), rule: d.rule, action: d.action, target: d.target, outcome: 'executed', reason: d.reason, guard: null, decisionId: d.id })), retryLater: [] };
    });
  }
}

function setup() {
  const clock = new ManualClock(T0);
  const log: string[] = [];
  const remediator = new TwoPartRemediator(log);
  const ledger: LedgerWriter = {
    name: 'topic',
    append: (rs) => {
      log.push(`ledger ${rs.map((r) => ('decisionId' in r ? (r.decisionId ?? '') : '')).join(',')}`);
      return Promise.resolve();
    },
  };
  const deduper = new MemoryDeduper(clock, { windowMs: 3_600_000, claimTtlMs: 5000 });
  const processor = new BatchProcessor({ engine: new LoggingEngine(log), remediator, ledger, deduper, deadLetters: new MemoryDeadLetterSink(), metrics: engineServiceMetrics(createRegistry('engine')), clock, logger: silentLogger });
  return { log, remediator, processor, deduper };
}

describe('engine service: the next batch runs its cordons while the one before completes (ADR 0050)', () => {
  it('evaluates batch 2 and carries out its cordons before batch 1 completes; completions, ledger writes and results keep batch order', async () => {
    const { log, remediator, processor } = setup();
    let firstDone = false;
    const first = processor.process([msg('a', 'n1')]).then((r) => ((firstDone = true), r));
    const second = processor.process([msg('b', 'n2')]);
    for (let i = 0; i < 10; i++) await tick();
    // without the change: batch 2 waited in the queue until batch 1's whole submit was over
    expect(log).to.deep.equal(['evaluate a', 'begin d-a', 'rest d-a', 'evaluate b', 'begin d-b']);
    expect(firstDone, 'batch 1 resolves (its offsets commit) only after its rest').to.equal(false);
    remediator.rests.get('d-b')?.resolve();
    for (let i = 0; i < 10; i++) await tick();
    expect(log.includes('rest d-b'), "batch 2's rest waits for batch 1's").to.equal(false);
    remediator.rests.get('d-a')?.resolve();
    const [r1, r2] = await Promise.all([first, second]);
    expect(log.slice(5)).to.deep.equal(['rest done d-a', 'ledger d-a', 'rest d-b', 'rest done d-b', 'ledger d-b']);
    expect(r1.records.map((r) => r.decisionId)).to.deep.equal(['d-a']);
    expect(r2.records.map((r) => r.decisionId)).to.deep.equal(['d-b']);
  });

  it("a batch whose rest fails is redelivered (its claims released); the next batch's rest still runs after it", async () => {
    const { remediator, processor, deduper } = setup();
    const first = processor.process([msg('a', 'n1')]).then(
      () => null,
      (e: unknown) => e,
    );
    const second = processor.process([msg('b', 'n2')]);
    for (let i = 0; i < 10; i++) await tick();
    remediator.rests.get('d-b')?.resolve();
    remediator.rests.get('d-a')?.reject(new Error('ledger down'));
    expect(String(await first)).to.match(/ledger down/);
    expect((await second).records).to.have.length(1);
    expect(await deduper.claim(['a']), 'the failed batch is evaluated again when redelivered').to.deep.equal(['claimed']);
    expect(await deduper.claim(['b'])).to.deep.equal(['duplicate']);
  });

  it('a tick waits for every batch to complete before its own submit', async () => {
    const { log, remediator, processor } = setup();
    const first = processor.process([msg('a', 'n1')]);
    for (let i = 0; i < 10; i++) await tick();
    const t = processor.tick(T0 + 1000);
    for (let i = 0; i < 10; i++) await tick();
    expect(log.includes('tick')).to.equal(false);
    remediator.rests.get('d-a')?.resolve();
    await Promise.all([first, t]);
    expect(log.slice(-3)).to.deep.equal(['ledger d-a', 'tick', 'submit ']);
  });
});

/** Logs when each action starts and ends. */
class LoggingExecutor implements Executor {
  readonly actions = ['cordon', 'rollback', 'page'] as const;
  readonly log: string[] = [];
  async execute(d: Decision): Promise<ExecutionResult> {
    this.log.push(`start ${d.action} ${d.id}`);
    await new Promise((r) => setTimeout(r, 2));
    this.log.push(`end ${d.action} ${d.id}`);
    return { ok: true };
  }
}

function remediatorSetup() {
  const clock = new ManualClock(T0);
  const cluster = FakeCluster.fleet(20, ['h100-train']);
  const exec = new LoggingExecutor();
  const written: string[] = [];
  const ledger: LedgerWriter = {
    name: 'mem',
    append: (rs) => {
      written.push(...rs.map((r) => ('decisionId' in r ? (r.decisionId ?? '') : '')));
      return Promise.resolve();
    },
  };
  const remediator = createRemediator({ guard: createMemoryGuard({ view: cluster, options: { ...guardOptionsFromConfig(DEFAULT_CONFIG), maxUnavailable: '50%', maxUnavailablePerGroup: '50%', targetCooldownMs: 0 }, clock }), executors: [exec], ledger: [ledger], clock, logger: silentLogger, autoFlush: false, actionConcurrency: 8 });
  return { exec, written, remediator };
}

describe('remediator: a submit in two parts (ADR 0050)', () => {
  it('begin carries out the cordons; the pages, the ledger write and the settles wait for the rest', async () => {
    const { exec, written, remediator } = remediatorSetup();
    const ds = [cordon('gpu-001', { id: 'c1' }), decision({ id: 'p1', action: 'page', target: { kind: 'Node', name: 'gpu-001' } }), cordon('gpu-002', { id: 'c2' })];
    const rest = await (remediator.begin as NonNullable<Remediator['begin']>)(ds);
    expect(exec.log.filter((l) => l.startsWith('end'))).to.have.members(['end cordon c1', 'end cordon c2']);
    expect(written, 'nothing is recorded before the rest').to.deep.equal([]);
    const r = await rest();
    expect(exec.log.at(-1)).to.equal('end page p1');
    expect(r.records.map((x) => x.decisionId)).to.deep.equal(['c1', 'p1', 'c2']);
    expect(written).to.deep.equal(['c1', 'p1', 'c2']);
  });

  it('a submit whose in-order part acts on the cluster (a rollback) is carried out whole before begin resolves', async () => {
    const { exec, written, remediator } = remediatorSetup();
    const ds = [cordon('gpu-001', { id: 'c1' }), decision({ id: 'rb', action: 'rollback', rule: 'driver-crashloop', target: { kind: 'DaemonSet', namespace: 'gpu-operator', name: 'nvidia-driver-daemonset' } })];
    const rest = await (remediator.begin as NonNullable<Remediator['begin']>)(ds);
    // the rollback must not overlap the next batch's cordons: it ran (and was recorded) inside begin
    expect(exec.log).to.include('end rollback rb');
    expect(written).to.deep.equal(['c1', 'rb']);
    expect((await rest()).records.map((x) => x.decisionId)).to.deep.equal(['c1', 'rb']);
  });
});
