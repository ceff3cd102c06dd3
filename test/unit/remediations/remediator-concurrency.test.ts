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
import { MemoryDocStore } from '../../../remediations/incidents/doc-store.js';
import { createIncidentPaging } from '../../../remediations/incidents/incident-paging.js';
import type { Guard } from '../../../remediations/ports.js';
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

function setup(o: { concurrency: number; nodes?: number; guard?: Partial<GuardOptions>; wrap?: (g: Guard) => Guard; incidents?: boolean }) {
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
  const incidents = o.incidents ? createIncidentPaging({ store: new MemoryDocStore(clock), clock }) : undefined;
  const remediator = createRemediator({
    guard: o.wrap ? o.wrap(guard) : guard,
    executors: [exec],
    ledger: [ledger],
    clock,
    logger: silentLogger,
    autoFlush: false,
    actionConcurrency: o.concurrency,
    actionRetry: { maxAttempts: 1, baseMs: 1000, maxMs: 1000 },
    ...(incidents ? { incidents } : {}),
  });
  return { clock, cluster, exec, ledger, remediator, incidents };
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

  it('admits a storm in runs of at most actionConcurrency, one guard call per run, with the verdicts of one-by-one admission (ADR 0044)', async () => {
    const calls: number[] = [];
    let single = 0;
    const counting = (g: Guard): Guard => ({
      holder: g.holder,
      authorize: (d) => (single++, g.authorize(d)),
      authorizeBatch: (ds) => (calls.push(ds.length), g.authorizeBatch(ds)),
      settle: (d, v, r) => g.settle(d, v, r),
      renew: (ids, h, ttl) => g.renew(ids, h, ttl),
      peek: (ds) => g.peek(ds),
    });
    const budget = { maxUnavailable: '5', maxUnavailablePerGroup: '100%' };
    const batched = setup({ concurrency: 8, guard: budget, wrap: counting });
    const oneByOne = setup({ concurrency: 1, guard: budget });
    const storm = nodes(40);
    const a = (await batched.remediator.submit(storm.map((n) => cordon(n, { id: `c:${n}` })))).records;
    const b = (await oneByOne.remediator.submit(storm.map((n) => cordon(n, { id: `c:${n}` })))).records;
    const outcome = (r: LedgerRecord): string => `${r.decisionId ?? ''} ${r.outcome} ${r.guard ?? ''}`;
    expect(a.filter((r) => r.action === 'cordon').map(outcome)).to.deep.equal(b.filter((r) => r.action === 'cordon').map(outcome));
    // without the change: 40 authorize calls, one per decision
    expect(single).to.equal(0);
    expect(calls.reduce((x, y) => x + y, 0)).to.equal(40);
    expect(Math.max(...calls)).to.be.at.most(8);
    expect(calls.length, `calls of ${calls.join(', ')}`).to.be.below(20);
    expect(batched.exec.maxInFlight).to.be.at.most(8);
  });

  it('holds the concurrent cordons of an acknowledged incident, and notes the facts of the others in their incident (ADR 0044)', async () => {
    const { exec, incidents, remediator } = setup({ concurrency: 8, incidents: true });
    const inc = incidents as NonNullable<typeof incidents>;
    const pool = { pool: 'h100-train' };
    const page = (n: string, rule: string): Decision => decision({ action: 'page', rule, severity: 'critical', group: pool, target: { kind: 'Node', name: n } });
    // two open incidents (one per rule), each with members; one is acknowledged
    await remediator.submit([page('gpu-001', 'xid-a'), page('gpu-002', 'xid-a'), page('gpu-011', 'xid-b'), page('gpu-012', 'xid-b')]);
    const cordonOf = (n: string, rule: string): Decision => cordon(n, { rule, group: pool });
    expect(await inc.heldByAll([cordonOf('gpu-001', 'xid-a')]), 'not acknowledged yet').to.deep.equal([null]);
    const open = (await inc.list()).map((i) => i.dedupKey);
    const keyOf = (rule: string): string => open.find((k) => k.includes(rule)) ?? '';
    await inc.acknowledge(keyOf('xid-a'), 'ann', 'slack');
    const ds = [cordonOf('gpu-001', 'xid-a'), cordonOf('gpu-011', 'xid-b'), cordonOf('gpu-002', 'xid-a'), cordonOf('gpu-012', 'xid-b')];
    const before = exec.log.length;
    const { records } = await remediator.submit(ds);
    expect(records.map((r) => `${r.target.name} ${r.outcome} ${r.guard ?? ''}`)).to.deep.equal(['gpu-001 suppressed incidentAcknowledged', 'gpu-011 executed ', 'gpu-002 suppressed incidentAcknowledged', 'gpu-012 executed ']);
    expect(exec.log.slice(before).filter((l) => l.startsWith('start')).map((l) => l.slice(6))).to.deep.equal([ds[1]?.id, ds[3]?.id]);
    const members = (await inc.get(keyOf('xid-b')))?.members ?? {};
    expect(Object.fromEntries(Object.entries(members).map(([m, v]) => [m, v.facts]))).to.deep.equal({ 'gpu-011': ['cordon executed'], 'gpu-012': ['cordon executed'] });
  });

  it('guard.actionConcurrency is bounded 1..64 (default 8)', () => {
    expect(DEFAULT_CONFIG.guard.actionConcurrency).to.equal(8);
    expect(() => resolveConfig({ text: 'guard: { actionConcurrency: 0 }' })).to.throw();
    expect(() => resolveConfig({ text: 'guard: { actionConcurrency: 65 }' })).to.throw();
    expect(resolveConfig({ text: 'guard: { actionConcurrency: 16 }' }).guard.actionConcurrency).to.equal(16);
    expect(() => createRemediator({ guard: createMemoryGuard({ view: new FakeCluster(), options: guardOptionsFromConfig(DEFAULT_CONFIG), clock: new ManualClock(T0) }), executors: [], ledger: [], clock: new ManualClock(T0), logger: silentLogger, autoFlush: false, actionConcurrency: 0 })).to.throw(/concurrency/);
  });
});
