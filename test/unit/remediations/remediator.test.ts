import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { Decision } from '../../../core/decision.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../adapters/metrics.js';
import { createMemoryGuard } from '../../../remediations/guard/memory-guard.js';
import { guardOptionsFromConfig } from '../../../remediations/guard/policy.js';
import type { GuardOptions } from '../../../remediations/guard/policy.js';
import { MemoryLedger } from '../../../remediations/ledger/memory-ledger.js';
import { createPagerExecutor } from '../../../remediations/pager/pager-executor.js';
import { createRecordingPager } from '../../../remediations/pager/recording-pager.js';
import type { Remediator } from '../../../remediations/ports.js';
import { createRemediator } from '../../../remediations/remediator.js';
import type { Guard } from '../../../remediations/ports.js';
import type { DocStore } from '../../../remediations/incidents/doc-store.js';
import { createIncidentPaging } from '../../../remediations/incidents/incident-paging.js';
import { cordon, decision, FakeCluster, FakeClusterExecutor } from './fake-cluster.js';

/** A guard whose store is down: authorize, peek and renew reject. */
const downGuard = (msg: string): Guard => ({
  holder: 'down',
  authorize: () => Promise.reject(new Error(msg)),
  authorizeBatch: () => Promise.reject(new Error(msg)),
  settle: () => Promise.resolve(),
  renew: () => Promise.reject(new Error(msg)),
  peek: () => Promise.reject(new Error(msg)),
});

const T0 = Date.parse('2026-11-21T10:15:00Z');

function setup(o: { nodes?: number; dryRun?: boolean; guard?: Partial<GuardOptions>; guardImpl?: Guard; denialWindowMs?: number; denialRenotifyMs?: number } = {}) {
  const clock = new ManualClock(T0);
  const cluster = FakeCluster.fleet(o.nodes ?? 100, ['h100-train']);
  const exec = new FakeClusterExecutor(cluster);
  const pager = createRecordingPager();
  const ledger = new MemoryLedger();
  const registry = createRegistry('test');
  const guard = o.guardImpl ?? createMemoryGuard({ view: cluster, options: guardOptionsFromConfig(DEFAULT_CONFIG, o.guard), clock });
  const remediator = createRemediator({
    guard,
    executors: [exec, createPagerExecutor({ pagers: [pager], logger: silentLogger })],
    ledger: [ledger],
    clock,
    logger: silentLogger,
    registry,
    dryRun: o.dryRun ?? false,
    autoFlush: false,
    denialWindowMs: o.denialWindowMs ?? 30_000,
    ...(o.denialRenotifyMs === undefined ? {} : { denialRenotifyMs: o.denialRenotifyMs }),
  });
  return { clock, cluster, exec, pager, ledger, registry, remediator, guard };
}

/** A storm: Xid 79 on `count` distinct nodes, one cordon decision each, a second apart. */
async function storm(r: Remediator, clock: ManualClock, nodes: string[]): Promise<void> {
  for (const n of nodes) {
    await r.submit([cordon(n, { id: `xid79:${n}`, rule: 'gpu-xid-fatal', group: { pool: 'h100-train' }, at: clock.now() })]);
    clock.advance(1000);
  }
}

const stormNodes = (from: number, count: number): string[] => Array.from({ length: count }, (_, i) => `gpu-${String(from + i).padStart(3, '0')}`);

