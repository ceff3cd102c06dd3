import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { Decision, LedgerRecord } from '../../../core/decision.js';
import { MemoryLogger, silentLogger } from '../../../core/logger.js';
import { MemoryLedger } from '../../../remediations/ledger/memory-ledger.js';
import { MemoryJobState } from '../../../jobs/job-state.js';
import type { JobContext } from '../../../jobs/job.js';
import {
  applyLedger,
  emptyResolveState,
  pagesToResolve,
  resolveClearedJob,
  resolveDecision,
  targetNode,
} from '../../../jobs/resolve-cleared.js';
import type { ResolveClearedState, RuleActivity } from '../../../jobs/resolve-cleared.js';
import { createMemoryGuard } from '../../../remediations/guard/memory-guard.js';
import { guardOptionsFromConfig } from '../../../remediations/guard/policy.js';
import { createPagerExecutor } from '../../../remediations/pager/pager-executor.js';
import { createRecordingPager } from '../../../remediations/pager/recording-pager.js';
import { createRemediator } from '../../../remediations/remediator.js';
import type { Remediator } from '../../../remediations/ports.js';
import { FakeCluster } from '../remediations/fake-cluster.js';

const T0 = Date.parse('2026-11-21T10:00:00Z');
const MIN = 60_000;
const iso = (t: number): string => new Date(t).toISOString();

function page(rule: string, node: string, t: number, over: Partial<LedgerRecord> = {}): LedgerRecord {
  return {
    ts: iso(t),
    rule,
    action: 'page',
    target: { kind: 'Node', name: node },
    outcome: 'executed',
    reason: `${rule} on ${node}`,
    guard: null,
    severity: 'critical',
    dedupKey: `nodewarden/${rule}/${node}`,
    ...over,
  };
}
function resolve(rule: string, node: string, t: number): LedgerRecord {
  return { ...page(rule, node, t), action: 'resolve', reason: 'resolved' };
}
function cordon(rule: string, node: string, t: number, outcome: LedgerRecord['outcome'] = 'executed'): LedgerRecord {
  return { ts: iso(t), rule, action: 'cordon', target: { kind: 'Node', name: node }, outcome, reason: 'x', guard: outcome === 'denied' ? 'maxUnavailable' : null };
}
function uncordon(rule: string, node: string, t: number): LedgerRecord {
  return { ...cordon(rule, node, t), action: 'uncordon' };
}

const allActive: RuleActivity = () => true;

