import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { NodewardenError } from '../../../core/errors.js';
import type { Decision, LedgerRecord } from '../../../core/decision.js';
import type { EventEnvelope } from '../../../core/envelope.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../adapters/metrics.js';
import type { Remediator, SubmitResult } from '../../../remediations/ports.js';
import { BatchProcessor } from '../../../rules/service/batch-processor.js';
import { MemoryDeadLetterSink } from '../../../rules/service/dead-letter.js';
import { MemoryDeduper } from '../../../rules/service/dedupe.js';
import { engineServiceMetrics } from '../../../rules/service/metrics.js';
import type { RuleEngine } from '../../../rules/engine/engine.js';
import type { RawMessage } from '../../../rules/service/ports.js';
import type { HeldFault, RuleEpisodes } from '../../../core/held-fault.js';
import { createRuleEngine } from '../../../rules/engine/engine.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import { defaultRulesPath, loadRules } from '../../../rules/language/load.js';
import { createStaticCluster } from '../../../rules/replay/standin.js';
import { MemoryStateStore } from '../../../rules/store/memory-store.js';
import { fileOnlyToggles } from '../../../rules/toggles/port.js';

const T0 = Date.parse('2026-11-21T10:00:00.000Z');

function event(id: string, node = 'gpu-1'): EventEnvelope {
  return {
    v: 1,
    id,
    ts: new Date(T0).toISOString(),
    node,
    type: 'gpu.xid',
    source: 'kmsg',
    labels: { pool: 'p' },
    data: { code: 79, pci: '0000:3b:00', message: 'GPU has fallen off the bus.' },
  };
}

let offset = 0;
function msg(value: string | null): RawMessage {
  return { topic: 'signals', partition: 0, offset: String(offset++), key: 'gpu-1', value };
}

class FakeEngine implements RuleEngine {
  seen: string[] = [];
  fail = false;
  process(events: EventEnvelope[]): Promise<Decision[]> {
    if (this.fail) return Promise.reject(new Error('store down'));
    this.seen.push(...events.map((e) => e.id));
    return Promise.resolve(events.map((e): Decision => ({ id: `d-${e.id}`, at: T0, rule: 'gpu-xid-fatal', action: 'cordon', target: { kind: 'Node', name: e.node }, reason: 'xid 79' })));
  }
  tick(): Promise<Decision[]> {
    return Promise.resolve([]);
  }
}

class FakeRemediator implements Pick<Remediator, 'submit'> {
  submitted: Decision[] = [];
  submits = 0;
  submit(ds: readonly Decision[]): Promise<SubmitResult> {
    this.submits++;
    this.submitted.push(...ds);
    return Promise.resolve({ records: ds.map((d): LedgerRecord => ({ ts: new Date(d.at).toISOString(), rule: d.rule, action: d.action, target: d.target, outcome: 'executed', reason: d.reason, guard: null })), retryLater: [] });
  }
}

function setup() {
  const clock = new ManualClock(T0);
  const registry = createRegistry('engine');
  const engine = new FakeEngine();
  const remediator = new FakeRemediator();
  const deadLetters = new MemoryDeadLetterSink();
  const deduper = new MemoryDeduper(clock, { windowMs: 3_600_000, claimTtlMs: 5000 });
  const processor = new BatchProcessor({ engine, remediator, deduper, deadLetters, metrics: engineServiceMetrics(registry), clock, logger: silentLogger });
  return { clock, registry, engine, remediator, deadLetters, deduper, processor };
}

async function metricValue(registry: ReturnType<typeof createRegistry>, name: string): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  return (m?.values ?? []).reduce((s, v) => s + v.value, 0);
}

