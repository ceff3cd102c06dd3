/**
 * Event time bounded against read time, in the live engine's batch processor
 * and in replay alike (one implementation, core/event-time.ts), and replay's
 * dedupe by event id (issue 10).
 */
import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { Decision, LedgerRecord } from '../../../core/decision.js';
import type { EventEnvelope } from '../../../core/envelope.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../adapters/metrics.js';
import { defaultRulesPath, loadRules } from '../../../rules/language/load.js';
import { replay } from '../../../rules/replay/replay.js';
import { createStandinRemediator, createStaticCluster } from '../../../rules/replay/standin.js';
import { BatchProcessor } from '../../../rules/service/batch-processor.js';
import { MemoryDeadLetterSink } from '../../../rules/service/dead-letter.js';
import { MemoryDeduper } from '../../../rules/service/dedupe.js';
import { engineServiceMetrics } from '../../../rules/service/metrics.js';
import type { RuleEngine } from '../../../rules/engine/engine.js';
import type { SubmitResult } from '../../../remediations/ports.js';
import type { RawMessage } from '../../../rules/service/ports.js';

const T0 = Date.parse('2026-11-21T10:00:00.000Z');
const FAR_FUTURE = '9999-12-31T23:59:59.000Z';

function xid(id: string, node: string, ts: string | number, code = 79): EventEnvelope {
  return {
    v: 1,
    id,
    ts: typeof ts === 'number' ? new Date(ts).toISOString() : ts,
    node,
    type: 'gpu.xid',
    source: 'kmsg',
    labels: { pool: 'p' },
    data: { code, pci: '0000:3b:00', gpu: 'GPU-1', message: `Xid ${code}` },
  };
}

describe('event time is bounded against read time: live engine (batch processor)', function () {
  class SeeingEngine implements RuleEngine {
    seen: string[] = [];
    process(events: EventEnvelope[]): Promise<Decision[]> {
      this.seen.push(...events.map((e) => e.id));
      return Promise.resolve([]);
    }
    tick(): Promise<Decision[]> {
      return Promise.resolve([]);
    }
  }
  let offset = 0;
  const msg = (e: EventEnvelope): RawMessage => ({ topic: 'signals', partition: 0, offset: String(offset++), key: e.node, value: JSON.stringify(e) });

  function setup() {
    const clock = new ManualClock(T0);
    const engine = new SeeingEngine();
    const deadLetters = new MemoryDeadLetterSink();
    const processor = new BatchProcessor({
      engine,
      remediator: { submit: (): Promise<SubmitResult> => Promise.resolve({ records: [], retryLater: [] }) },
      deduper: new MemoryDeduper(clock, { windowMs: 600_000, claimTtlMs: 5000 }),
      deadLetters,
      metrics: engineServiceMetrics(createRegistry('engine')),
      clock,
      logger: silentLogger,
      eventTime: { maxFutureMs: 5 * 60_000, maxPastMs: 7 * 86_400_000 },
    });
    return { engine, deadLetters, processor };
  }

  it('an event stamped 9999-12-31 is a dead letter with the reason and does not move the watermark', async function () {
    const s = setup();
    const res = await s.processor.process([msg(xid('a', 'n1', T0)), msg(xid('b', 'broken-clock', FAR_FUTURE)), msg(xid('c', 'n2', T0 + 1000))]);
    expect(s.engine.seen).to.deep.equal(['a', 'c']);
    expect(res.maxEventTs).to.equal(T0 + 1000);
    expect(res.invalid).to.equal(1);
    expect(s.deadLetters.records).to.have.length(1);
    const dl = s.deadLetters.records[0]!;
    expect(dl.reason).to.match(/^invalid event: \/ts: event time 9999-12-31T23:59:59\.000Z is \d+d ahead of the read time 2026-11-21T10:00:00\.000Z \(engine\.eventTime\.maxFuture 5m\)$/);
    expect(dl.original).to.contain(FAR_FUTURE);
  });

  it('too old (a 1970 clock) is a dead letter; within the skew on both sides is accepted', async function () {
    const s = setup();
    await s.processor.process([
      msg(xid('old', 'n1', '1970-01-01T00:00:00.000Z')),
      msg(xid('ok-future', 'n1', T0 + 4 * 60_000)),
      msg(xid('ok-past', 'n1', T0 - 6 * 86_400_000)),
      msg(xid('too-future', 'n1', T0 + 6 * 60_000)),
    ]);
    expect(s.engine.seen).to.deep.equal(['ok-future', 'ok-past']);
    expect(s.deadLetters.records.map((r) => r.reason)).to.satisfy((rs: string[]) => /behind the read time .*maxPast 7d/.test(rs[0]!) && /ahead of the read time .*maxFuture 5m/.test(rs[1]!));
  });
});

