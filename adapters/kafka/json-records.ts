/**
 * The one way nodewarden writes JSON records to a Kafka topic: one message a
 * record, value = the record as JSON, acks=all so a record is durable (every
 * in-sync replica has it) when the send resolves.
 */
import type { Message, Producer } from 'kafkajs';

/** How a record becomes a message besides its JSON value: its key, and optional headers and timestamp. */
export type JsonMessageOf<R> = (record: R) => Omit<Message, 'value'>;

export async function sendJsonRecords<R>(producer: Producer, topic: string, records: readonly R[], messageOf: JsonMessageOf<R>): Promise<void> {
  if (records.length === 0) return;
  await producer.send({ topic, acks: -1, messages: records.map((r) => ({ ...messageOf(r), value: JSON.stringify(r) })) });
}
