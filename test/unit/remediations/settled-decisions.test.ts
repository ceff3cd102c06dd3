/**
 * One decision, one ledger record (issue 10): a decision that comes again —
 * a tick firing re-derived from the outbox every 15 s, a Kafka batch
 * redelivered after a crash between the guard's authorize and settle — is
 * asked of the guard read-only first (`peek`), so one already settled is
 * neither routed to its incident again nor recorded again. Before, every
 * re-derivation of a page routed it to its (open) incident and wrote a
 * `suppressed/incidentOpen` record under the SAME ledger key as the executed
 * page: folded by key, the executed page read `suppressed`.
 *
 * The sink here keeps every record it is given (no folding), so a second
 * record of one key is seen.
 */
import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { Decision, LedgerRecord } from '../../../core/decision.js';
import { silentLogger } from '../../../core/logger.js';
import { createMemoryGuard, MemoryGuardState } from '../../../remediations/guard/memory-guard.js';
import { guardOptionsFromConfig } from '../../../remediations/guard/policy.js';
import { MemoryDocStore } from '../../../remediations/incidents/doc-store.js';
import type { Incident } from '../../../remediations/incidents/incident.js';
import { createIncidentPaging } from '../../../remediations/incidents/incident-paging.js';
import type { LedgerWriter } from '../../../remediations/ledger/store.js';
import { ledgerKey } from '../../../remediations/ledger/record.js';
import { createPagerExecutor } from '../../../remediations/pager/pager-executor.js';
import { createRecordingPager } from '../../../remediations/pager/recording-pager.js';
import type { ExecutionResult, Executor } from '../../../remediations/ports.js';
import { createRemediator } from '../../../remediations/remediator.js';
import { cordon, decision, FakeCluster, FakeClusterExecutor } from './fake-cluster.js';

const T0 = Date.parse('2026-11-21T10:15:00Z');
const GROUP = { pool: 'h100-train' };

/** Every record written, unfolded. */
class AllRecords implements LedgerWriter {
  readonly name = 'all';
  readonly records: LedgerRecord[] = [];
  failNext = 0;
  append(rs: readonly LedgerRecord[]): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      return Promise.reject(new Error('broker down'));
    }
    this.records.push(...rs);
    return Promise.resolve();
  }
}

/** Replicas over one guard state, one incident store and one cluster; each with its own executors and ledger writer. */
function shared() {
  const clock = new ManualClock(T0);
  return { clock, cluster: FakeCluster.fleet(100, ['h100-train']), guardState: new MemoryGuardState(), incidents: new MemoryDocStore(clock), ledger: new AllRecords(), pager: createRecordingPager() };
}

function replica(s: ReturnType<typeof shared>, executor: Executor = new FakeClusterExecutor(s.cluster)) {
  const guard = createMemoryGuard({ view: s.cluster, options: guardOptionsFromConfig(DEFAULT_CONFIG, { maxUnavailablePerGroup: '100%' }), clock: s.clock, state: s.guardState });
  return createRemediator({
    guard,
    executors: [executor, createPagerExecutor({ pagers: [s.pager], logger: silentLogger })],
    ledger: [s.ledger],
    clock: s.clock,
    logger: silentLogger,
    autoFlush: false,
    incidents: createIncidentPaging({ store: s.incidents, clock: s.clock }),
  });
}

/** One firing of a node rule: cordon + page, the ids an episode gives them (re-derived: the same ids). */
function firing(node: string): Decision[] {
  return [
    cordon(node, { id: `ep-${node}:cordon`, rule: 'containerd-unresponsive', group: GROUP }),
    decision({ id: `ep-${node}:page`, action: 'page', rule: 'containerd-unresponsive', severity: 'critical', dedupKey: `containerd-unresponsive:${node}`, target: { kind: 'Node', name: node }, group: GROUP }),
  ];
}

const keysOf = (rs: readonly LedgerRecord[], of: (r: LedgerRecord) => boolean = () => true): string[] => rs.filter(of).map((r) => `${ledgerKey(r) ?? '?'} ${r.action} ${r.outcome}/${r.guard ?? '-'}`);
/** Folded by ledger key, the last record wins (a compacted topic, a reader that dedupes by key). */
const folded = (rs: readonly LedgerRecord[]): Map<string, string> => new Map(rs.map((r) => [ledgerKey(r) ?? '?', `${r.action} ${r.outcome}/${r.guard ?? '-'}`]));
const isRulePage = (r: LedgerRecord): boolean => r.action === 'page' && !(r.decisionId ?? '').startsWith('incident:');

