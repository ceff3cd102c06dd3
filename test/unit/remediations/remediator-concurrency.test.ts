/**
 * ADR 0041: the cordons and GPU taints one submit's guard authorized run
 * concurrently, bounded by `actionConcurrency`; admission stays in batch
 * order, one node is never acted on twice at once, a rollback keeps its place,
 * and the ledger records (batch order) are written after every execution.
 */
import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG, resolveConfig } from '../../../core/config.js';
import type { ActionKind, Decision, LedgerRecord } from '../../../core/decision.js';
import { NodewardenError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/logger.js';
import { createMemoryGuard } from '../../../remediations/guard/memory-guard.js';
import { guardOptionsFromConfig, type GuardOptions } from '../../../remediations/guard/policy.js';
import type { LedgerWriter } from '../../../remediations/ledger/store.js';
import type { ExecutionResult, Executor } from '../../../remediations/ports.js';
import { createRemediator } from '../../../remediations/remediator.js';
import { cordon, decision, FakeCluster } from './fake-cluster.js';

const T0 = Date.parse('2026-12-03T10:00:00Z');

/** An executor that takes a few ms per action and logs when each starts and ends. */
class SlowExecutor implements Executor {
  readonly actions: readonly ActionKind[] = ['cordon', 'uncordon', 'rollback', 'taint', 'page'];
  readonly log: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** Targets whose action fails. */
  readonly failing = new Set<string>();
  constructor(
    private readonly cluster: FakeCluster,
    private readonly ms = 5,
  ) {}

  async execute(d: Decision): Promise<ExecutionResult> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.log.push(`start ${d.id}`);
    try {
      await new Promise((r) => setTimeout(r, this.ms));
      if (this.failing.has(d.target.name)) return { ok: false, error: new NodewardenError('UNAVAILABLE', `injected failure on ${d.target.name}`, { retriable: false }) };
      if (d.action === 'cordon') this.cluster.cordon(d.target.name, true);
      return { ok: true, detail: `${d.action} ${d.target.name}` };
    } finally {
      this.inFlight--;
      this.log.push(`end ${d.id}`);
    }
  }
}

/** A ledger that notes how many executions were still running at each append. */
class WatchingLedger implements LedgerWriter {
  readonly name = 'watching';
  readonly records: LedgerRecord[] = [];
  readonly runningAtAppend: number[] = [];
  constructor(private readonly exec: SlowExecutor) {}
  append(rs: readonly LedgerRecord[]): Promise<void> {
    this.runningAtAppend.push(this.exec.inFlight);
    this.records.push(...rs);
    return Promise.resolve();
  }
}

function setup(o: { concurrency: number; nodes?: number; guard?: Partial<GuardOptions> }) {
  const clock = new ManualClock(T0);
  const cluster = FakeCluster.fleet(o.nodes ?? 100, ['h100-train']);
  const exec = new SlowExecutor(cluster);
  const ledger = new WatchingLedger(exec);
  const base = guardOptionsFromConfig(DEFAULT_CONFIG);
  const guard = createMemoryGuard({
    view: cluster,
    options: { ...base, maxUnavailable: '50%', maxUnavailablePerGroup: '50%', targetCooldownMs: 0, rateLimits: { ...base.rateLimits, cordon: { count: 10_000, windowMs: 600_000 }, taint: { count: 10_000, windowMs: 600_000 } }, ...o.guard },
    clock,
  });
  const remediator = createRemediator({ guard, executors: [exec], ledger: [ledger], clock, logger: silentLogger, autoFlush: false, actionConcurrency: o.concurrency, actionRetry: { maxAttempts: 1, baseMs: 1000, maxMs: 1000 } });
  return { clock, cluster, exec, ledger, remediator };
}

const nodes = (n: number): string[] => Array.from({ length: n }, (_, i) => `gpu-${String(i).padStart(3, '0')}`);

/** The ledger records came in batch order. */
function expectBatchOrder(records: ReadonlyArray<{ decisionId?: unknown }>, ds: ReadonlyArray<{ id: string }>): void {
  expect(records.map((r) => r.decisionId)).to.deep.equal(ds.map((d) => d.id));
}

