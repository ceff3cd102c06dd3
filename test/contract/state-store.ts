/**
 * The StateStore contract: ONE suite that every adapter must pass (memory in
 * test/unit/rules/store-memory.test.ts, Redis against a real redis-server in
 * test/integration/store-contract-redis.test.ts).
 */
import { expect } from 'chai';
import type { StateStore, StoreOp, StoreResult } from '../../rules/store/state-store.js';
import { StoreKeys } from '../../adapters/redis/keys.js';

export interface StoreUnderTest {
  store: StateStore;
  /** Remaining TTL of a key in ms (adapters that have real TTLs); null = no TTL, undefined = unsupported. */
  ttlOf?: (key: string) => Promise<number | null>;
  cleanup?: () => Promise<void>;
}

export function stateStoreContract(name: string, factory: () => Promise<StoreUnderTest>): void {
  describe(`StateStore contract: ${name}`, function () {
    let sut: StoreUnderTest;
    let n = 0;
    let k: StoreKeys;
    const run = (ops: StoreOp[]): Promise<StoreResult[]> => sut.store.exec(ops);
    const one = async (op: StoreOp): Promise<StoreResult> => (await run([op]))[0] as StoreResult;

    beforeEach(async function () {
      sut = await factory();
      // a fresh prefix per test: adapters may share a server between tests
      k = new StoreKeys(`ct${++n}:${Date.now()}:`);
    });
    afterEach(async function () {
      await sut.cleanup?.();
    });

    it('window.add counts members in (ts - window, ts], idempotent per member', async function () {
      const key = k.leaf('w', 'r', 0, 'n:a');
      const add = (member: string, ts: number): StoreOp => ({ op: 'window.add', key, member, ts, windowMs: 1000, ttlMs: 60_000 });
      const r = await run([add('e1', 1000), add('e2', 1500), add('e2', 1500), add('e3', 2000), add('e4', 2600)]);
      expect(r).to.deep.equal([1, 2, 2, 2, 2]);
      expect(await one({ op: 'window.count', key, now: 2600, windowMs: 1000 })).to.equal(2);
      expect(await one({ op: 'window.count', key, now: 3600, windowMs: 1000 })).to.equal(0);
      expect(await one({ op: 'window.count', key: k.leaf('w', 'r', 0, 'n:none'), now: 3600, windowMs: 1000 })).to.equal(0);
    });

    it('distinct.add counts distinct members by their latest time; members lists them sorted', async function () {
      const key = k.leaf('d', 'r', 0, 'g:pool=a');
      const add = (member: string, ts: number): StoreOp => ({ op: 'distinct.add', key, member, ts, windowMs: 10_000, ttlMs: 60_000 });
      expect(await run([add('n2', 0), add('n1', 1000), add('n2', 2000), add('n3', 9000)])).to.deep.equal([1, 2, 2, 3]);
      // at 11500 n2 is still in (it was seen again at 2000), n1 fell out
      expect(await one({ op: 'distinct.count', key, now: 11_500, windowMs: 10_000 })).to.equal(2);
      expect(await one({ op: 'distinct.members', key, now: 11_500, windowMs: 10_000 })).to.deep.equal(['n2', 'n3']);
      expect(await one(add('n1', 12_500))).to.equal(2);
    });

    it('distinct.add: a late member counts in the fullest window that holds it, up to a newer member (replicas feed one group out of order)', async function () {
      const key = k.leaf('d', 'r', 0, 'g:pool=late');
      const add = (member: string, ts: number): StoreOp => ({ op: 'distinct.add', key, member, ts, windowMs: 15_000, ttlMs: 60_000 });
      // replica A adds a (t=0); replica B adds c (t=10s) first; A's b (t=5s) comes last: (-5s, 10s] holds all three
      expect(await run([add('a', 0), add('c', 10_000)])).to.deep.equal([1, 2]);
      expect(await one(add('b', 5_000))).to.equal(3);
      expect(await one({ op: 'distinct.members', key, now: 5_000, windowMs: 15_000 }), 'the nodes of the window that counted').to.deep.equal(['a', 'b', 'c']);
      // in order nothing changes: the window ends at the event
      expect(await one({ op: 'distinct.members', key, now: 10_000, windowMs: 15_000 })).to.deep.equal(['a', 'b', 'c']);
      // a newer member a whole window away (q) is in no window that holds the late one (r)
      const k2 = k.leaf('d', 'r', 0, 'g:pool=far');
      const add2 = (member: string, ts: number): StoreOp => ({ op: 'distinct.add', key: k2, member, ts, windowMs: 15_000, ttlMs: 60_000 });
      expect(await run([add2('p', 2_000), add2('q', 16_000), add2('r', 1_000)])).to.deep.equal([1, 2, 2]);
      expect(await one({ op: 'distinct.members', key: k2, now: 1_000, windowMs: 15_000 })).to.deep.equal(['p', 'r']);
      expect(await run([add2('s', 30_000)])).to.deep.equal([2]);
    });

    it('counter.add returns the increase over [ts - window, ts] with resets counted from the new value', async function () {
      const key = k.leaf('cs', 'r', 0, 'n:a');
      const add = (member: string, ts: number, value: number): StoreOp => ({ op: 'counter.add', key, member, ts, value, windowMs: 60_000, ttlMs: 120_000 });
      const r = await run([add('s1', 0, 100), add('s2', 15_000, 130), add('s3', 30_000, 5), add('s3', 30_000, 5), add('s4', 45_000, 20)]);
      expect(r).to.deep.equal([0, 30, 35, 35, 50]);
      expect(await one({ op: 'counter.increase', key, now: 75_000, windowMs: 60_000 })).to.equal(20);
      expect(await one({ op: 'counter.increase', key, now: 200_000, windowMs: 60_000 })).to.equal(0);
    });

    it('counter values keep fractions', async function () {
      const key = k.leaf('cs', 'r', 1, 'n:a');
      const r = await run([
        { op: 'counter.add', key, member: 'a', ts: 0, value: 1.5, windowMs: 60_000, ttlMs: 120_000 },
        { op: 'counter.add', key, member: 'b', ts: 1, value: 2.75, windowMs: 60_000, ttlMs: 120_000 },
      ]);
      expect(r).to.deep.equal([0, 1.25]);
    });

    it('sustained.observe tracks since, resets on a contrary observation, ignores stale ones, indexes deadlines', async function () {
      const key = k.leaf('s', 'r', 0, 'n:a');
      const index = k.sustainedIndex('r', 0);
      const obs = (ts: number, holds: boolean): StoreOp => ({ op: 'sustained.observe', key, index, member: 'n:a', ts, holds, ttlMs: 60_000 });
      expect(await run([obs(1000, true), obs(2000, true), obs(1500, false), obs(3000, false), obs(4000, true)])).to.deep.equal([1000, 1000, 1000, null, 4000]);
      expect(await one({ op: 'sustained.get', key })).to.equal(4000);
      expect(await one({ op: 'due.pop', index, before: 3999 })).to.deep.equal([]);
      expect(await one({ op: 'due.pop', index, before: 4000 })).to.deep.equal(['n:a']);
      expect(await one({ op: 'due.pop', index, before: 9000 })).to.deep.equal([]);
      // still holding: since is kept even after its deadline was popped
      expect(await one(obs(5000, true))).to.equal(4000);
    });

    it('seen.touch keeps the latest time and due.pop returns silent scopes sorted', async function () {
      const index = k.seenIndex('r', 0);
      const touch = (member: string, ts: number): StoreOp => ({ op: 'seen.touch', index, member, ts, ttlMs: 60_000 });
      expect(await run([touch('n:b', 1000), touch('n:a', 2000), touch('n:b', 500), touch('n:c', 9000)])).to.deep.equal([null, null, 1000, null]);
      expect(await one({ op: 'due.pop', index, before: 5000 })).to.deep.equal(['n:a', 'n:b']);
      expect(await one({ op: 'due.pop', index, before: 5000 })).to.deep.equal([]);
    });

    it('episode.fire fires once per episode, honours the cooldown, and clear returns the start', async function () {
      const key = k.episode('r', 'n:a');
      const index = k.episodeIndex('r');
      const fire = (now: number): StoreOp => ({ op: 'episode.fire', key, index, member: 'n:a', now, by: `e${now}`, cooldownMs: 10_000, autoExpireMs: -1, ttlMs: 60_000 });
      const clear = (now: number, quietBefore: number | null = null): StoreOp => ({ op: 'episode.clear', key, index, member: 'n:a', now, quietBefore });
      expect(await run([fire(1000), fire(2000)])).to.deep.equal([1000, null]);
      expect(await one({ op: 'episode.get', key })).to.equal(1000);
      expect(await one({ op: 'episode.quiet', index, before: 1000 })).to.deep.equal(['n:a']);
      await one({ op: 'episode.touch', key, index, member: 'n:a', now: 3000 });
      expect(await one({ op: 'episode.quiet', index, before: 2000 })).to.deep.equal([]);
      expect(await one(clear(4000, 2000))).to.equal(null); // touched at 3000: not quiet
      expect(await one(clear(4000, 3000))).to.equal(1000);
      expect(await one(clear(4500))).to.equal(null);
      expect(await one({ op: 'episode.get', key })).to.equal(null);
      expect(await one(fire(5000))).to.equal(null); // cooldown until 11000
      expect(await one(fire(11_000))).to.equal(11_000);
    });

    it('episode.release ends an active or cooling-down episode and its cooldown: the next match fires', async function () {
      const key = k.episode('rl', 'n:a');
      const index = k.episodeIndex('rl');
      const fire = (now: number): StoreOp => ({ op: 'episode.fire', key, index, member: 'n:a', now, by: `e${now}`, cooldownMs: 3_600_000, autoExpireMs: -1, ttlMs: 7_200_000 });
      const release: StoreOp = { op: 'episode.release', key, index, member: 'n:a' };
      expect(await one(release), 'nothing to release').to.equal(null);
      // active: released, gone from the index, and the next match fires at once (no cooldown)
      expect(await run([fire(1000), fire(2000), release, fire(3000)])).to.deep.equal([1000, null, 1000, 3000]);
      expect(await one({ op: 'episode.get', key })).to.equal(3000);
      // cleared, still cooling down: released, the cooldown ends with it
      expect(await one({ op: 'episode.clear', key, index, member: 'n:a', now: 4000, quietBefore: null })).to.equal(3000);
      expect(await one(fire(5000)), 'cooling down').to.equal(null);
      expect(await run([release, { op: 'episode.quiet', index, before: 1e12 }, fire(6000), { op: 'episode.quiet', index, before: 1e12 }])).to.deep.equal([3000, [], 6000, ['n:a']]);
      expect(await run([release, release, { op: 'episode.get', key }, { op: 'episode.quiet', index, before: 1e12 }])).to.deep.equal([6000, null, null, []]);
    });

    it('episode.fire with autoExpire ends an episode by itself (rules without clear)', async function () {
      const key = k.episode('r2', 'n:a');
      const index = k.episodeIndex('r2');
      const fire = (now: number): StoreOp => ({ op: 'episode.fire', key, index, member: 'n:a', now, by: '', cooldownMs: 5000, autoExpireMs: 5000, ttlMs: 60_000 });
      expect(await run([fire(0), fire(4999), fire(5000)])).to.deep.equal([0, null, 5000]);
      expect(await one({ op: 'episode.quiet', index, before: 1e12 })).to.deep.equal([]);
    });

    it('episode.fire re-fired at the episode start (a redelivered event) returns that start again, and only then', async function () {
      const key = k.episode('r3', 'n:a');
      const index = k.episodeIndex('r3');
      const fire = (now: number, by = 'e1'): StoreOp => ({ op: 'episode.fire', key, index, member: 'n:a', now, by, cooldownMs: 10_000, autoExpireMs: -1, ttlMs: 60_000 });
      const t0 = 1_764_000_000_123; // an epoch-ms event time, as the engine sends
      expect(await run([fire(t0), fire(t0)]), 'twice in one batch').to.deep.equal([t0, t0]);
      expect(await one(fire(t0)), 'redelivered in a later batch').to.equal(t0);
      expect(await run([fire(t0, 'e2'), fire(t0, '')]), 'another event, or a tick, at the same time').to.deep.equal([null, null]);
      expect(await one(fire(t0 + 1)), 'a later event of the active episode').to.equal(null);
      expect(await one({ op: 'episode.touch', key, index, member: 'n:a', now: t0 + 2 })).to.equal(null);
      expect(await one(fire(t0)), 'touched since: still the same episode').to.equal(t0);
      expect(await one({ op: 'episode.get', key })).to.equal(t0);
      expect(await one({ op: 'episode.quiet', index, before: t0 + 1 }), 'the re-fire wrote nothing (last match stays t0 + 2)').to.deep.equal([]);
      expect(await one({ op: 'episode.clear', key, index, member: 'n:a', now: t0 + 3, quietBefore: null })).to.equal(t0);
      expect(await one(fire(t0)), 'ended: a re-fire at the old start is in the cooldown').to.equal(null);
      expect(await one({ op: 'episode.get', key })).to.equal(null);
    });

    it('sequence.step completes only in order within the window and resets', async function () {
      const key = k.leaf('q', 'r', 0, 'n:a');
      const step = (s: number, ts: number): StoreOp => ({ op: 'sequence.step', key, step: s, steps: 3, ts, windowMs: 10_000, ttlMs: 60_000 });
      expect(await run([step(1, 0), step(0, 1000), step(2, 2000), step(1, 3000), step(2, 4000), step(2, 5000)])).to.deep.equal([false, false, false, false, true, false]);
      expect(await run([step(0, 20_000), step(1, 25_000), step(2, 31_000)])).to.deep.equal([false, false, false]);
    });

    it('max.set keeps the maximum', async function () {
      const key = k.workloadChange({ kind: 'DaemonSet', namespace: 'ns', name: 'ds' });
      expect(await run([{ op: 'max.get', key }, { op: 'max.set', key, value: 5000, ttlMs: 60_000 }, { op: 'max.set', key, value: 3000, ttlMs: 60_000 }, { op: 'max.get', key }])).to.deep.equal([
        null,
        5000,
        5000,
        5000,
      ]);
    });

    it('a batch is ordered: each op sees the effects of the ops before it', async function () {
      const key = k.leaf('w', 'r', 9, 'n:a');
      const ops: StoreOp[] = [];
      for (let i = 0; i < 50; i++) ops.push({ op: 'window.add', key, member: `e${i}`, ts: i * 10, windowMs: 100_000, ttlMs: 60_000 }, { op: 'window.count', key, now: i * 10, windowMs: 100_000 });
      const r = await run(ops);
      for (let i = 0; i < 50; i++) {
        expect(r[2 * i]).to.equal(i + 1);
        expect(r[2 * i + 1]).to.equal(i + 1);
      }
    });

    it('a batch equals the same ops run one call at a time (many rules, scopes and kinds mixed)', async function () {
      // a deterministic mix over 3 scopes and 2 rules, with repeats on the same keys
      const mk = (kk: StoreKeys): StoreOp[] => {
        const ops: StoreOp[] = [];
        let seed = 7;
        const rnd = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
        for (let i = 0; i < 300; i++) {
          const scope = `n:node-${rnd(3)}`;
          const rule = rnd(2) === 0 ? 'ra' : 'rb';
          const ts = 1_000_000 + i * 700 - rnd(3) * 900; // mostly in order, some late
          switch (rnd(7)) {
            case 0:
              ops.push({ op: 'window.add', key: kk.leaf('w', rule, 0, scope), member: `e${rnd(250)}`, ts, windowMs: 20_000, ttlMs: 60_000 });
              break;
            case 1:
              ops.push({ op: 'counter.add', key: kk.leaf('cs', rule, 1, scope), member: `e${i}`, ts, value: rnd(4) === 0 ? rnd(5) : 10 + i, windowMs: 30_000, ttlMs: 90_000 });
              break;
            case 2:
              ops.push({ op: 'sustained.observe', key: kk.leaf('s', rule, 2, scope), index: kk.sustainedIndex(rule, 2), member: scope, ts, holds: rnd(3) !== 0, ttlMs: 60_000 });
              break;
            case 3:
              ops.push({ op: 'distinct.add', key: kk.leaf('d', rule, 3, 'g:pool=a'), member: scope, ts, windowMs: 15_000, ttlMs: 60_000 });
              break;
            case 4:
              ops.push({ op: 'seen.touch', index: kk.seenIndex(rule, 4), member: scope, ts, ttlMs: 60_000 });
              break;
            case 5:
              ops.push({ op: 'episode.fire', key: kk.episode(rule, scope), index: kk.episodeIndex(rule), member: scope, now: ts, by: `e${ts}`, cooldownMs: 5000, autoExpireMs: -1, ttlMs: 60_000 });
              break;
            default:
              ops.push(
                { op: 'episode.clear', key: kk.episode(rule, scope), index: kk.episodeIndex(rule), member: scope, now: ts, quietBefore: null },
                { op: 'counter.increase', key: kk.leaf('cs', rule, 1, scope), now: ts, windowMs: 10_000 },
                { op: 'window.count', key: kk.leaf('w', rule, 0, scope), now: ts, windowMs: 20_000 },
              );
          }
        }
        ops.push({ op: 'due.pop', index: kk.sustainedIndex('ra', 2), before: 2_000_000 }, { op: 'distinct.members', key: kk.leaf('d', 'rb', 3, 'g:pool=a'), now: 1_200_000, windowMs: 15_000 });
        return ops;
      };
      const batched = await run(mk(k));
      const k2 = new StoreKeys(`${k.prefix}one:`);
      const single: StoreResult[] = [];
      for (const op of mk(k2)) single.push(await one(op));
      expect(batched).to.deep.equal(single);
      expect(batched.filter((r) => r !== null && r !== 0).length).to.be.above(100); // the mix really exercised state
    });

    it('a batch with many ops on one key: every op sees the ones before it', async function () {
      const c = k.leaf('cs', 'r', 0, 'n:a');
      const w = k.leaf('w', 'r', 1, 'n:a');
      const ops: StoreOp[] = [];
      for (let i = 0; i < 400; i++) {
        ops.push({ op: 'counter.add', key: c, member: `e${i}`, ts: i * 100, value: i * 2, windowMs: 10_000, ttlMs: 60_000 });
        ops.push({ op: 'counter.add', key: c, member: `e${i}`, ts: i * 100, value: i * 2, windowMs: 10_000, ttlMs: 60_000 }); // redelivered
        ops.push({ op: 'window.add', key: w, member: `e${i % 150}`, ts: i * 100, windowMs: 5_000, ttlMs: 60_000 });
      }
      const r = await run(ops);
      for (let i = 0; i < 400; i++) {
        // samples in [ts - 10s, ts]: 101 of them once full, each +2
        const inc = 2 * Math.min(i, 100);
        expect(r[3 * i], `counter ${i}`).to.equal(inc);
        expect(r[3 * i + 1], `redelivered ${i}`).to.equal(inc);
        // window (ts - 5s, ts]: 50 once full; ids repeat every 150, far outside the window
        expect(r[3 * i + 2], `window ${i}`).to.equal(Math.min(i + 1, 50));
      }
    });

    it('counters: late and same-millisecond samples, redeliveries and resets match a brute-force oracle', async function () {
      const key = k.leaf('cs', 'r', 5, 'n:a');
      const W = 10_000;
      // [id, ts, value]; ts out of order, several samples in one ms, resets, redeliveries
      const samples: Array<[string, number, number]> = [
        ['a', 1000, 5], ['b', 3000, 9], ['c', 2000, 7], ['d', 3000, 12], ['b', 3000, 9], ['e', 3000, 4], ['f', 9000, 20],
        ['g', 8000, 2], ['c', 2000, 7], ['h', 12_500, 25], ['i', 12_500, 25], ['j', 11_000, 30], ['k', 30_000, 1], ['l', 29_000, 40], ['m', 31_000, 3],
      ];
      // oracle: the samples held (an add drops those older than its ts - W for good), by ts then arrival
      let held: Array<{ id: string; ts: number; v: number; seq: number }> = [];
      const ops: StoreOp[] = [];
      const want: number[] = [];
      samples.forEach(([id, ts, v], seq) => {
        if (!held.some((x) => x.id === id)) held.push({ id, ts, v, seq });
        held = held.filter((x) => x.ts >= ts - W);
        ops.push({ op: 'counter.add', key, member: id, ts, value: v, windowMs: W, ttlMs: 60_000 });
        const cs = held.filter((x) => x.ts <= ts).sort((p, q) => p.ts - q.ts || p.seq - q.seq).map((x) => x.v);
        let o = 0;
        for (let i = 1; i < cs.length; i++) o += cs[i]! >= cs[i - 1]! ? cs[i]! - cs[i - 1]! : cs[i]!;
        want.push(o);
      });
      expect(await run(ops)).to.deep.equal(want);
      // reads over a shorter window, and at a time before the newest sample
      expect(await run([
        { op: 'counter.increase', key, now: 31_000, windowMs: 1500 },
        { op: 'counter.increase', key, now: 30_500, windowMs: 2000 },
        { op: 'counter.increase', key, now: 29_500, windowMs: 100 },
      ])).to.deep.equal([2, 1, 0]);
    });

    it('a batch larger than one script call stays ordered', async function () {
      const key = k.leaf('w', 'r', 6, 'n:a');
      const ops: StoreOp[] = [];
      for (let i = 0; i < 25_000; i++) ops.push({ op: 'window.add', key, member: `e${i}`, ts: i, windowMs: 1_000_000, ttlMs: 60_000 });
      ops.push({ op: 'window.count', key, now: 25_000, windowMs: 1_000_000 });
      const r = await run(ops);
      expect(r[19_999]).to.equal(20_000);
      expect(r[20_000]).to.equal(20_001);
      expect(r[25_000]).to.equal(25_000);
    });

    it('every written key carries a TTL', async function () {
      if (!sut.ttlOf) return; // adapters without wall-clock TTLs (memory expires by op time; covered in its own test)
      const w = k.leaf('w', 'r', 0, 'n:a');
      const s = k.leaf('s', 'r', 0, 'n:a');
      const si = k.sustainedIndex('r', 0);
      const e = k.episode('r', 'n:a');
      const ei = k.episodeIndex('r');
      const a = k.seenIndex('r', 0);
      const q = k.leaf('q', 'r', 0, 'n:a');
      const m = k.workloadChange({ kind: 'Deployment', namespace: 'x', name: 'y' });
      const c = k.leaf('cs', 'r', 0, 'n:a');
      const d = k.leaf('d', 'r', 0, 'n:a');
      await run([
        { op: 'window.add', key: w, member: 'e', ts: 1, windowMs: 1000, ttlMs: 30_000 },
        { op: 'distinct.add', key: d, member: 'n', ts: 1, windowMs: 1000, ttlMs: 30_000 },
        { op: 'counter.add', key: c, member: 'e', ts: 1, value: 1, windowMs: 1000, ttlMs: 30_000 },
        { op: 'sustained.observe', key: s, index: si, member: 'n:a', ts: 1, holds: true, ttlMs: 30_000 },
        { op: 'seen.touch', index: a, member: 'n:a', ts: 1, ttlMs: 30_000 },
        { op: 'episode.fire', key: e, index: ei, member: 'n:a', now: 1, by: 'e1', cooldownMs: 0, autoExpireMs: -1, ttlMs: 30_000 },
        { op: 'sequence.step', key: q, step: 0, steps: 2, ts: 1, windowMs: 1000, ttlMs: 30_000 },
        { op: 'max.set', key: m, value: 1, ttlMs: 30_000 },
      ]);
      for (const key of [w, d, c, s, si, a, e, ei, q, m]) {
        const ttl = await sut.ttlOf(key);
        expect(ttl, key).to.be.a('number').within(1, 30_000);
      }
    });
  });
}
