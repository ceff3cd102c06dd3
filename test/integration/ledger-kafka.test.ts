/** The Kafka ledger against a real broker: topic kafka.topics.ledger; the ledger contract, and records keyed by target name without a decision id. */
import { expect } from 'chai';
import kafkajs from 'kafkajs';
import type { LedgerRecord } from '../../core/decision.js';
import { DEFAULT_CONFIG } from '../../core/config.js';
import type { LedgerEntry } from '../../remediations/ledger/entry.js';
import { KafkaLedger } from '../../remediations/ledger/kafka-ledger.js';
import { ledgerKey } from '../../remediations/ledger/record.js';
import { ledgerStoreContract } from '../contract/ledger-store.js';
import { sharedKafka } from './servers.js';

const { Kafka, logLevel } = kafkajs;

describe('ledger: Kafka topic as a ledger writer', function () {
  this.timeout(180_000);
  let n = 0;
  ledgerStoreContract(
    'Kafka topic',
    async () => {
      const broker = await sharedKafka();
      // one partition: the topic's order is the append order
      const topic = `${DEFAULT_CONFIG.kafka.topics.ledger}.contract-${process.pid}-${++n}`;
      await broker.createTopics([topic], 1);
      const kafka = new Kafka({ clientId: 'ledger-contract', brokers: broker.brokers, logLevel: logLevel.ERROR });
      const writer = new KafkaLedger({ kafka, topic });
      return {
        writer,
        // what a consumer reads, folded by key as ADR 0012 says (a compacted topic keeps one record per key):
        // a decision record's key is its ledger key; audits carry no idempotency key and are read as they come
        readBack: async () => {
          const admin = kafka.admin();
          await admin.connect();
          const high = Number((await admin.fetchTopicOffsets(topic))[0]?.high ?? 0);
          await admin.disconnect();
          const got: LedgerEntry[] = [];
          const folded = new Set<string>();
          // [what the message carries, what the wire format says], checked once all are read
          const wire: Array<[unknown[], unknown[]]> = [];
          let read = 0;
          if (high > 0) {
            const consumer = kafka.consumer({ groupId: `ledger-contract-${process.pid}-${n}-${Date.now()}`, maxWaitTimeInMs: 200 });
            await consumer.connect();
            await consumer.subscribe({ topic, fromBeginning: true });
            await new Promise<void>((resolve, reject) => {
              const timer = setTimeout(() => reject(new Error(`read ${read}/${high} messages of ${topic}`)), 60_000);
              void consumer.run({
                eachMessage: ({ message }) => {
                  read++;
                  const e = JSON.parse(message.value?.toString() ?? 'null') as LedgerEntry;
                  const key = message.key?.toString() ?? '';
                  const header = (h: string): string | undefined => message.headers?.[h]?.toString();
                  if ('kind' in e) {
                    // the wire format of an audit: keyed by rule (toggles) or kind, the kind in a header, no timestamp of its own
                    wire.push([[key, header('nodewarden-kind')], [e.kind === 'rule-toggle' ? `rule-toggle:${e.rule}` : e.kind, e.kind]]);
                    got.push(e);
                  } else {
                    // the wire format of a decision: keyed by its ledger key, the target in a header, its ts as the timestamp
                    wire.push([[key, header('nodewarden-target'), message.timestamp], [ledgerKey(e) ?? e.target.name, e.target.name, String(Date.parse(e.ts))]]);
                    if (e.decisionId === undefined || !folded.has(key)) got.push(e);
                    folded.add(key);
                  }
                  if (read === high) {
                    clearTimeout(timer);
                    resolve();
                  }
                  return Promise.resolve();
                },
              });
            });
            await consumer.disconnect();
          }
          for (const [was, want] of wire) expect(was).to.deep.equal(want);
          return got;
        },
        close: () => writer.close(),
      };
    },
    { queries: false },
  );
});

describe('ledger: Kafka topic', function () {
  this.timeout(180_000);

  it('produces each record to the ledger topic keyed by target name, in order per key', async () => {
    const broker = await sharedKafka();
    const topic = `${DEFAULT_CONFIG.kafka.topics.ledger}.test-${process.pid}`;
    await broker.createTopics([topic], 3);
    const kafka = new Kafka({ clientId: 'ledger-test', brokers: broker.brokers, logLevel: logLevel.ERROR });
    const sink = new KafkaLedger({ kafka, topic });
    const recs: LedgerRecord[] = Array.from({ length: 30 }, (_, i) => ({
      ts: new Date(Date.parse('2026-11-21T10:00:00Z') + i).toISOString(),
      rule: 'gpu-xid-fatal',
      action: 'cordon',
      target: { kind: 'Node', name: `gpu-${i % 4}` },
      outcome: 'executed',
      reason: `r${i}`,
      guard: null,
    }));
    await sink.append(recs.slice(0, 10));
    await sink.append(recs.slice(10));
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
