/**
 * Property tests (fast-check): evaluation is deterministic, and window counts,
 * distinct counts and counter increase/rate (with resets) match brute-force
 * oracles over random event streams — both at the store and through the engine.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { Decision } from '../../../core/decision.js';
import type { EventEnvelope, EventType } from '../../../core/envelope.js';
import { silentLogger } from '../../../core/logger.js';
import { createRuleEngine } from '../../../rules/engine/engine.js';
import { defaultRulesPath, loadRules, parseRules } from '../../../rules/language/load.js';
import type { RuleSet } from '../../../rules/language/types.js';
import { createStaticCluster } from '../../../rules/replay/standin.js';
import { MemoryStateStore } from '../../../rules/store/memory-store.js';
import { fileOnlyToggles } from '../../../rules/toggles/port.js';

const T0 = Date.parse('2026-11-21T10:00:00.000Z');
const NODES = ['n0', 'n1', 'n2', 'n3'];

function engineFor(rules: RuleSet, store = new MemoryStateStore()) {
  return createRuleEngine({
    rules,
    store,
    cluster: createStaticCluster([], []),
    toggles: fileOnlyToggles,
    clock: new ManualClock(0),
    logger: silentLogger,
    config: DEFAULT_CONFIG,
  });
}

function ev(i: number, node: string, t: number, type: EventType, data: Record<string, unknown>, pool = 'p1'): EventEnvelope {
  return { v: 1, id: `e${i}`, ts: new Date(t).toISOString(), node, type, source: 'prop', labels: { pool }, data };
}

/** Random streams over the default pack's signals; per node, times strictly increase. */
const streamArb = fc
  .array(
    fc.record({
      node: fc.constantFrom(...NODES),
      dt: fc.integer({ min: 0, max: 40_000 }),
      kind: fc.constantFrom('xid-hw', 'xid-app', 'xid-info', 'containerd', 'kubeproxy', 'conntrack', 'heartbeat'),
      code: fc.integer({ min: 0, max: 5 }),
      value: fc.integer({ min: 0, max: 300 }),
      pool: fc.constantFrom('p1', 'p2'),
    }),
    { minLength: 1, maxLength: 120 },
  )
  .map((items) => {
    let t = T0;
    const lastPerNode = new Map<string, number>();
    return items.map((it, i) => {
      t += it.dt;
      // equal ts across nodes happen (dt = 0); per node keep strictly increasing
      const prev = lastPerNode.get(it.node) ?? -1;
      const ts = t > prev ? t : prev + 1;
      if (ts > t) t = ts;
      lastPerNode.set(it.node, ts);
      switch (it.kind) {
        case 'xid-hw':
          return ev(i, it.node, ts, 'gpu.xid', { code: [79, 48, 119, 62, 74, 95][it.code], pci: `0000:${it.code}b:00`, message: 'hw' }, it.pool);
        case 'xid-app':
          return ev(i, it.node, ts, 'gpu.xid', { code: [13, 31, 43, 45, 68, 69][it.code], pci: `0000:${it.code % 2}b:00`, message: 'app' }, it.pool);
        case 'xid-info':
          return ev(i, it.node, ts, 'gpu.xid', { code: [63, 92, 94, 154, 63, 92][it.code], pci: null, message: 'info' }, it.pool);
        case 'containerd':
          return ev(i, it.node, ts, 'runtime.containerd', { state: ['serving', 'timeout', 'unreachable', 'serving', 'timeout', 'not_serving'][it.code] });
        case 'kubeproxy':
          return ev(i, it.node, ts, 'kubeproxy.restart', { pod: 'kp', restartCount: it.value });
        case 'conntrack':
          return ev(i, it.node, ts, 'net.conntrack', { count: it.value * 1000, max: 262144, counters: { drop: it.value, insert_failed: it.value % 7 } });
        default:
          return ev(i, it.node, ts, 'agent.heartbeat', {});
      }
    });
  });