describe('engine service: batch processor', () => {
  it('ticks the remediator on every engine tick, even without decisions (the repair ladder follows its Jobs on it)', async () => {
    const s = setup();
    const rs = await s.processor.tick(T0 + 1000);
    expect(rs).to.deep.equal([]);
    await s.processor.tick(T0 + 2000);
    expect(s.remediator.submits).to.equal(2);
    expect(s.remediator.submitted).to.deep.equal([]);
  });

  it('dead-letters invalid messages with reason, problems and the raw original, and evaluates the valid ones', async () => {
    const s = setup();
    const bad = JSON.stringify({ ...event('e2'), ts: 'yesterday' });
    const res = await s.processor.process([msg(JSON.stringify(event('e1'))), msg(bad), msg('{not json'), msg(null)]);
    expect(res).to.include({ consumed: 4, invalid: 3, processed: 1, duplicates: 0 });
    expect(s.engine.seen).to.deep.equal(['e1']);
    expect(s.remediator.submitted.map((d) => d.id)).to.deep.equal(['d-e1']);
    expect(s.deadLetters.records).to.have.length(3);
    const [d0, d1, d2] = s.deadLetters.records;
    expect(d0!.original).to.equal(bad);
    expect(d0!.problems).to.deep.equal([{ path: '/ts', message: 'must be an RFC 3339 timestamp' }]);
    expect(d0!.reason).to.contain('/ts');
    expect(d0).to.include({ topic: 'signals', partition: 0, key: 'gpu-1' });
    expect(d1!.reason).to.contain('not JSON');
    expect(d2!.original).to.equal(null);
    expect(await metricValue(s.registry, 'nodewarden_engine_events_invalid_total')).to.equal(3);
    expect(await metricValue(s.registry, 'nodewarden_engine_events_consumed_total')).to.equal(4);
  });

  it('never evaluates a redelivered event twice, in one batch or across batches', async () => {
    const s = setup();
    await s.processor.process([msg(JSON.stringify(event('a'))), msg(JSON.stringify(event('a'))), msg(JSON.stringify(event('b')))]);
    const res = await s.processor.process([msg(JSON.stringify(event('a'))), msg(JSON.stringify(event('c')))]);
    expect(s.engine.seen).to.deep.equal(['a', 'b', 'c']);
    expect(res.duplicates).to.equal(1);
    expect(await metricValue(s.registry, 'nodewarden_engine_events_duplicate_total')).to.equal(2);
    expect(await metricValue(s.registry, 'nodewarden_engine_events_processed_total')).to.equal(3);
  });

  it('a failed batch releases its claims, so its redelivery is evaluated (at-least-once)', async () => {
    const s = setup();
    s.engine.fail = true;
    let failed = false;
    try {
      await s.processor.process([msg(JSON.stringify(event('x')))]);
    } catch {
      failed = true;
    }
    expect(failed).to.equal(true);
    s.engine.fail = false;
    await s.processor.process([msg(JSON.stringify(event('x')))]);
    expect(s.engine.seen).to.deep.equal(['x']);
    expect(await metricValue(s.registry, 'nodewarden_engine_batch_failures_total')).to.equal(1);
  });

  it('counts decisions by rule, action and outcome', async () => {
    const s = setup();
    await s.processor.process([msg(JSON.stringify(event('a', 'n1'))), msg(JSON.stringify(event('b', 'n2')))]);
    const m = await s.registry.getSingleMetric('nodewarden_engine_service_decisions_total')!.get();
    expect(m.values).to.deep.equal([{ value: 2, labels: { rule: 'gpu-xid-fatal', action: 'cordon', outcome: 'executed' } }]);
  });
});

