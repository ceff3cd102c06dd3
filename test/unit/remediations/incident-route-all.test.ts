/**
 * ADR 0050: a submit's run of pages and resolves is routed to their incidents
 * with one read and at most one write per incident per round (a send ends its
 * incident's round), with the outcomes and documents of routing them one by one.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { Decision, LedgerRecord } from '../../../core/decision.js';
import { silentLogger } from '../../../core/logger.js';
import { createMemoryGuard } from '../../../remediations/guard/memory-guard.js';
import { guardOptionsFromConfig } from '../../../remediations/guard/policy.js';
import { MemoryDocStore, type DocStore, type Versioned } from '../../../remediations/incidents/doc-store.js';
import { createIncidentPaging, INCIDENT_NS, type IncidentPaging, type RouteOutcome } from '../../../remediations/incidents/incident-paging.js';
import type { Incident } from '../../../remediations/incidents/incident.js';
import { MemoryLedger } from '../../../remediations/ledger/memory-ledger.js';
import { createPagerExecutor } from '../../../remediations/pager/pager-executor.js';
import { createRecordingPager } from '../../../remediations/pager/recording-pager.js';
import { createRemediator } from '../../../remediations/remediator.js';
import { Silences } from '../../../remediations/silences/silence.js';
import { cordon, decision, FakeCluster, FakeClusterExecutor } from './fake-cluster.js';

const T0 = Date.parse('2026-12-03T19:00:00Z');

/** A memory DocStore that counts the reads and writes of incident documents. */
class CountingStore implements DocStore {
  reads = 0;
  writes = 0;
  constructor(private readonly inner: DocStore) {}
  read<T>(ns: string, id: string): Promise<Versioned<T> | null> {
    if (ns === INCIDENT_NS) this.reads++;
    return this.inner.read<T>(ns, id);
  }
  write<T>(ns: string, id: string, doc: T, expected: number, ttlMs?: number): Promise<number> {
    if (ns === INCIDENT_NS) this.writes++;
    return this.inner.write(ns, id, doc, expected, ttlMs);
  }
  remove(ns: string, id: string, expected: number): Promise<boolean> {
    return this.inner.remove(ns, id, expected);
  }
  ids(ns: string): Promise<string[]> {
    return this.inner.ids(ns);
  }
  claimOnce(ns: string, id: string, ttlMs: number): Promise<boolean> {
    return this.inner.claimOnce(ns, id, ttlMs);
  }
}

const page = (node: string, pool: string, over: Partial<Decision> = {}): Decision =>
  decision({ action: 'page', rule: 'gpu-xid-fatal', severity: 'critical', group: { pool }, target: { kind: 'Node', name: node }, reason: `Xid 79 on ${node}`, dedupKey: `nodewarden/gpu-xid-fatal/${node}`, ...over });

function setup() {
  const clock = new ManualClock(T0);
  const cluster = FakeCluster.fleet(40, ['h100-train', 'a100-infer']);
  const store = new CountingStore(new MemoryDocStore(clock));
  const incidents = createIncidentPaging({ store, clock, silences: new Silences(store, clock) });
  const pager = createRecordingPager();
  const base = guardOptionsFromConfig(DEFAULT_CONFIG);
  const guard = createMemoryGuard({
    view: cluster,
    options: { ...base, maxUnavailable: '5', maxUnavailablePerGroup: '100%', targetCooldownMs: 0, rateLimits: { ...base.rateLimits, cordon: { count: 10_000, windowMs: 600_000 }, page: { count: 10_000, windowMs: 60_000 } } },
    clock,
  });
  const remediator = createRemediator({
    guard,
    executors: [new FakeClusterExecutor(cluster), createPagerExecutor({ pagers: [pager], logger: silentLogger })],
    ledger: [new MemoryLedger()],
    clock,
    logger: silentLogger,
    autoFlush: false,
    actionConcurrency: 8,
    actionRetry: { maxAttempts: 1, baseMs: 1000, maxMs: 1000 },
    incidents,
  });
  return { store, incidents, pager, remediator };
}

