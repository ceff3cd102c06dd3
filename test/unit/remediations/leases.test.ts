/**
 * In-flight lease renewal and the fence before the ledger write (ADR 0026):
 * two remediators over one guard state, as two engine replicas over one Redis.
 */
import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { Decision } from '../../../core/decision.js';
import { silentLogger } from '../../../core/logger.js';
import { createMemoryGuard, MemoryGuardState } from '../../../remediations/guard/memory-guard.js';
import { guardOptionsFromConfig } from '../../../remediations/guard/policy.js';
import { MemoryLedger } from '../../../remediations/ledger/memory-ledger.js';
import type { ExecutionResult, Executor, Guard, Remediator } from '../../../remediations/ports.js';
import { createRemediator } from '../../../remediations/remediator.js';
import { cordon, FakeCluster, FakeClusterExecutor } from './fake-cluster.js';

const T0 = Date.parse('2026-12-02T10:00:00Z');

/** An executor whose actions wait until the test lets them finish (a replica stalled inside its PATCH). */
class HeldExecutor implements Executor {
  readonly actions = ['cordon'] as const;
  readonly calls: Decision[] = [];
  private release: (() => void) | undefined;
  private readonly gate = new Promise<void>((resolve) => (this.release = resolve));
  async execute(d: Decision): Promise<ExecutionResult> {
    this.calls.push(d);
    await this.gate;
    return { ok: true, detail: `cordon ${d.target.name}` };
  }
  finish(): void {
    this.release?.();
  }
}

interface Replica {
  remediator: Remediator;
  ledger: MemoryLedger;
}

function world(leaseMs: number) {
  const clock = new ManualClock(T0);
  const cluster = FakeCluster.fleet(100, ['h100-train']);
  const state = new MemoryGuardState();
  const options = guardOptionsFromConfig(DEFAULT_CONFIG, { inFlightTtlMs: leaseMs });
  const replica = (executor: Executor, wrap: (g: Guard) => Guard = (g) => g): Replica => {
    const ledger = new MemoryLedger();
    const guard = wrap(createMemoryGuard({ view: cluster, options, clock, state }));
    const remediator = createRemediator({ guard, executors: [executor], ledger: [ledger], clock, logger: silentLogger, autoFlush: false, leaseMs });
    return { remediator, ledger };
  };
  return { clock, cluster, state, replica };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ok(); i++) await sleep(5);
  if (!ok()) throw new Error(`timed out waiting for ${what}`);
}

describe('remediator: in-flight leases (ADR 0026)', () => {
  it('fences the ledger write: a lease that lapsed and was taken over is neither recorded nor settled by the stalled replica', async () => {
    const w = world(15_000);
    const held = new HeldExecutor();
    const a = w.replica(held);
    const b = w.replica(new FakeClusterExecutor(w.cluster));
    const d = cordon('gpu-007', { id: 'fence-1' });
    const stalled = a.remediator.submit([d]);
    await until('replica a inside its cordon', () => held.calls.length === 1);
    // a stalls past its lease (its renewals never got through); b takes the decision over and acts
    w.clock.advance(15_000);
    const taken = await b.remediator.submit([d]);
    expect(taken.records.map((r) => `${r.action} ${r.outcome}`)).to.deep.equal(['cordon executed']);
    expect(taken.retryLater).to.deep.equal([]);
    expect(w.state.decisions.get('fence-1')).to.include({ state: 'done', extra: 'executed' });
    // a wakes up: its action ran, but the decision is b's now
    held.finish();
    const recs = await stalled;
    expect(recs.records, 'no record: the other replica holds it').to.deep.equal([]);
    expect(recs.retryLater.map((r) => `${r.decisionId} ${r.action} ${r.target.name}`), 'returned as retry-later').to.deep.equal(['fence-1 cordon gpu-007']);
    expect(recs.retryLater[0]!.inFlight).to.contain('taken over by another replica');
    expect(a.ledger.records, 'no ledger record written by the replica that lost the lease').to.deep.equal([]);
    expect(b.ledger.records.map((r) => `${r.decisionId} ${r.outcome}`)).to.deep.equal(['fence-1 executed']);
    expect(w.state.decisions.get('fence-1'), 'b\'s settle stands').to.include({ state: 'done', extra: 'executed' });
    await a.remediator.close();
    await b.remediator.close();
  });

  it('renews a held lease every third of it: a slow action keeps its decision past the first lease end', async function () {
    this.timeout(10_000);
    const w = world(3000); // renewed every 1 s (wall clock)
    const held = new HeldExecutor();
    const a = w.replica(held);
    const other = new FakeClusterExecutor(w.cluster);
    const b = w.replica(other);
    const d = cordon('gpu-008', { id: 'renew-1' });
    const slow = a.remediator.submit([d]);
    await until('replica a inside its cordon', () => held.calls.length === 1);
    w.clock.advance(2000);
    const before = w.state.decisions.get('renew-1')?.until;
    await until('a renewal', () => (w.state.decisions.get('renew-1')?.until ?? 0) > (before ?? 0));
    expect(w.state.decisions.get('renew-1')?.until).to.equal(T0 + 2000 + 3000);
    w.clock.advance(2000); // past the first lease end (T0 + 3 s)
    const busy = await b.remediator.submit([d]);
    expect(busy.records, 'still in flight at a: no record').to.deep.equal([]);
    expect(busy.retryLater.map((r) => r.decisionId), 'still in flight at a').to.deep.equal(['renew-1']);
    expect(other.calls).to.deep.equal([]);
    held.finish();
    expect((await slow).records.map((r) => `${r.action} ${r.outcome}`)).to.deep.equal(['cordon executed']);
    expect(a.ledger.records.map((r) => r.decisionId)).to.deep.equal(['renew-1']);
    expect(w.state.decisions.get('renew-1')).to.include({ state: 'done' });
    await a.remediator.close();
    await b.remediator.close();
  });

  it('fails closed when the fence cannot renew: nothing written or settled, the record is written once the guard answers', async () => {
    const w = world(15_000);
    let down = true;
    const a = w.replica(new FakeClusterExecutor(w.cluster), (g) => ({
      holder: g.holder,
      authorize: (d) => g.authorize(d),
      authorizeBatch: (ds) => g.authorizeBatch(ds),
      settle: (d, v, r) => g.settle(d, v, r),
      renew: (ids, h, ttl) => (down ? Promise.reject(new Error('redis down')) : g.renew(ids, h, ttl)),
      peek: (ds) => g.peek(ds),
    }));
    const d = cordon('gpu-009', { id: 'fence-down' });
    let err: unknown;
    try {
      await a.remediator.submit([d]);
    } catch (e) {
      err = e;
    }
    expect(err).to.include({ code: 'UNAVAILABLE', retriable: true });
    expect(String((err as Error).message)).to.contain('lease renewal before the ledger write failed');
    expect(a.ledger.records).to.deep.equal([]);
    expect(w.state.decisions.get('fence-down'), 'not settled').to.include({ state: 'in-flight' });
    down = false;
    expect((await a.remediator.flush()).records.map((r) => `${r.decisionId} ${r.outcome}`)).to.deep.equal(['fence-down executed']);
    expect(a.ledger.records.map((r) => r.decisionId)).to.deep.equal(['fence-down']);
    expect(w.state.decisions.get('fence-down')).to.include({ state: 'done' });
    await a.remediator.close();
  });
});
