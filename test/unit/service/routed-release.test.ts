/**
 * ADR 0049: in partition-local mode a ladder release of a node whose
 * partition another replica owns is routed to that owner as a record on the
 * node's partition, applied in order with the node's events, deduplicated
 * like an event, and validated like one (a forged record does no more than a
 * release of that node could).
 */
import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { Decision } from '../../../core/decision.js';
import type { EventEnvelope } from '../../../core/envelope.js';
import type { RuleScope } from '../../../core/held-fault.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../adapters/metrics.js';
import { createRuleEngine, nodeScopedKeyTest } from '../../../rules/engine/engine.js';
import { defaultRulesPath, loadRules } from '../../../rules/language/load.js';
import { createStaticCluster } from '../../../rules/replay/standin.js';
import { BatchProcessor } from '../../../rules/service/batch-processor.js';
import { MemoryDeadLetterSink } from '../../../rules/service/dead-letter.js';
import { MemoryDeduper } from '../../../rules/service/dedupe.js';
import { decodeReleaseRecord, newReleaseRecord, RELEASE_RECORD } from '../../../rules/service/episode-release.js';
import type { ReleaseRecord } from '../../../rules/service/episode-release.js';
import { engineServiceMetrics } from '../../../rules/service/metrics.js';
import type { RawMessage } from '../../../rules/service/ports.js';
import { MemoryStateStore } from '../../../rules/store/memory-store.js';
import { PartitionLocalStore } from '../../../rules/store/partition-local-store.js';
import { fileOnlyToggles } from '../../../rules/toggles/port.js';
import { MemoryBackend, recordingRemediator } from '../../contract/partition-local.js';

const T0 = Date.parse('2026-12-03T10:00:00.000Z');
const M = 60_000;
const NODE = 'gpu-7';
const GPU = 'GPU-aa01';
const rules = loadRules(defaultRulesPath());

let offset = 0;
const xid95 = (id: string, t: number, node = NODE): EventEnvelope => ({ v: 1, id, ts: new Date(t).toISOString(), node, type: 'gpu.xid', source: 'kmsg', labels: { pool: 'p' }, data: { code: 95, gpu: GPU, message: 'Uncontained' } });
const eventMsg = (e: EventEnvelope, partition = 0): RawMessage => ({ topic: 'signals', partition, offset: String(offset++), key: e.node, value: JSON.stringify(e) });
const recordMsg = (r: ReleaseRecord | string, key: string | null = NODE, header = RELEASE_RECORD, partition = 0): RawMessage => ({ topic: 'signals', partition, offset: String(offset++), key, value: typeof r === 'string' ? r : JSON.stringify(r), record: header });

/** One fleet: a shared durable backend and dedupe, replicas that each own some partitions; routed releases land in `published`. */
function fleet() {
  const clock = new ManualClock(T0);
  const backend = new MemoryBackend();
  const deduper = new MemoryDeduper(clock, { windowMs: 3_600_000, claimTtlMs: 5000 });
  const published: ReleaseRecord[] = [];
  const replica = (partitions: number[], routed = true) => {
    const store = new PartitionLocalStore({ backend, isLocal: nodeScopedKeyTest(rules, DEFAULT_CONFIG.redis.keyPrefix) });
    store.assign(partitions);
    const routeRelease = (node: string, episodes: RuleScope[]): Promise<void> => {
      published.push(newReleaseRecord(node, episodes, clock.now()));
      return Promise.resolve();
    };
    const engine = createRuleEngine({ rules, store, cluster: createStaticCluster([], []), toggles: fileOnlyToggles, clock, logger: silentLogger, config: DEFAULT_CONFIG, tickOutbox: true, ...(routed ? { routeRelease } : {}) });
    const { remediator, submitted, ladderRelease } = recordingRemediator();
    const deadLetters = new MemoryDeadLetterSink();
    const processor = new BatchProcessor({ engine, remediator, deduper, deadLetters, metrics: engineServiceMetrics(createRegistry('engine')), clock, logger: silentLogger, partitions: store });
    return { store, engine, processor, submitted, deadLetters, ladderRelease };
  };
  return { clock, backend, published, replica };
}

const actions = (ds: readonly Decision[]): string[] => ds.map((d) => d.action);