describe('incident routing in runs (ADR 0050)', () => {
  it("routes a storm's pages with one write per incident per round: the trigger, its settle, then every other page at once", async () => {
    const { store, incidents, remediator } = setup();
    const pools = ['h100-train', 'a100-infer'];
    const storm = Array.from({ length: 24 }, (_, i) => ({ node: `gpu-${String(i).padStart(3, '0')}`, pool: pools[i % 2] ?? '' }));
    // the storm as the engine submits it: a cordon and a page per node (the cordons go first, ADR 0041)
    const ds = storm.flatMap(({ node, pool }) => [cordon(node, { id: `c:${node}`, group: { pool } }), page(node, pool, { id: `p:${node}` })]);
    const { records } = await remediator.submit(ds);
    const pages = records.filter((r) => r.action === 'page');
    const show = (r: LedgerRecord): string => `${r.target.name} ${r.outcome} ${r.guard ?? ''}`;
    // one trigger per incident (its first page), every other page joined it; records in batch order
    expect(pages.map(show)).to.deep.equal(storm.map(({ node }, i) => `${node} ${i < 2 ? 'executed ' : 'suppressed incidentOpen'}`));
    expect(records.filter((r) => r.action === 'cordon' && r.outcome === 'executed')).to.have.length(5);
    // per incident (none is open when the cordons' facts are noted): the first page + its trigger claim (1 write),
    // the trigger's settle (1), the 11 other pages (1). Without the change: a join write per page, a claim and a
    // settle: 2 × (12 + 1 + 1) = 28 writes, and as many reads
    expect(store.writes, `incident writes ${store.writes}`).to.equal(6);
    // reads: the same three per incident, plus the held-incident reads of the cordons' runs and their facts (ADR 0044)
    expect(store.reads, `incident reads ${store.reads}`).to.be.at.most(16);
    for (const pool of pools) {
      const inc = await incidents.get(`nodewarden/incident/gpu-xid-fatal/pool=${pool}`);
      expect(Object.keys(inc?.members ?? {})).to.have.length(12);
      expect(inc?.sentSeq, 'the trigger was settled as delivered').to.be.greaterThan(0);
    }
    const facts = Object.values((await incidents.get('nodewarden/incident/gpu-xid-fatal/pool=h100-train'))?.members ?? {}).map((m) => m.facts.join());
    expect(facts.filter((f) => f === 'cordon executed')).to.have.length(3);
    expect(facts.filter((f) => f === 'cordon denied by maxUnavailable')).to.have.length(9);
  });

  it('routeAll in rounds gives the outcomes and incident documents of route one by one (property)', async () => {
    const nodesOf = ['n0', 'n1', 'n2', 'n3'];
    const item = fc.record({
      node: fc.constantFrom(...nodesOf),
      pool: fc.constantFrom('p', 'q'),
      kind: fc.constantFrom('page', 'page', 'resolve', 'rollout'),
      severity: fc.constantFrom('warning', 'critical'),
      fact: fc.constantFrom('', 'cordon executed', 'cordon denied by maxUnavailable'),
    });
    const toDecision = (x: { node: string; pool: string; kind: string; severity: string; fact: string }, i: number): Decision =>
      x.kind === 'rollout'
        ? decision({ id: `r${i}`, action: 'page', rule: 'gpu-driver-rollout-regression', incident: 'gpu-xid-fatal', severity: 'critical', group: { pool: x.pool }, target: { kind: 'Group', name: `pool=${x.pool}` }, reason: 'roll back' })
        : page(x.node, x.pool, { id: `d${i}`, action: x.kind === 'resolve' ? 'resolve' : 'page', severity: x.severity === 'critical' ? 'critical' : 'warning' });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(item, { maxLength: 12 }), { minLength: 1, maxLength: 4 }), fc.boolean(), async (submits, silence) => {
        const clock = new ManualClock(T0);
        const mk = (): { store: MemoryDocStore; paging: IncidentPaging } => {
          const store = new MemoryDocStore(clock);
          return { store, paging: createIncidentPaging({ store, clock, silences: new Silences(store, clock) }) };
        };
        const one = mk();
        const all = mk();
        const silenceIds: string[] = [];
        if (silence) for (const s of [one, all]) silenceIds.push((await new Silences(s.store, clock).create({ matchers: ['node=n3'], ttlMs: 3_600_000, reason: 'maintenance', by: 'ann' })).id);
        // the two stores' silences differ by their random id only
        const show = (r: RouteOutcome): string => silenceIds.reduce((text, id) => text.replaceAll(id, 'silence'), JSON.stringify(r));
        let n = 0;
        for (const batch of submits) {
          const ds = batch.map((x) => toDecision(x, n++));
          const factsOf = (i: number): string[] => (batch[i]?.fact ? [batch[i]?.fact ?? ''] : []);
          // one by one, each send settled before the next page
          const a: string[] = [];
          for (const [i, d] of ds.entries()) {
            const r = await one.paging.route(d, factsOf(i));
            if (r.kind === 'send' && (r.event !== 'resolve' || r.seq > 0)) await one.paging.settleSend(r.dedupKey, r.seq, true);
            a.push(show(r));
          }
          // in rounds, as the remediator does: the sends of a round settled in batch order, then the rest routed
          const b = new Array<string>(ds.length);
          let pending = ds.map((d, i) => ({ d, i }));
          while (pending.length > 0) {
            const xs = pending;
            const routed = await all.paging.routeAll(xs.map(({ d, i }) => ({ d, facts: factsOf(i) })));
            pending = [];
            for (const [k, x] of xs.entries()) {
              const r = routed[k];
              if (!r) {
                pending.push(x);
                continue;
              }
              if (r.kind === 'send' && (r.event !== 'resolve' || r.seq > 0)) await all.paging.settleSend(r.dedupKey, r.seq, true);
              b[x.i] = show(r);
            }
          }
          expect(b).to.deep.equal(a);
          clock.advance(1000);
        }
        const docs = async (s: MemoryDocStore): Promise<Array<Incident | undefined>> => Promise.all((await s.ids(INCIDENT_NS)).sort().map(async (id) => (await s.read<Incident>(INCIDENT_NS, id))?.doc));
        expect(await docs(all.store)).to.deep.equal(await docs(one.store));
      }),
      { numRuns: 150 },
    );
  });

  it('an incident layer that routes none of a run never makes the submit loop: the pages go out as they come', async () => {
    const clock = new ManualClock(T0);
    const real = createIncidentPaging({ store: new MemoryDocStore(clock), clock });
    const stuck: IncidentPaging = { ...real, routeAll: (items) => Promise.resolve(items.map(() => null)) };
    const pager = createRecordingPager();
    const remediator = createRemediator({ guard: createMemoryGuard({ view: FakeCluster.fleet(4, ['p']), options: guardOptionsFromConfig(DEFAULT_CONFIG), clock }), executors: [createPagerExecutor({ pagers: [pager], logger: silentLogger })], ledger: [new MemoryLedger()], clock, logger: silentLogger, autoFlush: false, incidents: stuck });
    const { records } = await remediator.submit([page('n1', 'p'), page('n2', 'p')]);
    expect(records.map((r) => `${r.outcome} ${typeof r.details?.incidentUnavailable}`)).to.deep.equal(['executed string', 'executed string']);
  });

  it('an incident whose store fails sends its pages as they come; the other incidents are routed', async () => {
    const clock = new ManualClock(T0);
    const inner = new MemoryDocStore(clock);
    const failing: DocStore = {
      read: (ns, id) => (id.includes('pool=q') ? Promise.reject(new Error('connection lost')) : inner.read(ns, id)),
      write: (ns, id, doc, expected, ttl) => inner.write(ns, id, doc, expected, ttl),
      remove: (ns, id, expected) => inner.remove(ns, id, expected),
      ids: (ns) => inner.ids(ns),
      claimOnce: (ns, id, ttl) => inner.claimOnce(ns, id, ttl),
    };
    const paging = createIncidentPaging({ store: failing, clock });
    const routed = await paging.routeAll([page('n1', 'p'), page('n2', 'q'), page('n3', 'p')].map((d) => ({ d, facts: [] })));
    expect(routed.map((r) => r?.kind ?? 'later')).to.deep.equal(['send', 'failed', 'later']);
    const err = await paging.route(page('n4', 'q')).then(() => null, (e: unknown) => e);
    expect(String(err)).to.match(/connection lost/);
  });
});
