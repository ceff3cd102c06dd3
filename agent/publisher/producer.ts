/**
 * The port between the publisher and a message broker: the publisher owns
 * batching, spooling and ordering; a producer only delivers one batch at a
 * time and says whether it worked. Unit tests put a fake behind it.
 */

export interface ProducerMessage {
  key: string;
  value: string;
  /** Epoch ms as a decimal string (Kafka record timestamp). */
  timestamp?: string;
}

export interface MessageProducer {
  /** Connects (idempotent). Rejects while the broker is unreachable. */
  connect(): Promise<void>;
  /**
   * Delivers the messages in order, acknowledged by all in-sync replicas.
   * Rejects if any message may not have been written; the caller resends the
   * same batch (an idempotent producer turns a resend into no duplicate).
   */
  send(topic: string, messages: ProducerMessage[]): Promise<void>;
  /** Idempotent. */
  disconnect(): Promise<void>;
}