describe('remediator: concurrent cordons (ADR 0041)', () => {
  it('runs the cordons of one submit concurrently, never more than actionConcurrency at a time', async () => {
    const { exec, ledger, remediator } = setup({ concurrency: 4 });
    const ds = nodes(20).map((n) => cordon(n, { id: `c:${n}` }));
    const { records } = await remediator.submit(ds);
    expect(records.map((r) => r.outcome)).to.deep.equal(ds.map(() => 'executed'));
    // without the change the executions ran one at a time (max 1)
    expect(exec.maxInFlight).to.equal(4);
    // records in batch order, written once every execution was over
    expectBatchOrder(ledger.records, ds);
    expect(ledger.runningAtAppend).to.deep.equal([0]);
  });

  it('actionConcurrency 1 (the default) is exactly sequential', async () => {
    const { exec, remediator } = setup({ concurrency: 1 });
    await remediator.submit(nodes(6).map((n) => cordon(n)));
    expect(exec.maxInFlight).to.equal(1);
  });

  it('never admits more than the budget, however many run at once', async () => {
    const { exec, cluster, remediator } = setup({ concurrency: 8, guard: { maxUnavailable: '5', maxUnavailablePerGroup: '100%' } });
    const { records } = await remediator.submit(nodes(40).map((n) => cordon(n)));
    const cordons = records.filter((r) => r.action === 'cordon');
    expect(cordons.filter((r) => r.outcome === 'executed')).to.have.length(5);
    expect(cordons.filter((r) => r.outcome === 'denied' && r.guard === 'maxUnavailable')).to.have.length(35);
    expect(cluster.unavailableCount()).to.equal(5);
    expect(exec.log.filter((l) => l.startsWith('start'))).to.have.length(5);
  });

  it('keeps two decisions on one node in batch order: the second starts after the first ended', async () => {
    const { exec, remediator } = setup({ concurrency: 8 });
    const ds = [
      cordon('gpu-001', { id: 'first', rule: 'rule-a' }),
      cordon('gpu-002', { id: 'other' }),
      cordon('gpu-001', { id: 'second', rule: 'rule-b' }),
      cordon('gpu-003', { id: 'third' }),
    ];
    const { records } = await remediator.submit(ds);
    expect(records.map((r) => r.outcome), JSON.stringify(records.map((r) => r.details))).to.deep.equal(['executed', 'executed', 'executed', 'executed']);
    const at = (l: string): number => exec.log.indexOf(l);
    expect(at('end first')).to.be.greaterThan(-1);
    expect(at('start second')).to.be.greaterThan(at('end first'));
    // the other nodes still overlapped
    expect(exec.maxInFlight).to.be.greaterThan(1);
  });

  it('records a failed execution among concurrent ones as failed; the others are executed', async () => {
    const { exec, ledger, remediator } = setup({ concurrency: 4 });
    exec.failing.add('gpu-003');
    const ds = nodes(8).map((n) => cordon(n, { id: `c:${n}` }));
    await remediator.submit(ds);
    const byId = new Map(ledger.records.map((r) => [r.decisionId, r]));
    expect(byId.get('c:gpu-003')?.outcome).to.equal('failed');
    expect(byId.get('c:gpu-003')?.error).to.match(/injected failure/);
    for (const n of nodes(8).filter((x) => x !== 'gpu-003')) expect(byId.get(`c:${n}`)?.outcome, n).to.equal('executed');
    expectBatchOrder(ledger.records, ds);
    expect(exec.maxInFlight).to.equal(4);
  });

  it('a rollback keeps its place: it starts after the cordons before it and before the ones after it', async () => {
    const { exec, ledger, remediator } = setup({ concurrency: 8 });
    const rb = decision({ id: 'rb', action: 'rollback', rule: 'driver-crashloop', target: { kind: 'DaemonSet', namespace: 'gpu-operator', name: 'nvidia-driver-daemonset' } });
    const ds = [cordon('gpu-001', { id: 'a1' }), cordon('gpu-002', { id: 'a2' }), rb, cordon('gpu-003', { id: 'b1' }), cordon('gpu-004', { id: 'b2' })];
    await remediator.submit(ds);
    const at = (l: string): number => exec.log.indexOf(l);
    expect(at('start rb')).to.be.greaterThan(Math.max(at('end a1'), at('end a2')));
    expect(at('start b1')).to.be.greaterThan(at('end rb'));
    expect(at('start b2')).to.be.greaterThan(at('end rb'));
    expect(ledger.records.map((r) => r.decisionId)).to.deep.equal(['a1', 'a2', 'rb', 'b1', 'b2']);
  });

  it('a page after its cordon goes after it; cordons of other nodes still overlap; records keep batch order', async () => {
    const { exec, ledger, remediator } = setup({ concurrency: 8 });
    const ds = nodes(4).flatMap((n) => [cordon(n, { id: `c:${n}` }), decision({ id: `p:${n}`, action: 'page', target: { kind: 'Node', name: n }, severity: 'critical', dedupKey: `k/${n}` })]);
    await remediator.submit(ds);
    const at = (l: string): number => exec.log.indexOf(l);
    for (const n of nodes(4)) expect(at(`start p:${n}`), n).to.be.greaterThan(at(`end c:${n}`));
    expect(exec.maxInFlight).to.equal(4);
    expectBatchOrder(ledger.records, ds);
  });

  it('the same decision twice in one batch is acted on once', async () => {
    const { exec, remediator } = setup({ concurrency: 8 });
    const d = cordon('gpu-001', { id: 'dup' });
    const { records } = await remediator.submit([d, cordon('gpu-002'), d]);
    expect(exec.log.filter((l) => l === 'start dup')).to.have.length(1);
    expect(records.filter((r) => r.decisionId === 'dup').map((r) => r.outcome)).to.deep.equal(['executed', 'suppressed']);
  });

  it('guard.actionConcurrency is bounded 1..64 (default 8)', () => {
    expect(DEFAULT_CONFIG.guard.actionConcurrency).to.equal(8);
    expect(() => resolveConfig({ text: 'guard: { actionConcurrency: 0 }' })).to.throw();
    expect(() => resolveConfig({ text: 'guard: { actionConcurrency: 65 }' })).to.throw();
    expect(resolveConfig({ text: 'guard: { actionConcurrency: 16 }' }).guard.actionConcurrency).to.equal(16);
    expect(() => createRemediator({ guard: createMemoryGuard({ view: new FakeCluster(), options: guardOptionsFromConfig(DEFAULT_CONFIG), clock: new ManualClock(T0) }), executors: [], ledger: [], clock: new ManualClock(T0), logger: silentLogger, autoFlush: false, actionConcurrency: 0 })).to.throw(/concurrency/);
  });
});
