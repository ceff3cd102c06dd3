/**
 * The engine service on a REAL broker and a REAL Redis (`nodewarden engine`
 * as a child process, simulated cluster file): valid events become ledger
 * records on the ledger topic, invalid ones land in the dead-letter topic
 * with the reason and never block the partition, and redelivered event ids
 * are not evaluated twice.
 */
import { expect } from 'chai';
import { sharedKafka, sharedRedis } from './servers.js';
import type { EngineProc } from './engine-support.js';
import { engineLog, produce, startEngine, TopicFollower, uniqueTopics, waitFor, xid } from './engine-support.js';

describe('engine service: real Kafka + Redis', function () {
  this.timeout(180_000);
  const topics = uniqueTopics('svc');
  let brokers: string[];
  let engine: EngineProc | undefined;
  let ledger: TopicFollower;
  let dlq: TopicFollower;

  before(async () => {
    const [kafka, redis] = await Promise.all([sharedKafka(), sharedRedis()]);
    brokers = kafka.brokers;
    await kafka.createTopics([topics.signals, topics.deadLetter, topics.ledger], 3);
    engine = await startEngine({ brokers, redisUrl: redis.url, keyPrefix: `nwsvc${process.pid}:`, groupId: `engine-${topics.signals}`, topics });
    ledger = await new TopicFollower(brokers, topics.ledger).start();
    dlq = await new TopicFollower(brokers, topics.deadLetter).start();
  });

  after(async () => {
    if (engine) {
      const code = await engine.kill('SIGTERM');
      if (code !== 0) console.log(engineLog(engine).slice(-3000));
    }
    await ledger?.stop();
    await dlq?.stop();
  });

  it('dead-letters invalid events with the reason and keeps consuming the partition', async () => {
    const bad = { ...xid('gpu-node-001', 79), ts: 'not-a-time' };
    await produce(brokers, topics.signals, [
      { key: 'gpu-node-001', value: '{"v":1,' },
      { key: 'gpu-node-001', value: bad },
      { key: 'gpu-node-001', value: xid('gpu-node-001', 79) },
    ]);
    await waitFor('two dead letters', () => dlq.records.length >= 2, 30_000);
    const [notJson, badTs] = dlq.records;
    expect(notJson).to.include({ original: '{"v":1,', topic: topics.signals });
    expect(String(notJson!.reason)).to.contain('not JSON');
    expect(badTs!.original).to.equal(JSON.stringify(bad));
    expect(badTs!.problems).to.deep.equal([{ path: '/ts', message: 'must be an RFC 3339 timestamp' }]);
    expect(badTs).to.have.keys('ts', 'reason', 'problems', 'original', 'topic', 'partition', 'offset', 'key');
    // The valid event behind them on the same partition was evaluated: cordon + page.
    const recs = await waitFor('cordon and page for gpu-node-001', () => {
      const r = ledger.records.filter((x) => x.rule === 'test-xid-fatal' && (x.target as { name: string }).name === 'gpu-node-001');
      return r.length >= 2 ? r : undefined;
    }, 30_000);
    expect(recs.map((r) => r.action).sort()).to.deep.equal(['cordon', 'page']);
    expect(recs.find((r) => r.action === 'cordon')).to.include({ outcome: 'executed', guard: null });
    expect(await engine!.metric('nodewarden_engine_events_invalid_total')).to.equal(2);
  });

  it('does not evaluate a redelivered event id twice', async () => {
    const first = xid('gpu-node-002', 31);
    // Three Xid 31 events, one of them delivered three times: the rule needs four distinct ones.
    await produce(brokers, topics.signals, [
      { key: 'gpu-node-002', value: first },
      { key: 'gpu-node-002', value: first },
      { key: 'gpu-node-002', value: xid('gpu-node-002', 31) },
      { key: 'gpu-node-002', value: first },
      { key: 'gpu-node-002', value: xid('gpu-node-002', 31) },
    ]);
    await waitFor('duplicates counted', async () => (await engine!.metric('nodewarden_engine_events_duplicate_total')) >= 2, 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    expect(ledger.records.filter((x) => x.rule === 'test-xid-repeat')).to.deep.equal([]);
    expect(await engine!.metric('nodewarden_engine_events_duplicate_total')).to.equal(2);

    await produce(brokers, topics.signals, [{ key: 'gpu-node-002', value: xid('gpu-node-002', 31) }]);
    const page = await waitFor('the repeat rule to fire on the fourth distinct event', () => ledger.records.find((x) => x.rule === 'test-xid-repeat'), 30_000);
    expect(page).to.include({ action: 'page', severity: 'warning' });
    expect(String(page.reason)).to.contain('4 Xid 31 on gpu-node-002');
    expect(await engine!.metric('nodewarden_engine_events_processed_total')).to.equal(5);
    const text = await (await fetch(`${engine!.url}/metrics`)).text();
    expect(text).to.match(/nodewarden_engine_consumer_lag\{topic="[^"]+",partition="\d+"/);
    expect(text).to.contain('nodewarden_engine_batch_duration_seconds_bucket');
  });
});
