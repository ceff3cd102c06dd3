/**
 * Two engine processes in one consumer group on a REAL broker and Redis:
 * they share the partitions, and SIGKILLing the one that holds a node's
 * partition loses neither events nor window state — a count-within-window
 * rule fires on the survivor although the window's events were split across
 * both replicas.
 */
import { expect } from 'chai';
import type { EngineProc } from './engine-support.js';
import { engineLog, produce, startReplicaPair, uniqueTopics, waitFor, xid } from './engine-support.js';
import type { TopicFollower } from './engine-support.js';

describe('engine replicas: shared partitions and state, SIGKILL of one', function () {
  this.timeout(180_000);
  const topics = uniqueTopics('rep');
  let brokers: string[];
  const engines: EngineProc[] = [];
  let ledger: TopicFollower;

  before(async () => {
    const pair = await startReplicaPair(topics, `nwrep${process.pid}:`);
    brokers = pair.brokers;
    engines.push(...pair.engines);
    ledger = pair.ledger;
  });

  after(async () => {
    for (const e of engines) await e.kill('SIGTERM');
    await ledger?.stop();
  });

  it('share the partitions of the signals topic', async () => {
    // One event for each of 20 nodes: with 4 partitions both replicas get some.
    await produce(brokers, topics.signals, Array.from({ length: 20 }, (_, i) => ({ key: `gpu-node-0${20 + i}`, value: xid(`gpu-node-0${20 + i}`, 13) })));
    const counts = await waitFor('all 20 events processed', async () => {
      const c = await Promise.all(engines.map((e) => e.metric('nodewarden_engine_events_processed_total')));
      return c[0]! + c[1]! >= 20 ? c : undefined;
    }, 60_000);
    console.log(`      processed per replica: ${counts.join(', ')}`);
    expect(counts[0]! + counts[1]!).to.equal(20);
    expect(counts[0]).to.be.greaterThan(0);
    expect(counts[1]).to.be.greaterThan(0);
  });

  it('a window split across a killed replica and the survivor still fires on the survivor', async () => {
    const node = 'gpu-node-077';
    const before = await Promise.all(engines.map((e) => e.metric('nodewarden_engine_events_processed_total')));
    await produce(brokers, topics.signals, [
      { key: node, value: xid(node, 31) },
      { key: node, value: xid(node, 31) },
    ]);
    const owner = await waitFor('the first two events processed', async () => {
      const now = await Promise.all(engines.map((e) => e.metric('nodewarden_engine_events_processed_total')));
      const i = now.findIndex((n, k) => n - before[k]! === 2);
      return i >= 0 ? i : undefined;
    }, 30_000);
    const victim = engines[owner]!;
    const survivor = engines[1 - owner]!;
    const survivorBefore = await survivor.metric('nodewarden_engine_events_processed_total');
    await victim.kill('SIGKILL');
    expect(victim.proc.signalCode).to.equal('SIGKILL');

    await produce(brokers, topics.signals, [
      { key: node, value: xid(node, 31) },
      { key: node, value: xid(node, 31) },
    ]);
    const t0 = Date.now();
    const page = await waitFor('the repeat rule to fire on the survivor', () => ledger.records.find((r) => r.rule === 'test-xid-repeat' && String(r.reason).includes(node)), 90_000, 100);
    console.log(`      survivor fired ${Date.now() - t0} ms after the second half was produced (session timeout 6 s)`);
    expect(String(page.reason)).to.contain(`4 Xid 31 on ${node}`);
    // The survivor took over the victim's partitions and evaluated exactly the two new events of that node
    // (plus nothing redelivered: the victim had committed what it evaluated).
    const survivorProcessed = (await survivor.metric('nodewarden_engine_events_processed_total')) - survivorBefore;
    expect(survivorProcessed).to.equal(2);
    expect(ledger.records.filter((r) => r.rule === 'test-xid-repeat')).to.have.length(1);
    const readyz = await fetch(`${survivor.url}/readyz`);
    expect(readyz.status, engineLog(survivor).slice(-2000)).to.equal(200);
  });
});
