/**
 * The paging-state contract: one suite, run against every DocStore adapter
 * (memory in test/unit, Redis in test/integration). It checks the
 * compare-and-set itself, and the incident semantics that rest on it with
 * two "replicas" (two stores over the same state) racing: one trigger per
 * storm, one resolve when the last member clears, an acknowledgement seen by
 * the other replica, one sender per due update.
 */
import { expect } from 'chai';
import type { Clock } from '../../core/clock.js';
import type { Decision } from '../../core/decision.js';
import type { DocStore } from '../../remediations/incidents/doc-store.js';
import { updateDoc } from '../../remediations/incidents/doc-store.js';
import type { IncidentPaging } from '../../remediations/incidents/incident-paging.js';
import { createIncidentPaging } from '../../remediations/incidents/incident-paging.js';
import { Silences } from '../../remediations/silences/silence.js';

export interface PagingStoreFixture {
  store: DocStore;
  /** Another store object over the same shared state (a second engine replica). */
  replica(): DocStore;
  clock: Clock;
  /** Lets `ms` pass for expiry (virtual for memory, real for Redis). */
  pass(ms: number): Promise<void>;
}

export type PagingStoreFactory = () => Promise<PagingStoreFixture>;

let seq = 0;
export function nodePage(node: string, over: Partial<Decision> = {}): Decision {
  seq++;
  return {
    id: `d-page-${seq}`,
    at: 0,
    rule: 'gpu-xid-fatal',
    action: 'page',
    target: { kind: 'Node', name: node },
    reason: `Xid 79 on ${node}`,
    severity: 'critical',
    dedupKey: `nodewarden/gpu-xid-fatal/${node}`,
    group: { pool: 'h100-train', zone: 'us-west-2a' },
    ...over,
  };
}

