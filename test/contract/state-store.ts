/**
 * The StateStore contract: ONE suite that every adapter must pass (memory in
 * test/unit/rules/store-memory.test.ts, Redis against a real redis-server in
 * test/integration/store-contract-redis.test.ts).
 */
import { expect } from 'chai';
import type { StateStore, StoreOp, StoreResult } from '../../rules/store/state-store.js';
import { StoreKeys } from '../../rules/store/keys.js';

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

    it('counter.add returns the increase over [ts - window, ts] with resets counted from the new value', async function () {
      const key = k.leaf('c', 'r', 0, 'n:a');
      const add = (member: string, ts: number, value: number): StoreOp => ({ op: 'counter.add', key, member, ts, value, windowMs: 60_000, ttlMs: 120_000 });
      const r = await run([add('s1', 0, 100), add('s2', 15_000, 130), add('s3', 30_000, 5), add('s3', 30_000, 5), add('s4', 45_000, 20)]);
      expect(r).to.deep.equal([0, 30, 35, 35, 50]);
      expect(await one({ op: 'counter.increase', key, now: 75_000, windowMs: 60_000 })).to.equal(20);
      expect(await one({ op: 'counter.increase', key, now: 200_000, windowMs: 60_000 })).to.equal(0);
    });

    it('counter values keep fractions', async function () {
      const key = k.leaf('c', 'r', 1, 'n:a');
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
      const fire = (now: number): StoreOp => ({ op: 'episode.fire', key, index, member: 'n:a', now, cooldownMs: 10_000, autoExpireMs: -1, ttlMs: 60_000 });
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

    it('episode.fire with autoExpire ends an episode by itself (rules without clear)', async function () {
      const key = k.episode('r2', 'n:a');
      const index = k.episodeIndex('r2');
      const fire = (now: number): StoreOp => ({ op: 'episode.fire', key, index, member: 'n:a', now, cooldownMs: 5000, autoExpireMs: 5000, ttlMs: 60_000 });
      expect(await run([fire(0), fire(4999), fire(5000)])).to.deep.equal([0, null, 5000]);
      expect(await one({ op: 'episode.quiet', index, before: 1e12 })).to.deep.equal([]);
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
      const c = k.leaf('c', 'r', 0, 'n:a');
      const d = k.leaf('d', 'r', 0, 'n:a');
      await run([
        { op: 'window.add', key: w, member: 'e', ts: 1, windowMs: 1000, ttlMs: 30_000 },
        { op: 'distinct.add', key: d, member: 'n', ts: 1, windowMs: 1000, ttlMs: 30_000 },
        { op: 'counter.add', key: c, member: 'e', ts: 1, value: 1, windowMs: 1000, ttlMs: 30_000 },
        { op: 'sustained.observe', key: s, index: si, member: 'n:a', ts: 1, holds: true, ttlMs: 30_000 },
        { op: 'seen.touch', index: a, member: 'n:a', ts: 1, ttlMs: 30_000 },
        { op: 'episode.fire', key: e, index: ei, member: 'n:a', now: 1, cooldownMs: 0, autoExpireMs: -1, ttlMs: 30_000 },
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
