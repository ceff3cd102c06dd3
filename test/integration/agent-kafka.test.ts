/**
 * The agent publisher against a REAL Kafka broker (KRaft, test/harness/kafka.ts),
 * read back with a real kafkajs consumer:
 * - per-node order over ≥ 1000 events from several nodes;
 * - the broker stopped while events keep coming, then restarted: every event
 *   arrives exactly once (counted by id), in per-node order;
 * - with a deliberately tiny spool, alarms survive the outage and the routine
 *   samples dropped instead are counted;
 * - the broker SIGKILLed while batches are in flight (their outcome unknown to
 *   the producer), then restarted: exactly once, in order (the idempotent
 *   resend of agent/publisher/kafka-wire, ADR 0040);
 * - a topic that does not exist yet (no metadata, no leader): events wait in
 *   the spool and arrive exactly once, in order, once it is created.
 * This test owns its broker (it stops and restarts it), so it does not use the shared one.
 */
import { expect } from 'chai';
import kafkajs from 'kafkajs';
import type { Consumer } from 'kafkajs';
import { startKafka } from '../harness/kafka.js';
import type { KafkaBroker } from '../harness/kafka.js';
import { BatchPublisher } from '../../agent/publisher/batch-publisher.js';
import { createKafkaProducer } from '../../agent/publisher/kafka-producer.js';
import { eventPriority } from '../../agent/publisher/priority.js';
import { DEFAULT_CONFIG } from '../../core/config.js';
import type { EventEnvelope, EventType } from '../../core/envelope.js';
import { decodeEnvelope } from '../../core/envelope.js';
import { UlidFactory } from '../../core/ids.js';
import { silentLogger } from '../../core/logger.js';
import { createRegistry } from '../../agent/metrics.js';
import type { Registry } from '../../agent/metrics.js';
import { stoppableConsumer } from '../harness/stoppable-consumer.js';

const { Kafka, logLevel } = kafkajs;

const ids = new UlidFactory();
const seqByNode = new Map<string, number>();
function ev(node: string, type: EventType = 'gpu.xid', extra: Record<string, unknown> = {}): EventEnvelope {
  const seq = (seqByNode.get(node) ?? 0) + 1;
  seqByNode.set(node, seq);
  const base: Record<string, unknown> =
    type === 'gpu.xid' ? { code: 79, pci: '0000:3b:00', message: 'GPU has fallen off the bus.' } : type === 'agent.heartbeat' ? { seq } : { count: 1, max: 10, counters: {} };
  return { v: 1, id: ids.next(), ts: new Date().toISOString(), node, type, source: 'test', labels: { pool: 'p' }, data: { ...base, ...extra, nodeSeq: seq } };
}

function publisher(broker: KafkaBroker, topic: string, registry: Registry, maxEvents: number): BatchPublisher {
  const kafka = { ...structuredClone(DEFAULT_CONFIG.kafka), brokers: broker.brokers, topics: { ...DEFAULT_CONFIG.kafka.topics, signals: topic } };
  return new BatchPublisher({
    producer: createKafkaProducer({ kafka, logger: silentLogger, clientIdSuffix: topic }),
    topic,
    batchSize: 100,
    lingerMs: 20,
    maxEvents,
    registry,
    logger: silentLogger,
    flushTimeoutMs: 60_000,
    retry: { initialMs: 200, maxMs: 1000 },
  });
}

/** Reads a topic from the beginning; `events` grows as messages arrive. */
async function readTopic(broker: KafkaBroker, topic: string): Promise<{ events: Array<{ key: string; e: EventEnvelope; partition: number }>; consumer: Consumer }> {
  const kafka = new Kafka({ clientId: `t-${topic}`, brokers: broker.brokers, logLevel: logLevel.NOTHING });
  const consumer = stoppableConsumer(kafka, { groupId: `g-${topic}-${Date.now()}`, retry: { retries: 50 } });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const events: Array<{ key: string; e: EventEnvelope; partition: number }> = [];
  await consumer.run({
    eachMessage: ({ message, partition }) => {
      events.push({ key: message.key?.toString() ?? '', e: decodeEnvelope(message.value?.toString() ?? ''), partition });
      return Promise.resolve();
    },
  });
  return { events, consumer };
}

