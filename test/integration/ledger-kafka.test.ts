/** The Kafka ledger sink against a real broker: topic kafka.topics.ledger, key = target name. */
import { expect } from 'chai';
import kafkajs from 'kafkajs';
import type { LedgerRecord } from '../../core/decision.js';
import { DEFAULT_CONFIG } from '../../core/config.js';
import { KafkaLedgerSink } from '../../remediations/ledger/kafka-ledger.js';
import { sharedKafka } from './servers.js';

const { Kafka, logLevel } = kafkajs;

describe('ledger: Kafka topic', function () {
  this.timeout(180_000);

  it('produces each record to the ledger topic keyed by target name, in order per key', async () => {
    const broker = await sharedKafka();
    const topic = `${DEFAULT_CONFIG.kafka.topics.ledger}.test-${process.pid}`;
    await broker.createTopics([topic], 3);
    const kafka = new Kafka({ clientId: 'ledger-test', brokers: broker.brokers, logLevel: logLevel.ERROR });
    const sink = new KafkaLedgerSink({ kafka, topic });
    const recs: LedgerRecord[] = Array.from({ length: 30 }, (_, i) => ({
      ts: new Date(Date.parse('2026-11-21T10:00:00Z') + i).toISOString(),
      rule: 'gpu-xid-fatal',
      action: 'cordon',
      target: { kind: 'Node', name: `gpu-${i % 4}` },
      outcome: 'executed',
      reason: `r${i}`,
      guard: null,
    }));
    await sink.write(recs.slice(0, 10));
    await sink.write(recs.slice(10));
    await sink.close();
    await sink.close(); // idempotent

    const consumer = kafka.consumer({ groupId: `ledger-test-${process.pid}`, maxWaitTimeInMs: 200 });
    const got: Array<{ key: string; rec: LedgerRecord }> = [];
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`got ${got.length}/30 ledger records`)), 60_000);
      void consumer.run({
        eachMessage: ({ message }) => {
          got.push({ key: message.key?.toString() ?? '', rec: JSON.parse(message.value?.toString() ?? 'null') as LedgerRecord });
          if (got.length === 30) {
            clearTimeout(timer);
            resolve();
          }
          return Promise.resolve();
        },
      });
    });
    await consumer.disconnect();
    for (const g of got) expect(g.key).to.equal(g.rec.target.name);
    for (let n = 0; n < 4; n++) {
      const seq = got.filter((g) => g.key === `gpu-${n}`).map((g) => g.rec.reason);
      expect(seq).to.deep.equal(recs.filter((r) => r.target.name === `gpu-${n}`).map((r) => r.reason));
    }
  });
});
