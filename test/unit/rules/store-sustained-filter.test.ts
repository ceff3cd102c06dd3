import { expect } from 'chai';
import fc from 'fast-check';
import { ManualClock } from '../../../core/clock.js';
import type { EventEnvelope } from '../../../core/envelope.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../adapters/metrics.js';
import { StoreKeys } from '../../../adapters/redis/keys.js';
import { BatchProcessor } from '../../../rules/service/batch-processor.js';
import { MemoryDeadLetterSink } from '../../../rules/service/dead-letter.js';
import { MemoryDeduper } from '../../../rules/service/dedupe.js';
import { engineServiceMetrics } from '../../../rules/service/metrics.js';
import { MemoryStateStore } from '../../../rules/store/memory-store.js';
import { NodeSustainedFilterStore } from '../../../rules/store/node-sustained-filter.js';
import type { StateStore, StoreOp, StoreResult } from '../../../rules/store/state-store.js';
import { stateStoreContract } from '../../contract/state-store.js';

stateStoreContract('memory behind the node sustained filter (ADR 0042)', () => Promise.resolve({ store: new NodeSustainedFilterStore(new MemoryStateStore()) }));

/** The inner store as the shared Redis one looks to the filter: exec only, every op it received recorded. */
class Spy implements StateStore {
  readonly received: StoreOp[] = [];
  fail = false;
  constructor(readonly inner = new MemoryStateStore()) {}
  exec(ops: readonly StoreOp[]): Promise<StoreResult[]> {
    if (this.fail) return Promise.reject(new Error('store down'));
    this.received.push(...ops);
    return this.inner.exec(ops);
  }
  trim(): Promise<number> {
    return this.inner.trim();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const k = new StoreKeys('t:');
const key = (scope: string): string => k.leaf('s', 'r', 0, scope);
const index = k.sustainedIndex('r', 0);
const obs = (scope: string, ts: number, holds: boolean): StoreOp => ({ op: 'sustained.observe', key: key(scope), index, member: scope, ts, holds, ttlMs: 3_600_000 });

describe('NodeSustainedFilterStore (ADR 0042)', () => {
  it('answers "not holding" observations of an idle node-scoped key itself; group keys and intervals go to the shared store', async () => {
    const spy = new Spy();
    const f = new NodeSustainedFilterStore(spy);
    expect(await f.exec([obs('n:a', 1000, false), obs('g:pool=x', 1000, false)])).to.deep.equal([null, null]);
    expect(spy.received).to.have.length(2); // nothing known yet: both sent
    expect(await f.exec([obs('n:a', 2000, false), obs('g:pool=x', 2000, false), { op: 'sustained.get', key: key('n:a') }])).to.deep.equal([null, null, null]);
    expect(spy.received.map((o) => (o.op === 'sustained.observe' ? o.member : o.op))).to.deep.equal(['n:a', 'g:pool=x', 'g:pool=x']);
    expect(f.stats.skipped).to.equal(2);
    // an interval starts: sent; while it holds, "still holding" is answered here too; its end is sent
    expect(await f.exec([obs('n:a', 3000, true), obs('n:a', 4000, true)])).to.deep.equal([3000, 3000]);
    expect(await f.exec([obs('n:a', 4500, true), { op: 'sustained.get', key: key('n:a') }])).to.deep.equal([3000, 3000]);
    expect(await f.exec([obs('n:a', 5000, false)])).to.deep.equal([null]);
    expect(spy.received.filter((o) => o.op === 'sustained.observe' && o.member === 'n:a').map((o) => (o as { ts: number }).ts)).to.deep.equal([1000, 3000, 4000, 5000]);
    expect(await spy.inner.exec([{ op: 'due.pop', index, before: 10_000 }])).to.deep.equal([[]]);
  });

  it('sends the sample that enters a new TTL-refresh period of the shared store (a quarter of the TTL), so its TTL is refreshed as without the filter', async () => {
    const spy = new Spy();
    const f = new NodeSustainedFilterStore(spy);
    const o = (ts: number, holds: boolean): StoreOp => ({ ...obs('n:a', ts, holds), ttlMs: 4000 } as StoreOp);
    await f.exec([o(0, true)]);
    for (const ts of [500, 999, 1000, 1500, 2100, 2999, 3000]) await f.exec([o(ts, true)]);
    expect(spy.received.map((x) => (x as { ts: number }).ts)).to.deep.equal([0, 1000, 2100, 3000]);
  });

  it('a holding observation older than a skipped "not holding" one is out of order: null, as the shared store would say', async () => {
    const spy = new Spy();
    const f = new NodeSustainedFilterStore(spy);
    await f.exec([obs('n:a', 1000, false)]);
    expect(await f.exec([obs('n:a', 5000, false), obs('n:a', 4000, true)])).to.deep.equal([null, null]);
    expect(spy.received).to.have.length(1);
    expect(await f.exec([obs('n:a', 5000, true)])).to.deep.equal([5000]);
  });

  it('forget() drops what it knows and sends the latest skipped observation with the next batch (another replica may write next)', async () => {
    const spy = new Spy();
    const f = new NodeSustainedFilterStore(spy);
    await f.exec([obs('n:a', 1000, false), obs('n:b', 1000, false)]);
    await f.exec([obs('n:a', 7000, false), obs('n:a', 6000, false)]);
    expect(spy.received).to.have.length(2);
    f.forget('test');
    expect(f.size).to.equal(0);
    // another replica (same shared store) sees the key holding from an observation older than our skipped one: out of order there too
    expect(await f.exec([obs('n:b', 2000, false)])).to.deep.equal([null]);
    expect(spy.received.slice(2).map((o) => [(o as { member: string }).member, (o as { ts: number }).ts])).to.deep.equal([
      ['n:a', 7000],
      ['n:b', 2000],
    ]);
    expect(await spy.inner.exec([obs('n:a', 6500, true)]), 'the flushed time is the shared store’s').to.deep.equal([null]);
  });

  it('a failed batch keeps the flushed observations for the next one, and learns nothing', async () => {
    const spy = new Spy();
    const f = new NodeSustainedFilterStore(spy);
    await f.exec([obs('n:a', 1000, false)]);
    await f.exec([obs('n:a', 2000, false)]);
    f.forget('test');
    spy.fail = true;
    let failed = false;
    await f.exec([obs('n:c', 3000, false)]).catch(() => (failed = true));
    expect(failed).to.equal(true);
    expect(f.size).to.equal(0);
    spy.fail = false;
    await f.exec([obs('n:c', 3000, false)]);
    expect(spy.received.map((o) => (o as { ts: number }).ts)).to.deep.equal([1000, 2000, 3000]);
  });

  it('an idle key that expired in the shared store: answers stay right, an interval starts fresh', async () => {
    const inner = new MemoryStateStore();
    const f = new NodeSustainedFilterStore(inner);
    const short = (ts: number, holds: boolean): StoreOp => ({ ...obs('n:a', ts, holds), ttlMs: 1000 } as StoreOp);
    await f.exec([short(0, false)]);
    // another key's op moves the memory store's horizon past that TTL; the key is gone there
    inner.execSync([{ op: 'window.add', key: 'other', member: 'e', ts: 100_000, windowMs: 10, ttlMs: 1000 }]);
    inner.sweep();
    expect(await f.exec([short(100_500, false), short(101_000, true), short(102_000, true)])).to.deep.equal([null, 101_000, 101_000]);
  });

  it('beyond maxKeys it forgets (and flushes) everything rather than grow', async () => {
    const spy = new Spy();
    const f = new NodeSustainedFilterStore(spy, { maxKeys: 3 });
    await f.exec([1, 2, 3].map((n) => obs(`n:${n}`, 1000, false)));
    expect(f.size).to.equal(3);
    await f.exec([obs('n:1', 2000, false), obs('n:4', 1000, false)]);
    expect(f.stats.forgotten).to.equal(1);
    expect(f.size).to.equal(1);
    await f.exec([obs('n:4', 3000, false)]);
    expect(spy.received.map((o) => `${(o as { member: string }).member}@${(o as { ts: number }).ts}`)).to.deep.equal(['n:1@1000', 'n:2@1000', 'n:3@1000', 'n:4@1000', 'n:1@2000']);
  });

  it('answers exactly what the shared store answers, for any sequence of batches, late observations and forgets (property)', async () => {
    const scopes = ['n:a', 'n:b', 'n:a|gpu0', 'g:pool=x'];
    const opArb = fc.oneof(
      { weight: 8, arbitrary: fc.record({ s: fc.constantFrom(...scopes), dt: fc.integer({ min: -3, max: 6 }), holds: fc.boolean() }).map((r) => ({ kind: 'obs' as const, ...r })) },
      { weight: 1, arbitrary: fc.constantFrom(...scopes).map((s) => ({ kind: 'get' as const, s })) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 8 }).map((back) => ({ kind: 'pop' as const, back })) },
    );
    let skipped = 0;
    const batchArb = fc.record({ ops: fc.array(opArb, { minLength: 1, maxLength: 12 }), forgetBefore: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(fc.array(batchArb, { minLength: 1, maxLength: 25 }), async (batches) => {
        const plain = new MemoryStateStore();
        const filtered = new NodeSustainedFilterStore(new Spy());
        let t = 100;
        for (const b of batches) {
          if (b.forgetBefore) filtered.forget('property');
          const ops: StoreOp[] = b.ops.map((o): StoreOp => {
            if (o.kind === 'obs') {
              t += Math.max(0, o.dt);
              return obs(o.s, (t + Math.min(0, o.dt)) * 1000, o.holds);
            }
            if (o.kind === 'get') return { op: 'sustained.get', key: key(o.s) };
            return { op: 'due.pop', index, before: (t - o.back) * 1000 };
          });
          expect(await filtered.exec(ops)).to.deep.equal(await plain.exec(ops));
        }
        filtered.forget('end');
        await filtered.exec([]); // an empty batch sends nothing: flush with a real one
        await filtered.exec([{ op: 'sustained.get', key: key('n:none') }]);
        const probe = (): StoreOp[] => [...scopes.map((s): StoreOp => obs(s, (t + 100) * 1000 - 1, true)), { op: 'due.pop', index, before: (t + 200) * 1000 }];
        expect(await filtered.exec(probe())).to.deep.equal(await plain.exec(probe()));
        skipped += filtered.stats.skipped;
      }),
      { numRuns: 300 },
    );
    expect(skipped, 'the filter really answered ops itself').to.be.above(300);
  });
});

describe('engine service: forgetting node-scoped knowledge (ADR 0042)', () => {
  const T0 = Date.parse('2026-11-21T10:00:00.000Z');
  const event = (id: string): EventEnvelope => ({ v: 1, id, ts: new Date(T0).toISOString(), node: 'gpu-1', type: 'agent.heartbeat', source: 'agent', labels: {}, data: {} });
  let offset = 0;
  const msg = (e: EventEnvelope) => ({ topic: 'signals', partition: 0, offset: String(offset++), key: e.node, value: JSON.stringify(e) });

  it('a batch that meets events already evaluated elsewhere tells the replica to forget before evaluating; a fresh batch does not', async () => {
    const clock = new ManualClock(T0);
    const deduper = new MemoryDeduper(clock, { windowMs: 3_600_000, claimTtlMs: 5000 });
    const forgets: string[] = [];
    const order: string[] = [];
    const processor = new BatchProcessor({
      engine: {
        process: (es) => {
          order.push(`evaluate ${es.length}`);
          return Promise.resolve([]);
        },
        tick: () => Promise.resolve([]),
      },
      remediator: { submit: () => Promise.resolve({ records: [], retryLater: [] }) },
      deduper,
      deadLetters: new MemoryDeadLetterSink(),
      metrics: engineServiceMetrics(createRegistry('idle-filter-test')),
      clock,
      logger: silentLogger,
      localState: {
        forget: (reason) => {
          forgets.push(reason);
          order.push('forget');
        },
      },
    });
    await processor.process([msg(event('e1')), msg(event('e2')), msg(event('e2'))]);
    expect(forgets, 'repeats inside one batch are this batch’s own').to.deep.equal([]);
    // another replica evaluated e3 (a replica still working on a partition it lost)
    await deduper.claim(['e3']);
    await deduper.confirm(['e3']);
    await processor.process([msg(event('e3')), msg(event('e4'))]);
    expect(forgets).to.have.length(1);
    expect(order).to.deep.equal(['evaluate 2', 'forget', 'evaluate 1']);
  });
});
