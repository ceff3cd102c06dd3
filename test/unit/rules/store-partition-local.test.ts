import { expect } from 'chai';
import fc from 'fast-check';
import { StoreKeys } from '../../../adapters/redis/keys.js';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { Decision } from '../../../core/decision.js';
import type { EventEnvelope } from '../../../core/envelope.js';
import { NodewardenError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/logger.js';
import { createRuleEngine, nodeScopedKeyTest } from '../../../rules/engine/engine.js';
import { defaultRulesPath, loadRules } from '../../../rules/language/load.js';
import { createStaticCluster } from '../../../rules/replay/standin.js';
import { fileOnlyToggles } from '../../../rules/toggles/port.js';
import { MemoryStateStore } from '../../../rules/store/memory-store.js';
import { PartitionLocalStore } from '../../../rules/store/partition-local-store.js';
import { decodeOpLog, encodeOpLog, OpLogKeys } from '../../../rules/store/partition-oplog.js';
import type { LoggedOp } from '../../../rules/store/partition-oplog.js';
import { StaleEpochError } from '../../../rules/store/state-store.js';
import type { PartitionLocalStoreOptions } from '../../../rules/store/partition-local-store.js';
import type { StateStore, StoreOp } from '../../../rules/store/state-store.js';
import { stateStoreContract } from '../../contract/state-store.js';
import { MemoryBackend, RoutedForContract } from '../../contract/partition-local.js';

const k = new StoreKeys('t:');
const NODE_RULE = 'nr';
const isLocal = (key: string): boolean => key.includes(`:${NODE_RULE}:`) || key.endsWith(`:${NODE_RULE}`);

stateStoreContract('partition-local (every key local to partition 0)', () => Promise.resolve({ store: new RoutedForContract(new MemoryBackend(), false) }));
stateStoreContract('partition-local, restored from its op log before every call', () => Promise.resolve({ store: new RoutedForContract(new MemoryBackend(3, 2), true) }));
stateStoreContract('partition-local, restored from snapshot + op log before every call (a snapshot every 3 ops)', () =>
  Promise.resolve({ store: new RoutedForContract(new MemoryBackend(3, 2), true, { snapshotOps: 3, snapshotKeysFactor: 0 }) }),
);
stateStoreContract('partition-local, restored from snapshots alone before every call (every write a snapshot)', () =>
  Promise.resolve({ store: new RoutedForContract(new MemoryBackend(3), true, { snapshotOps: 0, snapshotKeysFactor: 0 }) }),
);

const nodes = ['n:a', 'n:b', 'n:c', 'n:d', 'n:e', 'n:f'];
const partitionOfNode = (scope: string): number => nodes.indexOf(scope) % 3;

/** Durability settings the random test runs under: the op log alone, snapshots alone, and both mixed (every bound hit). */
const DURABILITY: Array<[string, Partial<PartitionLocalStoreOptions>]> = [
  ['op log (default bounds: no snapshot)', {}],
  ['every write a snapshot', { snapshotOps: 0, snapshotKeysFactor: 0 }],
  ['snapshot every 7 ops or 1.5 × live keys, log ≤ 3,000 chars, append ≤ 900', { snapshotOps: 7, snapshotKeysFactor: 1.5, maxLogChars: 3000, maxAppendChars: 900 }],
];

describe('PartitionLocalStore (ADR 0045, ADR 0047)', () => {
  for (const [name, durability] of DURABILITY)
  it(`random batches, ticks, restarts and partition moves answer exactly what one plain store answers; a fresh restore holds what it holds (${name})`, async () => {
    const seen = { appends: 0, snapshots: 0, replayed: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(99), fc.nat(1_000_000)), { minLength: 5, maxLength: 120 }), async (script) => {
        const plain = new MemoryStateStore();
        const backend = new MemoryBackend(4, 3);
        const replicas: PartitionLocalStore[] = [];
        const replica = (): PartitionLocalStore => {
          const x = new PartitionLocalStore({ ...durability, backend, isLocal });
          replicas.push(x);
          return x;
        };
        let r = replica();
        r.assign([0, 1, 2]);
        let t = 1_000_000;
        let id = 0;
        for (const [kind, seed] of script) {
          t += 500 + (seed % 4000);
          if (kind < 8) {
            // a replica restart, or the partitions moving to another replica: state restored from the write-behind
            r = replica();
            r.assign(kind < 4 ? [0, 1, 2] : [2, 1, 0]);
            continue;
          }
          if (kind < 25) {
            // a tick: pop due scopes on every owned partition, then fire/clear them
            const ops1: StoreOp[] = [
              { op: 'due.pop', index: k.sustainedIndex(NODE_RULE, 2), before: t - 5_000 },
              { op: 'due.pop', index: k.seenIndex(NODE_RULE, 4), before: t - 20_000 },
              { op: 'episode.quiet', index: k.episodeIndex(NODE_RULE), before: t - 8_000 },
              { op: 'due.pop', index: k.sustainedIndex('gr', 2), before: t - 5_000 },
            ];
            await r.enter(null);
            const got1 = await r.exec(ops1);
            expect(got1).to.deep.equal(plain.execSync(ops1));
            const ops2: StoreOp[] = [];
            for (const m of got1[0] as string[]) {
              ops2.push({ op: 'episode.fire', key: k.episode(NODE_RULE, m), index: k.episodeIndex(NODE_RULE), member: m, now: t, by: '', cooldownMs: 3_000, autoExpireMs: -1, ttlMs: 600_000 });
              ops2.push({ op: 'distinct.add', key: k.tickOutbox(), member: JSON.stringify([NODE_RULE, m, t]), ts: t, windowMs: 600_000, ttlMs: 600_000 });
            }
            for (const m of got1[2] as string[]) ops2.push({ op: 'episode.clear', key: k.episode(NODE_RULE, m), index: k.episodeIndex(NODE_RULE), member: m, now: t, quietBefore: t - 8_000 });
            for (const m of got1[1] as string[]) ops2.push({ op: 'episode.get', key: k.episode(NODE_RULE, m) });
            expect(await r.execFinal(ops2)).to.deep.equal(plain.execSync(ops2));
            r.leave(true);
            continue;
          }
          // a batch of one partition: its nodes' ops, plus group-scoped (shared) ones
          const p = seed % 3;
          const mine = nodes.filter((n) => partitionOfNode(n) === p);
          const ops: StoreOp[] = [];
          for (let i = 0; i < 1 + (seed % 7); i++) {
            const scope = mine[(seed >> i) % mine.length] as string;
            const ts = t - ((seed >> (i + 3)) % 3 === 0 ? 2_000 : 0) + i;
            const ev = `e${id++}`;
            switch ((seed >> (2 * i)) % 9) {
              case 0:
                ops.push({ op: 'window.add', key: k.leaf('w', NODE_RULE, 0, scope), member: ev, ts, windowMs: 20_000, ttlMs: 60_000 });
                break;
              case 1:
                ops.push({ op: 'counter.add', key: k.leaf('cs', NODE_RULE, 1, scope), member: ev, ts, value: seed % 50, windowMs: 30_000, ttlMs: 90_000 });
                break;
              case 2:
                ops.push({ op: 'sustained.observe', key: k.leaf('s', NODE_RULE, 2, scope), index: k.sustainedIndex(NODE_RULE, 2), member: scope, ts, holds: seed % 3 !== 0, ttlMs: 60_000 });
                break;
              case 3:
                ops.push({ op: 'seen.touch', index: k.seenIndex(NODE_RULE, 4), member: scope, ts, ttlMs: 600_000 });
                break;
              case 4:
                ops.push({ op: 'episode.fire', key: k.episode(NODE_RULE, scope), index: k.episodeIndex(NODE_RULE), member: scope, now: ts, by: ev, cooldownMs: 3_000, autoExpireMs: -1, ttlMs: 600_000 });
                break;
              case 5:
                ops.push({ op: 'episode.touch', key: k.episode(NODE_RULE, scope), index: k.episodeIndex(NODE_RULE), member: scope, now: ts });
                break;
              case 6:
                ops.push({ op: 'sequence.step', key: k.leaf('q', NODE_RULE, 3, scope), step: seed % 2, steps: 2, ts, windowMs: 10_000, ttlMs: 60_000 });
                break;
              case 7:
                ops.push({ op: 'distinct.add', key: k.leaf('d', 'gr', 0, 'g:pool=a'), member: scope, ts, windowMs: 15_000, ttlMs: 60_000 });
                break;
              default:
                ops.push({ op: 'episode.release', key: k.episode(NODE_RULE, scope), index: k.episodeIndex(NODE_RULE), member: scope });
            }
          }
          await r.enter(p);
          const half = Math.floor(ops.length / 2);
          const got = [...(await r.exec(ops.slice(0, half))), ...(await r.execFinal(ops.slice(half)))];
          r.leave(true);
          expect(got).to.deep.equal(plain.execSync(ops));
        }
        // what is durable is what one store holds: a fresh replica restores (snapshot, then log replay) entries exactly,
        // and a rule's index, split by partition, as the union of its members
        const fresh = replica();
        fresh.assign([0, 1, 2]);
        await fresh.enter(null);
        fresh.leave(true);
        const held = [0, 1, 2].map((p) => fresh.memoryOf(p) as MemoryStateStore);
        for (const key of plain.keys()) {
          if (!isLocal(key)) continue;
          const text = plain.exportEntry(key) as string;
          if (text.startsWith('{"t":"zset"')) {
            const union = held.flatMap((m) => m.members(key)).sort((x, y) => (x[0] < y[0] ? -1 : 1));
            expect(union, key).to.deep.equal(plain.members(key));
          } else
            expect(
              held.map((m) => m.exportEntry(key)).filter((x) => x !== null),
              key,
            ).to.deep.equal([text]);
        }
        for (const m of held) for (const key of m.keys()) expect(plain.has(key), key).to.equal(true);
        for (const x of replicas) {
          seen.appends += x.stats.flushes - x.stats.snapshots;
          seen.snapshots += x.stats.snapshots;
          seen.replayed += x.stats.replayedOps;
        }
      }),
      { numRuns: 150 },
    );
    // not vacuous: each setting wrote (and restored) the way it says
    if (durability.snapshotKeysFactor === undefined) expect(seen.snapshots).to.equal(0);
    else expect(seen.snapshots).to.be.greaterThan(100);
    if (durability.snapshotOps === 0) expect(seen.appends).to.equal(0);
    else {
      expect(seen.appends).to.be.greaterThan(100);
      expect(seen.replayed).to.be.greaterThan(100);
    }
  });

  it('keeps group-scoped ops on the shared store and node-scoped ones in memory until the final call of a batch', async () => {
    const backend = new MemoryBackend();
    const s = new PartitionLocalStore({ backend, isLocal });
    s.assign([0]);
    await s.enter(0);
    await s.exec([
      { op: 'window.add', key: k.leaf('w', NODE_RULE, 0, 'n:a'), member: 'e1', ts: 1000, windowMs: 10_000, ttlMs: 60_000 },
      { op: 'window.add', key: k.leaf('w', 'gr', 0, 'g:pool=a'), member: 'e1', ts: 1000, windowMs: 10_000, ttlMs: 60_000 },
    ]);
    expect(backend.shared.has(k.leaf('w', 'gr', 0, 'g:pool=a'))).to.equal(true);
    expect(backend.shared.has(k.leaf('w', NODE_RULE, 0, 'n:a'))).to.equal(false);
    expect(backend.logs.get(0)?.length ?? 0).to.equal(0); // not yet written
    await s.execFinal([{ op: 'window.count', key: k.leaf('w', NODE_RULE, 0, 'n:a'), now: 1000, windowMs: 10_000 }]);
    s.leave(true);
    // one op-log entry with the one op that changed memory (the read is not logged); no snapshot yet
    expect(backend.hashes.get(0)?.size ?? 0).to.equal(0);
    expect(backend.logs.get(0)?.map((e) => decodeOpLog(e))).to.deep.equal([[{ op: 'window.add', key: k.leaf('w', NODE_RULE, 0, 'n:a'), member: 'e1', ts: 1000, windowMs: 10_000, ttlMs: 60_000 }]]);
    expect(s.stats).to.include({ localOps: 2, sharedOps: 1, flushes: 1, snapshots: 0, loggedOps: 1 });
    // a batch that changed nothing in memory writes nothing
    await s.enter(0);
    await s.execFinal([{ op: 'window.count', key: k.leaf('w', NODE_RULE, 0, 'n:a'), now: 1000, windowMs: 10_000 }]);
    s.leave(true);
    expect(backend.logs.get(0)).to.have.length(1);
    expect(s.stats.flushes).to.equal(1);
  });

  it("a key another owned partition holds (its node moved partitions) is read and written there; once that partition leaves, the batch's own memory answers, and a swept key is routed anew (ADR 0051)", async () => {
    const backend = new MemoryBackend();
    const s = new PartitionLocalStore({ backend, isLocal });
    const key = k.leaf('w', NODE_RULE, 0, 'n:a');
    const add = (member: string, ts: number): StoreOp => ({ op: 'window.add', key, member, ts, windowMs: 10_000, ttlMs: 60_000 });
    const count = (now: number): StoreOp => ({ op: 'window.count', key, now, windowMs: 10_000 });
    s.assign([0, 1]);
    await s.enter(1);
    expect(await s.execFinal([add('e1', 1_000)])).to.deep.equal([1]);
    s.leave(true);
    // a batch of partition 0 with n:a's events: its state lives in partition 1, and stays there
    await s.enter(0);
    expect(await s.execFinal([count(1_500), add('e2', 2_000)])).to.deep.equal([1, 2]);
    s.leave(true);
    expect(s.memoryOf(0)?.has(key)).to.equal(false);
    expect(s.memoryOf(1)?.has(key)).to.equal(true);
    // partition 1 leaves this replica: the key is nobody's here, so partition 0's batch starts it in its own memory
    s.assign([0]);
    await s.enter(0);
    expect(await s.execFinal([count(2_500), add('e3', 3_000)])).to.deep.equal([0, 1]);
    s.leave(true);
    expect(s.memoryOf(0)?.has(key)).to.equal(true);
    // swept (expired by op time) and then written again: it lives where the writing batch is
    s.assign([0, 1]);
    await s.enter(0);
    await s.execFinal([{ op: 'max.set', key: k.leaf('w', NODE_RULE, 1, 'n:z'), value: 1, ttlMs: 1 }, { op: 'max.set', key: k.leaf('w', NODE_RULE, 1, 'n:y'), value: 1, ttlMs: 1 }]);
    s.leave(true);
    await s.trim({ keys: k, rules: [], signal: new AbortController().signal });
    expect(s.memoryOf(0)?.has(key)).to.equal(true);
    (s.memoryOf(0) as MemoryStateStore).sweep(1_000_000);
    expect(s.memoryOf(0)?.has(key)).to.equal(false);
    await s.enter(1);
    expect(await s.execFinal([add('e4', 1_000_001)])).to.deep.equal([1]);
    s.leave(true);
    expect(s.memoryOf(1)?.has(key)).to.equal(true);
    expect(s.memoryOf(0)?.has(key)).to.equal(false);
  });

  it('a restored key this rule set does not keep local (written under another rule set) is still routed to the shared store', async () => {
    const backend = new MemoryBackend();
    const key = k.leaf('w', NODE_RULE, 0, 'n:a');
    // a writer under which the key is local
    const w = new PartitionLocalStore({ backend, isLocal, snapshotOps: 0, snapshotKeysFactor: 0 });
    w.assign([0]);
    await w.enter(0);
    await w.execFinal([{ op: 'window.add', key, member: 'e1', ts: 1000, windowMs: 10_000, ttlMs: 60_000 }]);
    w.leave(true);
    // a reader under which it is not: the restored key stays in memory, its ops go to the shared store
    const r = new PartitionLocalStore({ backend, isLocal: () => false });
    r.assign([0]);
    await r.enter(0);
    expect(r.memoryOf(0)?.has(key)).to.equal(true);
    const res = await r.execFinal([
      { op: 'window.add', key, member: 'e2', ts: 1000, windowMs: 10_000, ttlMs: 60_000 },
      { op: 'window.count', key, now: 1000, windowMs: 10_000 },
    ]);
    r.leave(true);
    expect(res[1]).to.equal(1);
    expect(backend.shared.has(key)).to.equal(true);
    expect(r.stats).to.include({ localOps: 0, sharedOps: 2 });
  });

  it('fences a replica that lost its partition: its write fails, writes nothing, and its memory of the partition is dropped', async () => {
    const backend = new MemoryBackend();
    const a = new PartitionLocalStore({ backend, isLocal });
    const b = new PartitionLocalStore({ backend, isLocal });
    const add = (member: string, ts: number): StoreOp => ({ op: 'window.add', key: k.leaf('w', NODE_RULE, 0, 'n:a'), member, ts, windowMs: 60_000, ttlMs: 600_000 });
    const outbox: StoreOp = { op: 'distinct.add', key: k.tickOutbox(), member: 'x', ts: 1, windowMs: 600_000, ttlMs: 600_000 };
    a.assign([0]);
    await a.enter(0);
    expect(await a.execFinal([add('e1', 1000)])).to.deep.equal([1]);
    a.leave(true);
    // b takes partition 0 (a rebalance a has not seen yet)
    b.assign([0]);
    await b.enter(0);
    // a's zombie batch: evaluated on its memory, but the write is refused atomically, shared ops included
    await a.enter(0);
    const err = await a.execFinal([add('e2', 2000), outbox]).catch((e: unknown) => e);
    a.leave(false);
    expect(err).to.be.instanceOf(StaleEpochError);
    expect((err as StaleEpochError).retriable).to.equal(true);
    expect(a.partitions()).to.deep.equal([]);
    expect(backend.shared.has(k.tickOutbox())).to.equal(false);
    // b sees what a wrote before b took the partition, not after
    expect(await b.execFinal([{ op: 'window.count', key: k.leaf('w', NODE_RULE, 0, 'n:a'), now: 2000, windowMs: 60_000 }])).to.deep.equal([1]);
    b.leave(true);
    // a, assigned the partition again, restores b's state with a newer epoch (and fences b)
    await a.enter(0);
    expect(await a.execFinal([add('e2', 2000)])).to.deep.equal([2]);
    a.leave(true);
    await b.enter(0);
    expect(await b.execFinal([add('e3', 3000)]).catch((e: unknown) => e)).to.be.instanceOf(StaleEpochError);
  });

  it('a partition revoked while its batch runs fails the batch (retriably) instead of answering from nothing', async () => {
    const backend = new MemoryBackend();
    const s = new PartitionLocalStore({ backend, isLocal });
    const add = (member: string): StoreOp => ({ op: 'window.add', key: k.leaf('w', NODE_RULE, 0, 'n:a'), member, ts: 1000, windowMs: 60_000, ttlMs: 600_000 });
    s.assign([0]);
    await s.enter(0);
    await s.exec([add('e1')]);
    s.assign([1]); // GROUP_JOIN mid-batch
    const err = await s.exec([add('e2')]).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(NodewardenError);
    expect((err as NodewardenError).code).to.equal('CONFLICT');
    s.leave(false);
    await s.enter(1);
    const fin = await s.execFinal([]).then(() => 'ok');
    s.leave(true);
    expect(fin).to.equal('ok');
    expect(backend.hashes.get(0)).to.equal(undefined); // nothing of partition 0's batch was written
    // a late batch of the revoked partition does not take its epoch (that would fence its new owner)
    const claims = backend.claims;
    expect(await s.enter(0).catch((e: unknown) => (e as NodewardenError).code)).to.equal('CONFLICT');
    s.leave(false);
    expect(backend.claims).to.equal(claims);
  });

  it('a hash field that is not an entry this store wrote is refused on restore (false), never thrown', () => {
    const m = new MemoryStateStore();
    for (const text of ['not json', 'null', '{"t":"distinct","exp":1,"m":[1,2]}', '{"t":"distinct","exp":1,"m":[["n:a"]]}', '{"t":"sustained","exp":"x","since":null,"last":null}', '{"t":"nope","exp":1}'])
      expect(m.importEntry('k', text), text).to.equal(false);
    expect(m.size()).to.equal(0);
    expect(m.importEntry('k', '{"t":"distinct","exp":5,"m":[["n:a",3]]}')).to.equal(true);
    expect(m.exportEntry('k')).to.equal('{"t":"distinct","exp":5,"m":[["n:a",3]]}');
  });

  it('restores in bounded chunks on first use, never on assignment', async () => {
    const backend = new MemoryBackend(2);
    const w = new PartitionLocalStore({ backend, isLocal, snapshotOps: 0, snapshotKeysFactor: 0 });
    w.assign([0]);
    await w.enter(0);
    const ops: StoreOp[] = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((n, i) => ({ op: 'window.add', key: k.leaf('w', NODE_RULE, 0, `n:${n}`), member: `e${i}`, ts: 1000 + i, windowMs: 60_000, ttlMs: 600_000 }));
    await w.execFinal(ops);
    w.leave(true);
    const restored: number[] = [];
    const r = new PartitionLocalStore({ backend, isLocal, onRestore: (_p, keys) => restored.push(keys) });
    const before = { claims: backend.claims, loads: backend.loads, chunks: backend.chunks };
    r.assign([0, 1]);
    expect({ claims: backend.claims, loads: backend.loads, chunks: backend.chunks }).to.deep.equal(before); // GROUP_JOIN does no I/O
    await r.enter(0);
    expect(backend.loads - before.loads).to.equal(1);
    expect(backend.chunks - before.chunks).to.equal(4); // 7 entries, 2 per chunk
    expect(restored).to.deep.equal([7]);
    expect(r.size).to.equal(7);
    r.leave(true);
    // a tick restores every assigned partition it does not hold yet (an idle partition still ticks)
    await r.enter(null);
    expect(r.partitions()).to.deep.equal([0, 1]);
    r.leave(true);
    // an unreadable entry is skipped and deleted by the next write
    backend.hashes.get(0)?.set('t:rs:w:nr:0:n:z', '{not json');
    const q = new PartitionLocalStore({ backend, isLocal, snapshotOps: 0, snapshotKeysFactor: 0 });
    q.assign([0]);
    await q.enter(0);
    expect(q.size).to.equal(7);
    await q.execFinal([{ op: 'max.set', key: k.leaf('w', NODE_RULE, 1, 'n:a'), value: 5, ttlMs: 600_000 }]);
    q.leave(true);
    expect(backend.hashes.get(0)?.has('t:rs:w:nr:0:n:z')).to.equal(false);
  });

  it('discards what a failed call changed, so the redelivered batch runs on the last durable state', async () => {
    const backend = new MemoryBackend();
    const s = new PartitionLocalStore({ backend, isLocal });
    s.assign([0]);
    const add = (member: string): StoreOp => ({ op: 'counter.add', key: k.leaf('cs', NODE_RULE, 1, 'n:a'), member, ts: 1000 + Number(member.slice(1)), value: 10 * Number(member.slice(1)), windowMs: 60_000, ttlMs: 600_000 });
    await s.enter(0);
    expect(await s.execFinal([add('e1')])).to.deep.equal([0]);
    s.leave(true);
    await s.enter(0);
    backend.failNext = true;
    expect(await s.execFinal([add('e2')]).catch((e: unknown) => e)).to.be.instanceOf(NodewardenError);
    s.leave(false);
    expect(s.partitions()).to.deep.equal([]);
    // redelivered: restored from the write-behind, e2 counted once
    await s.enter(0);
    expect(await s.execFinal([add('e2')])).to.deep.equal([10]);
    s.leave(true);
    // a batch that failed after its write (e.g. the remediator): replayed on a restarted replica, every op answers the same
    const r = new PartitionLocalStore({ backend, isLocal });
    r.assign([0]);
    await r.enter(0);
    const fire: StoreOp = { op: 'episode.fire', key: k.episode(NODE_RULE, 'n:a'), index: k.episodeIndex(NODE_RULE), member: 'n:a', now: 1002, by: 'e2', cooldownMs: 60_000, autoExpireMs: -1, ttlMs: 600_000 };
    expect(await r.execFinal([add('e2'), fire])).to.deep.equal([10, 1002]);
    r.leave(true);
    const z = new PartitionLocalStore({ backend, isLocal });
    z.assign([0]);
    await z.enter(0);
    expect(await z.execFinal([add('e2'), fire])).to.deep.equal([10, 1002]);
    z.leave(true);
  });

  it('bounds memory: over the cap (after a sweep) batches fail retriably instead of growing; expired state frees it', async () => {
    const backend = new MemoryBackend();
    let now = 0;
    const s = new PartitionLocalStore({ backend, isLocal, maxKeys: 3, now: () => now, snapshotOps: 0, snapshotKeysFactor: 0 });
    s.assign([0]);
    await s.enter(0);
    await s.execFinal(['a', 'b', 'c', 'd'].map((n, i) => ({ op: 'max.set', key: k.leaf('w', NODE_RULE, 0, `n:${n}`), value: 1000 + i, ttlMs: 1000 + 5000 * i })));
    s.leave(true);
    expect(backend.hashes.get(0)?.size).to.equal(4);
    const err = await s.enter(0).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(NodewardenError);
    expect((err as NodewardenError).retriable).to.equal(true);
    s.leave(false);
    expect(s.size).to.equal(4); // nothing lost: the batch is redelivered
    // time moves on: two keys expire, the sweep frees them, their deletions are written behind
    now = 7500;
    await s.enter(0);
    expect(s.size).to.equal(2);
    await s.execFinal([]);
    s.leave(true);
    expect([...(backend.hashes.get(0)?.keys() ?? [])].sort()).to.deep.equal([k.leaf('w', NODE_RULE, 0, 'n:c'), k.leaf('w', NODE_RULE, 0, 'n:d')]);
  });

  it('the engine on the shipped rule pack decides exactly the same through partition-local state (batches per partition, ticks, replica restarts) as on one shared store', async () => {
    const rules = loadRules(defaultRulesPath());
    const T0 = Date.parse('2026-11-21T10:00:00.000Z');
    const NODES = 12;
    const decided = { batch: 0, tick: 0, local: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(99), fc.nat(1_000_000)), { minLength: 10, maxLength: 80 }), async (script) => {
        const clock = new ManualClock(T0);
        const engine = (store: StateStore) => createRuleEngine({ rules, store, cluster: createStaticCluster([], []), toggles: fileOnlyToggles, clock, logger: silentLogger, config: DEFAULT_CONFIG, tickOutbox: true });
        const plainStore = new MemoryStateStore();
        let plain = engine(plainStore);
        const backend = new MemoryBackend(50);
        const isNodeKey = nodeScopedKeyTest(rules, DEFAULT_CONFIG.redis.keyPrefix);
        const replica = () => {
          const store = new PartitionLocalStore({ backend, isLocal: isNodeKey });
          store.assign([0, 1, 2]);
          return { store, engine: engine(store) };
        };
        let r = replica();
        let t = T0;
        let id = 0;
        const drops = new Array<number>(NODES).fill(0);
        for (const [kind, seed] of script) {
          t += 200 + (seed % 20_000);
          clock.set(t);
          if (kind < 5) {
            // a replica restart (the shared-store engine restarts too: its tick-outbox memory goes with it)
            r = replica();
            plain = engine(plainStore);
            continue;
          }
          if (kind < 20) {
            await r.store.enter(null);
            const got = await r.engine.tick(t);
            r.store.leave(true);
            expect(ids(got), `tick at ${t - T0}`).to.deep.equal(ids(await plain.tick(t)));
            decided.tick += got.length;
            continue;
          }
          const p = seed % 3;
          const batch: EventEnvelope[] = [];
          for (let i = 0; i < 1 + (seed % 9); i++) {
            const ni = 3 * ((seed >> i) % (NODES / 3)) + p;
            const node = `gpu-worker-${ni}`;
            const ts = new Date(t + i).toISOString();
            const labels = { pool: `pool-${ni % 2}`, zone: 'z' };
            const ev = `e${id++}`;
            const pick = (seed >> (2 * i)) % 10;
            if (pick < 3) batch.push({ v: 1, id: ev, ts, node, type: 'agent.heartbeat', source: 'agent', labels, data: {} });
            else if (pick < 5) {
              if (pick === 4) drops[ni] = (drops[ni] ?? 0) + 5;
              batch.push({ v: 1, id: ev, ts, node, type: 'net.conntrack', source: 'procfs', labels, data: { count: (seed % 3) * 120_000, max: 262_144, counters: { drop: drops[ni], insert_failed: 0, found: i } } });
            } else if (pick < 7) batch.push({ v: 1, id: ev, ts, node, type: 'runtime.containerd', source: 'grpc', labels, data: { state: seed % 4 === 0 ? 'timeout' : 'serving' } });
            else if (pick < 9) batch.push({ v: 1, id: ev, ts, node, type: 'gpu.xid', source: 'kmsg', labels, data: { code: [13, 31, 43, 79, 48][seed % 5], pci: '0000:3b:00', message: 'x' } });
            else batch.push({ v: 1, id: ev, ts, node, type: 'kubeproxy.restart', source: 'kube', labels, data: { pod: 'kp', restartCount: id } });
          }
          await r.store.enter(p);
          const got = await r.engine.evaluate(batch);
          r.store.leave(true);
          expect(ids(got.decisions), `batch at ${t - T0}`).to.deep.equal(ids((await plain.evaluate(batch)).decisions));
          decided.batch += got.decisions.length;
          decided.local += r.store.stats.localOps;
        }
      }),
      { numRuns: 60 },
    );
    // not vacuous: events and ticks decided, through local state
    expect(decided.batch).to.be.greaterThan(20);
    expect(decided.tick).to.be.greaterThan(5);
    expect(decided.local).to.be.greaterThan(100);
    // the routing is by the rules' declared scope: node-scoped rules' keys are local, group / fleet ones and the outbox shared
    const ks = new StoreKeys(DEFAULT_CONFIG.redis.keyPrefix);
    const nodeRule = rules.rules.find((x) => x.scope.kind === 'node');
    const groupRule = rules.rules.find((x) => x.scope.kind === 'group');
    expect(nodeRule && groupRule).to.not.equal(undefined);
    const test = nodeScopedKeyTest(rules, DEFAULT_CONFIG.redis.keyPrefix);
    expect(test(ks.episode(nodeRule?.id ?? '', 'n:a'))).to.equal(true);
    expect(test(ks.episodeIndex(nodeRule?.id ?? ''))).to.equal(true);
    expect(test(ks.episode(groupRule?.id ?? '', 'g:pool=a'))).to.equal(false);
    expect(test(ks.tickOutbox())).to.equal(false);
  });

  it('restores from the last snapshot plus the op log since it, replayed in bounded chunks', async () => {
    const backend = new MemoryBackend(2, 2);
    const w = new PartitionLocalStore({ backend, isLocal, snapshotOps: 4, snapshotKeysFactor: 0 });
    const add = (n: string, i: number): StoreOp => ({ op: 'window.add', key: k.leaf('w', NODE_RULE, 0, `n:${n}`), member: `e${i}`, ts: 1000 + i, windowMs: 60_000, ttlMs: 600_000 });
    w.assign([0]);
    let i = 0;
    // batches of 1 op: appends until the log holds 4 ops, then a snapshot that empties it, then appends again
    for (const n of ['a', 'b', 'c', 'd', 'e', 'f', 'a']) {
      await w.enter(0);
      await w.execFinal([add(n, i++)]);
      w.leave(true);
    }
    expect(w.stats).to.include({ flushes: 7, snapshots: 1, loggedOps: 6 });
    expect([...(backend.hashes.get(0)?.keys() ?? [])].sort()).to.deep.equal(['a', 'b', 'c', 'd'].map((n) => k.leaf('w', NODE_RULE, 0, `n:${n}`)));
    expect(backend.logs.get(0)).to.have.length(3); // e, f, a again
    const r = new PartitionLocalStore({ backend, isLocal, snapshotOps: 4, snapshotKeysFactor: 0 });
    r.assign([0]);
    const chunks = backend.logChunks;
    await r.enter(0);
    expect(backend.logChunks - chunks).to.equal(2); // 3 entries, 2 per LRANGE
    expect(r.stats.replayedOps).to.equal(3);
    expect(r.size).to.equal(6);
    expect(await r.execFinal([{ op: 'window.count', key: k.leaf('w', NODE_RULE, 0, 'n:a'), now: 1010, windowMs: 60_000 }])).to.deep.equal([2]);
    r.leave(true);
    // the restored log counts toward the bound: the next change makes the log 4 ops, hence a snapshot holding the replayed keys too
    await r.enter(0);
    await r.execFinal([add('g', i)]);
    r.leave(true);
    expect(r.stats.snapshots).to.equal(1);
    expect(backend.logs.get(0)).to.equal(undefined);
    expect(backend.hashes.get(0)?.size).to.equal(7);
  });

  it('snapshots when the log reaches max(snapshotOps, factor × live keys) ops', async () => {
    const backend = new MemoryBackend();
    const s = new PartitionLocalStore({ backend, isLocal, snapshotOps: 3, snapshotKeysFactor: 2 });
    s.assign([0]);
    const put = async (keys: number, from: number): Promise<void> => {
      await s.enter(0);
      await s.execFinal(Array.from({ length: keys }, (_, j) => ({ op: 'max.set', key: k.leaf('w', NODE_RULE, 0, `n:${j}`), value: from + j, ttlMs: 600_000 })));
      s.leave(true);
    };
    await put(2, 100); // 2 ops, 2 live keys: bound max(3, 4) = 4
    expect(s.stats.snapshots).to.equal(0);
    await put(1, 200); // 3 < 4
    expect(s.stats.snapshots).to.equal(0);
    await put(1, 300); // 4 ≥ 4: snapshot
    expect(s.stats.snapshots).to.equal(1);
    expect(backend.logs.get(0)).to.equal(undefined);
    expect(s.stats.flushedKeys).to.equal(2);
    await put(5, 400); // 5 live keys, 5 ops: bound max(3, 10) = 10, an append
    expect(s.stats.snapshots).to.equal(1);
    expect(backend.logs.get(0)).to.have.length(1);
  });

  it('bounds the log: an append over maxAppendChars, or one that would take the log over maxLogChars, is written as a snapshot instead', async () => {
    const backend = new MemoryBackend();
    const s = new PartitionLocalStore({ backend, isLocal, maxLogChars: 200, maxAppendChars: 150 });
    s.assign([0]);
    const batch = async (n: number, from: number): Promise<void> => {
      await s.enter(0);
      await s.execFinal(Array.from({ length: n }, (_, j) => ({ op: 'window.add', key: k.leaf('w', NODE_RULE, 0, 'n:a'), member: `event-${from + j}`, ts: 1000 + from + j, windowMs: 60_000, ttlMs: 600_000 })));
      s.leave(true);
    };
    await batch(2, 0);
    const one = backend.logs.get(0)?.[0]?.length ?? 0;
    expect(one).to.be.within(60, 100);
    await batch(2, 10); // the log now holds 2 entries (≤ 200 chars)
    expect(backend.logs.get(0)).to.have.length(2);
    expect(s.stats.snapshots).to.equal(0);
    await batch(2, 20); // a third would exceed 200: snapshot, log emptied
    expect(s.stats.snapshots).to.equal(1);
    expect(backend.logs.get(0)).to.equal(undefined);
    await batch(40, 30); // one append alone over 150 chars: snapshot
    expect(s.stats.snapshots).to.equal(2);
    expect(backend.logs.get(0)).to.equal(undefined);
    // and a restore holds every event
    const r = new PartitionLocalStore({ backend, isLocal });
    r.assign([0]);
    await r.enter(0);
    expect(await r.execFinal([{ op: 'window.count', key: k.leaf('w', NODE_RULE, 0, 'n:a'), now: 2000, windowMs: 60_000 }])).to.deep.equal([46]);
    r.leave(true);
  });

  it('a malformed op-log entry is refused on restore (counted, reported once), never thrown; the others replay and the next write snapshots', async () => {
    const backend = new MemoryBackend();
    const w = new PartitionLocalStore({ backend, isLocal });
    const add = (n: string, i: number): StoreOp => ({ op: 'window.add', key: k.leaf('w', NODE_RULE, 0, `n:${n}`), member: `e${i}`, ts: 1000 + i, windowMs: 60_000, ttlMs: 600_000 });
    w.assign([0]);
    for (const [i, n] of ['a', 'b'].entries()) {
      await w.enter(0);
      await w.execFinal([add(n, i)]);
      w.leave(true);
    }
    const log = backend.logs.get(0) as string[];
    log.splice(1, 0, 'not json', '[1,0,["k"],[0,-1],1,7]', '[2,0,[],[]]', '[1,0,["k"],[0,-1],99,0]', '[1,0,["k"],[0,-1],16,0,5,2,0,1,1]', '[1,0,["k"],[0,3],0,0]');
    const reports: number[] = [];
    const r = new PartitionLocalStore({ backend, isLocal, onRestore: (_p, _n, _ms, _skipped, refused) => reports.push(refused) });
    r.assign([0]);
    await r.enter(0);
    expect(reports).to.deep.equal([6]);
    expect(r.stats.refusedLogEntries).to.equal(6);
    expect(r.size).to.equal(2); // a and b replayed
    await r.execFinal([]);
    r.leave(true);
    // nothing changed, but the log is rewritten from memory: a snapshot, the bad entries gone
    expect(r.stats.snapshots).to.equal(1);
    expect(backend.logs.get(0)).to.equal(undefined);
    expect(backend.hashes.get(0)?.size).to.equal(2);
  });

  it("a sweep's drops are logged where they happened: the replay removes exactly what the writer's sweep removed", async () => {
    const backend = new MemoryBackend();
    const s = new PartitionLocalStore({ backend, isLocal });
    const fire = (now: number, by: string): StoreOp => ({ op: 'episode.fire', key: k.episode(NODE_RULE, 'n:a'), index: k.episodeIndex(NODE_RULE), member: 'n:a', now, by, cooldownMs: 1_000, autoExpireMs: 0, ttlMs: 5_000 });
    s.assign([0]);
    await s.enter(0);
    expect(await s.execFinal([fire(1000, 'e1'), { op: 'max.set', key: k.leaf('w', NODE_RULE, 1, 'n:b'), value: 20_000, ttlMs: 600_000 }])).to.deep.equal([1000, 20_000]);
    s.leave(true);
    // the trim job sweeps by op time (the horizon is 20,000): the episode key (expiry 6,000) goes
    await s.trim({ keys: k, rules: [], signal: new AbortController().signal });
    await s.enter(0);
    // an auto-expired episode with no key left: this fires anew (by e2) — and must on a restored replica too
    expect(await s.execFinal([fire(1000, 'e2')])).to.deep.equal([1000]);
    s.leave(true);
    // entries are read in order through one key table, as a restore reads them
    const table = new OpLogKeys();
    const decoded = (backend.logs.get(0) ?? []).map((e) => decodeOpLog(e, table));
    expect(decoded[1]?.[0]).to.deep.equal({ op: 'drop', key: k.episode(NODE_RULE, 'n:a') });
    const r = new PartitionLocalStore({ backend, isLocal });
    r.assign([0]);
    await r.enter(0);
    // e2's episode, not e1's: re-fired by e2 at its start returns it; by e1 it is refused
    expect(await r.execFinal([fire(1000, 'e2'), fire(1000, 'e1')])).to.deep.equal([1000, null]);
    r.leave(true);
  });
});