async function waitFor(pred: () => boolean, what: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Each node's events must appear in the order the node observed them (nodeSeq strictly increasing). */
function expectPerNodeOrder(got: Array<{ key: string; e: EventEnvelope }>): void {
  const last = new Map<string, number>();
  for (const { key, e } of got) {
    expect(key).to.equal(e.node);
    const s = e.data['nodeSeq'] as number;
    const prev = last.get(e.node) ?? 0;
    expect(s, `node ${e.node}: seq ${s} after ${prev}`).to.be.greaterThan(prev);
    last.set(e.node, s);
  }
}

/** After 2 s more for late duplicates: every sent event arrived exactly once (by id), each node's in order. */
async function expectExactlyOnceInOrder(got: Array<{ key: string; e: EventEnvelope }>, sent: readonly EventEnvelope[]): Promise<void> {
  await new Promise((r) => setTimeout(r, 2000)); // duplicates, if any, arrive now
  const counts = new Map<string, number>();
  for (const x of got) counts.set(x.e.id, (counts.get(x.e.id) ?? 0) + 1);
  const dups = [...counts.entries()].filter(([, c]) => c > 1);
  expect(dups, `duplicates: ${dups.length}`).to.deep.equal([]);
  expect(counts.size).to.equal(sent.length);
  for (const e of sent) expect(counts.get(e.id), `missing ${e.id}`).to.equal(1);
  expectPerNodeOrder(got);
}

async function droppedTotal(registry: Registry): Promise<Array<{ type: string; reason: string; value: number }>> {
  const m = registry.getSingleMetric('nodewarden_agent_events_dropped_total');
  if (!m) return [];
  return (await m.get()).values.map((v) => ({ type: String(v.labels['type']), reason: String(v.labels['reason']), value: v.value }));
}

describe('agent publisher → real Kafka', function () {
  this.timeout(240_000);
  let broker: KafkaBroker;
  const consumers: Consumer[] = [];

  before(async function () {
    this.timeout(180_000);
    broker = await startKafka({ numPartitions: 6 });
    await broker.createTopics(['agent-order', 'agent-outage', 'agent-tiny'], 6);
  });
  after(async () => {
    for (const c of consumers) await c.disconnect().catch(() => undefined);
    await broker?.stop();
  });

  it('keeps per-node order over 1200 events from 6 nodes, each exactly once', async () => {
    const registry = createRegistry('t1');
    const pub = publisher(broker, 'agent-order', registry, 10_000);
    const nodes = Array.from({ length: 6 }, (_, i) => `order-node-${i}`);
    const sent: EventEnvelope[] = [];
    for (let i = 0; i < 1200; i++) {
      const e = ev(nodes[(i * 7 + Math.floor(i / 13)) % nodes.length] as string);
      sent.push(e);
      if (i % 50 === 49) {
        await pub.publish(sent.slice(-50));
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    await pub.flush();
    const reader = await readTopic(broker, 'agent-order');
    consumers.push(reader.consumer);
    await waitFor(() => reader.events.length >= 1200, '1200 events', 60_000);
    await new Promise((r) => setTimeout(r, 1500)); // any duplicate would show up now
    expect(reader.events).to.have.length(1200);
    expect(new Set(reader.events.map((x) => x.e.id)).size).to.equal(1200);
    expectPerNodeOrder(reader.events);
    // One node → one partition.
    const parts = new Map<string, Set<number>>();
    for (const x of reader.events) parts.set(x.key, (parts.get(x.key) ?? new Set()).add(x.partition));
    for (const s of parts.values()) expect(s.size).to.equal(1);
    await pub.shutdown();
  });

  it('broker stopped mid-stream and restarted: every event exactly once, in per-node order; with a tiny spool the alarms survive', async () => {
    const regBig = createRegistry('t2');
    const regTiny = createRegistry('t3');
    const big = publisher(broker, 'agent-outage', regBig, 50_000);
    const tiny = publisher(broker, 'agent-tiny', regTiny, 40);
    const nodes = ['out-a', 'out-b', 'out-c', 'out-d'];
    const sentBig: EventEnvelope[] = [];
    const tinyAlarms: EventEnvelope[] = [];
    let tinyRoutine = 0;
    let tick = 0;
    const produce = async (rounds: number) => {
      for (let r = 0; r < rounds; r++) {
        const batch = nodes.map((n) => ev(n, tick % 5 === 0 ? 'gpu.xid' : 'agent.heartbeat'));
        sentBig.push(...batch);
        await big.publish(batch);
        // The tiny spool gets 10 routine samples per alarm.
        const t: EventEnvelope[] = [];
        for (let k = 0; k < 10; k++) t.push(ev('tiny-node', k % 2 ? 'agent.heartbeat' : 'net.conntrack'));
        tinyRoutine += 10;
        if (tick % 10 === 0) {
          const a = ev('tiny-node', 'gpu.xid');
          tinyAlarms.push(a);
          t.push(a);
        }
        await tiny.publish(t);
        tick++;
        await new Promise((res) => setTimeout(res, 20));
      }
    };

    await produce(50); // broker up
    await broker.stop();
    await produce(150); // broker down: ~3 s+ of events wait in the spools
    expect(big.depth).to.be.greaterThan(400);
    expect(tiny.depth).to.equal(40);
    const restarting = broker.restart();
    await produce(50); // still down / coming back
    await restarting;
    await produce(50); // up again
    await Promise.all([big.flush(), tiny.flush()]);
    await waitFor(() => big.depth === 0 && tiny.depth === 0, 'spools drained', 60_000);

    const reader = await readTopic(broker, 'agent-outage');
    const tinyReader = await readTopic(broker, 'agent-tiny');
    consumers.push(reader.consumer, tinyReader.consumer);
    await waitFor(() => reader.events.length >= sentBig.length, `${sentBig.length} events on agent-outage`, 90_000);
    await waitFor(() => tinyAlarms.every((a) => tinyReader.events.some((x) => x.e.id === a.id)), 'all tiny-spool alarms', 60_000);
    await expectExactlyOnceInOrder(reader.events, sentBig);
    expect(await droppedTotal(regBig)).to.deep.equal([]);

    // Tiny spool: every alarm arrived exactly once and in order; routine samples were dropped for them, and counted.
    const tinyIds = tinyReader.events.map((x) => x.e.id);
    expect(new Set(tinyIds).size).to.equal(tinyIds.length);
    const alarmIdsGot = tinyReader.events.filter((x) => eventPriority(x.e) === 'alarm').map((x) => x.e.id);
    expect(alarmIdsGot).to.deep.equal(tinyAlarms.map((a) => a.id));
    expectPerNodeOrder(tinyReader.events);
    const dropped = await droppedTotal(regTiny);
    const droppedCount = dropped.reduce((s, d) => s + d.value, 0);
    expect(droppedCount).to.be.greaterThan(0);
    expect(dropped.every((d) => d.reason === 'spool_full' && (d.type === 'agent.heartbeat' || d.type === 'net.conntrack'))).to.equal(true);
    // Nothing lost silently: delivered + dropped = sent.
    expect(tinyReader.events.length + droppedCount).to.equal(tinyRoutine + tinyAlarms.length);

    await Promise.all([big.shutdown(), tiny.shutdown()]);
  });

  it('broker SIGKILLed with batches in flight, then restarted: every event exactly once, in per-node order', async () => {
    await broker.createTopics(['agent-crash'], 6);
    const registry = createRegistry('t4');
    const pub = publisher(broker, 'agent-crash', registry, 50_000);
    const nodes = ['crash-a', 'crash-b', 'crash-c', 'crash-d', 'crash-e'];
    const sent: EventEnvelope[] = [];
    let stop = false;
    // Publishes continuously, so the kill lands while a produce request is on the wire.
    const producing = (async () => {
      while (!stop) {
        const batch = nodes.map((n) => ev(n));
        sent.push(...batch);
        await pub.publish(batch);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    await waitFor(() => sent.length > 2000, '2000 events published', 60_000);
    await broker.kill();
    await new Promise((r) => setTimeout(r, 1000));
    await broker.restart();
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await producing;
    await pub.flush();
    await waitFor(() => pub.depth === 0, 'spool drained', 90_000);
    const reader = await readTopic(broker, 'agent-crash');
    consumers.push(reader.consumer);
    await waitFor(() => reader.events.length >= sent.length, `${sent.length} events on agent-crash`, 90_000);
    await expectExactlyOnceInOrder(reader.events, sent);
    expect(await droppedTotal(registry)).to.deep.equal([]);
    await pub.shutdown();
  });

  it('a topic that does not exist yet: events wait in the spool and arrive exactly once, in order, once it is created', async () => {
    const registry = createRegistry('t5');
    const pub = publisher(broker, 'agent-late-topic', registry, 10_000);
    const sent: EventEnvelope[] = [];
    for (let i = 0; i < 20; i++) {
      const batch = ['late-a', 'late-b'].map((n) => ev(n));
      sent.push(...batch);
      await pub.publish(batch);
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 1500));
    const errors = (await registry.getSingleMetric('nodewarden_agent_publish_errors_total')?.get())?.values[0]?.value ?? 0;
    expect(errors, 'sends to the missing topic failed and were counted').to.be.greaterThan(0);
    expect(pub.depth, 'nothing delivered to a missing topic').to.equal(sent.length);
    await broker.createTopics(['agent-late-topic'], 3);
    await pub.flush();
    await waitFor(() => pub.depth === 0, 'spool drained after the topic appeared', 60_000);
    const reader = await readTopic(broker, 'agent-late-topic');
    consumers.push(reader.consumer);
    await waitFor(() => reader.events.length >= sent.length, `${sent.length} events`, 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    expect(reader.events.map((x) => x.e.id).sort()).to.deep.equal(sent.map((e) => e.id).sort());
    expectPerNodeOrder(reader.events);
    await pub.shutdown();
  });
});