describe('settled decisions that come again (one decision, one ledger record)', () => {
  it('a tick firing re-derived from the outbox: the executed page is not routed to its incident again nor re-recorded', async () => {
    const s = shared();
    const a = replica(s);
    const b = replica(s);
    await a.submit(firing('gpu-001'));
    // the second node of the pool joins the open incident: its page is suppressed (one record, too)
    await a.submit(firing('gpu-002'));
    expect(keysOf(s.ledger.records)).to.deep.equal([
      'ep-gpu-001:cordon#1 cordon executed/-',
      'ep-gpu-001:page#1 page executed/-',
      'ep-gpu-002:cordon#1 cordon executed/-',
      'ep-gpu-002:page#1 page suppressed/incidentOpen',
    ]);
    const members = async (): Promise<string> => JSON.stringify((await s.incidents.read<Incident>('incident', [...(await s.incidents.ids('incident'))][0] ?? ''))?.doc.members);
    const membersBefore = await members();
    // the outbox re-derives both firings on every replica, every 15 s for 10 minutes
    for (let t = 15_000; t <= 600_000; t += 15_000) {
      s.clock.set(T0 + t);
      // (the incident's own update, due after its group interval, is not one of them)
      const again = [...(await a.submit([...firing('gpu-001'), ...firing('gpu-002')])).records, ...(await b.submit([...firing('gpu-001'), ...firing('gpu-002')])).records].filter((r) => r.decisionId?.startsWith('ep-'));
      expect(again.map((r) => r.guard), `at +${t / 1000}s`).to.deep.equal(Array(8).fill('idempotency'));
    }
    expect(keysOf(s.ledger.records, (r) => r.decisionId?.startsWith('ep-') === true), 'nothing recorded after the first time').to.have.length(4);
    expect(folded(s.ledger.records).get('ep-gpu-001:page#1'), 'the executed page, folded by key').to.equal('page executed/-');
    // the rule's page went out once; the other send is the incident's own update (gpu-002 joined), recorded under its own id
    expect(s.pager.sent, 'sends').to.have.length(s.ledger.records.filter((r) => r.action === 'page' && r.outcome === 'executed').length);
    expect(keysOf(s.ledger.records, (r) => r.action === 'page' && r.outcome === 'executed')).to.deep.equal(['ep-gpu-001:page#1 page executed/-', 'incident:nodewarden/incident/containerd-unresponsive/pool=h100-train:2#1 page executed/-']);
    expect(await members(), 'the incident\'s members and facts untouched by the re-derivations').to.equal(membersBefore);
  });

  it('a redelivered batch after a crash between authorize and settle: each decision recorded once, a failed first write not lost', async () => {
    const s = shared();
    const real = new FakeClusterExecutor(s.cluster);
    // replica A dies inside the cordon of gpu-002 (after authorize, before settle): nothing of its batch is recorded
    const a = replica(s, { actions: ['cordon'], execute: (d) => (d.target.name === 'gpu-002' ? new Promise<ExecutionResult>(() => undefined) : real.execute(d)) });
    const batch = [...firing('gpu-001'), ...firing('gpu-002')];
    void a.submit(batch, { redeliverable: true });
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    expect(real.calls.map((d) => d.id), 'A cordoned gpu-001, then died in the cordon of gpu-002').to.deep.equal(['ep-gpu-001:cordon']);
    expect(s.ledger.records).to.have.length(0);
    const b = replica(s);
    // the batch redelivered to B; its first ledger write fails (the batch comes again)
    s.clock.set(T0 + 1000);
    s.ledger.failNext = 1;
    let threw = false;
    await b.submit(batch, { redeliverable: true }).catch(() => (threw = true));
    expect(threw, 'the failed write throws: the batch is redelivered').to.equal(true);
    // redelivered while A's lease runs: what A held is left to it (retry later), the page that joined the incident is recorded
    s.clock.set(T0 + 2000);
    const second = await b.submit(batch, { redeliverable: true });
    expect(second.retryLater.map((r) => `${r.decisionId} ${r.action} ${r.target.name}`), 'in flight at A: not recorded, retried later').to.deep.equal([
      'ep-gpu-001:cordon cordon gpu-001',
      'ep-gpu-001:page page gpu-001',
      'ep-gpu-002:cordon cordon gpu-002',
    ]);
    for (const r of second.retryLater) expect(r.inFlight, r.decisionId).to.match(/in flight elsewhere/);
    expect(second.records.map((r) => `${r.decisionId} ${r.outcome}/${r.guard ?? '-'}`)).to.deep.equal([
      // its first write failed: not lost, recorded now (the guard remembers a suppressed page only once it is durable)
      'ep-gpu-002:page suppressed/incidentOpen',
    ]);
    // redelivered again and again (the in-flight decisions are retried; A's 60 s lease lapses and B takes over)
    for (let t = 15_000; t <= 120_000; t += 15_000) {
      s.clock.set(T0 + t);
      await b.submit(batch, { redeliverable: true });
    }
    const byKey = new Map<string, number>();
    for (const r of s.ledger.records) byKey.set(ledgerKey(r) ?? '?', (byKey.get(ledgerKey(r) ?? '?') ?? 0) + 1);
    expect([...byKey.entries()].filter(([, n]) => n > 1), `keys recorded more than once in ${JSON.stringify(keysOf(s.ledger.records))}`).to.deep.equal([]);
    expect(keysOf(s.ledger.records, (r) => r.action === 'cordon')).to.deep.equal(['ep-gpu-001:cordon#1 cordon executed/-', 'ep-gpu-002:cordon#1 cordon executed/-']);
    expect(keysOf(s.ledger.records, isRulePage).sort()).to.have.length(2);
    expect(s.cluster.getNode('gpu-002')?.unschedulable).to.equal(true);
    // settled now: one more redelivery records nothing and routes nothing
    s.clock.set(T0 + 200_000);
    const n = s.ledger.records.length;
    expect((await b.submit(batch, { redeliverable: true })).records.map((r) => r.guard)).to.deep.equal(Array(4).fill('idempotency'));
    expect(s.ledger.records).to.have.length(n);
  });
});