describe('engine service: events another batch is working on', () => {
  it('are neither evaluated nor skipped: the batch is retried once that claim is confirmed or lapsed', async () => {
    const s = setup();
    await s.deduper.claim(['busy']); // a replica that lost the partition is still evaluating it
    let err: unknown;
    await s.processor.process([msg(JSON.stringify(event('busy'))), msg(JSON.stringify(event('free', 'gpu-2')))]).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(NodewardenError);
    expect((err as NodewardenError).retriable).to.equal(true);
    expect(s.engine.seen, 'nothing evaluated').to.deep.equal([]);
    expect(await s.deduper.claim(['free']), 'its own claims were released').to.deep.equal(['claimed']);
    await s.deduper.release(['free']);
    s.clock.advance(5000); // the other batch died: its claim lapsed
    const res = await s.processor.process([msg(JSON.stringify(event('busy'))), msg(JSON.stringify(event('free', 'gpu-2')))]);
    expect(res.processed).to.equal(2);
    expect(s.engine.seen).to.deep.equal(['busy', 'free']);
  });
});

describe('engine service: memory deduper', () => {
  it('an unconfirmed claim lapses after claimTtl; a confirmed one holds for the dedupe window', async () => {
    const clock = new ManualClock(T0);
    const d = new MemoryDeduper(clock, { windowMs: 60_000, claimTtlMs: 5000 });
    expect(await d.claim(['a', 'b'])).to.deep.equal(['claimed', 'claimed']);
    await d.confirm(['a']);
    expect(await d.claim(['a', 'b'])).to.deep.equal(['duplicate', 'pending']);
    clock.advance(5000);
    expect(await d.claim(['a', 'b'])).to.deep.equal(['duplicate', 'claimed']);
    clock.advance(60_000);
    expect(await d.claim(['a'])).to.deep.equal(['claimed']);
  });
});