export function pagingStoreContract(name: string, factory: PagingStoreFactory): void {
  describe(`paging store contract: ${name}`, function () {
    this.timeout(30_000);
    let f: PagingStoreFixture;
    beforeEach(async () => {
      f = await factory();
    });
    const paging = (store: DocStore): IncidentPaging => createIncidentPaging({ store, clock: f.clock, silences: new Silences(store, f.clock) });

    it('compare-and-set: one writer wins per version; remove needs the current version', async () => {
      expect(await f.store.write('t', 'a', { n: 1 }, 0)).to.equal(1);
      expect(await f.replica().write('t', 'a', { n: 2 }, 0), 'a second creator loses').to.equal(0);
      expect(await f.replica().write('t', 'a', { n: 2 }, 1)).to.equal(2);
      expect(await f.store.read('t', 'a')).to.deep.equal({ doc: { n: 2 }, version: 2 });
      expect(await f.store.remove('t', 'a', 1)).to.equal(false);
      expect(await f.store.ids('t')).to.deep.equal(['a']);
      expect(await f.store.remove('t', 'a', 2)).to.equal(true);
      expect(await f.store.read('t', 'a')).to.equal(null);
      expect(await f.store.ids('t')).to.deep.equal([]);
    });

    it('updateDoc under contention: 20 concurrent increments from two replicas all land', async () => {
      const stores = [f.store, f.replica()];
      await Promise.all(Array.from({ length: 20 }, (_, i) => updateDoc<{ n: number }, null>(stores[i % 2] as DocStore, 't', 'c', (cur) => ({ doc: { n: (cur?.n ?? 0) + 1 }, result: null }))));
      expect((await f.store.read<{ n: number }>('t', 'c'))?.doc.n).to.equal(20);
    });

    it('documents and claims expire after their TTL', async () => {
      await f.store.write('t', 'e', { x: 1 }, 0, 200);
      expect(await f.store.claimOnce('t', 'evt-1', 200)).to.equal(true);
      expect(await f.replica().claimOnce('t', 'evt-1', 200), 'a replay is refused on any replica').to.equal(false);
      await f.pass(400);
      expect(await f.store.read('t', 'e')).to.equal(null);
      expect(await f.store.ids('t')).to.deep.equal([]);
      expect(await f.store.claimOnce('t', 'evt-1', 200)).to.equal(true);
    });

    it('a storm across two replicas opens ONE incident: one trigger, every other page joins it', async () => {
      const a = paging(f.store);
      const b = paging(f.replica());
      const nodes = Array.from({ length: 24 }, (_, i) => `h100-${String(i).padStart(3, '0')}`);
      const routed = await Promise.all(nodes.map((n, i) => (i % 2 ? a : b).route(nodePage(n), ['cordon executed'])));
      const sends = routed.filter((r) => r.kind === 'send');
      expect(sends).to.have.length(1);
      expect(sends[0]).to.include({ event: 'trigger', dedupKey: 'nodewarden/incident/gpu-xid-fatal/pool=h100-train' });
      for (const r of routed) expect(r.dedupKey).to.equal('nodewarden/incident/gpu-xid-fatal/pool=h100-train');
      const inc = await b.get('nodewarden/incident/gpu-xid-fatal/pool=h100-train');
      expect(Object.keys(inc?.members ?? {}).sort()).to.deep.equal(nodes);
      expect(inc?.members['h100-003']?.facts).to.deep.equal(['cordon executed']);
    });

    it('a rule naming the incident (the rollout rule) joins the storm’s ONE incident, whichever replica and order', async () => {
      const a = paging(f.store);
      const b = paging(f.replica());
      const key = 'nodewarden/incident/gpu-xid-fatal/pool=h100-train';
      const rollout = nodePage('x', { rule: 'gpu-driver-rollout-regression', incident: 'gpu-xid-fatal', target: { kind: 'Group', name: 'pool=h100-train' }, dedupKey: 'nodewarden/gpu-driver-rollout-regression/h100-train' });
      // the group rule's page can be routed before the node pages (another replica was faster)
      const first = await b.route(rollout);
      const rest = await Promise.all(['n1', 'n2', 'n3'].map((n, i) => (i % 2 ? b : a).route(nodePage(n))));
      expect(first).to.include({ kind: 'send', event: 'trigger', dedupKey: key });
      for (const r of rest) expect(r).to.include({ kind: 'suppressed', guard: 'incidentOpen', dedupKey: key });
      // ... or after them: then it is sent at once as an update of their incident (news: the diagnosis)
      const other = { ...rollout, id: 'later', group: { pool: 'b200' } };
      const nodesFirst = await Promise.all(['m1', 'm2'].map((n) => a.route(nodePage(n, { group: { pool: 'b200' } }))));
      const trigger = nodesFirst.find((r) => r.kind === 'send');
      expect(nodesFirst.filter((r) => r.kind === 'send')).to.have.length(1);
      if (trigger?.kind === 'send') await a.settleSend(trigger.dedupKey, trigger.seq, true);
      const joined = await b.route(other);
      expect(joined).to.include({ kind: 'send', event: 'update', dedupKey: 'nodewarden/incident/gpu-xid-fatal/pool=b200' });
      expect(joined.kind === 'send' && joined.decision.rule).to.equal('gpu-driver-rollout-regression');
      expect(await a.route({ ...other, id: 'again' }), 'the same rule again waits for the group interval').to.include({ kind: 'suppressed', guard: 'incidentOpen' });
      expect(Object.keys((await a.get(key))?.members ?? {}).sort()).to.deep.equal(['Rule/gpu-driver-rollout-regression', 'n1', 'n2', 'n3']);
      // another pool's storm is another incident; without `incident` the rule keeps its own
      expect(await a.route({ ...rollout, id: 'other-pool', group: { pool: 'a100-infer' } })).to.include({ kind: 'send', dedupKey: 'nodewarden/incident/gpu-xid-fatal/pool=a100-infer' });
      const { incident: _, ...own } = rollout;
      expect(await a.route({ ...own, id: 'own' })).to.include({ kind: 'send', dedupKey: 'nodewarden/incident/gpu-driver-rollout-regression/pool=h100-train' });
    });

    it('the last member to clear resolves the incident, exactly once across replicas', async () => {
      const a = paging(f.store);
      const b = paging(f.replica());
      await a.route(nodePage('n1'));
      await b.route(nodePage('n2'));
      await a.route(nodePage('n3'));
      const first = await a.route(nodePage('n1', { action: 'resolve' }));
      expect(first).to.include({ kind: 'suppressed', guard: 'incidentFiring' });
      const last = await Promise.all([a.route(nodePage('n2', { action: 'resolve' })), b.route(nodePage('n3', { action: 'resolve' }))]);
      const resolves = last.filter((r) => r.kind === 'send');
      expect(resolves).to.have.length(1);
      expect(resolves[0]).to.include({ event: 'resolve', dedupKey: 'nodewarden/incident/gpu-xid-fatal/pool=h100-train' });
      expect((await b.get('nodewarden/incident/gpu-xid-fatal/pool=h100-train'))?.status).to.equal('resolved');
      // a later page opens a new incident with the same stable key
      const again = await b.route(nodePage('n4'));
      expect(again).to.include({ kind: 'send', event: 'trigger' });
    });

    it('an acknowledgement on one replica holds the group’s actions on the other', async () => {
      const a = paging(f.store);
      const b = paging(f.replica());
      await a.route(nodePage('n1'));
      const cordonN2: Decision = { ...nodePage('n2'), action: 'cordon' };
      expect(await b.heldBy(cordonN2)).to.equal(null);
      await a.acknowledge('nodewarden/incident/gpu-xid-fatal/pool=h100-train', 'Tenex Engineer', 'pagerduty');
      expect((await b.heldBy(cordonN2))?.ack).to.include({ by: 'Tenex Engineer', via: 'pagerduty' });
      const otherPool: Decision = { ...cordonN2, group: { pool: 'a100-infer' } };
      expect(await b.heldBy(otherPool)).to.equal(null);
    });

    it('heldByAll and noteFactsAll answer and write as heldBy and noteFacts one by one (ADR 0044)', async () => {
      const a = paging(f.store);
      const b = paging(f.replica());
      for (const n of ['n1', 'n2', 'n3']) await a.route(nodePage(n));
      await a.route(nodePage('m1', { group: { pool: 'a100-infer' } }));
      await a.acknowledge('nodewarden/incident/gpu-xid-fatal/pool=h100-train', 'Ann', 'slack');
      const ds: Decision[] = [{ ...nodePage('n1'), action: 'cordon' }, { ...nodePage('m1', { group: { pool: 'a100-infer' } }), action: 'cordon' }, { ...nodePage('n9'), action: 'cordon' }];
      const one: Array<string | null> = [];
      for (const d of ds) one.push((await b.heldBy(d))?.dedupKey ?? null);
      expect((await b.heldByAll(ds)).map((i) => i?.dedupKey ?? null)).to.deep.equal(one);
      expect(one).to.deep.equal(['nodewarden/incident/gpu-xid-fatal/pool=h100-train', null, 'nodewarden/incident/gpu-xid-fatal/pool=h100-train']);
      // facts: a member of the incident gets them (once each), a node outside it is left alone
      await b.noteFactsAll([
        [ds[0] as Decision, ['cordon executed']],
        [{ ...nodePage('n2'), action: 'cordon' }, ['cordon denied by maxUnavailable']],
        [ds[0] as Decision, ['cordon executed', 'uncordon executed']],
        [ds[2] as Decision, ['cordon executed']],
      ]);
      const doc = await a.get('nodewarden/incident/gpu-xid-fatal/pool=h100-train');
      expect(doc?.members.n1?.facts).to.deep.equal(['cordon executed', 'uncordon executed']);
      expect(doc?.members.n2?.facts).to.deep.equal(['cordon denied by maxUnavailable']);
      expect(doc?.members.n9).to.equal(undefined);
      await b.noteFacts({ ...nodePage('n3'), action: 'cordon' }, ['cordon executed']);
      expect((await a.get('nodewarden/incident/gpu-xid-fatal/pool=h100-train'))?.members.n3?.facts).to.deep.equal(['cordon executed']);
    });

    it('a due update is claimed by one replica only', async () => {
      const a = paging(f.store);
      const b = paging(f.replica());
      const t = await a.route(nodePage('n1'));
      if (t.kind !== 'send') throw new Error('expected the trigger');
      await a.settleSend(t.dedupKey, t.seq, true);
      await b.route(nodePage('n2'));
      await f.pass(a.options.groupIntervalMs);
      const claims = await Promise.all([a.due(), b.due()]);
      expect(claims.flat()).to.have.length(1);
      expect(claims.flat()[0]).to.include({ event: 'update' });
      expect(claims.flat()[0]?.nodes).to.deep.equal(['n1', 'n2']);
    });

    it('a silence suppresses matching pages (never joins them), on every replica', async () => {
      const s = new Silences(f.store, f.clock);
      await s.create({ matchers: ['pool=h100-train', 'rule=~gpu-.*'], ttlMs: 3_600_000, reason: 'planned driver upgrade', by: 'alice' });
      const r = await paging(f.replica()).route(nodePage('n1'));
      expect(r).to.include({ kind: 'suppressed', guard: 'silenced' });
      expect(await paging(f.store).get('nodewarden/incident/gpu-xid-fatal/pool=h100-train')).to.equal(null);
      const other = await paging(f.replica()).route(nodePage('n1', { group: { pool: 'a100-infer' } }));
      expect(other).to.include({ kind: 'send', event: 'trigger' });
    });
  });
}