describe('jobs: resolve-cleared (pure)', () => {
  it('follows open pages: executed pages open, executed resolves of the same dedup key close, others are ignored', () => {
    const s = emptyResolveState();
    applyLedger(s, [
      page('gpu-xid-fatal', 'gpu-001', T0),
      page('gpu-xid-fatal', 'gpu-002', T0),
      page('gpu-xid-fatal', 'gpu-003', T0, { outcome: 'denied', guard: 'rateLimit' }),
      page('gpu-xid-fatal', 'gpu-004', T0, { outcome: 'dry-run' }),
      resolve('gpu-xid-fatal', 'gpu-002', T0 + MIN),
      { ...resolve('gpu-xid-fatal', 'gpu-001', T0 + MIN), outcome: 'failed' },
    ]);
    expect(Object.keys(s.open)).to.deep.equal(['nodewarden/gpu-xid-fatal/gpu-001']);
  });

  it('replays a re-read window to the same state (idempotent), and a re-trigger after a resolve reopens', () => {
    const recs = [page('r', 'gpu-001', T0), resolve('r', 'gpu-001', T0 + MIN), page('r', 'gpu-002', T0 + MIN)];
    const s = emptyResolveState();
    applyLedger(s, recs);
    const once = JSON.stringify(s);
    applyLedger(s, recs);
    expect(JSON.stringify(s)).to.equal(once);
    applyLedger(s, [page('r', 'gpu-001', T0 + 5 * MIN)]);
    expect(s.open['nodewarden/r/gpu-001']?.at).to.equal(T0 + 5 * MIN);
  });

  it('resolves pages of disabled and unloaded rules, never younger than minAge', () => {
    const s = emptyResolveState();
    applyLedger(s, [page('disabled-rule', 'gpu-001', T0), page('gone-rule', 'gpu-002', T0), page('live-rule', 'gpu-003', T0), page('disabled-rule', 'gpu-004', T0 + 9 * MIN)]);
    const activity: RuleActivity = (rule) => (rule === 'gone-rule' ? undefined : rule !== 'disabled-rule');
    const c = pagesToResolve(s, { now: T0 + 10 * MIN, minAgeMs: 5 * MIN, view: FakeCluster.fleet(10), activity });
    expect(c.map((x) => [x.page.target.name, x.why])).to.deep.equal([
      ['gpu-001', 'rule disabled-rule is disabled'],
      ['gpu-002', 'rule gone-rule is no longer loaded'],
    ]);
  });

  it('resolves pages of deleted nodes, but not while the view knows no node at all (not synced yet)', () => {
    const s = emptyResolveState();
    applyLedger(s, [page('r', 'gpu-999', T0), page('r', 'gpu-001/0000:3b:00', T0, { dedupKey: 'k-gpu' })]);
    const view = FakeCluster.fleet(10);
    view.nodes.delete('gpu-001');
    const c = pagesToResolve(s, { now: T0 + 10 * MIN, minAgeMs: 5 * MIN, view, activity: allActive });
    expect(c.map((x) => x.why)).to.deep.equal(['node gpu-001 was deleted from the cluster', 'node gpu-999 was deleted from the cluster']);
    expect(pagesToResolve(s, { now: T0 + 10 * MIN, minAgeMs: 5 * MIN, view: new FakeCluster(), activity: allActive })).to.deep.equal([]);
  });

  it('resolves the page of a node a human uncordoned after the rule cordoned it, not one still cordoned or never cordoned', () => {
    const view = FakeCluster.fleet(10);
    const s = emptyResolveState();
    applyLedger(s, [
      cordon('gpu-xid-fatal', 'gpu-001', T0),
      page('gpu-xid-fatal', 'gpu-001', T0),
      cordon('gpu-xid-fatal', 'gpu-002', T0),
      page('gpu-xid-fatal', 'gpu-002', T0),
      cordon('gpu-xid-fatal', 'gpu-003', T0, 'denied'),
      page('gpu-xid-fatal', 'gpu-003', T0),
    ]);
    view.cordon('gpu-002', true); // still cordoned
    // gpu-001: uncordoned by a human (schedulable now); gpu-003: the cordon was denied, never done
    const c = pagesToResolve(s, { now: T0 + 10 * MIN, minAgeMs: 5 * MIN, view, activity: allActive });
    expect(c).to.have.length(1);
    expect(c[0]?.page.target.name).to.equal('gpu-001');
    expect(c[0]?.why).to.match(/^node gpu-001 was uncordoned by a human after gpu-xid-fatal cordoned it at 2026-11-21T10:00:00.000Z$/);
    // a fresh cordon may not be visible in the view yet: nothing before minAge
    expect(pagesToResolve(s, { now: T0 + 2 * MIN, minAgeMs: 5 * MIN, view, activity: allActive })).to.deep.equal([]);
  });

  it('leaves pages alone when nodewarden uncordoned the node itself (the engine resolved on clear) or the cordon is from another episode', () => {
    const view = FakeCluster.fleet(10);
    const s = emptyResolveState();
    applyLedger(s, [cordon('r', 'gpu-001', T0), page('r', 'gpu-001', T0), uncordon('r', 'gpu-001', T0 + 2 * MIN), cordon('r', 'gpu-002', T0 - 60 * MIN), page('r', 'gpu-002', T0)]);
    expect(pagesToResolve(s, { now: T0 + 30 * MIN, minAgeMs: 5 * MIN, view, activity: allActive })).to.deep.equal([]);
  });

  it('builds a stable resolve decision per page (same page → same id)', () => {
    const s: ResolveClearedState = emptyResolveState();
    applyLedger(s, [page('r', 'gpu-001', T0)]);
    const p = s.open['nodewarden/r/gpu-001'];
    if (!p) throw new Error('no page');
    const a = resolveDecision({ page: p, why: 'x' }, T0 + 10 * MIN);
    const b = resolveDecision({ page: p, why: 'x' }, T0 + 11 * MIN);
    expect(a.id).to.equal(b.id);
    expect(a).to.deep.include({ action: 'resolve', rule: 'r', dedupKey: 'nodewarden/r/gpu-001', severity: 'critical' });
    expect(targetNode({ kind: 'Node', name: 'gpu-7/0000:3b:00' })).to.equal('gpu-7');
    expect(targetNode({ kind: 'Group', name: 'pool=a' })).to.equal(null);
  });
});

