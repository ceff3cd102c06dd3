/**
 * Toggle audit records on the Kafka ledger topic, keyed `rule-toggle:<rule>`
 * so a rule's changes stay ordered on one partition. Sent with acks=all: the
 * record is durable when `append` resolves.
 */
import type { Producer } from 'kafkajs';
import type { ToggleAuditRecord, ToggleAuditSink } from './port.js';

export class KafkaToggleAuditSink implements ToggleAuditSink {
  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
  ) {}

  async append(records: ToggleAuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.producer.send({
      topic: this.topic,
      acks: -1,
      messages: records.map((r) => ({ key: `rule-toggle:${r.rule}`, value: JSON.stringify(r), headers: { 'nodewarden-kind': 'rule-toggle' } })),
    });
  }
}