describe('event time is bounded against read time: replay (same implementation)', function () {
  const rules = loadRules(defaultRulesPath());
  async function run(events: EventEnvelope[]): Promise<{ records: LedgerRecord[]; rejected: Array<{ id: string; reason: string; kind: string }> }> {
    const nodes = ['n1', 'n2', 'n3', 'broken-clock', ...Array.from({ length: 60 }, (_, i) => `filler-${i}`)].map((name) => ({ name, labels: { pool: 'p' }, unschedulable: false, ready: true, cordonedByNodewarden: false }));
    const cluster = createStaticCluster(nodes, []);
    const records: LedgerRecord[] = [];
    const rejected: Array<{ id: string; reason: string; kind: string }> = [];
    for await (const r of replay({
      events,
      rules,
      cluster,
      remediator: createStandinRemediator({ cluster, dryRun: false }),
      config: DEFAULT_CONFIG,
      readNow: () => T0 + 3_600_000,
      onRejected: (e, reason, kind) => rejected.push({ id: e.id, reason, kind }),
    }))
      records.push(r);
    return { records, rejected };
  }

  it('an event stamped 9999-12-31 is rejected with the reason; later decisions keep their own time', async function () {
    const { records, rejected } = await run([xid('a', 'n1', T0), xid('b', 'broken-clock', FAR_FUTURE), xid('c', 'n2', T0 + 60_000)]);
    expect(rejected).to.have.length(1);
    expect(rejected[0]).to.include({ id: 'b', kind: 'event-time' });
    expect(rejected[0]!.reason).to.match(/9999-12-31T23:59:59\.000Z is \d+d ahead of the read time .*maxFuture 5m/);
    const cordons = records.filter((r) => r.action === 'cordon');
    expect(cordons.map((r) => r.target.name)).to.deep.equal(['n1', 'n2']);
    for (const r of records) expect(Date.parse(r.ts), JSON.stringify(r)).to.be.lessThan(T0 + 3_600_000);
    expect(cordons[1]!.ts).to.equal(new Date(T0 + 60_000).toISOString());
  });

  it('an event far behind virtual time is rejected (maxPast)', async function () {
    const { rejected } = await run([xid('a', 'n1', T0), xid('old', 'n2', T0 - 8 * 86_400_000)]);
    expect(rejected.map((r) => `${r.id}:${r.kind}`)).to.deep.equal(['old:event-time']);
    expect(rejected[0]!.reason).to.match(/behind the read time .*maxPast 7d/);
  });

  it('dedupes events by id like the live engine: three events with one id count once', async function () {
    const same = [0, 1, 2].map((i) => xid('dup', 'n3', T0 + i * 1000, 13));
    const once = await run(same);
    expect(once.rejected.map((r) => r.kind)).to.deep.equal(['duplicate', 'duplicate']);
    expect(once.records.filter((r) => r.rule === 'gpu-xid-application-repeated')).to.have.length(0);
    const distinct = await run([0, 1, 2].map((i) => xid(`d${i}`, 'n3', T0 + i * 1000, 13)));
    expect(distinct.records.filter((r) => r.rule === 'gpu-xid-application-repeated')).to.have.length(1);
  });
});