describe('engine service: held faults (ADR 0034)', () => {
  it("hands a fault event its isolating rule held back (cooldown) to the remediator's heldFaults, after the batch's decisions, and returns what that recorded", async () => {
    const clock = new ManualClock(T0);
    const engine = createRuleEngine({ rules: loadRules(defaultRulesPath()), store: new MemoryStateStore(), cluster: createStaticCluster([], []), toggles: fileOnlyToggles, clock, logger: silentLogger, config: DEFAULT_CONFIG });
    const calls: string[] = [];
    const held: HeldFault[] = [];
    const inner = new FakeRemediator();
    const remediator: Pick<Remediator, 'submit' | 'heldFaults'> = {
      submit: (ds) => {
        calls.push(`submit:${ds.length}`);
        return inner.submit(ds);
      },
      heldFaults: (fs) => {
        calls.push(`held:${fs.length}`);
        held.push(...fs);
        return Promise.resolve({ records: [{ ts: new Date(clock.now()).toISOString(), rule: 'gpu-xid-fatal', action: 'reboot', target: { kind: 'Node', name: 'gpu-1' }, outcome: 'executed', reason: 'ladder', guard: null }], retryLater: [] });
      },
    };
    const processor = new BatchProcessor({ engine, remediator, deduper: new MemoryDeduper(clock, { windowMs: 3_600_000, claimTtlMs: 5000 }), deadLetters: new MemoryDeadLetterSink(), metrics: engineServiceMetrics(createRegistry('engine')), clock, logger: silentLogger });
    const xid95 = (id: string, dt: number): EventEnvelope => ({ ...event(id), ts: new Date(T0 + dt).toISOString(), data: { code: 95, gpu: 'GPU-aa01', message: 'Uncontained' } });
    const first = await processor.process([msg(JSON.stringify(xid95('x1', 0)))]);
    expect(first.decisions.map((d) => d.action)).to.deep.equal(['taint', 'page']);
    expect(calls).to.deep.equal(['submit:2']);
    clock.advance(10 * 60_000);
    const again = await processor.process([msg(JSON.stringify(xid95('x2', 10 * 60_000)))]);
    expect(again.decisions).to.deep.equal([]);
    expect(calls).to.deep.equal(['submit:2', 'held:1']);
    expect(held[0]).to.include({ rule: 'gpu-xid-fatal', node: 'gpu-1', gpu: 'GPU-aa01', eventId: 'x2' });
    expect(again.records.map((r) => r.action)).to.deep.equal(['reboot']);
  });

  it('binds the engine to the remediator: releasing the episode that isolated a GPU (the ladder returned it) makes the next fault fire within the cooldown', async () => {
    const clock = new ManualClock(T0);
    const engine = createRuleEngine({ rules: loadRules(defaultRulesPath()), store: new MemoryStateStore(), cluster: createStaticCluster([], []), toggles: fileOnlyToggles, clock, logger: silentLogger, config: DEFAULT_CONFIG });
    const inner = new FakeRemediator();
    let bound: RuleEpisodes | null = null;
    const remediator: Pick<Remediator, 'submit' | 'heldFaults' | 'bindRuleEpisodes'> = {
      submit: (ds) => inner.submit(ds),
      heldFaults: () => Promise.resolve({ records: [], retryLater: [] }),
      bindRuleEpisodes: (r) => {
        bound = r;
      },
    };
    const processor = new BatchProcessor({ engine, remediator, deduper: new MemoryDeduper(clock, { windowMs: 3_600_000, claimTtlMs: 5000 }), deadLetters: new MemoryDeadLetterSink(), metrics: engineServiceMetrics(createRegistry('engine')), clock, logger: silentLogger });
    const xid95 = (id: string, dt: number): EventEnvelope => ({ ...event(id), ts: new Date(T0 + dt).toISOString(), data: { code: 95, gpu: 'GPU-aa01', message: 'Uncontained' } });
    const first = await processor.process([msg(JSON.stringify(xid95('x1', 0)))]);
    const taint = first.decisions.find((d) => d.action === 'taint');
    const scope = taint?.evidence?.ruleScope;
    expect(scope, 'the decision names the episode that isolated').to.be.a('string');
    clock.advance(10 * 60_000);
    expect((await processor.process([msg(JSON.stringify(xid95('x2', 10 * 60_000)))])).decisions, 'cooling down').to.deep.equal([]);
    expect(bound).to.not.equal(null);
    expect(await (bound as unknown as RuleEpisodes).release([{ rule: 'gpu-xid-fatal', scope: String(scope) }, { rule: 'no-such-rule', scope: 'n:x' }])).to.equal(1);
    clock.advance(60_000);
    const again = await processor.process([msg(JSON.stringify(xid95('x3', 11 * 60_000)))]);
    expect(again.decisions.map((d) => d.action)).to.deep.equal(['taint', 'page']);
  });

  it("hands the engine each fresh event's time as its validation parsed it, aligned after repeats and already-seen events drop out", async () => {
    const clock = new ManualClock(T0);
    const got: Array<[string, number | undefined]> = [];
    const engine: RuleEngine = {
      process: () => Promise.resolve([]),
      tick: () => Promise.resolve([]),
      evaluate: (events, times) => {
        events.forEach((e, i) => got.push([e.id, times?.[i]]));
        return Promise.resolve({ decisions: [], heldFaults: [] });
      },
    };
    const deduper = new MemoryDeduper(clock, { windowMs: 3_600_000, claimTtlMs: 5000 });
    await deduper.confirm((await deduper.claim(['seen'])).map(() => 'seen'));
    const processor = new BatchProcessor({ engine, remediator: new FakeRemediator(), deduper, deadLetters: new MemoryDeadLetterSink(), metrics: engineServiceMetrics(createRegistry('engine')), clock, logger: silentLogger });
    const at = (id: string, ts: string): RawMessage => msg(JSON.stringify({ ...event(id), ts }));
    await processor.process([
      at('a', '2026-11-21T09:59:00.001Z'),
      at('seen', '2026-11-21T09:59:01.000Z'),
      at('a', '2026-11-21T09:59:02.000Z'),
      msg('{"not": "an event"}'),
      at('b', '2026-11-21T10:59:03.250+01:00'),
    ]);
    expect(got).to.deep.equal([
      ['a', Date.parse('2026-11-21T09:59:00.001Z')],
      ['b', Date.parse('2026-11-21T09:59:03.250Z')],
    ]);
  });
});
