/**
 * The tick in event time while the consumer lags (rules/service/watermark.ts):
 * catching up on a backlog of heartbeats must not page the fleet as absent;
 * a node that stops in live time must still page.
 */
import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { LedgerRecord } from '../../../core/decision.js';
import type { EventEnvelope } from '../../../core/envelope.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../adapters/metrics.js';
import { createReplayRemediation } from '../../../remediations/index.js';
import { createSimulatedCluster, parseClusterYaml } from '../../../remediations/simulated/index.js';
import { createRuleEngine } from '../../../rules/engine/engine.js';
import { defaultRulesPath, loadRules } from '../../../rules/language/load.js';
import { BatchProcessor } from '../../../rules/service/batch-processor.js';
import { MemoryDeadLetterSink } from '../../../rules/service/dead-letter.js';
import { MemoryDeduper } from '../../../rules/service/dedupe.js';
import { engineServiceMetrics } from '../../../rules/service/metrics.js';
import type { RawMessage } from '../../../rules/service/ports.js';
import { LocalWatermarkBoard, lowWatermark, PartitionWatermarks } from '../../../rules/service/watermark.js';
import { MemoryStateStore } from '../../../rules/store/memory-store.js';
import { MemoryRuleToggles } from '../../../rules/toggles/memory-toggles.js';

const T0 = Date.parse('2026-11-21T12:00:00.000Z');
const MIN = 60_000;

