/**
 * The StateStore contract against a REAL redis-server (test/harness/redis.ts),
 * plus what only Redis has: Lua scripts reloaded after a server restart
 * (NOSCRIPT), and atomic episode firing under concurrent clients (two engine
 * replicas never both fire).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { startRedis } from '../harness/redis.js';
import type { RedisServer } from '../harness/redis.js';
import { RedisStateStore } from '../../rules/store/redis-store.js';
import { MemoryStateStore } from '../../rules/store/memory-store.js';
import { NodeSustainedFilterStore } from '../../rules/store/node-sustained-filter.js';
import { StaleEpochError } from '../../rules/store/state-store.js';
import type { StateStore, StoreOp } from '../../rules/store/state-store.js';
import { StoreKeys } from '../../adapters/redis/keys.js';
import { stateStoreContract } from '../contract/state-store.js';
import { RoutedForContract } from '../contract/partition-local.js';
import { PartitionLocalStore } from '../../rules/store/partition-local-store.js';
import { RedisPartitionState } from '../../rules/store/partition-state-redis.js';
import { decodeOpLog } from '../../rules/store/partition-oplog.js';
import { packageRoot } from '../../adapters/paths.js';
import { loadRuleTestFile, runRuleTestCase } from '../../rules/testing/run-rule-tests.js';

let server: RedisServer | undefined;
const clients: Redis[] = [];

function client(): Redis {
  if (!server) throw new Error('redis-server not started');
  const c = new Redis(server.url, { lazyConnect: false, maxRetriesPerRequest: 3 });
  clients.push(c);
  return c;
}

describe('Redis state store (real redis-server)', function () {
  this.timeout(60_000);
  before(async function () {
    server = await startRedis();
  });
  after(async function () {
    for (const c of clients) c.disconnect();
    await server?.stop();
  });

  // the plain store, and the replica-local skip of node-scoped observations that change nothing over it (ADR 0042)
  const overRedis = (name: string, wrap: (s: RedisStateStore) => StateStore): void =>
    stateStoreContract(name, () => {
      const c = client();
      return Promise.resolve({
        store: wrap(new RedisStateStore({ client: c })),
        ttlOf: async (key: string) => {
          const t = await c.pttl(key);
          return t < 0 ? null : t;
        },
        cleanup: async () => void (await c.flushdb()),
      });
    });
  overRedis('redis', (s) => s);
  overRedis('redis behind the node sustained filter', (s) => new NodeSustainedFilterStore(s));

  // partition-local state (ADR 0045, ADR 0047): every key in partition 0's memory, written by batch.lua (op log, snapshots),
  // restored by HSCAN + LRANGE replay before every call
  stateStoreContract('redis, partition-local, restored from its op log before every call', () => {
    const c = client();
    const backend = new RedisPartitionState({ client: c, shared: new RedisStateStore({ client: c }), keyPrefix: 'plc:', groupId: 'g', topic: 't', chunk: 3, logChunk: 2 });
    return Promise.resolve({ store: new RoutedForContract(backend, true), cleanup: async () => void (await c.flushdb()) });
  });
  stateStoreContract('redis, partition-local, restored from snapshot + op log before every call (a snapshot every 3 ops)', () => {
    const c = client();
    const backend = new RedisPartitionState({ client: c, shared: new RedisStateStore({ client: c }), keyPrefix: 'plc:', groupId: 'g', topic: 't', chunk: 3, logChunk: 2 });
    return Promise.resolve({ store: new RoutedForContract(backend, true, { snapshotOps: 3, snapshotKeysFactor: 0 }), cleanup: async () => void (await c.flushdb()) });
  });

  it('partition-local write-behind: atomic with the shared ops, fenced by the owner epoch, restored in HSCAN chunks (ADR 0045)', async function () {
    const c = client();
    const keys = new StoreKeys('pl:');
    const backend = (): RedisPartitionState => new RedisPartitionState({ client: c, shared: new RedisStateStore({ client: c }), keyPrefix: 'pl:', groupId: 'g', topic: 't', chunk: 2 });
    const isLocal = (k: string): boolean => k.includes(':n:');
    const a = new PartitionLocalStore({ backend: backend(), isLocal });
    const add = (node: string, member: string, ts: number): StoreOp => ({ op: 'window.add', key: keys.leaf('w', 'r', 0, `n:${node}`), member, ts, windowMs: 60_000, ttlMs: 600_000 });
    const group: StoreOp = { op: 'window.add', key: keys.leaf('w', 'r', 0, 'g:pool=a'), member: 'e9', ts: 1000, windowMs: 60_000, ttlMs: 600_000 };
    a.assign([4]);
    await a.enter(4);
    expect(await a.execFinal(['a', 'b', 'c', 'd', 'e'].map((n, i) => add(n, `e${i}`, 1000 + i)))).to.deep.equal([1, 1, 1, 1, 1]);
    a.leave(true);
    // ADR 0047: one op-log entry (the five ops), no snapshot yet
    const hash = keys.partitionState('g', 't', 4);
    const log = keys.partitionLog('g', 't', 4);
    expect(await c.hlen(hash)).to.equal(0);
    expect((await c.lrange(log, 0, -1)).map((e) => decodeOpLog(e)?.length)).to.deep.equal([5]);
    expect(await c.exists(keys.leaf('w', 'r', 0, 'n:a'))).to.equal(0); // node state lives in the hash, not in keys of its own
    // b takes partition 4 (restores in chunks of 2); a, not yet aware, is fenced: nothing of its batch is written, shared op included
    const restored: number[] = [];
    const b2 = new PartitionLocalStore({ backend: backend(), isLocal, onRestore: (_p, n) => restored.push(n) });
    b2.assign([4]);
    await b2.enter(4);
    expect(restored).to.deep.equal([5]);
    await a.enter(4);
    const err = await a.execFinal([add('a', 'z1', 2000), group]).catch((e: unknown) => e);
    a.leave(false);
    expect(err).to.be.instanceOf(StaleEpochError);
    expect(await c.exists(keys.leaf('w', 'r', 0, 'g:pool=a'))).to.equal(0);
    expect(await c.llen(log)).to.equal(1); // nothing of a's batch appended
    expect(await b2.execFinal([{ op: 'window.count', key: keys.leaf('w', 'r', 0, 'n:a'), now: 2000, windowMs: 60_000 }, group])).to.deep.equal([1, 1]);
    b2.leave(true);
    expect(await c.exists(keys.leaf('w', 'r', 0, 'g:pool=a'))).to.equal(1);
  });

  it('partition-local snapshot: the dirty entries into the hash and the op log deleted in the same call; a restore replays only what follows it (ADR 0047)', async function () {
    const c = client();
    const keys = new StoreKeys('ps:');
    const backend = (): RedisPartitionState => new RedisPartitionState({ client: c, shared: new RedisStateStore({ client: c }), keyPrefix: 'ps:', groupId: 'g', topic: 't', logChunk: 1 });
    const isLocal = (k: string): boolean => k.includes(':n:');
    const add = (node: string, member: string, ts: number): StoreOp => ({ op: 'window.add', key: keys.leaf('w', 'r', 0, `n:${node}`), member, ts, windowMs: 60_000, ttlMs: 600_000 });
    const a = new PartitionLocalStore({ backend: backend(), isLocal, snapshotOps: 4, snapshotKeysFactor: 0 });
    a.assign([1]);
    const hash = keys.partitionState('g', 't', 1);
    const log = keys.partitionLog('g', 't', 1);
    let i = 0;
    for (const n of ['a', 'b', 'c', 'a', 'd', 'e']) {
      await a.enter(1);
      await a.execFinal([add(n, `e${i}`, 1000 + i++)]);
      a.leave(true);
    }
    // appends a, b, c; the 4th op made a snapshot (a, b, c whole, log deleted); then d, e appended
    expect((await c.hkeys(hash)).sort()).to.deep.equal(['a', 'b', 'c'].map((n) => keys.leaf('w', 'r', 0, `n:${n}`)));
    expect(await c.llen(log)).to.equal(2);
    const r = new PartitionLocalStore({ backend: backend(), isLocal });
    r.assign([1]);
    await r.enter(1);
    expect(r.stats.replayedOps).to.equal(2);
    expect(await r.execFinal(['a', 'e'].map((n) => ({ op: 'window.count', key: keys.leaf('w', 'r', 0, `n:${n}`), now: 2000, windowMs: 60_000 })))).to.deep.equal([2, 1]);
    r.leave(true);
    // a malformed entry on real Redis: refused, the rest replayed
    await c.rpush(log, '{"not":"an entry"}');
    const q = new PartitionLocalStore({ backend: backend(), isLocal });
    q.assign([1]);
    await q.enter(1);
    expect(q.stats).to.include({ refusedLogEntries: 1, replayedOps: 2 });
    await q.execFinal([]);
    q.leave(true);
    expect(await c.exists(log)).to.equal(0); // rewritten as a snapshot
    expect(await c.hlen(hash)).to.equal(5);
  });

  it('only one of many concurrent replicas fires the same episode; the event that fired it gets its start back on every replica', async function () {
    const keys = new StoreKeys('race:');
    const stores = Array.from({ length: 8 }, () => new RedisStateStore({ client: client() }));
    const fire = (s: RedisStateStore, by: string) => s.exec([{ op: 'episode.fire', key: keys.episode('r', 'n:a'), index: keys.episodeIndex('r'), member: 'n:a', now: 1000, by, cooldownMs: 60_000, autoExpireMs: -1, ttlMs: 60_000 }]);
    const results = await Promise.all(stores.map((s, i) => fire(s, `e${i}`)));
    const won = results.flatMap((r, i) => (r[0] === 1000 ? [i] : []));
    expect(won, 'eight events at the same time: one fires').to.have.length(1);
    const again = await Promise.all(stores.map((s) => fire(s, `e${won[0]}`)));
    expect(again, 'its redelivery: the same episode everywhere').to.deep.equal(stores.map(() => [1000]));
  });

  it('gives bit-identical results to the memory store on a random mix (fractional counters, late samples, many keys)', async function () {
    const keys = new StoreKeys('twin:');
    let seed = 99;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const batches: StoreOp[][] = [];
    let t = 1_700_000_000_000;
    for (let b = 0; b < 20; b++) {
      const ops: StoreOp[] = [];
      for (let i = 0; i < 200; i++) {
        t += Math.floor(rnd() * 400);
        const scope = `n:w-${Math.floor(rnd() * 8)}`;
        const ts = t - (rnd() < 0.1 ? Math.floor(rnd() * 5000) : 0);
        const r = rnd();
        if (r < 0.45) ops.push({ op: 'counter.add', key: keys.leaf('cs', 'r', 0, scope), member: `m${b}-${i}`, ts, value: rnd() < 0.05 ? rnd() * 3 : (t % 100_000) / 7 + rnd(), windowMs: 20_000, ttlMs: 60_000 });
        else if (r < 0.55) ops.push({ op: 'counter.increase', key: keys.leaf('cs', 'r', 0, scope), now: ts, windowMs: 1000 + Math.floor(rnd() * 20_000) });
        else if (r < 0.75) ops.push({ op: 'sustained.observe', key: keys.leaf('s', 'r', 1, scope), index: keys.sustainedIndex('r', 1), member: scope, ts, holds: rnd() < 0.7, ttlMs: 60_000 });
        else if (r < 0.85) ops.push({ op: 'window.add', key: keys.leaf('w', 'r', 2, scope), member: `m${Math.floor(rnd() * 2000)}`, ts, windowMs: 10_000, ttlMs: 60_000 });
        else if (r < 0.95) ops.push({ op: 'seen.touch', index: keys.seenIndex('r', 3), member: scope, ts, ttlMs: 60_000 });
        else ops.push({ op: 'due.pop', index: keys.sustainedIndex('r', 1), before: ts - 3000 });
      }
      batches.push(ops);
    }
    const mem = new MemoryStateStore();
    const red = new RedisStateStore({ client: client() });
    for (const ops of batches) expect(await red.exec(ops)).to.deep.equal(mem.execSync(ops));
  });

  it('keys in continuous use keep their TTL (refreshed by sample time, not per op)', async function () {
    this.timeout(20_000);
    const c = client();
    const s = new RedisStateStore({ client: c });
    const keys = new StoreKeys('ttl:');
    const ck = keys.leaf('cs', 'r', 0, 'n:a');
    const sk = keys.leaf('s', 'r', 1, 'n:a');
    // TTL 1.5 s, refresh every 0.5 s (counter: (ttl - window) / 2) and 0.375 s (sustained: ttl / 4) of sample time
    const t0 = Date.now();
    for (let i = 0; Date.now() - t0 < 4000; i++) {
      const ts = Date.now();
      await s.exec([
        { op: 'counter.add', key: ck, member: `e${i}`, ts, value: i, windowMs: 500, ttlMs: 1500 },
        { op: 'sustained.observe', key: sk, index: keys.sustainedIndex('r', 1), member: 'n:a', ts, holds: true, ttlMs: 1500 },
      ]);
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const key of [ck, sk]) {
      const ttl = await c.pttl(key);
      expect(ttl, key).to.be.within(1, 1500);
    }
    // and they still expire once the samples stop
    await new Promise((r) => setTimeout(r, 1700));
    expect(await c.exists(ck, sk)).to.equal(0);
  });

  it('reloads its scripts after a server restart (NOSCRIPT)', async function () {
    const c = client();
    const s = new RedisStateStore({ client: c });
    const key = 'restart:w';
    expect(await s.exec([{ op: 'window.add', key, member: 'a', ts: 1, windowMs: 100, ttlMs: 10_000 }])).to.deep.equal([1]);
    await server!.restart();
    // ioredis reconnects; the script cache is empty on the new server
    await new Promise((r) => setTimeout(r, 300));
    expect(await s.exec([{ op: 'window.add', key, member: 'b', ts: 2, windowMs: 100, ttlMs: 10_000 }])).to.deep.equal([1]);
  });
});

describe('engine on the Redis store gives the same ledgers as on the memory store', function () {
  this.timeout(120_000);
  let srv: RedisServer | undefined;
  let c: Redis | undefined;
  before(async function () {
    srv = await startRedis();
    c = new Redis(srv.url);
  });
  after(async function () {
    c?.disconnect();
    await srv?.stop();
  });
  const dir = join(packageRoot(), 'test', 'rules');
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml')).sort()) {
    it(`every case of test/rules/${f}`, async function () {
      for (const tc of loadRuleTestFile(join(dir, f))) {
        await c!.flushdb();
        const mem = await runRuleTestCase(tc);
        const red = await runRuleTestCase(tc, { store: new RedisStateStore({ client: c! }) });
        expect(red.records, tc.name).to.deep.equal(mem.records);
        expect(red.ok, `${tc.name}\n${red.diff.join('\n')}`).to.equal(true);
        // and as `nodewarden engine --store redis` composes it: behind the sustained filter (ADR 0042)
        await c!.flushdb();
        const filtered = await runRuleTestCase(tc, { store: new NodeSustainedFilterStore(new RedisStateStore({ client: c! })) });
        expect(filtered.records, `${tc.name} (sustained filter)`).to.deep.equal(mem.records);
      }
    });
  }
});
