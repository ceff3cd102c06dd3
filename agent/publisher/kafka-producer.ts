/**
 * MessageProducer over the agent's own Kafka client (kafka-wire/, ADR 0040;
 * kafkajs before): acks=-1 (all in-sync replicas), idempotent, one request in
 * flight per broker, so a retried batch is neither duplicated nor reordered
 * within a partition. Keys are node names, so one node's events land on one
 * partition (murmur2, as kafkajs's DefaultPartitioner) in the order the agent
 * observed them. Nothing here wakes while idle: no heartbeat, no request-queue
 * poll (kafkajs needed a patch and `enforceRequestTimeout: false` for that).
 */
import type { KafkaConfig } from '../../core/config.js';
import { kafkaTransport } from '../../adapters/transport-security.js';
import type { Logger } from '../../core/logger.js';
import type { MessageProducer, ProducerMessage } from './producer.js';
import { WireProducer } from './kafka-wire/idempotent-producer.js';

export interface KafkaProducerOptions {
  kafka: KafkaConfig;
  logger: Logger;
  /** Client id suffix, e.g. the node name. */
  clientIdSuffix?: string;
  /** Retries inside one send before the publisher's own back-off takes over (default 2). */
  retries?: number;
  requestTimeoutMs?: number;
  connectionTimeoutMs?: number;
  /** A send that has not settled by then is failed and the producer rebuilt (default 30 s). */
  sendTimeoutMs?: number;
}

export function createKafkaProducer(opts: KafkaProducerOptions): MessageProducer {
  const log = opts.logger.child({ component: 'kafka' });
  const transport = kafkaTransport(opts.kafka);
  const make = (): WireProducer =>
    new WireProducer({
      brokers: opts.kafka.brokers,
      clientId: opts.clientIdSuffix ? `${opts.kafka.clientId}-agent-${opts.clientIdSuffix}` : `${opts.kafka.clientId}-agent`,
      ssl: transport.ssl,
      sasl: transport.sasl,
      logger: log,
      connectTimeoutMs: opts.connectionTimeoutMs ?? 3000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 10_000,
      retries: opts.retries ?? 2,
      initialRetryMs: 200,
      maxRetryMs: 2000,
    });
  let producer: WireProducer | null = null;
  let connected = false;
  const sendTimeoutMs = opts.sendTimeoutMs ?? 30_000;
  /** True if the promise has already settled (checked without waiting). */
  const settled = (p: Promise<unknown>): Promise<boolean> =>
    Promise.race([p.then(() => true, () => true), new Promise<boolean>((r) => setImmediate(() => r(false)))]);

  return {
    async connect(): Promise<void> {
      producer ??= make();
      await producer.connect();
      connected = true;
    },
    async send(topic: string, messages: ProducerMessage[]): Promise<void> {
      const p = producer;
      if (!p || !connected) throw new Error('kafka producer not connected');
      const sending = p.send(topic, messages);
      let timer: NodeJS.Timeout | undefined;
      const watchdog = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`kafka send did not settle within ${sendTimeoutMs} ms`)), sendTimeoutMs);
        timer.unref();
      });
      try {
        await Promise.race([sending, watchdog]);
      } catch (err) {
        if (timer && producer === p && !(await settled(sending))) {
          // A wedged broker: drop this producer (failing its stuck request) and build a fresh one on the next connect.
          connected = false;
          producer = null;
          p.disconnect().catch(() => undefined);
        }
        throw err;
      } finally {
        clearTimeout(timer);
      }
    },
    async disconnect(): Promise<void> {
      const p = producer;
      connected = false;
      if (p) await p.disconnect();
    },
  };
}
