/**
 * Dead letters on Kafka (config `kafka.topics.deadLetter`), keyed like the
 * original message, sent with acks=all so they are durable before the
 * batch's offsets are committed.
 */
import type { Producer } from 'kafkajs';
import type { DeadLetterRecord, DeadLetterSink } from './ports.js';

export class KafkaDeadLetterSink implements DeadLetterSink {
  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
  ) {}

  async send(records: DeadLetterRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.producer.send({
      topic: this.topic,
      acks: -1,
      messages: records.map((r) => ({ key: r.key, value: JSON.stringify(r) })),
    });
  }
}

export class MemoryDeadLetterSink implements DeadLetterSink {
  readonly records: DeadLetterRecord[] = [];
  send(records: DeadLetterRecord[]): Promise<void> {
    this.records.push(...records);
    return Promise.resolve();
  }
}
