/**
 * Toggle audit records on the Kafka ledger topic, keyed `rule-toggle:<rule>`
 * so a rule's changes stay ordered on one partition. Sent with acks=all: the
 * record is durable when `append` resolves.
 */
import type { Producer } from 'kafkajs';
import { sendJsonRecords } from '../../adapters/kafka/json-records.js';
import type { ToggleAuditRecord, ToggleAuditSink } from './port.js';

export class KafkaToggleAuditSink implements ToggleAuditSink {
  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
  ) {}

  append(records: ToggleAuditRecord[]): Promise<void> {
    return sendJsonRecords(this.producer, this.topic, records, (r) => ({ key: `rule-toggle:${r.rule}`, headers: { 'nodewarden-kind': 'rule-toggle' } }));
  }
}