describe('partition op log encoding (ADR 0047)', () => {
  const every: LoggedOp[] = [
    { op: 'drop', key: 'k:0' },
    { op: 'window.add', key: 'k:1', member: 'ev "quoted" \\ \u2028 ☃', ts: 1_764_771_234_567, windowMs: 60_000, ttlMs: 600_000 },
    { op: 'distinct.add', key: 'k:2', member: 'n:a', ts: 1_764_771_234_000, windowMs: 1, ttlMs: 2 },
    { op: 'counter.add', key: 'k:3', member: 'e2', ts: 1_764_771_234_568, value: 0.1 + 0.2, windowMs: 3, ttlMs: 4 },
    { op: 'sustained.observe', key: 'k:4', index: 'i:4', member: 'n:a', ts: 1_764_771_234_569, holds: true, ttlMs: 5 },
    { op: 'sustained.observe', key: 'k:4', index: 'i:4', member: 'n:a', ts: 1_764_771_234_570, holds: false, ttlMs: 5 },
    { op: 'due.pop', index: 'i:4', before: 1_764_771_200_000 },
    { op: 'seen.touch', index: 'i:5', member: 'n:b', ts: 1_764_771_234_571, ttlMs: 6 },
    { op: 'episode.fire', key: 'k:6', index: 'i:6', member: 'n:a', now: 1_764_771_234_572, by: '', cooldownMs: 7, autoExpireMs: -1, ttlMs: 8 },
    { op: 'episode.touch', key: 'k:6', index: 'i:6', member: 'n:a', now: 1_764_771_234_573 },
    { op: 'episode.clear', key: 'k:6', index: 'i:6', member: 'n:a', now: 1_764_771_234_574, quietBefore: null },
    { op: 'episode.clear', key: 'k:6', index: 'i:6', member: 'n:a', now: 1_764_771_234_575, quietBefore: 1_764_771_230_000 },
    { op: 'episode.release', key: 'k:6', index: 'i:6', member: 'n:a' },
    { op: 'sequence.step', key: 'k:7', step: 1, steps: 3, ts: 1_764_771_234_576, windowMs: 9, ttlMs: 10 },
    { op: 'max.set', key: 'k:8', value: 1_764_771_234_577.5, ttlMs: 11 },
  ];

  it('round-trips every op that changes memory exactly (fractions, any string), and leaves reads out', () => {
    const text = encodeOpLog([...every, { op: 'window.count', key: 'k:1', now: 5, windowMs: 1 }, { op: 'max.get', key: 'k:8' }]);
    expect(text).to.be.a('string');
    expect(decodeOpLog(text as string)).to.deep.equal(every);
    expect(decodeOpLog(encodeOpLog([]) as string)).to.deep.equal([]);
    // keys repeat: each once in the key table; a node-scoped key as its rule part and its scope, each written once
    expect((text as string).split('"k:6"')).to.have.length(2);
    const scoped = encodeOpLog([
      { op: 'seen.touch', index: 'nw:rs:a:r:0', member: 'n:gpu-1', ts: 5, ttlMs: 1 },
      { op: 'window.add', key: 'nw:rs:w:r:0:n:gpu-1', member: 'e1', ts: 5, windowMs: 1, ttlMs: 1 },
      { op: 'window.add', key: 'nw:rs:w:r:0:n:gpu-2', member: 'e2', ts: 6, windowMs: 1, ttlMs: 1 },
    ]) as string;
    expect(scoped.split('n:gpu-1')).to.have.length(2);
    expect(scoped.split('nw:rs:w:r:0:')).to.have.length(2);
    expect(decodeOpLog(scoped)?.map((o) => ('key' in o ? o.key : o.op))).to.deep.equal(['seen.touch', 'nw:rs:w:r:0:n:gpu-1', 'nw:rs:w:r:0:n:gpu-2']);
  });

  it("entries of one partition share its key table: a key is written once per log, and an entry is read only after the ones it follows (ADR 0051)", () => {
    const table = new OpLogKeys();
    const add = (key: string, member: string, ts: number): LoggedOp => ({ op: 'window.add', key, member, ts, windowMs: 1_000, ttlMs: 2_000 });
    const first = encodeOpLog([add('nw:rs:w:r:0:n:gpu-1', 'e1', 1_000), add('nw:rs:w:r:0:n:gpu-2', 'e2', 1_001)], table) as string;
    const second = encodeOpLog([add('nw:rs:w:r:0:n:gpu-1', 'e3', 1_002), add('nw:rs:w:r:0:n:gpu-3', 'e4', 1_003)], table) as string;
    // the second entry names gpu-1's key by position and defines only gpu-3
    expect(second).not.to.include('gpu-1');
    expect(second.split('nw:rs:w:r:0:')).to.have.length(1);
    expect(second).to.include('n:gpu-3');
    const replay = new OpLogKeys();
    expect(decodeOpLog(first, replay)).to.deep.equal([add('nw:rs:w:r:0:n:gpu-1', 'e1', 1_000), add('nw:rs:w:r:0:n:gpu-2', 'e2', 1_001)]);
    expect(decodeOpLog(second, replay)).to.deep.equal([add('nw:rs:w:r:0:n:gpu-1', 'e3', 1_002), add('nw:rs:w:r:0:n:gpu-3', 'e4', 1_003)]);
    // out of order, twice, or without the entries before it: refused, never misread
    expect(decodeOpLog(second)).to.equal(null);
    expect(decodeOpLog(second, replay)).to.equal(null);
    expect(decodeOpLog(first, replay)).to.equal(null);
    // an op that cannot be written leaves the table as it was: the next entry still follows on from the log
    expect(encodeOpLog([add('nw:rs:w:r:0:n:gpu-9', 'e5', 1_004), { op: 'max.set', key: 'k', value: Infinity, ttlMs: 1 }], table)).to.equal(null);
    const third = encodeOpLog([add('nw:rs:w:r:0:n:gpu-9', 'e6', 1_005)], table) as string;
    expect(decodeOpLog(third, replay)).to.deep.equal([add('nw:rs:w:r:0:n:gpu-9', 'e6', 1_005)]);
  });

  it('still reads a version 1 entry (its own key table), in a log that goes on in version 2', () => {
    // written by ADR 0047's encoder (main e8f9790)
    const v1 = '[1,1764771234567,["nw:rs:w:r:0:","n:gpu-1","nw:rs:a:r:0","n:gpu-2"],[0,1,2,-1,1,-1,0,3],1,0,"e1",0,60000,600000,10,1,2,1,5,0,3]';
    const table = new OpLogKeys();
    expect(decodeOpLog(v1, table)).to.deep.equal([
      { op: 'window.add', key: 'nw:rs:w:r:0:n:gpu-1', member: 'e1', ts: 1_764_771_234_567, windowMs: 60_000, ttlMs: 600_000 },
      { op: 'seen.touch', index: 'nw:rs:a:r:0', member: 'n:gpu-1', ts: 1_764_771_234_568, ttlMs: 5 },
      { op: 'drop', key: 'nw:rs:w:r:0:n:gpu-2' },
    ]);
    // a version 1 entry defines nothing in the partition's table
    expect(table.keys).to.deep.equal([]);
  });

  it('returns null (the flush becomes a snapshot) for an op it cannot write exactly', () => {
    expect(encodeOpLog([{ op: 'max.set', key: 'k', value: Infinity, ttlMs: 1 }])).to.equal(null);
    expect(encodeOpLog([{ op: 'window.add', key: 'k', member: 'm', ts: 1_764_771_234_567, windowMs: 1, ttlMs: Number.NaN }])).to.equal(null);
    // a time whose delta from the entry's base does not round-trip
    expect(encodeOpLog([{ op: 'seen.touch', index: 'i', member: 'm', ts: 1_764_771_234_567, ttlMs: 1 }, { op: 'seen.touch', index: 'i', member: 'm', ts: 0.1, ttlMs: 1 }])).to.equal(null);
  });

  it('never throws on input it did not write: null instead', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.array(fc.oneof(fc.integer({ min: -1, max: 20 }), fc.string(), fc.constant(null)), { maxLength: 30 }).chain((a) => fc.constantFrom(JSON.stringify([1, 0, ['k', 'i'], [0, -1, 1, 0, 0, 1], ...a]), JSON.stringify([2, 0, 0, 0, ['k', 'i'], [0, -1, 1, 0, 0, 1], ...a]), JSON.stringify([2, 0, ...a])))), (text) => {
        const r = decodeOpLog(text);
        expect(r === null || Array.isArray(r)).to.equal(true);
      }),
      { numRuns: 2000 },
    );
  });
});

const ids = (ds: readonly Decision[]): string[] => ds.map((d) => `${d.id} ${d.action}`);
