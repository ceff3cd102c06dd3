/**
 * Dead letters on Kafka (config `kafka.topics.deadLetter`), keyed like the
 * original message, sent with acks=all so they are durable before the
 * batch's offsets are committed.
 */
import type { Producer } from 'kafkajs';
import { sendJsonRecords } from '../../adapters/kafka/json-records.js';
import type { DeadLetterRecord, DeadLetterSink } from './ports.js';

export class KafkaDeadLetterSink implements DeadLetterSink {
  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
  ) {}

  send(records: DeadLetterRecord[]): Promise<void> {
    return sendJsonRecords(this.producer, this.topic, records, (r) => ({ key: r.key }));
  }
}

export class MemoryDeadLetterSink implements DeadLetterSink {
  readonly records: DeadLetterRecord[] = [];
  send(records: DeadLetterRecord[]): Promise<void> {
    this.records.push(...records);
    return Promise.resolve();
  }
}