describe('remediator', () => {
  describe('acceptance: Xid 79 storm on 20 of 100 nodes', () => {
    it('cordons at most 5 and pages once about the rest', async () => {
      const { clock, cluster, exec, pager, ledger, remediator } = setup();
      await storm(remediator, clock, stormNodes(10, 20));
      const flushed = (await remediator.flush()).records;
      expect(exec.calls.filter((d) => d.action === 'cordon')).to.have.length(5);
      expect(cluster.unavailableCount()).to.equal(5);
      const cordons = ledger.records.filter((r) => r.action === 'cordon');
      expect(cordons.filter((r) => r.outcome === 'executed')).to.have.length(5);
      const denied = cordons.filter((r) => r.outcome === 'denied');
      expect(denied).to.have.length(15);
      expect(denied.every((r) => r.guard === 'maxUnavailable')).to.equal(true);
      // exactly one page, about all 15 denied nodes
      expect(pager.sent).to.have.length(1);
      const page = pager.sent[0]!;
      expect(page).to.include({ event: 'trigger', severity: 'critical', rule: 'gpu-xid-fatal', dedupKey: 'nodewarden:denied:maxUnavailable:gpu-xid-fatal:pool=h100-train' });
      const listed = (page.details?.evidence as { denied: Array<{ target: string }> }).denied.map((d) => d.target);
      expect(listed).to.deep.equal(denied.map((r) => `Node/${r.target.name}`));
      expect(page.summary).to.contain('guard maxUnavailable stopped 15 cordon action(s) of rule gpu-xid-fatal in pool=h100-train');
      expect(page.summary).to.contain('limit 5');
      // the page is a ledger record too
      expect(flushed).to.have.length(1);
      expect(flushed[0]).to.include({ rule: 'gpu-xid-fatal', action: 'page', outcome: 'executed', severity: 'critical', guard: null });
      expect(ledger.records.filter((r) => r.action === 'page')).to.have.length(1);
    });

    it('with 3 nodes already cordoned by people, cordons at most 2', async () => {
      const { clock, cluster, exec, pager, remediator } = setup();
      for (const n of ['gpu-090', 'gpu-091', 'gpu-092']) cluster.cordon(n, false);
      await storm(remediator, clock, stormNodes(10, 20));
      await remediator.flush();
      expect(exec.calls).to.have.length(2);
      expect(cluster.unavailableCount()).to.equal(5);
      expect(pager.sent).to.have.length(1);
      expect((pager.sent[0]!.details?.evidence as { denied: unknown[] }).denied).to.have.length(18);
    });

    it('in dry-run shows the same verdicts without touching the cluster or paging', async () => {
      const { clock, cluster, exec, pager, ledger, remediator } = setup({ dryRun: true });
      await storm(remediator, clock, stormNodes(10, 20));
      const flushed = (await remediator.flush()).records;
      expect(exec.calls).to.have.length(0);
      expect(cluster.unavailableCount()).to.equal(0);
      expect(pager.sent).to.have.length(0);
      const cordons = ledger.records.filter((r) => r.action === 'cordon');
      expect(cordons.filter((r) => r.outcome === 'dry-run')).to.have.length(5);
      expect(cordons.filter((r) => r.outcome === 'denied' && r.guard === 'maxUnavailable')).to.have.length(15);
      expect(flushed[0]).to.include({ action: 'page', outcome: 'dry-run' });
    });
  });

  describe('denial pages', () => {
    it('groups per guard+rule+group within the window; later windows are recorded, and page again only after the renotify interval', async () => {
      const { clock, pager, ledger, remediator } = setup({ nodes: 20, denialWindowMs: 30_000, denialRenotifyMs: 600_000 }); // limit 1
      await remediator.submit([cordon('gpu-000', { group: { pool: 'h100-train' } })]);
      await remediator.submit([cordon('gpu-001', { group: { pool: 'h100-train' } }), cordon('gpu-002', { group: { pool: 'h100-train' }, severity: 'warning' })]);
      await remediator.submit([cordon('gpu-003', { rule: 'containerd-down', severity: 'warning', group: { pool: 'h100-train' } })]);
      expect(pager.sent, 'held within the window').to.have.length(0);
      clock.advance(30_000);
      const recs = (await remediator.submit([])).records;
      expect(recs.map((r) => r.action)).to.deep.equal(['page', 'page']);
      expect(pager.sent.map((p) => [p.dedupKey, p.severity])).to.deep.equal([
        ['nodewarden:denied:maxUnavailable:gpu-xid-fatal:pool=h100-train', 'critical'],
        ['nodewarden:denied:maxUnavailable:containerd-down:pool=h100-train', 'warning'],
      ]);
      clock.advance(60_000);
      await remediator.submit([cordon('gpu-004', { group: { pool: 'h100-train' } })]);
      await remediator.flush();
      expect(pager.sent, 'the storm is one page while it is open').to.have.length(2);
      const followUp = ledger.records.filter((r) => r.action === 'page' && r.outcome === 'suppressed');
      expect(followUp).to.have.length(1);
      expect(followUp[0]).to.include({ guard: 'denialPageOpen', dedupKey: pager.sent[0]!.dedupKey });
      expect(followUp[0]!.reason).to.include('gpu-004');
      clock.advance(600_000);
      await remediator.submit([cordon('gpu-005', { group: { pool: 'h100-train' } })]);
      await remediator.flush();
      expect(pager.sent).to.have.length(3);
      expect(pager.sent[2]!.dedupKey).to.equal(pager.sent[0]!.dedupKey);
    });

    it('does not page for suppressed duplicates (idempotency, cooldown)', async () => {
      const { exec, pager, ledger, remediator } = setup();
      const d = cordon('gpu-000', { id: 'same' });
      await remediator.submit([d, d, cordon('gpu-000')]);
      await remediator.flush();
      expect(exec.calls).to.have.length(1);
      // one decision, one ledger record: the replay of `same` is returned as suppressed but not written again
      expect(ledger.records.map((r) => [r.outcome, r.guard])).to.deep.equal([
        ['executed', null],
        ['suppressed', 'cooldown'],
      ]);
      expect(pager.sent).to.have.length(0);
    });
  });

  describe('failures', () => {
    it('records a failed executor with its error and opens the breaker after N failures', async () => {
      const { exec, ledger, remediator, guard } = setup({ guard: { breaker: { failures: 3, windowMs: 60_000, openForMs: 60_000 } } });
      exec.failNext = 3;
      const recs = (await remediator.submit(stormNodes(0, 4).map((n) => cordon(n)))).records;
      expect(recs.map((r) => r.outcome)).to.deep.equal(['failed', 'failed', 'failed', 'denied']);
      expect(recs[0]!.error).to.equal('injected failure');
      expect(recs[3]!.guard).to.equal('circuitOpen');
      expect(exec.calls).to.have.length(3);
      expect(ledger.records).to.have.length(4);
      const st = await (guard as ReturnType<typeof createMemoryGuard>).status();
      expect(st.breakers.find((b) => b.action === 'cordon')?.state).to.equal('open');
    });

    it('fails closed when the guard is unreachable: no action, a denial, and the denial page goes out marked degraded', async () => {
      const broken = downGuard('ECONNREFUSED');
      const { exec, pager, remediator } = setup({ guardImpl: broken });
      const recs = (await remediator.submit([cordon('gpu-000')])).records;
      expect(recs[0]).to.include({ outcome: 'denied', guard: 'guardUnavailable' });
      expect(recs[0]!.details?.guardReason).to.contain('ECONNREFUSED');
      const pages = (await remediator.flush()).records;
      expect(exec.calls).to.have.length(0);
      expect(pages[0]).to.include({ action: 'page', outcome: 'executed', guard: null });
      expect(pages[0]!.details?.degraded).to.contain('ECONNREFUSED');
      expect(pager.sent).to.have.length(1);
      expect(pager.sent[0]!.summary).to.match(/^\[degraded: guard unavailable: ECONNREFUSED\]/);
    });

    it('pages of a rule still go out, marked degraded, while the guard is unreachable; remediation stays off', async () => {
      const broken = downGuard('redis down');
      const { exec, pager, remediator } = setup({ guardImpl: broken });
      const recs = (await remediator.submit([
        cordon('gpu-001'),
        decision({ action: 'page', rule: 'gpu-xid-fatal', severity: 'critical', dedupKey: 'gpu-xid-fatal:gpu-001', target: { kind: 'Node', name: 'gpu-001' } }),
      ])).records;
      expect(recs.map((r) => [r.action, r.outcome])).to.deep.equal([
        ['cordon', 'denied'],
        ['page', 'executed'],
      ]);
      expect(recs[1]!.details?.degraded).to.contain('redis down');
      expect(exec.calls).to.have.length(0);
      expect(pager.sent.map((p) => p.dedupKey)).to.deep.equal(['gpu-xid-fatal:gpu-001']);
      expect(pager.sent[0]!.summary).to.contain('[degraded: guard unavailable: redis down]');
    });

    it('pages still go out, marked degraded, when incident grouping shares the outage (its store down too)', async () => {
      const clock = new ManualClock(T0);
      const cluster = FakeCluster.fleet(10, ['h100-train']);
      const exec = new FakeClusterExecutor(cluster);
      const pager = createRecordingPager();
      let storeCalls = 0;
      const down = (): Promise<never> => Promise.reject(new Error('redis down'));
      const storeDown = (): Promise<never> => (storeCalls++, down());
      const store: DocStore = { read: storeDown, write: storeDown, remove: storeDown, ids: storeDown, claimOnce: storeDown };
      const remediator = createRemediator({
        guard: downGuard('redis down'),
        executors: [exec, createPagerExecutor({ pagers: [pager], logger: silentLogger })],
        ledger: [new MemoryLedger()],
        clock,
        logger: silentLogger,
        registry: createRegistry('test'),
        autoFlush: false,
        incidents: createIncidentPaging({ store, clock }),
      });
      // the engine's degraded evaluation submits only pages and resolves (rules/service/batch-processor.ts)
      const recs = (await remediator.submit([decision({ action: 'page', rule: 'gpu-xid-fatal', severity: 'critical', dedupKey: 'gpu-xid-fatal:gpu-001', target: { kind: 'Node', name: 'gpu-001' } })])).records;
      expect(recs.map((r) => [r.action, r.outcome])).to.deep.equal([['page', 'executed']]);
      expect(recs[0]!.details?.degraded).to.contain('redis down');
      expect(recs[0]!.details?.incidentUnavailable).to.contain('redis down');
      expect(exec.calls).to.have.length(0);
      expect(pager.sent.map((p) => p.summary)).to.have.length(1);
      expect(pager.sent[0]!.summary).to.contain('[degraded: guard unavailable: redis down]');
      // the engine's degraded evaluation says the store is down: no further wait on it for grouping
      const before = storeCalls;
      const again = (await remediator.submit([decision({ id: 'p2', action: 'page', rule: 'gpu-xid-fatal', severity: 'critical', dedupKey: 'gpu-xid-fatal:gpu-002', target: { kind: 'Node', name: 'gpu-002' } })], { redeliverable: true, storeDown: true })).records;
      expect(again.map((r) => [r.action, r.outcome])).to.deep.equal([['page', 'executed']]);
      expect(storeCalls - before, 'incident store calls while known down').to.equal(0);
      expect(pager.sent).to.have.length(2);
    });

    it('retries a failed cordon with back-off until it is carried out, once (same decision id)', async () => {
      const { clock, exec, cluster, ledger, pager, remediator } = setup();
      exec.failNext = 2;
      const first = (await remediator.submit([cordon('gpu-007', { id: 'xid79:gpu-007', group: { pool: 'h100-train' } })])).records;
      expect(first[0]).to.include({ outcome: 'failed' });
      expect(remediator.pendingRetries).to.equal(1);
      // not due yet
      expect(await remediator.flush()).to.deep.equal({ records: [], retryLater: [] });
      for (let i = 0; i < 4 && remediator.pendingRetries > 0; i++) {
        clock.advance(60_000);
        await remediator.flush();
      }
      expect(remediator.pendingRetries).to.equal(0);
      expect(cluster.unavailableCount()).to.equal(1);
      expect(exec.calls.map((d) => d.id)).to.deep.equal(['xid79:gpu-007', 'xid79:gpu-007', 'xid79:gpu-007']);
      expect(ledger.records.map((r) => r.outcome)).to.deep.equal(['failed', 'failed', 'executed']);
      expect(ledger.records.map((r) => r.details?.attempt ?? 1)).to.deep.equal([1, 2, 3]);
      expect(pager.sent).to.have.length(0);
    });

    it('pages once that an action could not be carried out when its retries run out', async () => {
      const { clock, exec, cluster, ledger, pager, remediator } = setup();
      exec.failNext = 1000;
      await remediator.submit([cordon('gpu-008', { id: 'a', group: { pool: 'h100-train' } }), cordon('gpu-009', { id: 'b', group: { pool: 'h100-train' } })]);
      for (let i = 0; i < 10; i++) {
        clock.advance(61_000);
        await remediator.flush();
      }
      expect(remediator.pendingRetries).to.equal(0);
      expect(cluster.unavailableCount()).to.equal(0);
      // 5 attempts each, then the breaker (3 failures) stops some of them: never more than 5 calls per decision
      const perDecision = (id: string): number => exec.calls.filter((d) => d.id === id).length;
      expect(perDecision('a')).to.be.within(1, 5);
      expect(perDecision('b')).to.be.within(1, 5);
      const pages = ledger.records.filter((r) => r.action === 'page');
      expect(pages).to.have.length(1);
      expect(pager.sent).to.have.length(1);
      expect(pager.sent[0]!.summary).to.contain('2 cordon action(s) of rule gpu-xid-fatal in pool=h100-train could not be carried out: gpu-008, gpu-009');
      expect(pager.sent[0]!.severity).to.equal('critical');
    });

    it('records a decision with no executor as failed, without acting', async () => {
      const clock = new ManualClock(T0);
      const cluster = FakeCluster.fleet(10);
      const r = createRemediator({
        guard: createMemoryGuard({ view: cluster, options: guardOptionsFromConfig(DEFAULT_CONFIG), clock }),
        executors: [],
        ledger: [],
        clock,
        logger: silentLogger,
        autoFlush: false,
      });
      const recs = (await r.submit([decision({ action: 'rollback', target: { kind: 'Deployment', namespace: 'ml', name: 'web' } })])).records;
      expect(recs[0]).to.include({ outcome: 'failed', error: 'no executor for action rollback' });
    });
  });

  describe('ledger records (brief §4)', () => {
    it('carries ts, rule, action, target, outcome, reason, guard; severity+dedupKey for pages; namespace+toRevision for rollbacks', async () => {
      const { remediator } = setup();
      const recs = (await remediator.submit([
        cordon('gpu-042', { rule: 'gpu-xid-fatal', reason: 'Xid 79 (GPU has fallen off the bus) on gpu-042' }),
        decision({ action: 'page', rule: 'gpu-xid-fatal', severity: 'critical', dedupKey: 'gpu-xid-fatal:gpu-042', target: { kind: 'Node', name: 'gpu-042' } }),
        decision({ action: 'rollback', rule: 'driver-rollout', target: { kind: 'DaemonSet', namespace: 'gpu-operator', name: 'nvidia-driver-daemonset' }, params: { toRevision: 3 } }),
      ])).records;
      expect(recs[0]).to.deep.include({
        ts: '2026-11-21T10:15:00.000Z',
        rule: 'gpu-xid-fatal',
        action: 'cordon',
        target: { kind: 'Node', name: 'gpu-042' },
        outcome: 'executed',
        reason: 'Xid 79 (GPU has fallen off the bus) on gpu-042',
        guard: null,
      });
      expect(recs[1]).to.include({ action: 'page', severity: 'critical', dedupKey: 'gpu-xid-fatal:gpu-042', outcome: 'executed' });
      expect(recs[2]).to.deep.include({ action: 'rollback', toRevision: 3, target: { kind: 'DaemonSet', namespace: 'gpu-operator', name: 'nvidia-driver-daemonset' } });
    });
  });

  describe('metrics', () => {
    it('counts actions by outcome and guard, denials by guard, and exposes budgets and breakers', async () => {
      const { clock, registry, remediator } = setup();
      await storm(remediator, clock, stormNodes(10, 7));
      await remediator.flush();
      const text = await registry.metrics();
      expect(text).to.contain('nodewarden_actions_total{action="cordon",outcome="executed",guard="",component="test"} 5');
      expect(text).to.contain('nodewarden_actions_total{action="cordon",outcome="denied",guard="maxUnavailable",component="test"} 2');
      expect(text).to.contain('nodewarden_guard_denials_total{guard="maxUnavailable",component="test"} 2');
      expect(text).to.contain('nodewarden_actions_total{action="page",outcome="executed",guard="",component="test"} 1');
      expect(text).to.contain('nodewarden_circuit_state{action="cordon",component="test"} 0');
      expect(text).to.contain('nodewarden_unavailable_nodes{scope="fleet",component="test"} 5');
      expect(text).to.contain('nodewarden_unavailable_nodes{scope="pool=h100-train",component="test"} 5');
      expect(text).to.match(/nodewarden_action_duration_seconds_count\{(component="test",action="cordon"|action="cordon",component="test")\} 5/);
    });
  });
});

export type { Decision };
