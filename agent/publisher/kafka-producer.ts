/**
 * MessageProducer over kafkajs: acks=-1 (all in-sync replicas), idempotent,
 * one request in flight, so a retried batch is neither duplicated nor
 * reordered within a partition. Keys are node names, so one node's events
 * land on one partition in the order the agent observed them.
 */
import { createRequire } from 'node:module';
import kafkajs from 'kafkajs';
import type { KafkaConfig as KafkajsConfig, LogEntry, Producer } from 'kafkajs';
import type { KafkaConfig } from '../../core/config.js';
import { kafkaTransport } from '../../adapters/transport-security.js';
import type { Logger } from '../../core/logger.js';
import type { MessageProducer, ProducerMessage } from './producer.js';

const { Kafka, Partitioners, logLevel, CompressionTypes } = kafkajs;

interface RequestQueueProto {
  pending: unknown[];
  throttledUntil: number;
  scheduleCheckPendingRequests: (this: RequestQueueProto) => void;
  nodewardenIdleFix?: boolean;
}

/**
 * kafkajs 2.2.4 re-arms a setTimeout(≤0 ms) from scheduleCheckPendingRequests
 * even when nothing is pending and nothing is throttled: an endless timer loop
 * per broker connection (tulios/kafkajs#1556, #1704; fix proposed in #1667,
 * unreleased). On an idle agent that loop was ~2.5 % of a core against a
 * 0.5 % budget. Skip the re-arm exactly when there is nothing to check:
 * fulfilled and timed-out requests call checkPendingRequests themselves, and a
 * request queued behind the in-flight limit or a throttle still schedules.
 * If kafkajs's layout ever changes, this does nothing.
 */
export function patchKafkajsIdleLoop(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as { prototype: RequestQueueProto } | undefined;
    const proto = RequestQueue?.prototype;
    if (!proto || typeof proto.scheduleCheckPendingRequests !== 'function') return false;
    if (proto.nodewardenIdleFix) return true;
    const original = proto.scheduleCheckPendingRequests;
    proto.scheduleCheckPendingRequests = function (this: RequestQueueProto) {
      if (this.pending.length === 0 && !(this.throttledUntil > Date.now())) return;
      original.call(this);
    };
    proto.nodewardenIdleFix = true;
    return true;
  } catch {
    return false;
  }
}

export interface KafkaProducerOptions {
  kafka: KafkaConfig;
  logger: Logger;
  /** Client id suffix, e.g. the node name. */
  clientIdSuffix?: string;
  /** kafkajs internal retries per send before our own back-off takes over (default 2). */
  retries?: number;
  requestTimeoutMs?: number;
  connectionTimeoutMs?: number;
  /** A send that has not settled by then is failed and the producer rebuilt (default 30 s). */
  sendTimeoutMs?: number;
}

export function createKafkaProducer(opts: KafkaProducerOptions): MessageProducer {
  const log = opts.logger.child({ component: 'kafkajs' });
  if (!patchKafkajsIdleLoop()) log.warn({}, 'kafkajs idle timer-loop fix not applied (unexpected kafkajs layout): expect extra idle CPU');
  const transport = kafkaTransport(opts.kafka);
  const config: KafkajsConfig = {
    clientId: opts.clientIdSuffix ? `${opts.kafka.clientId}-agent-${opts.clientIdSuffix}` : `${opts.kafka.clientId}-agent`,
    brokers: opts.kafka.brokers,
    ssl: transport.ssl,
    connectionTimeout: opts.connectionTimeoutMs ?? 3000,
    requestTimeout: opts.requestTimeoutMs ?? 10_000,
    // kafkajs enforces request timeouts with a 100 ms setInterval per broker
    // connection: 10 wake-ups a second, most of the agent's idle CPU (3 % of a
    // core measured, against a 0.5 % budget). The send watchdog below bounds a
    // stuck request instead.
    enforceRequestTimeout: false,
    retry: { retries: opts.retries ?? 2, initialRetryTime: 200, maxRetryTime: 2000 },
    // kafkajs logs every failed connection at ERROR; the publisher reports outages once, so these go to debug.
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => log.debug({ ns: entry.namespace, ...entry.log }, entry.log.message),
  };
  if (transport.sasl) config.sasl = transport.sasl;
  const kafka = new Kafka(config);
  let producer: Producer | null = null;
  let connected = false;
  const sendTimeoutMs = opts.sendTimeoutMs ?? 30_000;
  /** True if the promise has already settled (checked without waiting). */
  const settled = (p: Promise<unknown>): Promise<boolean> =>
    Promise.race([p.then(() => true, () => true), new Promise<boolean>((r) => setImmediate(() => r(false)))]);

  const make = (): Producer => {
    const p = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { retries: opts.retries ?? 2, initialRetryTime: 200, maxRetryTime: 2000 },
    });
    p.on(p.events.DISCONNECT, () => {
      connected = false;
    });
    return p;
  };

  return {
    async connect(): Promise<void> {
      if (connected) return;
      producer ??= make();
      await producer.connect();
      connected = true;
    },
    async send(topic: string, messages: ProducerMessage[]): Promise<void> {
      const p = producer;
      if (!p || !connected) throw new Error('kafka producer not connected');
      const sending = p.send({ topic, acks: -1, compression: CompressionTypes.None, messages });
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