describe('engine tick time: event-time watermark', () => {
  describe('PartitionWatermarks', () => {
    it('holds until every assigned partition was read, then is the lowest partition event time while lagging', () => {
      const clock = new ManualClock(T0);
      const w = new PartitionWatermarks(clock, 10_000);
      w.assign([0, 1]);
      expect(lowWatermark(w.marks(), clock.now()), 'nothing read yet: hold').to.equal(null);
      w.observe(0, T0 - 30 * MIN, 5000);
      expect(lowWatermark(w.marks(), clock.now()), 'partition 1 not read yet').to.equal(null);
      w.observe(1, T0 - 20 * MIN, 4000);
      expect(lowWatermark(w.marks(), clock.now())).to.equal(T0 - 30 * MIN);
      w.observe(0, T0 - 25 * MIN, 3000);
      w.observe(0, T0 - 40 * MIN, 2000); // an old straggler never moves it back
      expect(lowWatermark(w.marks(), clock.now())).to.equal(T0 - 25 * MIN);
      w.observe(0, T0 - 1000, 0); // caught up: wall time
      expect(lowWatermark(w.marks(), clock.now())).to.equal(T0 - 20 * MIN);
      clock.advance(10_000); // partition 1 idle (no batch for idleMs): wall time
      expect(lowWatermark(w.marks(), clock.now())).to.equal(clock.now());
    });

    it('forgets revoked partitions on a rebalance; event time never runs ahead of wall time', () => {
      const clock = new ManualClock(T0);
      const w = new PartitionWatermarks(clock, 10_000);
      w.assign([0, 1]);
      w.observe(0, T0 + 5 * MIN, 10); // a node with a clock in the future
      w.observe(1, T0 - 5 * MIN, 10);
      w.assign([0, 2]);
      expect(w.marks()).to.deep.equal([
        { partition: 0, ts: T0 },
        { partition: 2, ts: null },
      ]);
    });
  });

  describe('catching up on a backlog of heartbeats (node-heartbeat-missing, absent for 2m)', () => {
    const NODES = 20;
    const node = (i: number): string => `gpu-node-${String(i).padStart(3, '0')}`;
    let seq = 0;
    const heartbeat = (i: number, ts: number): EventEnvelope => ({ v: 1, id: `hb-${seq++}`, ts: new Date(ts).toISOString(), node: node(i), type: 'agent.heartbeat', source: 'agent', labels: { pool: 'p' }, data: {} });
    let offset = 0;
    const msg = (e: EventEnvelope): RawMessage => ({ topic: 'signals', partition: 0, offset: String(offset++), key: e.node, value: JSON.stringify(e) });

    function setup() {
      const clock = new ManualClock(T0);
      const yaml = Array.from(
        { length: NODES },
        (_, i) => `apiVersion: v1\nkind: Node\nmetadata:\n  name: ${node(i)}\n  labels:\n    nodewarden.io/pool: p\nspec: {}\nstatus:\n  conditions:\n  - type: Ready\n    status: "True"\n`,
      ).join('---\n');
      const cluster = createSimulatedCluster(parseClusterYaml(yaml), { clock, logger: silentLogger });
      const { remediator } = createReplayRemediation({ cluster, config: DEFAULT_CONFIG, clock });
      const engine = createRuleEngine({ rules: loadRules(defaultRulesPath()), store: new MemoryStateStore(), cluster, toggles: new MemoryRuleToggles(clock), clock, logger: silentLogger, config: DEFAULT_CONFIG });
      const processor = new BatchProcessor({
        engine,
        remediator,
        deduper: new MemoryDeduper(clock, { windowMs: 10 * MIN, claimTtlMs: 5000 }),
        deadLetters: new MemoryDeadLetterSink(),
        metrics: engineServiceMetrics(createRegistry('engine')),
        clock,
        logger: silentLogger,
      });
      return { clock, processor };
    }

    /** Heartbeats of every node (but `silent`) every 30 s in [from, to). */
    function heartbeats(from: number, to: number, silent: ReadonlySet<number> = new Set()): EventEnvelope[] {
      const out: EventEnvelope[] = [];
      for (let t = from; t < to; t += 30_000) for (let i = 0; i < NODES; i++) if (!silent.has(i)) out.push(heartbeat(i, t));
      return out;
    }

    const absentPages = (rs: readonly LedgerRecord[]): string[] => rs.filter((r) => r.rule === 'node-heartbeat-missing' && r.action === 'page').map((r) => r.target.name);

    /** Consumes a 30-minute backlog in chunks of 200, ticking (as the service does every second) between chunks with `tickAt`. */
    async function catchUp(s: ReturnType<typeof setup>, tickAt: (w: PartitionWatermarks) => Promise<number | null>): Promise<string[]> {
      const w = new PartitionWatermarks(s.clock, 10_000);
      w.assign([0]);
      const backlog = heartbeats(T0 - 30 * MIN, T0);
      const pages: string[] = [];
      for (let i = 0; i < backlog.length; i += 200) {
        const chunk = backlog.slice(i, i + 200);
        const res = await s.processor.process(chunk.map(msg));
        w.observe(0, res.maxEventTs, backlog.length - (i + chunk.length));
        s.clock.advance(50); // consumed fast: the whole backlog in well under a second of wall time... or a bit more
        const t = await tickAt(w);
        if (t !== null) pages.push(...absentPages(await s.processor.tick(t)));
      }
      return pages;
    }

    it('with wall-clock ticks the backlog pages the whole fleet (the storm this prevents)', async () => {
      const s = setup();
      const pages = await catchUp(s, () => Promise.resolve(s.clock.now()));
      expect(new Set(pages).size).to.equal(NODES);
    });

    it('with event-time ticks: no absent page while catching up, and a node that stops in live time still pages', async () => {
      const s = setup();
      const board = new LocalWatermarkBoard();
      const tickAt = async (w: PartitionWatermarks): Promise<number | null> => {
        const t = await board.exchange(w.marks(), s.clock.now());
        return t === null ? null : Math.min(t, s.clock.now());
      };
      expect(await catchUp(s, tickAt), 'catching up').to.deep.equal([]);

      // live: caught up (lag 0), every node reports every 30 s except gpu-node-005, which stops now
      const w = new PartitionWatermarks(s.clock, 10_000);
      w.assign([0]);
      const pages: string[] = [];
      const start = s.clock.now();
      for (let step = 0; step < 12; step++) {
        const live = heartbeats(s.clock.now(), s.clock.now() + 1, new Set([5]));
        const res = await s.processor.process(live.map(msg));
        w.observe(0, res.maxEventTs, 0);
        s.clock.advance(30_000);
        const t = await tickAt(w);
        if (t !== null) pages.push(...absentPages(await s.processor.tick(t)));
      }
      expect(s.clock.now() - start).to.be.greaterThan(2 * MIN);
      expect(pages).to.deep.equal([node(5)]);
    });
  });
});