/** Drives an engine over a stream in virtual time (tick every 5s), in batches of `batch`. */
async function drive(rules: RuleSet, events: EventEnvelope[], batch: number): Promise<Decision[]> {
  const eng = engineFor(rules);
  const out: Decision[] = [];
  let next = Math.ceil(Date.parse(events[0]!.ts) / 5000) * 5000;
  let buf: EventEnvelope[] = [];
  const flush = async (): Promise<void> => {
    if (buf.length) out.push(...(await eng.process(buf)));
    buf = [];
  };
  for (const e of events) {
    const t = Date.parse(e.ts);
    if (next < t) {
      await flush();
      for (; next < t; next += 5000) out.push(...(await eng.tick(next)));
    }
    buf.push(e);
    if (buf.length >= batch) await flush();
  }
  await flush();
  const end = Date.parse(events[events.length - 1]!.ts) + 10 * 60_000;
  for (; next <= end; next += 5000) out.push(...(await eng.tick(next)));
  return out;
}

const key = (d: Decision): string => `${d.id}|${d.at}|${d.rule}|${d.action}|${d.target.kind}/${d.target.name}|${d.dedupKey ?? ''}`;

describe('rules engine properties', function () {
  this.timeout(120_000);
  const pack = loadRules(defaultRulesPath());

  it('is deterministic: same events → same decisions, whatever the batching, on fresh stores', async function () {
    await fc.assert(
      fc.asyncProperty(streamArb, fc.integer({ min: 1, max: 50 }), async (events, batch) => {
        const a = await drive(pack, events, 1000);
        const b = await drive(pack, events, batch);
        expect(b).to.deep.equal(a);
      }),
      { numRuns: 60 },
    );
  });

  it('shuffling events that share a timestamp (order per node kept) yields the same decisions', async function () {
    await fc.assert(
      fc.asyncProperty(streamArb, fc.integer(), async (events, seed) => {
        // stable shuffle inside equal-ts groups: events of one ts come from distinct nodes
        let s = seed >>> 0;
        const rnd = (): number => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
        const shuffled: EventEnvelope[] = [];
        for (let i = 0; i < events.length; ) {
          let j = i;
          while (j < events.length && events[j]!.ts === events[i]!.ts) j++;
          const group = events.slice(i, j);
          for (let k = group.length - 1; k > 0; k--) {
            const r = Math.floor(rnd() * (k + 1));
            [group[k], group[r]] = [group[r]!, group[k]!];
          }
          shuffled.push(...group);
          i = j;
        }
        const a = (await drive(pack, events, 7)).map(key).sort();
        const b = (await drive(pack, shuffled, 7)).map(key).sort();
        expect(b).to.deep.equal(a);
      }),
      { numRuns: 60 },
    );
  });

  describe('store operations match brute-force oracles', function () {
    const samples = fc.array(fc.record({ dt: fc.integer({ min: 0, max: 5000 }), node: fc.constantFrom('a', 'b', 'c', 'd', 'e'), value: fc.integer({ min: 0, max: 50 }), reset: fc.boolean(), dup: fc.boolean() }), {
      minLength: 1,
      maxLength: 200,
    });

    it('window count, distinct count and counter increase (with resets and duplicate deliveries)', function () {
      fc.assert(
        fc.property(samples, fc.integer({ min: 1, max: 20_000 }), (items, windowMs) => {
          const store = new MemoryStateStore();
          const seen: Array<{ id: string; ts: number; node: string; v: number }> = [];
          let t = 0;
          let counter = 0;
          items.forEach((it, i) => {
            t += it.dt;
            counter = it.reset ? it.value : counter + it.value;
            const id = it.dup && i > 0 ? seen[seen.length - 1]!.id : `s${i}`;
            const isDup = seen.some((x) => x.id === id);
            const ts = isDup ? seen.find((x) => x.id === id)!.ts : t;
            const v = isDup ? seen.find((x) => x.id === id)!.v : counter;
            if (!isDup) seen.push({ id, ts, node: it.node, v });
            const [wc, dc, inc] = store.execSync([
              { op: 'window.add', key: 'w', member: id, ts, windowMs, ttlMs: windowMs * 2 },
              { op: 'distinct.add', key: 'd', member: isDup ? seen.find((x) => x.id === id)!.node : it.node, ts, windowMs, ttlMs: windowMs * 2 },
              { op: 'counter.add', key: 'c', member: id, ts, value: v, windowMs, ttlMs: windowMs * 2 },
            ]);
            const inWin = seen.filter((x) => x.ts > ts - windowMs && x.ts <= ts);
            expect(wc).to.equal(inWin.length);
            // distinct: a node counts if its latest time seen (up to now) is inside the window
            const latest = new Map<string, number>();
            for (const x of seen) if (x.ts <= ts) latest.set(x.node, Math.max(latest.get(x.node) ?? -Infinity, x.ts));
            expect(dc).to.equal([...latest.values()].filter((x) => x > ts - windowMs).length);
            const cs = seen.filter((x) => x.ts >= ts - windowMs && x.ts <= ts).map((x) => x.v);
            let o = 0;
            for (let k = 1; k < cs.length; k++) o += cs[k]! >= cs[k - 1]! ? cs[k]! - cs[k - 1]! : cs[k]!;
            expect(inc).to.equal(o);
          });
        }),
        { numRuns: 200 },
      );
    });
  });

  describe('engine firing matches brute-force oracles', function () {
    const rules = parseRules(
      `apiVersion: nodewarden.io/v1
kind: RuleSet
rules:
  - id: p-count
    description: count oracle
    severity: info
    match: { type: kubeproxy.restart }
    condition: { count: { gte: 3, within: 30s } }
    cooldown: "0"
    actions: [{ type: page }]
  - id: p-distinct
    description: distinct oracle
    severity: info
    match: { type: gpu.xid }
    scope: fleet
    condition: { distinctNodes: { gte: 2, within: 20s } }
    cooldown: "0"
    actions: [{ type: page }]
  - id: p-increase
    description: increase oracle
    severity: info
    match: { type: net.conntrack }
    condition: { increase: { counter: data.counters.drop, gte: 25, within: 40s } }
    cooldown: "0"
    actions: [{ type: page }]
  - id: p-rate
    description: rate oracle
    severity: info
    match: { type: net.conntrack }
    condition: { rate: { counter: data.counters.drop, gte: 1.5, within: 20s } }
    cooldown: "0"
    actions: [{ type: page }]
`,
      'props.yaml',
    );
    const arb = fc.array(
      fc.record({ dt: fc.integer({ min: 1, max: 15_000 }), node: fc.constantFrom('a', 'b', 'c'), kind: fc.constantFrom('kp', 'xid', 'ct'), inc: fc.integer({ min: 0, max: 30 }), reset: fc.boolean() }),
      { minLength: 1, maxLength: 150 },
    );

    it('fires exactly at the events where the windowed value reaches the threshold', async function () {
      await fc.assert(
        fc.asyncProperty(arb, async (items) => {
          let t = T0;
          const counters = new Map<string, number>();
          const events = items.map((it, i) => {
            t += it.dt;
            if (it.kind === 'kp') return ev(i, it.node, t, 'kubeproxy.restart', { pod: 'p', restartCount: i });
            if (it.kind === 'xid') return ev(i, it.node, t, 'gpu.xid', { code: 79, message: 'x' });
            const c = it.reset ? it.inc : (counters.get(it.node) ?? 0) + it.inc;
            counters.set(it.node, c);
            return ev(i, it.node, t, 'net.conntrack', { count: 1, max: 10, counters: { drop: c } });
          });
          const got = (await engineFor(rules).process(events)).map((d) => `${d.rule}@${d.at}@${d.target.name}`);
          const want: string[] = [];
          events.forEach((e, i) => {
            const ts = Date.parse(e.ts);
            const before = events.slice(0, i + 1);
            if (e.type === 'kubeproxy.restart') {
              const n = before.filter((x) => x.type === e.type && x.node === e.node && Date.parse(x.ts) > ts - 30_000).length;
              if (n >= 3) want.push(`p-count@${ts}@${e.node}`);
            } else if (e.type === 'gpu.xid') {
              const nodes = new Set(before.filter((x) => x.type === e.type && Date.parse(x.ts) > ts - 20_000).map((x) => x.node));
              if (nodes.size >= 2) want.push(`p-distinct@${ts}@fleet`);
            } else {
              const incOver = (w: number): number => {
                const vs = before.filter((x) => x.type === e.type && x.node === e.node && Date.parse(x.ts) >= ts - w).map((x) => (x.data as { counters: { drop: number } }).counters.drop);
                let o = 0;
                for (let k = 1; k < vs.length; k++) o += vs[k]! >= vs[k - 1]! ? vs[k]! - vs[k - 1]! : vs[k]!;
                return o;
              };
              if (incOver(40_000) >= 25) want.push(`p-increase@${ts}@${e.node}`);
              if (incOver(20_000) / 20 >= 1.5) want.push(`p-rate@${ts}@${e.node}`);
            }
          });
          expect(got).to.deep.equal(want);
        }),
        { numRuns: 150 },
      );
    });
  });
});