describe('jobs: resolve-cleared (job through the real remediator)', () => {
  function setup() {
    const clock = new ManualClock(T0);
    const view = FakeCluster.fleet(20);
    const pager = createRecordingPager();
    const ledger = new MemoryLedger();
    const remediator = createRemediator({
      guard: createMemoryGuard({ view, options: guardOptionsFromConfig(DEFAULT_CONFIG), clock }),
      executors: [createPagerExecutor({ pagers: [pager], logger: silentLogger })],
      ledger: [ledger],
      clock,
      logger: silentLogger,
      autoFlush: false,
    });
    const disabled = new Set<string>();
    const state = new MemoryJobState();
    const job = resolveClearedJob({
      ledger,
      remediator,
      view,
      activity: (rule) => !disabled.has(rule),
      state,
      minAgeMs: 5 * MIN,
      lookbackMs: 7 * 24 * 60 * MIN,
    });
    const ctx = (now: number): JobContext => ({ signal: new AbortController().signal, now, scheduledAt: now, logger: new MemoryLogger() });
    return { clock, view, pager, ledger, job, ctx, disabled, state };
  }

  it('sends one resolve per page, ledgers it, and never resolves it twice across runs', async () => {
    const { clock, view, pager, ledger, job, ctx, disabled } = setup();
    await ledger.append([cordon('gpu-xid-fatal', 'gpu-001', T0), page('gpu-xid-fatal', 'gpu-001', T0), page('conntrack-near-full', 'gpu-002', T0), page('x', 'gpu-003', T0)]);
    view.cordon('gpu-001', true);
    clock.set(T0 + 10 * MIN);
    const r1 = await job.run(ctx(clock.now()));
    expect(r1).to.deep.include({ resolved: 0, open: 3 });
    // a human repairs and uncordons gpu-001; an operator disables conntrack-near-full
    view.uncordon('gpu-001');
    disabled.add('conntrack-near-full');
    clock.set(T0 + 11 * MIN);
    const r2 = await job.run(ctx(clock.now()));
    expect(r2).to.deep.include({ resolved: 2, open: 1 });
    expect(pager.sent.map((p) => [p.event, p.dedupKey])).to.deep.equal([
      ['resolve', 'nodewarden/conntrack-near-full/gpu-002'],
      ['resolve', 'nodewarden/gpu-xid-fatal/gpu-001'],
    ]);
    const resolves = ledger.entries.filter((e) => 'action' in e && e.action === 'resolve');
    expect(resolves).to.have.length(2);
    expect(resolves.every((e) => 'outcome' in e && e.outcome === 'executed')).to.equal(true);
    // later runs re-read the window (including the resolves) and do nothing more
    clock.set(T0 + 12 * MIN);
    expect(await job.run(ctx(clock.now()))).to.deep.include({ resolved: 0, open: 1 });
    clock.set(T0 + 13 * MIN);
    await job.run(ctx(clock.now()));
    expect(pager.sent).to.have.length(2);
  });

  it("matches each page to its resolve's record by decision id: a submit's other records and its retry-laters do not shift it", async () => {
    // found reworking submit: the job matched records to pages by position, so a denial page returned first
    // (or a decision in flight elsewhere) marked the wrong page resolved
    const clock = new ManualClock(T0);
    const view = FakeCluster.fleet(5);
    const ledger = new MemoryLedger();
    await ledger.append([page('r', 'gpu-001', T0), page('r', 'gpu-002', T0), page('r', 'gpu-003', T0)]);
    const expected: string[] = [];
    const remediator: Pick<Remediator, 'submit'> = {
      submit: (ds) => {
        const [one, two, three] = ds;
        if (!one || !two || !three) throw new Error(`expected 3 resolves, got ${ds.length}`);
        const rec = (d: Decision, outcome: LedgerRecord['outcome'], over: Partial<LedgerRecord> = {}): LedgerRecord =>
          ({ ts: iso(clock.now()), rule: d.rule, action: d.action, target: d.target, outcome, reason: d.reason, guard: null, decisionId: d.id, ...over });
        expected.push(`${one.dedupKey ?? '?'} denied`, `${two.dedupKey ?? '?'} in flight elsewhere`);
        return Promise.resolve({
          // a denial page that was due comes first; the third resolve executed, the first denied, the second in flight elsewhere
          records: [rec({ ...one, id: 'denial:x', action: 'page', target: { kind: 'Fleet', name: 'fleet' } }, 'executed'), rec(three, 'executed'), rec(one, 'denied', { guard: 'rateLimit' })],
          retryLater: [{ decisionId: two.id, rule: two.rule, action: two.action, target: two.target, reason: two.reason, inFlight: 'held elsewhere', ts: iso(clock.now()) }],
        });
      },
    };
    const job = resolveClearedJob({ ledger, remediator, view, activity: () => false, state: new MemoryJobState(), minAgeMs: MIN, lookbackMs: 24 * 60 * MIN });
    clock.set(T0 + 2 * MIN);
    const logger = new MemoryLogger();
    expect(await job.run({ signal: new AbortController().signal, now: clock.now(), scheduledAt: clock.now(), logger })).to.deep.include({ resolved: 1, notResolved: 2, open: 2 });
    const notDone = logger.records.filter((r) => r.msg === 'resolve not done; retried next run').map((r) => `${String(r.dedupKey)} ${String(r.outcome)}`);
    expect(notDone).to.deep.equal(expected);
    expect(expected).to.have.length(2);
  });

  it('retries a resolve whose pager failed on the next run', async () => {
    const clock = new ManualClock(T0);
    const view = FakeCluster.fleet(5);
    const ledger = new MemoryLedger();
    let failing = true;
    const sent: string[] = [];
    const remediator = createRemediator({
      guard: createMemoryGuard({ view, options: guardOptionsFromConfig(DEFAULT_CONFIG), clock }),
      executors: [
        createPagerExecutor({
          pagers: [{ name: 'flaky', send: (req) => (failing ? Promise.reject(new Error('HTTP 503')) : (sent.push(req.dedupKey), Promise.resolve())) }],
          logger: silentLogger,
        }),
      ],
      ledger: [ledger],
      clock,
      logger: silentLogger,
      autoFlush: false,
    });
    const job = resolveClearedJob({ ledger, remediator, view, activity: () => false, state: new MemoryJobState(), minAgeMs: MIN, lookbackMs: 24 * 60 * MIN });
    await ledger.append([page('r', 'gpu-001', T0)]);
    const logger = new MemoryLogger();
    clock.set(T0 + 2 * MIN);
    expect(await job.run({ signal: new AbortController().signal, now: clock.now(), scheduledAt: clock.now(), logger })).to.deep.include({ resolved: 0, notResolved: 1 });
    expect(logger.records.some((r) => r.msg === 'resolve not done; retried next run')).to.equal(true);
    failing = false;
    clock.set(T0 + 3 * MIN);
    expect(await job.run({ signal: new AbortController().signal, now: clock.now(), scheduledAt: clock.now(), logger })).to.deep.include({ resolved: 1 });
    expect(sent).to.deep.equal(['nodewarden/r/gpu-001']);
  });
});
