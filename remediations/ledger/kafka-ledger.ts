/**
 * The ledger on the Kafka ledger topic (config `kafka.topics.ledger`), the
 * long-term record (ADR 0012). Append-only: it is read by consumers that
 * fold by key, not queried here.
 *
 * Decision records: key = the record's idempotency key (record.ts
 * `ledgerKey`: decision id and attempt), so one decision attempt is one key:
 * on a compacted topic (`cleanup.policy=compact`) at most one record per key
 * survives, and a consumer dedupes by key (docs/operations.md). Records
 * without a decision id (none from the remediator) are keyed by target name.
 * The target name is in the `nodewarden-target` header, the record's `ts` is
 * the message timestamp.
 *
 * Operator audits: toggles keyed `rule-toggle:<rule>` so a rule's changes stay
 * ordered on one partition, pause/resume keyed by their kind; the kind is in
 * the `nodewarden-kind` header.
 *
 * acks=all: an entry is written once every in-sync replica has it. Idempotent
 * producer: a send retried after a broker restart (the broker wrote it, the
 * ack was lost) is not written twice; the same record sent again by a
 * redelivered batch is, and the key folds it.
 */
import kafkajs from 'kafkajs';
import type { Kafka, Message, Producer } from 'kafkajs';
import { errorMessage, NodewardenError } from '../../core/errors.js';
import { sendJsonRecords } from '../../adapters/kafka/json-records.js';
import type { LedgerEntry } from './entry.js';
import { isAudit } from './entry.js';
import { ledgerKey } from './record.js';
import type { LedgerWriter } from './store.js';

const { Partitioners } = kafkajs;

export interface KafkaLedgerOptions {
  kafka: Kafka;
  topic: string;
}

/** Key, headers and timestamp of one entry's message (its value is the entry as JSON). */
export function ledgerMessageOf(e: LedgerEntry): Omit<Message, 'value'> {
  if (isAudit(e)) return { key: e.kind === 'rule-toggle' ? `rule-toggle:${e.rule}` : e.kind, headers: { 'nodewarden-kind': e.kind } };
  return { key: ledgerKey(e) ?? e.target.name, timestamp: String(Date.parse(e.ts)), headers: { 'nodewarden-target': e.target.name } };
}

export class KafkaLedger implements LedgerWriter {
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

  async append(entries: readonly LedgerEntry[]): Promise<void> {
    if (entries.length === 0) return;
    if (this.closed) throw new NodewardenError('UNAVAILABLE', 'ledger: kafka sink closed');
    try {
      await this.connect();
      await sendJsonRecords(this.producer, this.o.topic, entries, ledgerMessageOf);
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
