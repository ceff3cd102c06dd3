/**
 * The guard contract: one suite, run against every adapter (memory in
 * test/unit, Redis in test/integration). Identical semantics means identical
 * verdicts, guard names and reasons for the same sequence of calls.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { ManualClock } from '../../core/clock.js';
import type { Clock } from '../../core/clock.js';
import type { ClusterView } from '../../core/cluster.js';
import { DEFAULT_CONFIG } from '../../core/config.js';
import type { Decision } from '../../core/decision.js';
import type { GuardOptions } from '../../remediations/guard/policy.js';
import { guardOptionsFromConfig, STATUS_ACTIONS } from '../../remediations/guard/policy.js';
import type { ControllableGuard, ExecutionResult, GuardVerdict } from '../../remediations/ports.js';
import { cordon, decision, FakeCluster, POOL_LABEL, taint, untaint } from '../unit/remediations/fake-cluster.js';

/** What `call` throws or rejects with; fails the test when it succeeds. */
async function rejection(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (e) {
    return e;
  }
  return expect.fail('expected an error');
}

export interface GuardFixture {
  guard: ControllableGuard;
  /** Another guard object over the same shared state (a second engine replica). */
  replica(): ControllableGuard;
}

export type GuardFactory = (view: ClusterView, options: GuardOptions, clock: Clock) => Promise<GuardFixture>;

const T0 = Date.parse('2026-11-21T10:00:00Z');
const OK: ExecutionResult = { ok: true };
const FAIL: ExecutionResult = { ok: false };

function opts(over: Partial<GuardOptions> = {}): GuardOptions {
  return guardOptionsFromConfig(DEFAULT_CONFIG, over);
}

