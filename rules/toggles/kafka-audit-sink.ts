/**
 * Operator audit records on the Kafka ledger topic: toggles keyed
 * `rule-toggle:<rule>` so a rule's changes stay ordered on one partition,
 * pause/resume keyed by their kind. Sent with acks=all: the record is durable
 * when `append` resolves.
 */
import type { Producer } from 'kafkajs';
import { sendJsonRecords } from '../../adapters/kafka/json-records.js';
import type { AuditRecord, ToggleAuditSink } from './port.js';

export class KafkaToggleAuditSink implements ToggleAuditSink {
  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
  ) {}

  append(records: AuditRecord[]): Promise<void> {
    return sendJsonRecords(this.producer, this.topic, records, (r) => ({ key: r.kind === 'rule-toggle' ? `rule-toggle:${r.rule}` : r.kind, headers: { 'nodewarden-kind': r.kind } }));
  }
}
