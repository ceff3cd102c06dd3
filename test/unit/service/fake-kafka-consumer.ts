/**
 * A stand-in for a kafkajs consumer (unit tests of EngineService): it records
 * what the service gives kafkajs (consumer and run config) and lets the test
 * emit group events and call `eachBatch` itself.
 */
import { EventEmitter } from 'node:events';
import type { ConsumerConfig, ConsumerRunConfig, Kafka } from 'kafkajs';

export const CONSUMER_EVENTS = { GROUP_JOIN: 'consumer.group_join', CRASH: 'consumer.crash', REBALANCING: 'consumer.rebalancing', STOP: 'consumer.stop', HEARTBEAT: 'consumer.heartbeat' };

export class FakeConsumer extends EventEmitter {
  readonly events = CONSUMER_EVENTS;
  runConfig: ConsumerRunConfig | undefined;
  connect(): Promise<void> {
    return Promise.resolve();
  }
  subscribe(): Promise<void> {
    return Promise.resolve();
  }
  run(c: ConsumerRunConfig): Promise<void> {
    this.runConfig = c;
    return Promise.resolve();
  }
  disconnect(): Promise<void> {
    return Promise.resolve();
  }
  /** The group assigned `partitions` of topic `signals` to this member. */
  join(partitions: number[] = [0]): void {
    this.emit(CONSUMER_EVENTS.GROUP_JOIN, { payload: { memberId: 'm1', memberAssignment: { signals: partitions } } });
  }
}

/** A Kafka client whose `consumer()` returns `consumer` and remembers the config it was given. */
export function fakeKafka(consumer: FakeConsumer): { kafka: Kafka; config: () => ConsumerConfig } {
  let config: ConsumerConfig | undefined;
  const kafka = {
    consumer(c: ConsumerConfig): FakeConsumer {
      config = c;
      return consumer;
    },
  };
  return {
    kafka: kafka as unknown as Kafka,
    config: () => {
      if (!config) throw new Error('no consumer created');
      return config;
    },
  };
}