describe('routed episode release in partition-local mode (ADR 0049)', () => {
  it('a release by the replica that does not own the node\'s partition is routed there; the owner applies it and the next fault fires a new decision', async () => {
    const f = fleet();
    const owner = f.replica([0]);
    const other = f.replica([1]);
    const first = await owner.processor.process([eventMsg(xid95('x1', T0))]);
    expect(actions(first.decisions)).to.deep.equal(['taint', 'page']);
    const scope = String(first.decisions[0]?.evidence?.ruleScope);
    f.clock.advance(10 * M);
    expect((await owner.processor.process([eventMsg(xid95('x2', T0 + 10 * M))])).decisions, 'cooling down').to.deep.equal([]);

    // the ladder returns the node on the OTHER replica: its store holds nothing of the node, so the release is routed
    expect(await other.ladderRelease([{ rule: 'gpu-xid-fatal', scope }])).to.equal(1);
    expect(f.published.map((r) => [r.node, r.episodes])).to.deep.equal([[NODE, [{ rule: 'gpu-xid-fatal', scope }]]]);
    expect(other.store.size, 'nothing of the node in the other replica').to.equal(0);
    // until the owner consumes it, the episode stands (its memory is untouched)
    f.clock.advance(M);
    expect((await owner.processor.process([eventMsg(xid95('x3', T0 + 11 * M))])).decisions).to.deep.equal([]);

    // the record on the node's partition reaches the owner; the next fault fires again, a new episode
    const rec = f.published[0] as ReleaseRecord;
    await owner.processor.process([recordMsg(rec)]);
    const again = await owner.processor.process([eventMsg(xid95('x4', T0 + 11 * M))]);
    expect(actions(again.decisions)).to.deep.equal(['taint', 'page']);
    expect(again.decisions[0]?.id).to.not.equal(first.decisions[0]?.id);

    // the same record delivered again (a redelivery, a producer retry): a duplicate, the new episode stands
    const dup = await owner.processor.process([recordMsg(rec)]);
    expect(dup.duplicates).to.equal(1);
    expect((await owner.processor.process([eventMsg(xid95('x5', T0 + 11 * M))])).decisions).to.deep.equal([]);
  });

  it('the owner dies before applying it: the record is redelivered to the partition\'s next owner, which restores the state and ends the episode', async () => {
    const f = fleet();
    const owner = f.replica([0]);
    const first = await owner.processor.process([eventMsg(xid95('x1', T0))]);
    const scope = String(first.decisions[0]?.evidence?.ruleScope);
    await f.replica([1]).ladderRelease([{ rule: 'gpu-xid-fatal', scope }]);
    // the owner is gone before consuming it; partition 0 moves to a fresh replica (restores snapshot + op log on first use)
    const next = f.replica([0]);
    f.clock.advance(10 * M);
    const out = await next.processor.process([recordMsg(f.published[0] as ReleaseRecord), eventMsg(xid95('x2', T0 + 10 * M))]);
    expect(actions(out.decisions)).to.deep.equal(['taint', 'page']);
    // and the release is durable in the partition's op log: yet another replica restores it (the new episode active)
    const third = f.replica([0]);
    expect((await third.processor.process([eventMsg(xid95('x3', T0 + 10 * M))])).decisions).to.deep.equal([]);
  });

  it('is applied in partition order with the node\'s events of the same batch: a fault before it is held, one after it fires', async () => {
    const f = fleet();
    const owner = f.replica([0]);
    const first = await owner.processor.process([eventMsg(xid95('x1', T0))]);
    const scope = String(first.decisions[0]?.evidence?.ruleScope);
    await f.replica([1]).ladderRelease([{ rule: 'gpu-xid-fatal', scope }]);
    f.clock.advance(10 * M);
    const out = await owner.processor.process([eventMsg(xid95('x2', T0 + 10 * M)), recordMsg(f.published[0] as ReleaseRecord), eventMsg(xid95('x3', T0 + 10 * M + 1))]);
    expect(out.decisions.map((d) => `${d.action} ${String(d.evidence?.eventId)}`)).to.deep.equal(['taint x3', 'page x3']);
    expect(out.processed).to.equal(2);
  });

  it('a replica that owns the node\'s partition routes its own release too (one path), and a shared-mode engine releases in place', async () => {
    const f = fleet();
    const owner = f.replica([0]);
    const first = await owner.processor.process([eventMsg(xid95('x1', T0))]);
    const scope = String(first.decisions[0]?.evidence?.ruleScope);
    expect(await owner.ladderRelease([{ rule: 'gpu-xid-fatal', scope }, { rule: 'no-such-rule', scope: `n:${NODE}` }])).to.equal(1);
    expect(f.published).to.have.length(1);
    // shared mode: no route, the release runs on the engine's store at once (ADR 0034 unchanged)
    const clock = new ManualClock(T0);
    const shared = createRuleEngine({ rules, store: new MemoryStateStore(), cluster: createStaticCluster([], []), toggles: fileOnlyToggles, clock, logger: silentLogger, config: DEFAULT_CONFIG });
    expect(actions(await shared.process([xid95('s1', T0)]))).to.deep.equal(['taint', 'page']);
    expect(await shared.release([{ rule: 'gpu-xid-fatal', scope }])).to.equal(1);
    expect(actions(await shared.process([xid95('s2', T0 + M)]))).to.deep.equal(['taint', 'page']);
  });

  it('a forged or malformed record is dead-lettered, and a valid one ends no more than node-scoped episodes of the node that keys it', async () => {
    const f = fleet();
    const owner = f.replica([0]);
    const first = await owner.processor.process([eventMsg(xid95('x1', T0)), eventMsg(xid95('y1', T0, 'gpu-8'))]);
    const scope = String(first.decisions[0]?.evidence?.ruleScope);
    const other = `n:gpu-8|${GPU}`;
    const good = newReleaseRecord(NODE, [{ rule: 'gpu-xid-fatal', scope }], T0);
    const bad: Array<[string, RawMessage]> = [
      ['keyed by another node', recordMsg(good, 'gpu-8')],
      ['no key', recordMsg(good, null)],
      ['a scope of another node', recordMsg({ ...good, episodes: [{ rule: 'gpu-xid-fatal', scope: other }] })],
      ['a prefix of another node\'s name', recordMsg({ ...good, node: 'gpu', episodes: [{ rule: 'gpu-xid-fatal', scope: `n:gpu-7|${GPU}` }] }, 'gpu')],
      ['too many episodes', recordMsg({ ...good, episodes: Array.from({ length: 9 }, () => ({ rule: 'gpu-xid-fatal', scope })) })],
      ['no episodes', recordMsg({ ...good, episodes: [] })],
      ['an unknown field', recordMsg(JSON.stringify({ ...good, ops: [] }))],
      ['an extra field in an episode', recordMsg(JSON.stringify({ ...good, episodes: [{ rule: 'gpu-xid-fatal', scope, key: 'x' }] }))],
      ['not JSON', recordMsg('{')],
      ['too long', recordMsg(JSON.stringify({ ...good, id: 'x'.repeat(20_000) }))],
      ['too far in the past', recordMsg({ ...good, ts: new Date(T0 - 30 * 24 * 60 * M).toISOString() })],
      ['a time without its offset', recordMsg({ ...good, ts: '2026-11-21T10:00:00.000' })],
      ['a time that is no date', recordMsg({ ...good, ts: '2026-11-21T10:00:99.000Z' })],
      ['an unknown internal record', recordMsg(good, NODE, 'episode-release/2')],
    ];
    for (const [what, m] of bad) {
      const r = await owner.processor.process([m]);
      expect(r.invalid, what).to.equal(1);
    }
    expect(owner.deadLetters.records.map((d) => d.reason.startsWith('invalid internal record'))).to.deep.equal(bad.map(() => true));
    // none of them released anything: both nodes still cool down
    f.clock.advance(M);
    expect((await owner.processor.process([eventMsg(xid95('x2', T0 + M)), eventMsg(xid95('y2', T0 + M, 'gpu-8'))])).decisions).to.deep.equal([]);
    // applyRelease itself keeps to the node's node-scoped episodes, whatever it is handed
    expect(await owner.engine.applyRelease(NODE, [{ rule: 'gpu-xid-fatal', scope: other }, { rule: 'no-such-rule', scope: `n:${NODE}` }])).to.equal(0);
    expect(() => decodeReleaseRecord(JSON.stringify(good), NODE)).to.not.throw();
  });
});