export function guardStoreContract(adapter: string, factory: GuardFactory): void {
  describe(`guard contract: ${adapter}`, function () {
    let clock: ManualClock;
    beforeEach(() => {
      clock = new ManualClock(T0);
    });

    async function run(g: ControllableGuard, d: Decision, result: ExecutionResult = OK): Promise<GuardVerdict> {
      const v = await g.authorize(d);
      if (v.allowed) await g.settle(d, v, result);
      return v;
    }

    describe('GPU budget (per-GPU scope)', () => {
      // 40 nodes of 8 GPUs, fleet limit 5% = 2 nodes; per-group limits out of the way
      const gpuOpts = (over: Partial<GuardOptions> = {}): GuardOptions => opts({ maxUnavailablePerGroup: '100%', maxTaintedGpusPerNode: '100%', ...over });
      const uuid = (i: number): string => `GPU-00000000-0000-0000-0000-${String(i).padStart(12, '0')}`;

      it('counts N tainted GPUs of an 8-GPU node as N/8 of a node: 16 GPU taints fill a 2-node budget, the 17th is denied', async () => {
        const view = FakeCluster.fleet(40, ['a']).withGpus(8);
        const { guard } = await factory(view, gpuOpts(), clock);
        for (let i = 0; i < 16; i++) expect((await run(guard, taint(`gpu-0${String(10 + Math.floor(i / 4))}`, uuid(i)))).allowed, `taint ${i}`).to.equal(true);
        const v = await guard.authorize(taint('gpu-020', uuid(99)));
        expect(v).to.include({ allowed: false, guard: 'maxUnavailable', outcome: 'denied' });
        expect(v.reason).to.match(/tainting GPU GPU-0+-0000-0000-0000-000000000099 of gpu-020 would take more than 2 nodes' worth of capacity out of the fleet \(40 nodes, limit 2; unavailable or reserved now: 2/);
        // a cordon now needs a whole node: denied too
        expect(await guard.authorize(cordon('gpu-030'))).to.include({ allowed: false, guard: 'maxUnavailable' });
      });

      it('shows the GPU budget in its status: each node\'s tainted GPUs, weight and cap, and the node-equivalents per scope', async () => {
        const view = FakeCluster.fleet(40, ['a']).withGpus(8);
        view.setTaintedGpus('gpu-012', [uuid(70)]); // a device taint in the view (someone else's, or visible before our record)
        const { guard } = await factory(view, gpuOpts({ maxTaintedGpusPerNode: '50%' }), clock);
        for (let i = 0; i < 3; i++) expect((await run(guard, taint('gpu-011', uuid(i)))).allowed).to.equal(true);
        const st = await guard.status();
        expect(st.gpus).to.deep.equal([
          { node: 'gpu-011', tainted: [uuid(0), uuid(1), uuid(2)], gpus: 8, weight: 3 / 8, cap: 4 },
          { node: 'gpu-012', tainted: [uuid(70)], gpus: 8, weight: 1 / 8, cap: 4 },
        ]);
        expect(st.fleet.gpuWeight).to.be.closeTo(0.5, 1e-9);
        expect(st.groups.find((g) => g.scope === 'pool=a')?.gpuWeight).to.be.closeTo(0.5, 1e-9);
        // an untaint gives it back in the status too
        expect((await run(guard, untaint('gpu-011', uuid(0)))).allowed).to.equal(true);
        expect((await guard.status()).gpus.find((n) => n.node === 'gpu-011')?.tainted).to.deep.equal([uuid(1), uuid(2)]);
      });

      it('a cordon of a node with tainted GPUs costs only the rest of that node', async () => {
        const view = FakeCluster.fleet(40, ['a']).withGpus(4);
        const { guard } = await factory(view, gpuOpts(), clock);
        expect((await run(guard, cordon('gpu-000'))).allowed).to.equal(true); // 1 of 2
        for (let i = 0; i < 3; i++) expect((await run(guard, taint('gpu-001', uuid(i)))).allowed).to.equal(true); // 1.75
        expect(await guard.authorize(cordon('gpu-002'))).to.include({ allowed: false, guard: 'maxUnavailable' }); // 2.75
        expect((await guard.authorize(cordon('gpu-001'))).allowed).to.equal(true); // 1.75 + 0.25
      });

      it('charges nothing for a GPU already tainted or a GPU of an unavailable node, and counts the view\'s device taints', async () => {
        const view = FakeCluster.fleet(40, ['a']).withGpus(2);
        view.setTaintedGpus('gpu-005', [uuid(50), uuid(51)]); // someone tainted a whole node's GPUs: 1 node
        view.cordon('gpu-006'); // 2 of 2
        const { guard } = await factory(view, gpuOpts(), clock);
        expect(await guard.authorize(taint('gpu-000', uuid(0)))).to.include({ allowed: false, guard: 'maxUnavailable' });
        expect((await run(guard, taint('gpu-006', uuid(60)))).allowed).to.equal(true);
        expect((await guard.authorize(taint('gpu-005', uuid(50)))).allowed).to.equal(true);
      });

      it('counts a node with an unknown GPU count whole as soon as one GPU is tainted', async () => {
        const view = FakeCluster.fleet(40, ['a']); // no GPU count known
        const { guard } = await factory(view, gpuOpts(), clock);
        expect((await run(guard, taint('gpu-000', '0000:3b:00'))).allowed).to.equal(true);
        expect((await run(guard, taint('gpu-001', '0000:3b:00'))).allowed).to.equal(true); // same PCI id, another node
        expect(await guard.authorize(taint('gpu-002', '0000:3b:00'))).to.include({ allowed: false, guard: 'maxUnavailable' });
      });

      it("counts GPUs tainted by others (view otherTaintedGpus) with its own, once per GPU, in the budget, the cap and the status", async () => {
        const view = FakeCluster.fleet(40, ['a']).withGpus(8);
        // someone else tainted 12 GPUs: 1.5 nodes' worth of the 2-node fleet budget
        view.setOtherTaintedGpus('gpu-010', [0, 1, 2, 3, 4, 5, 6, 7].map((i) => uuid(100 + i)));
        view.setOtherTaintedGpus('gpu-011', [uuid(110), uuid(111), uuid(112), uuid(113)]);
        const { guard } = await factory(view, gpuOpts({ maxTaintedGpusPerNode: '50%', targetCooldownMs: 0 }), clock);
        // the per-node cap counts others' GPUs: 4 of 8 already on gpu-011
        const capped = await guard.authorize(taint('gpu-011', uuid(0)));
        expect(capped).to.include({ allowed: false, guard: 'maxTaintedGpusPerNode' });
        expect(capped.reason).to.match(/^gpu-011 already has 4 tainted GPU\(s\), the per-node cap of 4/);
        // a GPU both we and they taint counts once: retainting theirs costs nothing
        expect((await run(guard, taint('gpu-011', uuid(113)))).allowed).to.equal(true);
        for (let i = 0; i < 4; i++) expect((await run(guard, taint('gpu-012', uuid(i)))).allowed, `taint ${i}`).to.equal(true); // 1.5 + 0.5 = 2
        expect(await guard.authorize(taint('gpu-013', uuid(20)))).to.include({ allowed: false, guard: 'maxUnavailable' });
        expect(await guard.authorize(cordon('gpu-020'))).to.include({ allowed: false, guard: 'maxUnavailable' });
        const st = await guard.status();
        expect(st.fleet.gpuWeight).to.be.closeTo(2, 1e-9);
        expect(st.gpus.find((n) => n.node === 'gpu-011')).to.deep.include({ tainted: [110, 111, 112, 113].map(uuid), weight: 0.5 });
      });

      it('denies new cordons and taints while the view cannot place a foreign DeviceTaintRule; recovery and free actions pass', async () => {
        const view = FakeCluster.fleet(40, ['a']).withGpus(8);
        const { guard } = await factory(view, gpuOpts({ targetCooldownMs: 0 }), clock);
        expect((await run(guard, taint('gpu-001', uuid(1)))).allowed).to.equal(true);
        expect((await run(guard, cordon('gpu-002'))).allowed).to.equal(true);
        view.unplaced = [
          { rule: 'nvsentinel-quarantine', reason: 'a CEL selector outside the supported subset, not bounded by a pool or device' },
          { rule: 'other', reason: 'pool x of gpu.nvidia.com is not published in any ResourceSlice' },
        ];
        const c = await guard.authorize(cordon('gpu-003'));
        expect(c).to.include({ allowed: false, guard: 'unplacedDeviceTaint', outcome: 'denied' });
        expect(c.reason).to.equal(
          "not cordoning gpu-003: DeviceTaintRule nvsentinel-quarantine, not nodewarden's, cannot be mapped to GPUs (a CEL selector outside the supported subset, not bounded by a pool or device) (and 1 more such rule(s)), so the GPU budget is unknown; fix or remove the rule, or tell it by driver/pool/device (docs/gpu-scope.md)",
        );
        expect(await guard.authorize(taint('gpu-004', uuid(4)))).to.include({ allowed: false, guard: 'unplacedDeviceTaint' });
        expect((await guard.status()).unplacedDeviceTaints).to.deep.equal({ rules: view.unplaced, count: 2 });
        // recovery is never blocked
        expect((await run(guard, untaint('gpu-001', uuid(1)))).allowed).to.equal(true);
        expect((await run(guard, decision({ action: 'uncordon', target: { kind: 'Node', name: 'gpu-002' } }))).allowed).to.equal(true);
        view.unplaced = [];
        expect((await guard.authorize(cordon('gpu-003', { id: 'later' }))).allowed).to.equal(true);
        expect((await guard.status()).unplacedDeviceTaints).to.equal(undefined);
      });

      it('caps tainted GPUs per node (50% of 8 = 4), before the budget', async () => {
        const view = FakeCluster.fleet(100, ['a']).withGpus(8);
        const { guard } = await factory(view, gpuOpts({ maxTaintedGpusPerNode: '50%', targetCooldownMs: 0 }), clock);
        for (let i = 0; i < 4; i++) expect((await run(guard, taint('gpu-000', uuid(i)))).allowed).to.equal(true);
        const v = await guard.authorize(taint('gpu-000', uuid(4)));
        expect(v).to.include({ allowed: false, guard: 'maxTaintedGpusPerNode', outcome: 'denied' });
        expect(v.reason).to.equal(`gpu-000 already has 4 tainted GPU(s), the per-node cap of 4: not tainting GPU ${uuid(4)} (a node this sick needs a person or the node-level step)`);
        expect((await guard.authorize(taint('gpu-000', uuid(0), { id: 'again' }))).allowed).to.equal(true); // already tainted: no cap
      });

      it('an untaint gives the GPU back; a failed taint releases its hold; a dry-run taint holds only for the reservation hold', async () => {
        const view = FakeCluster.fleet(20, ['a']).withGpus(1); // limit 1 node = 1 GPU
        const { guard } = await factory(view, gpuOpts({ targetCooldownMs: 0 }), clock);
        expect((await run(guard, taint('gpu-000', uuid(0)), FAIL)).allowed).to.equal(true);
        expect((await run(guard, taint('gpu-001', uuid(1)))).allowed).to.equal(true);
        expect(await guard.authorize(taint('gpu-002', uuid(2)))).to.include({ guard: 'maxUnavailable' });
        clock.advance(24 * 3_600_000); // an executed taint is held until its untaint, not for a while
        expect(await guard.authorize(taint('gpu-002', uuid(2)))).to.include({ guard: 'maxUnavailable' });
        expect((await run(guard, untaint('gpu-001', uuid(1)))).allowed).to.equal(true);
        expect((await run(guard, taint('gpu-002', uuid(2)), { ok: true, dryRun: true })).allowed).to.equal(true);
        expect(await guard.authorize(taint('gpu-003', uuid(3)))).to.include({ guard: 'maxUnavailable' });
        clock.advance(6 * 60_000); // past the reservation hold
        expect((await guard.authorize(taint('gpu-003', uuid(3)))).allowed).to.equal(true);
      });

      it('two replicas never together exceed the GPU budget', async () => {
        const view = FakeCluster.fleet(20, ['a']).withGpus(4); // limit 1 node = 4 GPUs
        const fx = await factory(view, gpuOpts(), clock);
        const verdicts = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? fx.guard : fx.replica()).authorize(taint(`gpu-00${i % 6}`, uuid(i)))));
        expect(verdicts.filter((v) => v.allowed)).to.have.length(4);
      });
    });

    describe('maxUnavailable', () => {
      it('pruneReservations releases exactly the reservations the caller finds stale, on every replica', async () => {
        const view = FakeCluster.fleet(40, ['a']); // limit 2
        const fx = await factory(view, opts({ maxUnavailablePerGroup: '100%', targetCooldownMs: 0 }), clock);
        const guard = fx.guard;
        expect((await guard.authorize(cordon('gpu-000'))).allowed).to.equal(true);
        expect((await guard.authorize(cordon('gpu-001'))).allowed).to.equal(true);
        expect(await guard.authorize(cordon('gpu-002'))).to.include({ allowed: false, guard: 'maxUnavailable' });
        const seen: string[] = [];
        expect(await fx.replica().pruneReservations(() => false)).to.equal(0);
        const released = await fx.replica().pruneReservations((r) => {
          seen.push(r.node);
          expect(r.exp, 'a live reservation').to.be.greaterThan(clock.now());
          return r.node === 'gpu-000';
        });
        expect(released).to.equal(1);
        expect(seen.sort()).to.deep.equal(['gpu-000', 'gpu-001']);
        expect((await guard.authorize(cordon('gpu-002'))).allowed, 'the released budget is free again').to.equal(true);
      });

      it('allows 5 % of a 100-node fleet, then denies with the scope and numbers', async () => {
        const view = FakeCluster.fleet(100, ['a', 'b', 'c', 'd']);
        const { guard } = await factory(view, opts({ maxUnavailablePerGroup: '100%' }), clock);
        for (let i = 0; i < 5; i++) expect((await run(guard, cordon(`gpu-00${i}`))).allowed, `cordon ${i}`).to.equal(true);
        const v = await guard.authorize(cordon('gpu-010'));
        expect(v).to.include({ allowed: false, guard: 'maxUnavailable', outcome: 'denied' });
        expect(v.reason).to.match(/would make 6 nodes unavailable in the fleet \(100 nodes, limit 5; unavailable or reserved now: 5\)/);
      });

      it('counts nodes cordoned by people and NotReady nodes, whoever made them so', async () => {
        const view = FakeCluster.fleet(100, ['a']);
        view.cordon('gpu-090');
        view.cordon('gpu-091');
        view.notReady('gpu-092');
        const { guard } = await factory(view, opts({ maxUnavailablePerGroup: '100%' }), clock);
        expect((await run(guard, cordon('gpu-000'))).allowed).to.equal(true);
        expect((await run(guard, cordon('gpu-001'))).allowed).to.equal(true);
        expect(await guard.authorize(cordon('gpu-002'))).to.include({ allowed: false, guard: 'maxUnavailable' });
      });

      it('does not double-count a reservation the view already shows, and charges nothing for an already unavailable node', async () => {
        const view = FakeCluster.fleet(40, ['a']); // limit 2
        const { guard } = await factory(view, opts({ maxUnavailablePerGroup: '100%' }), clock);
        expect((await run(guard, cordon('gpu-000'))).allowed).to.equal(true);
        view.cordon('gpu-000', true); // the view catches up with our own cordon
        expect((await run(guard, cordon('gpu-001'))).allowed).to.equal(true);
        view.cordon('gpu-001', true);
        expect(await guard.authorize(cordon('gpu-002'))).to.include({ guard: 'maxUnavailable' });
        view.cordon('gpu-030'); // a human cordoned it: cordoning it too costs no capacity
        view.uncordon('gpu-001');
        // gpu-001 is still reserved (hold), so: gpu-000, gpu-001 (reserved), gpu-030 = 3 > 2 for a new node
        expect(await guard.authorize(cordon('gpu-003'))).to.include({ guard: 'maxUnavailable' });
        expect((await guard.authorize(cordon('gpu-030'))).allowed).to.equal(true);
      });

      it('enforces the per-group limit on the decision group (pool) and on the node labels when no group is given', async () => {
        const view = FakeCluster.fleet(100, ['a', 'b']); // 50 per pool; 10 % → 5 per pool; fleet 20 %
        const { guard } = await factory(view, opts({ maxUnavailable: '20%', maxUnavailablePerGroup: '10%' }), clock);
        const inA = [...view.nodes.values()].filter((n) => n.labels[POOL_LABEL] === 'a').map((n) => n.name);
        for (let i = 0; i < 5; i++) expect((await run(guard, cordon(inA[i] as string, { group: { pool: 'a' } }))).allowed).to.equal(true);
        const v = await guard.authorize(cordon(inA[5] as string, { group: { pool: 'a' } }));
        expect(v).to.include({ allowed: false, guard: 'maxUnavailablePerGroup' });
        expect(v.reason).to.contain('pool=a');
        // no group on the decision: the node's own pool label decides
        expect(await guard.authorize(cordon(inA[6] as string))).to.include({ guard: 'maxUnavailablePerGroup' });
        const inB = [...view.nodes.values()].filter((n) => n.labels[POOL_LABEL] === 'b').map((n) => n.name);
        expect((await guard.authorize(cordon(inB[0] as string, { group: { pool: 'b' } }))).allowed).to.equal(true);
      });

      it('never denies an uncordon for budget, and an uncordon frees the reservation', async () => {
        const view = FakeCluster.fleet(20, ['a']); // limit 1
        const { guard } = await factory(view, opts({ maxUnavailablePerGroup: '100%' }), clock);
        expect((await run(guard, cordon('gpu-000'))).allowed).to.equal(true);
        view.cordon('gpu-000', true);
        view.cordon('gpu-005'); // human; over budget now
        expect(await guard.authorize(cordon('gpu-001'))).to.include({ guard: 'maxUnavailable' });
        const un = await run(guard, decision({ action: 'uncordon', target: { kind: 'Node', name: 'gpu-000' } }));
        expect(un.allowed).to.equal(true);
        view.uncordon('gpu-000');
        view.uncordon('gpu-005');
        clock.advance(11 * 60_000); // past the cordon cooldown of gpu-000
        expect((await guard.authorize(cordon('gpu-002'))).allowed).to.equal(true);
      });

      it('refuses to uncordon a node a human cordoned (suppressed, not paged)', async () => {
        const view = FakeCluster.fleet(20, ['a']);
        view.cordon('gpu-003');
        const { guard } = await factory(view, opts(), clock);
        expect(await guard.authorize(decision({ action: 'uncordon', target: { kind: 'Node', name: 'gpu-003' } }))).to.include({
          allowed: false,
          guard: 'notOwned',
          outcome: 'suppressed',
        });
      });

      it('releases the reservation when the cordon fails, and lets an unsettled reservation expire', async () => {
        const view = FakeCluster.fleet(20, ['a']); // limit 1
        const { guard } = await factory(view, opts({ maxUnavailablePerGroup: '100%', reservationHoldMs: 60_000 }), clock);
        expect((await run(guard, cordon('gpu-000'), FAIL)).allowed).to.equal(true);
        expect((await guard.authorize(cordon('gpu-001'))).allowed, 'after a failure the budget is free').to.equal(true);
        // gpu-001 reserved and never settled (the replica crashed)
        expect(await guard.authorize(cordon('gpu-002'))).to.include({ guard: 'maxUnavailable' });
        clock.advance(60_001);
        expect((await guard.authorize(cordon('gpu-002'))).allowed, 'the lease expired').to.equal(true);
      });

      it('is shared by replicas: a second guard object sees the first one’s reservations', async () => {
        const view = FakeCluster.fleet(40, ['a']); // limit 2
        const fx = await factory(view, opts({ maxUnavailablePerGroup: '100%' }), clock);
        const other = fx.replica();
        expect((await fx.guard.authorize(cordon('gpu-000'))).allowed).to.equal(true);
        expect((await other.authorize(cordon('gpu-001'))).allowed).to.equal(true);
        expect(await other.authorize(cordon('gpu-002'))).to.include({ guard: 'maxUnavailable' });
        expect(await fx.guard.authorize(cordon('gpu-000'))).to.include({ guard: 'cooldown', outcome: 'suppressed' });
      });
    });

    describe('idempotency', () => {
      it('a done decision is suppressed on any replica; one in flight is "retry later" (not an outcome); a failed one may retry', async () => {
        const view = FakeCluster.fleet(100, ['a']);
        const fx = await factory(view, opts({ maxUnavailablePerGroup: '100%' }), clock);
        const d = cordon('gpu-000', { id: 'firing-1' });
        const v = await fx.guard.authorize(d);
        expect(v.allowed).to.equal(true);
        const busy = await fx.replica().authorize(d);
        expect(busy).to.deep.include({ allowed: false, guard: 'inFlight', outcome: 'suppressed' });
        expect(busy.reason).to.equal(`decision firing-1 is in flight elsewhere (lease until ${new Date(T0 + 15_000).toISOString()}); retry later`);
        await fx.guard.settle(d, v, OK);
        const again = await fx.replica().authorize(d);
        expect(again).to.include({ guard: 'idempotency', outcome: 'suppressed' });
        expect(again.reason).to.contain('already executed');
        const p = decision({ id: 'page-1', action: 'page', dedupKey: 'k', severity: 'critical' });
        const pv = await fx.guard.authorize(p);
        await fx.guard.settle(p, pv, FAIL);
        expect((await fx.guard.authorize(p)).allowed, 'retry after a failure').to.equal(true);
      });

      it('takes over a decision whose in-flight lease lapsed (its replica died before settle): its own holds do not deny it', async () => {
        const view = FakeCluster.fleet(40, ['a']); // fleet limit 2
        const o = opts({ maxUnavailablePerGroup: '100%', rateLimits: { cordon: { count: 1, windowMs: 3_600_000 } }, inFlightTtlMs: 60_000 });
        const fx = await factory(view, o, clock);
        const d = cordon('gpu-000', { id: 'firing-2' });
        const first = await fx.guard.authorize(d); // reserves budget, cooldown and the only rate slot; then the replica dies
        expect(first.allowed).to.equal(true);
        clock.advance(59_999);
        expect(await fx.replica().authorize(d)).to.include({ guard: 'inFlight' });
        clock.advance(1);
        const other = fx.replica();
        const taken = await other.authorize(d);
        expect(taken.allowed, 'lease lapsed: taken over despite its own cooldown and rate entry').to.equal(true);
        expect(taken.reservation, 'the same holds').to.equal(first.reservation);
        expect(await fx.guard.authorize(d), 'the new lease holds').to.include({ guard: 'inFlight' });
        // still one cordon of the rate limit and one reservation of the budget
        expect(await fx.guard.authorize(cordon('gpu-001'))).to.include({ guard: 'rateLimit' });
        const st = await fx.guard.status();
        expect(st.fleet.reserved).to.equal(1);
        expect(st.rateLimits.find((r) => r.action === 'cordon')).to.include({ used: 1 });
        await other.settle(d, taken, OK);
        expect(await fx.guard.authorize(d)).to.include({ guard: 'idempotency', outcome: 'suppressed' });
        // other decisions for the same target are still held off by the cooldown
        expect(await fx.guard.authorize(cordon('gpu-000', { id: 'firing-3' }))).to.include({ guard: 'cooldown' });
      });

      it('renew extends only the holder\'s own in-flight leases, lapsed or not; anything else is lost', async () => {
        const view = FakeCluster.fleet(100, ['a']);
        const fx = await factory(view, opts({ maxUnavailablePerGroup: '100%', inFlightTtlMs: 15_000 }), clock);
        const a = cordon('gpu-000', { id: 'lease-a' });
        const b = cordon('gpu-001', { id: 'lease-b' });
        const settled = cordon('gpu-002', { id: 'lease-c' });
        const va = await fx.guard.authorize(a);
        expect(va.allowed).to.equal(true);
        expect((await fx.guard.authorize(b)).allowed).to.equal(true);
        await run(fx.guard, settled);
        const other = fx.replica();
        expect(other.holder, 'each replica its own holder token').to.not.equal(fx.guard.holder);
        clock.advance(10_000);
        const held = await fx.guard.renew(['lease-a', 'lease-b', 'lease-c', 'never-seen'], fx.guard.holder, 15_000);
        expect(Object.fromEntries(held)).to.deep.equal({ 'lease-a': 'held', 'lease-b': 'held', 'lease-c': 'lost', 'never-seen': 'lost' });
        // renewed at T0+10 s for 15 s: still in flight at T0+24.999 s, where the first lease had lapsed at T0+15 s
        clock.advance(14_999);
        const busy = await other.authorize(a);
        expect(busy).to.include({ guard: 'inFlight' });
        expect(busy.reason).to.contain(`lease until ${new Date(T0 + 25_000).toISOString()}`);
        // another holder's renewal changes nothing
        expect(Object.fromEntries(await other.renew(['lease-a'], other.holder, 60_000))).to.deep.equal({ 'lease-a': 'lost' });
        // lapsed, nobody took it: still the holder's, renewing it is safe
        clock.advance(20_000);
        expect(Object.fromEntries(await fx.guard.renew(['lease-a'], fx.guard.holder, 15_000))).to.deep.equal({ 'lease-a': 'held' });
        expect(await other.authorize(a)).to.include({ guard: 'inFlight' });
        await fx.guard.settle(a, va, OK);
        expect(Object.fromEntries(await fx.guard.renew(['lease-a'], fx.guard.holder, 15_000)), 'settled: done, not in flight').to.deep.equal({ 'lease-a': 'lost' });
        expect(await rejection(() => fx.guard.renew(['lease-b'], fx.guard.holder, 0))).to.include({ code: 'REQUEST_INVALID' });
      });

      it('a lease taken over after it lapsed is lost for good: the old holder\'s renew says lost and its settle is refused', async () => {
        const view = FakeCluster.fleet(40, ['a']);
        const fx = await factory(view, opts({ maxUnavailablePerGroup: '100%', inFlightTtlMs: 15_000 }), clock);
        const d = cordon('gpu-000', { id: 'lease-taken' });
        const first = await fx.guard.authorize(d); // then this replica stalls past its lease
        clock.advance(15_000);
        const other = fx.replica();
        const taken = await other.authorize(d);
        expect(taken.allowed).to.equal(true);
        expect(Object.fromEntries(await fx.guard.renew(['lease-taken'], fx.guard.holder, 15_000))).to.deep.equal({ 'lease-taken': 'lost' });
        expect(Object.fromEntries(await other.renew(['lease-taken'], other.holder, 15_000))).to.deep.equal({ 'lease-taken': 'held' });
        // the stalled replica wakes up and settles (a success, then a failure): both refused, nothing changes
        for (const result of [OK, FAIL]) {
          expect(await rejection(() => fx.guard.settle(d, first, result)), `settle ${result.ok ? 'ok' : 'failed'} by the old holder`).to.include({ code: 'CONFLICT' });
          expect(await fx.replica().authorize(d), 'still in flight at the new holder').to.include({ guard: 'inFlight' });
        }
        expect((await fx.guard.status()).fleet.reserved, 'the reservation kept').to.equal(1);
        await other.settle(d, taken, OK);
        expect(await fx.replica().authorize(d)).to.include({ guard: 'idempotency', outcome: 'suppressed' });
        // settled by the new holder: a late settle by the old one is refused too
        expect(await rejection(() => fx.guard.settle(d, first, OK))).to.include({ code: 'CONFLICT' });
      });

      it('peek answers the idempotency step read-only: done → idempotency, in flight → inFlight, never seen, failed or lapsed → null', async () => {
        const view = FakeCluster.fleet(100, ['a']);
        const fx = await factory(view, opts({ maxUnavailablePerGroup: '100%', inFlightTtlMs: 60_000 }), clock);
        const d = cordon('gpu-000', { id: 'peek-1' });
        const failed = decision({ id: 'peek-2', action: 'page', dedupKey: 'k', severity: 'critical' });
        expect(await fx.guard.peek([])).to.deep.equal([]);
        expect(await fx.replica().peek([d, failed]), 'never seen').to.deep.equal([null, null]);
        const v = await fx.guard.authorize(d);
        expect(v.allowed, 'peek reserved nothing').to.equal(true);
        const busy = await fx.replica().authorize(d);
        const [peeked, none] = await fx.replica().peek([d, failed]);
        expect(peeked, 'in flight: the verdict authorize gives').to.deep.equal(busy);
        expect(none).to.equal(null);
        await fx.guard.settle(failed, await fx.guard.authorize(failed), FAIL);
        expect(await fx.replica().peek([failed]), 'a failed decision may retry').to.deep.equal([null]);
        clock.advance(60_000);
        expect(await fx.replica().peek([d]), 'the lease lapsed (peek does not renew it): authorize takes it over').to.deep.equal([null]);
        // the holder renews its lapsed lease (nobody took it): in flight again, whoever peeks (the record names the holder, ADR 0026)
        expect(Object.fromEntries(await fx.guard.renew(['peek-1'], fx.guard.holder, 15_000))).to.deep.equal({ 'peek-1': 'held' });
        expect((await fx.replica().peek([d]))[0], 'renewed: in flight until the new lease end').to.include({ guard: 'inFlight' });
        expect((await fx.replica().peek([d]))[0]?.reason).to.contain(`lease until ${new Date(clock.now() + 15_000).toISOString()}`);
        clock.advance(15_000);
        expect(await fx.replica().peek([d]), 'lapsed again').to.deep.equal([null]);
        const taker = fx.replica();
        const taken = await taker.authorize(d);
        expect(taken).to.include({ allowed: true, reservation: v.reservation });
        expect(Object.fromEntries(await fx.guard.renew(['peek-1'], fx.guard.holder, 15_000)), 'taken over: the old holder lost it').to.deep.equal({ 'peek-1': 'lost' });
        expect((await fx.guard.peek([d]))[0], 'in flight at the taker').to.include({ guard: 'inFlight' });
        await taker.settle(d, taken, OK);
        const [done] = await fx.guard.peek([d]);
        expect(done, 'settled: the verdict authorize gives').to.deep.equal(await fx.guard.authorize(d));
        expect(done).to.include({ allowed: false, guard: 'idempotency', outcome: 'suppressed', reason: 'decision peek-1 already executed; not acting twice' });
      });

      it('a page the incident layer suppressed is remembered over a lapsed in-flight record of it; a guard denial is not', async () => {
        const view = FakeCluster.fleet(100, ['a']);
        const fx = await factory(view, opts({ maxUnavailablePerGroup: '100%', inFlightTtlMs: 60_000 }), clock);
        const page = decision({ id: 'peek-3', action: 'page', dedupKey: 'k', severity: 'critical' });
        const joined: GuardVerdict = { allowed: false, guard: 'incidentOpen', outcome: 'suppressed', reason: 'joined open incident k' };
        expect((await fx.guard.authorize(page)).allowed).to.equal(true); // then its replica dies
        await fx.replica().settle(page, joined, FAIL);
        expect((await fx.replica().peek([page]))[0], 'the lease holds: kept').to.include({ guard: 'inFlight' });
        clock.advance(60_000);
        await fx.replica().settle(page, joined, FAIL);
        expect((await fx.guard.peek([page]))[0]).to.include({ guard: 'idempotency', reason: 'decision peek-3 already suppressed; not acting twice' });
        const c = cordon('gpu-001', { id: 'peek-4' });
        expect((await fx.guard.authorize(c)).allowed).to.equal(true);
        clock.advance(60_000);
        await fx.replica().settle(c, { allowed: false, guard: 'paused', outcome: 'denied', reason: 'paused' }, FAIL);
        expect(await fx.guard.peek([c]), 'a lapsed cordon is left for authorize to take over').to.deep.equal([null]);
        expect((await fx.guard.authorize(c)).allowed).to.equal(true);
      });

      it('a settled denial is remembered: the same decision replayed is suppressed, not decided again', async () => {
        const view = FakeCluster.fleet(20, ['a']); // fleet limit 1
        const fx = await factory(view, opts({ maxUnavailablePerGroup: '100%' }), clock);
        expect((await run(fx.guard, cordon('gpu-000'))).allowed).to.equal(true);
        const d = cordon('gpu-001', { id: 'firing-4' });
        const denied = await fx.guard.authorize(d);
        expect(denied).to.include({ allowed: false, guard: 'maxUnavailable', outcome: 'denied' });
        expect((await fx.guard.authorize(d)).guard, 'not settled yet: decided again').to.equal('maxUnavailable');
        await fx.guard.settle(d, denied, FAIL);
        const replay = await fx.replica().authorize(d);
        expect(replay).to.include({ allowed: false, guard: 'idempotency', outcome: 'suppressed' });
        expect(replay.reason).to.equal('decision firing-4 already denied; not acting twice');
        // an in-flight verdict is not an outcome: settling it records nothing
        const e = cordon('gpu-005', { id: 'firing-5' });
        const ev = await fx.guard.authorize(decision({ id: 'firing-5', action: 'page', dedupKey: 'x', severity: 'info' }));
        expect(ev.allowed).to.equal(true);
        const busy = await fx.replica().authorize(decision({ id: 'firing-5', action: 'page', dedupKey: 'x', severity: 'info' }));
        expect(busy.guard).to.equal('inFlight');
        await fx.replica().settle(e, busy, FAIL);
        expect((await fx.replica().authorize(decision({ id: 'firing-5', action: 'page', dedupKey: 'x', severity: 'info' }))).guard).to.equal('inFlight');
      });
    });

    describe('cooldown', () => {
      it('suppresses the same action on the same target within the cooldown, and allows it after', async () => {
        const view = FakeCluster.fleet(100, ['a']);
        const { guard } = await factory(view, opts({ targetCooldownMs: 10 * 60_000, maxUnavailablePerGroup: '100%' }), clock);
        expect((await run(guard, cordon('gpu-000'))).allowed).to.equal(true);
        clock.advance(5 * 60_000);
        const v = await guard.authorize(cordon('gpu-000'));
        expect(v).to.include({ allowed: false, guard: 'cooldown', outcome: 'suppressed' });
        expect((await guard.authorize(decision({ action: 'uncordon', target: { kind: 'Node', name: 'gpu-000' } }))).allowed, 'other action kind').to.equal(true);
        clock.advance(5 * 60_000 + 1);
        expect((await guard.authorize(cordon('gpu-000'))).allowed).to.equal(true);
      });
    });

    describe('rate limit', () => {
      it('is a sliding window per action kind', async () => {
        const view = FakeCluster.fleet(1000, ['a']);
        const { guard } = await factory(view, opts({ rateLimits: { cordon: { count: 3, windowMs: 60_000 } }, maxUnavailablePerGroup: '100%' }), clock);
        for (let i = 0; i < 3; i++) {
          expect((await run(guard, cordon(`gpu-00${i}`))).allowed).to.equal(true);
          clock.advance(10_000);
        }
        const v = await guard.authorize(cordon('gpu-010'));
        expect(v).to.include({ allowed: false, guard: 'rateLimit', outcome: 'denied' });
        expect(v.reason).to.contain('3 of 3 cordon actions already taken in the last 1m');
        expect((await guard.authorize(decision({ action: 'page', dedupKey: 'p', severity: 'info' }))).allowed, 'pages have their own limit').to.equal(true);
        clock.advance(30_001); // the first entry (t=0) leaves the window
        expect((await guard.authorize(cordon('gpu-010'))).allowed).to.equal(true);
        expect(await guard.authorize(cordon('gpu-011'))).to.include({ guard: 'rateLimit' });
        const st = await guard.status();
        expect(st.rateLimits.find((r) => r.action === 'cordon')).to.include({ limit: 3, used: 3, remaining: 0 });
      });

      it('limits pages by the page rate limit only (no budget, no pause)', async () => {
        const view = FakeCluster.fleet(10, ['a']);
        const { guard } = await factory(view, opts({ rateLimits: { page: { count: 2, windowMs: 60_000 } } }), clock);
        await guard.pause('maintenance', 'alice');
        const pg = (n: number): Decision => decision({ action: 'page', dedupKey: `k${n}`, severity: 'critical', target: { kind: 'Node', name: 'gpu-001' } });
        expect((await run(guard, pg(1))).allowed).to.equal(true);
        expect((await run(guard, pg(2))).allowed).to.equal(true);
        expect(await guard.authorize(pg(3))).to.include({ guard: 'rateLimit' });
      });
    });

    describe('circuit breaker', () => {
      it('opens after N failures within W, half-opens after T with one trial; success closes', async () => {
        const view = FakeCluster.fleet(1000, ['a']);
        const o = opts({ breaker: { failures: 3, windowMs: 60_000, openForMs: 120_000 }, maxUnavailablePerGroup: '100%', targetCooldownMs: 0 });
        const { guard } = await factory(view, o, clock);
        for (let i = 0; i < 3; i++) {
          expect((await run(guard, cordon(`gpu-00${i}`), FAIL)).allowed).to.equal(true);
          clock.advance(1000);
        }
        const denied = await guard.authorize(cordon('gpu-100'));
        expect(denied).to.include({ allowed: false, guard: 'circuitOpen', outcome: 'denied' });
        expect(denied.reason).to.contain('circuit open for cordon');
        expect((await guard.status()).breakers.find((b) => b.action === 'cordon')).to.include({ state: 'open', failures: 3 });
        expect((await guard.authorize(decision({ action: 'page', dedupKey: 'x', severity: 'warning' }))).allowed, 'per action kind').to.equal(true);
        clock.advance(120_000);
        expect((await guard.status()).breakers.find((b) => b.action === 'cordon')?.state).to.equal('half-open');
        const trial = cordon('gpu-101');
        const tv = await guard.authorize(trial);
        expect(tv.allowed, 'one trial').to.equal(true);
        const second = await guard.authorize(cordon('gpu-102'));
        expect(second).to.include({ guard: 'circuitOpen' });
        expect(second.reason).to.contain('half-open');
        await guard.settle(trial, tv, OK);
        expect((await guard.status()).breakers.find((b) => b.action === 'cordon')).to.include({ state: 'closed', failures: 0 });
        expect((await guard.authorize(cordon('gpu-102'))).allowed).to.equal(true);
      });

      it('re-opens when the trial fails, and failures outside W do not count', async () => {
        const view = FakeCluster.fleet(1000, ['a']);
        const o = opts({ breaker: { failures: 2, windowMs: 10_000, openForMs: 60_000 }, maxUnavailablePerGroup: '100%', targetCooldownMs: 0 });
        const { guard } = await factory(view, o, clock);
        await run(guard, cordon('gpu-000'), FAIL);
        clock.advance(10_001);
        await run(guard, cordon('gpu-001'), FAIL);
        expect((await guard.authorize(cordon('gpu-002'))).allowed, 'only 1 failure in the window').to.equal(true);
        await guard.settle(cordon('gpu-002'), { allowed: true, guard: null, reservation: 'r' }, FAIL);
        expect(await guard.authorize(cordon('gpu-003'))).to.include({ guard: 'circuitOpen' });
        clock.advance(60_000);
        const trial = cordon('gpu-004');
        const tv = await guard.authorize(trial);
        expect(tv.allowed).to.equal(true);
        await guard.settle(trial, tv, FAIL);
        const st = (await guard.status()).breakers.find((b) => b.action === 'cordon');
        expect(st).to.include({ state: 'open', openUntil: clock.now() + 60_000 });
        expect(await guard.authorize(cordon('gpu-005'))).to.include({ guard: 'circuitOpen' });
      });
      it('never blocks an uncordon (capacity coming back), even with its own breaker open; a reset is blocked', async () => {
        const view = FakeCluster.fleet(1000, ['a']);
        const o = opts({ breaker: { failures: 2, windowMs: 60_000, openForMs: 120_000 }, maxUnavailablePerGroup: '100%', targetCooldownMs: 0 });
        const { guard } = await factory(view, o, clock);
        const un = (n: string): Decision => decision({ action: 'uncordon', target: { kind: 'Node', name: n } });
        const reset = (n: string): Decision => decision({ action: 'reset', target: { kind: 'Node', name: n, gpu: 'GPU-1' } });
        for (let i = 0; i < 2; i++) {
          await run(guard, cordon(`gpu-00${i}`), FAIL);
          await run(guard, un(`gpu-01${i}`), FAIL);
          await run(guard, reset(`gpu-02${i}`), FAIL);
        }
        expect(await guard.authorize(cordon('gpu-100'))).to.include({ guard: 'circuitOpen' });
        expect(await guard.authorize(reset('gpu-101'))).to.include({ guard: 'circuitOpen' });
        expect((await guard.authorize(un('gpu-102'))).allowed).to.equal(true);
      });
    });

    describe('rollback', () => {
      const ds = { kind: 'DaemonSet' as const, namespace: 'gpu-operator', name: 'nvidia-driver-daemonset' };
      const rb = (over: Partial<Decision> = {}): Decision => decision({ action: 'rollback', target: ds, severity: 'critical', ...over });

      it('allows one rollback per workload per window', async () => {
        const view = FakeCluster.fleet(10);
        view.setRevisions(ds, [1, 2, 3]);
        const { guard } = await factory(view, opts({ rollbackWindowMs: 6 * 3_600_000, targetCooldownMs: 0, rateLimits: {} }), clock);
        expect((await run(guard, rb(), { ok: true, toRevision: 2 })).allowed).to.equal(true);
        clock.advance(3_600_000);
        const v = await guard.authorize(rb());
        expect(v).to.include({ allowed: false, guard: 'rollbackWindow', outcome: 'denied' });
        expect(v.reason).to.contain('one rollback per 6h');
        const other = decision({ action: 'rollback', target: { kind: 'Deployment', namespace: 'default', name: 'web' } });
        expect((await guard.authorize(other)).allowed, 'another workload').to.equal(true);
      });

      it('never rolls back to a revision that was rolled away from within the window (flapping)', async () => {
        const view = FakeCluster.fleet(10);
        view.setRevisions(ds, [4, 5]);
        const o = opts({ rollbackWindowMs: 60 * 60_000, targetCooldownMs: 0, rateLimits: {} });
        const fx = await factory(view, o, clock);
        // 5 -> 4 at t0: revision 5 was rolled away from
        expect((await run(fx.guard, rb(), { ok: true, toRevision: 4 })).allowed).to.equal(true);
        clock.advance(61 * 60_000); // the one-per-window rule is over...
        // ...and 5 was rolled away from 61 min ago: outside the window, allowed
        expect((await fx.guard.authorize(rb({ params: { fromRevision: 6, toRevision: 5 } }))).allowed).to.equal(true);
      });

      it('denies a flap back to the revision it just left, naming it (before the one-per-window rule)', async () => {
        const view = FakeCluster.fleet(10);
        view.setRevisions(ds, [4, 5]);
        const fx = await factory(view, opts({ rollbackWindowMs: 60 * 60_000, targetCooldownMs: 0, rateLimits: {} }), clock);
        expect((await run(fx.guard, rb({ params: { fromRevision: 5, toRevision: 4 } }), { ok: true, toRevision: 4 })).allowed).to.equal(true);
        clock.advance(30 * 60_000);
        const back = await fx.replica().authorize(rb({ params: { fromRevision: 4, toRevision: 5 } }));
        expect(back).to.include({ allowed: false, guard: 'rollbackFlapping', outcome: 'denied' });
        expect(back.reason).to.equal(`refusing to roll DaemonSet/gpu-operator/nvidia-driver-daemonset back to revision 5: it was rolled away from at ${new Date(T0).toISOString()} (flapping)`);
        const elsewhere = await fx.guard.authorize(rb({ params: { fromRevision: 4, toRevision: 3 } }));
        expect(elsewhere).to.include({ allowed: false, guard: 'rollbackWindow' });
      });

      it('releases the rollback record when the rollback fails', async () => {
        const view = FakeCluster.fleet(10);
        view.setRevisions(ds, [1, 2]);
        const { guard } = await factory(view, opts({ targetCooldownMs: 0, rateLimits: {} }), clock);
        expect((await run(guard, rb(), FAIL)).allowed).to.equal(true);
        expect((await guard.authorize(rb())).allowed).to.equal(true);
      });
    });

    describe('authorizeBatch (ADR 0044): one atomic call for a batch', () => {
      const withoutReservation = (v: GuardVerdict): GuardVerdict => {
        const { reservation: _r, ...rest } = v;
        return rest;
      };
      const batchOpts = (): GuardOptions =>
        opts({
          maxUnavailable: '25%',
          maxUnavailablePerGroup: '100%',
          maxTaintedGpusPerNode: '50%',
          targetCooldownMs: 20_000,
          rateLimits: { cordon: { count: 4, windowMs: 60_000 }, page: { count: 3, windowMs: 60_000 }, taint: { count: 6, windowMs: 60_000 } },
          breaker: { failures: 2, windowMs: 60_000, openForMs: 30_000 },
        });

      it('equals the same decisions authorized one by one: verdicts, and the state they leave (property)', async function () {
        this.timeout(120_000);
        const spec = fc.record({
          kind: fc.constantFrom('cordon', 'cordon', 'taint', 'page', 'uncordon', 'again'),
          node: fc.nat(11),
          gpu: fc.nat(3),
          pick: fc.nat(1000),
        });
        const step = fc.record({
          batch: fc.array(spec, { minLength: 1, maxLength: 8 }),
          settle: fc.array(fc.constantFrom('ok', 'fail', 'open'), { minLength: 8, maxLength: 8 }),
          advanceMs: fc.constantFrom(0, 1000, 15_000, 40_000),
          pause: fc.constantFrom('none', 'none', 'none', 'pause', 'resume'),
        });
        await fc.assert(
          fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 5 }), async (steps) => {
            const c = new ManualClock(T0);
            const view = FakeCluster.fleet(12, ['a', 'b']).withGpus(4);
            view.cordon('gpu-011');
            const batched = (await factory(view, batchOpts(), c)).guard;
            const oneByOne = (await factory(view, batchOpts(), c)).guard;
            const made: Decision[] = [];
            for (const st of steps) {
              if (st.pause === 'pause') await Promise.all([batched.pause('drill', 'bob'), oneByOne.pause('drill', 'bob')]);
              if (st.pause === 'resume') await Promise.all([batched.resume(), oneByOne.resume()]);
              const ds = st.batch.map((x): Decision => {
                const node = `gpu-${String(x.node).padStart(3, '0')}`;
                // the same decision again (a redelivery, or twice in one batch): idempotency and in-flight records
                const again = made[x.pick % Math.max(1, made.length)];
                const d =
                  x.kind === 'again' && again
                    ? again
                    : x.kind === 'taint'
                      ? taint(node, `GPU-${node}-${x.gpu}`)
                      : x.kind === 'page'
                        ? decision({ action: 'page', dedupKey: `k${x.node}`, severity: 'critical', target: { kind: 'Node', name: node } })
                        : x.kind === 'uncordon'
                          ? decision({ action: 'uncordon', target: { kind: 'Node', name: node } })
                          : cordon(node);
                made.push(d);
                return d;
              });
              const vb = await batched.authorizeBatch(ds);
              const vo: GuardVerdict[] = [];
              for (const d of ds) vo.push(await oneByOne.authorize(d));
              expect(vb.map(withoutReservation)).to.deep.equal(vo.map(withoutReservation));
              // settle the allowed ones alike (each guard its own reservations), or leave them in flight
              for (const [i, d] of ds.entries()) {
                const how = st.settle[i] ?? 'open';
                const b = vb[i];
                const o = vo[i];
                if (how === 'open' || !b?.allowed || !o?.allowed) continue;
                const result = how === 'ok' ? OK : FAIL;
                const outcomes = await Promise.allSettled([batched.settle(d, b, result), oneByOne.settle(d, o, result)]);
                expect(outcomes.map((x) => x.status)).to.deep.equal([outcomes[0]?.status, outcomes[0]?.status]);
              }
              c.advance(st.advanceMs);
              expect(await batched.status()).to.deep.equal(await oneByOne.status());
            }
          }),
          { numRuns: 40 },
        );
      });

      it('admits exactly maxUnavailable of two replicas\' concurrent batches, in batch order on each', async () => {
        const view = FakeCluster.fleet(100, ['a']); // limit 5
        const fx = await factory(view, opts({ maxUnavailablePerGroup: '100%' }), clock);
        const a = Array.from({ length: 8 }, (_, i) => cordon(`gpu-0${String(i).padStart(2, '0')}`));
        const b = Array.from({ length: 8 }, (_, i) => cordon(`gpu-0${String(50 + i)}`));
        const [va, vb] = await Promise.all([fx.guard.authorizeBatch(a), fx.replica().authorizeBatch(b)]);
        const all = [...va, ...vb];
        expect(all.filter((v) => v.allowed)).to.have.length(5);
        expect(all.filter((v) => !v.allowed).every((v) => v.guard === 'maxUnavailable')).to.equal(true);
        // within one batch, the first ones win: no allowed verdict after a denied one
        for (const vs of [va, vb]) expect(vs.findIndex((v) => !v.allowed) === -1 || vs.slice(vs.findIndex((v) => !v.allowed)).every((v) => !v.allowed)).to.equal(true);
      });

      it('lists the fleet once per batch, not once per decision (the scopes of one instant are shared)', async () => {
        const view = FakeCluster.fleet(200, ['a', 'b']);
        let listed = 0;
        const listNodes = view.listNodes.bind(view);
        view.listNodes = () => (listed++, listNodes());
        const { guard } = await factory(view, opts({ maxUnavailable: '3', maxUnavailablePerGroup: '100%' }), clock);
        const vs = await guard.authorizeBatch(Array.from({ length: 8 }, (_, i) => cordon(`gpu-${String(100 + i)}`)));
        expect(vs.map((v) => v.allowed)).to.deep.equal([true, true, true, false, false, false, false, false]);
        // without the shared scopes: 8, one full pass over the fleet per decision
        expect(listed).to.equal(1);
      });

      it('answers the same decision twice in one batch as in flight the second time, and a settled one as idempotency', async () => {
        const view = FakeCluster.fleet(100, ['a']);
        const { guard } = await factory(view, opts({ maxUnavailablePerGroup: '100%' }), clock);
        const d = cordon('gpu-001');
        const [first, second] = await guard.authorizeBatch([d, d]);
        expect(first?.allowed).to.equal(true);
        expect(second).to.include({ allowed: false, guard: 'inFlight', outcome: 'suppressed' });
        await guard.settle(d, first as GuardVerdict, OK);
        expect((await guard.authorizeBatch([d]))[0]).to.include({ allowed: false, guard: 'idempotency', outcome: 'suppressed' });
        expect(await guard.authorizeBatch([])).to.deep.equal([]);
      });
    });

    describe('pause and status', () => {
      it('pauses every remediation with a reason on every replica; resume lifts it', async () => {
        const view = FakeCluster.fleet(100, ['a', 'b']);
        const fx = await factory(view, opts(), clock);
        await fx.guard.pause('driver upgrade in progress', 'alice');
        for (const g of [fx.guard, fx.replica()]) {
          const v = await g.authorize(cordon('gpu-000'));
          expect(v).to.include({ allowed: false, guard: 'paused', outcome: 'denied' });
          expect(v.reason).to.equal('remediation paused by alice: driver upgrade in progress');
        }
        expect((await fx.replica().status()).paused).to.deep.equal({ reason: 'driver upgrade in progress', by: 'alice', at: T0 });
        await fx.replica().resume();
        expect((await fx.guard.authorize(cordon('gpu-000'))).allowed).to.equal(true);
        expect((await fx.guard.status()).paused).to.equal(null);
      });

      it('reports fleet and group budgets (view + reservations), rate limits and breakers', async () => {
        const view = FakeCluster.fleet(100, ['a', 'b']);
        view.cordon('gpu-001');
        view.notReady('gpu-003');
        const { guard } = await factory(view, opts({ maxUnavailablePerGroup: '10%' }), clock);
        expect((await run(guard, cordon('gpu-000', { group: { pool: 'a' } }))).allowed).to.equal(true);
        const st = await guard.status();
        expect(st.at).to.equal(T0);
        expect(st.fleet).to.deep.equal({ scope: 'fleet', total: 100, unavailable: 2, reserved: 1, gpuWeight: 0, limit: 5 });
        expect(st.groups.find((g) => g.scope === 'pool=a')).to.deep.equal({ scope: 'pool=a', total: 50, unavailable: 0, reserved: 1, gpuWeight: 0, limit: 5 });
        expect(st.groups.find((g) => g.scope === 'pool=b')).to.deep.equal({ scope: 'pool=b', total: 50, unavailable: 2, reserved: 0, gpuWeight: 0, limit: 5 });
        expect(st.rateLimits.find((r) => r.action === 'cordon')).to.include({ limit: 10, used: 1, remaining: 9 });
        expect(st.breakers.map((b) => b.action)).to.deep.equal([...STATUS_ACTIONS]);
        expect(st.breakers.every((b) => b.state === 'closed')).to.equal(true);
      });
    });
  });
}
