import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { Decision } from '../../../core/decision.js';
import { MemoryLogger } from '../../../core/logger.js';
import { guardReconcileJob, staleReservation } from '../../../jobs/guard-reconcile.js';
import type { JobContext } from '../../../jobs/job.js';
import { parseReservation } from '../../../remediations/guard/redis-guard.js';
import { ruleStateTrimmer, trimStateJob } from '../../../jobs/trim-state.js';
import { StoreKeys } from '../../../adapters/redis/keys.js';
import type { StateTrimmer } from '../../../jobs/trim-state.js';
import { createMemoryGuard } from '../../../remediations/guard/memory-guard.js';
import { guardOptionsFromConfig } from '../../../remediations/guard/policy.js';
import { MemoryStateStore } from '../../../rules/store/memory-store.js';
import { FakeCluster } from '../remediations/fake-cluster.js';

const T0 = Date.parse('2026-11-21T10:00:00Z');
const ctx = (now: number, signal = new AbortController().signal): JobContext => ({ signal, now, scheduledAt: now, logger: new MemoryLogger() });

function cordonDecision(node: string, id = `d-${node}`): Decision {
  return { id, at: T0, rule: 'gpu-xid-fatal', action: 'cordon', target: { kind: 'Node', name: node }, reason: 'test', group: { pool: 'pool-a' } };
}

describe('jobs: guard-reconcile', () => {
  it('a reservation is stale once expired, or when its node left a view that knows nodes', () => {
    const view = FakeCluster.fleet(3);
    const stale = staleReservation(T0, view);
    expect(stale({ node: 'gpu-000', exp: T0 + 1 })).to.equal(false);
    expect(stale({ node: 'gpu-000', exp: T0 })).to.equal(true);
    expect(stale({ node: 'gpu-gone', exp: T0 + 60_000 })).to.equal(true);
    expect(staleReservation(T0, new FakeCluster())({ node: 'gpu-gone', exp: T0 + 60_000 })).to.equal(false);
    expect(parseReservation('n', '{"id":"r","scopes":["fleet"],"exp":123}')).to.deep.equal({ node: 'n', exp: 123 });
    expect(parseReservation('n', 'not json')).to.equal(null);
  });

  it('re-lists the view, then releases stale reservations of the memory guard so budget frees up at once', async () => {
    const clock = new ManualClock(T0);
    // 40 nodes: maxUnavailable 5% → 2
    const view = FakeCluster.fleet(40);
    const guard = createMemoryGuard({ view, options: guardOptionsFromConfig(DEFAULT_CONFIG, { targetCooldownMs: 0 }), clock });
    const a = await guard.authorize(cordonDecision('gpu-001'));
    const b = await guard.authorize(cordonDecision('gpu-002'));
    expect([a.allowed, b.allowed]).to.deep.equal([true, true]);
    expect((await guard.authorize(cordonDecision('gpu-003'))).guard).to.equal('maxUnavailable');
    // gpu-001 is deleted; gpu-002's replica crashed and its lease ran out
    view.nodes.delete('gpu-001');
    const r002 = guard.state.reservations.get('gpu-002');
    if (r002) r002.exp = T0 + 1000;
    let relisted = 0;
    const job = guardReconcileJob({ view, reconcilable: { reconcile: () => Promise.resolve(void relisted++), listedAt: () => 0 }, guard });
    clock.set(T0 + 2000);
    const summary = await job.run(ctx(clock.now()));
    expect(relisted).to.equal(1);
    expect(summary).to.deep.equal({ relisted: true, nodes: 39, unavailable: 0, reservationsReleased: 2 });
    expect(guard.state.reservations.size).to.equal(0);
    expect((await guard.authorize(cordonDecision('gpu-003', 'd-again'))).allowed).to.equal(true);
  });

  it('re-lists only a view whose last full list is older than maxViewAgeMs: no LIST of every Node each minute (issue 13)', async () => {
    let relisted = 0;
    let listedAt = T0 - 60_000;
    const view = FakeCluster.fleet(3);
    const job = guardReconcileJob({ view, reconcilable: { reconcile: () => Promise.resolve(void (relisted++, (listedAt = T0 + 360_000))), listedAt: () => listedAt }, maxViewAgeMs: 300_000 });
    // a minute after the last list (the watch keeps the view current): no re-list
    expect(await job.run(ctx(T0))).to.deep.include({ relisted: false, nodes: 3 });
    expect(await job.run(ctx(T0 + 239_999))).to.deep.include({ relisted: false });
    expect(relisted).to.equal(0);
    // five minutes after it: one re-list, and the next minute none again
    expect(await job.run(ctx(T0 + 240_000))).to.deep.include({ relisted: true });
    expect(await job.run(ctx(T0 + 420_000))).to.deep.include({ relisted: false });
    expect(relisted).to.equal(1);
  });

  it('is replica-scoped: every replica refreshes its own view', () => {
    expect(guardReconcileJob({ view: new FakeCluster() }).scope).to.equal('replica');
  });

  it('a failing re-list fails the run (the scheduler logs and counts it)', async () => {
    const job = guardReconcileJob({ view: new FakeCluster(), reconcilable: { reconcile: () => Promise.reject(new Error('apiserver 503')), listedAt: () => 0 } });
    let err: unknown;
    try {
      await job.run(ctx(T0));
    } catch (e) {
      err = e;
    }
    expect(String(err)).to.include('apiserver 503');
  });
});

describe('jobs: trim-state', () => {
  it('sweeps expired keys of the memory state store', async () => {
    const store = new MemoryStateStore();
    store.execSync([
      { op: 'window.add', key: 'a', member: 'e1', ts: T0, windowMs: 1000, ttlMs: 1000 },
      { op: 'window.add', key: 'b', member: 'e2', ts: T0, windowMs: 1000, ttlMs: 60_000 },
      // moves the store's clock (op time) past a's expiry
      { op: 'window.add', key: 'c', member: 'e3', ts: T0 + 5000, windowMs: 1000, ttlMs: 60_000 },
    ]);
    expect(store.size()).to.equal(3);
    const out = await trimStateJob([ruleStateTrimmer(store, { keys: new StoreKeys('nw:'), rules: [] })]).run(ctx(T0 + 5000));
    expect(out).to.deep.equal({ ruleState: 1 });
    expect(store.size()).to.equal(2);
  });

  it('runs every trimmer even when one fails, then fails the run naming it', async () => {
    const ran: string[] = [];
    const ok = (name: string, n: number): StateTrimmer => ({ name, trim: () => (ran.push(name), Promise.resolve(n)) });
    const bad: StateTrimmer = { name: 'ledgerStream', trim: () => Promise.reject(new Error('READONLY replica')) };
    let err: unknown;
    try {
      await trimStateJob([ok('a', 1), bad, ok('b', 2)]).run(ctx(T0));
    } catch (e) {
      err = e;
    }
    expect(ran).to.deep.equal(['a', 'b']);
    expect(String(err)).to.include('ledgerStream: READONLY replica');
  });

  it('stops between trimmers once aborted', async () => {
    const ac = new AbortController();
    const ran: string[] = [];
    const job = trimStateJob([
      { name: 'first', trim: () => (ran.push('first'), ac.abort(new Error('timed out')), Promise.resolve(0)) },
      { name: 'second', trim: () => (ran.push('second'), Promise.resolve(0)) },
    ]);
    let err: unknown;
    try {
      await job.run(ctx(T0, ac.signal));
    } catch (e) {
      err = e;
    }
    expect(ran).to.deep.equal(['first']);
    expect(String(err)).to.include('timed out');
  });
});
