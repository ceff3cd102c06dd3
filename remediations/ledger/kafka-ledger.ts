/**
 * Ledger records on the Kafka ledger topic (config `kafka.topics.ledger`).
 * Key = the record's idempotency key (record.ts `ledgerKey`: decision id and
 * attempt), so one decision attempt is one key: on a compacted topic
 * (`cleanup.policy=compact`) at most one record per key survives, and a
 * consumer dedupes by key (docs/operations.md). Records without a decision id
 * (none from the remediator) are keyed by target name. The target name is in
 * the `nodewarden-target` header. acks=all: a record is written once every
 * in-sync replica has it. Idempotent producer: a send retried after a broker
 * restart (the broker wrote it, the ack was lost) is not written twice; the
 * same record sent again by a redelivered batch is, and the key folds it.
 */
import kafkajs from 'kafkajs';
import type { Kafka, Producer } from 'kafkajs';
import type { LedgerRecord } from '../../core/decision.js';
import { errorMessage, NodewardenError } from '../../core/errors.js';
import { sendJsonRecords } from '../../adapters/kafka/json-records.js';
import { ledgerKey } from './record.js';
import type { LedgerSink } from './sink.js';

const { Partitioners } = kafkajs;

export interface KafkaLedgerOptions {
  kafka: Kafka;
  topic: string;
}

export class KafkaLedgerSink implements LedgerSink {
  readonly name = 'kafka';
  private readonly producer: Producer;
  private connected: Promise<void> | undefined;
  private closed = false;
  constructor(private readonly o: KafkaLedgerOptions) {
    this.producer = o.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  }

  private connect(): Promise<void> {
    this.connected ??= this.producer.connect().catch((err: unknown) => {
      this.connected = undefined;
      throw err;
    });
    return this.connected;
  }

  async write(records: readonly LedgerRecord[]): Promise<void> {
    if (records.length === 0) return;
    if (this.closed) throw new NodewardenError('UNAVAILABLE', 'ledger: kafka sink closed');
    try {
      await this.connect();
      await sendJsonRecords(this.producer, this.o.topic, records, (r) => ({ key: ledgerKey(r) ?? r.target.name, timestamp: String(Date.parse(r.ts)), headers: { 'nodewarden-target': r.target.name } }));
    } catch (err) {
      throw new NodewardenError('UNAVAILABLE', `ledger: kafka send to ${this.o.topic}: ${errorMessage(err)}`, { retriable: true, cause: err });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.connected) await this.producer.disconnect().catch(() => undefined);
  }
}
