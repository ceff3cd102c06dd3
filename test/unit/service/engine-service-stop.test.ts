/**
 * EngineService.stop() against kafkajs's crash restart (ADR 0038): kafkajs
 * handles a consumer crash by disconnecting the consumer itself, then asking
 * `retry.restartOnFailure` and scheduling a restart. A stop() whose
 * disconnect ran meanwhile returned before the restart was scheduled, so
 * without a veto the consumer came back after stop() and kept reconnecting
 * (in the integration run: after the broker stopped, holding the process).
 * The fake consumer below records what the service gives kafkajs.
 */
import { expect } from 'chai';
import type { ConsumerConfig } from 'kafkajs';
import { createRegistry } from '../../../adapters/metrics.js';
import { ManualClock } from '../../../core/clock.js';
import { silentLogger } from '../../../core/logger.js';
import type { BatchProcessor } from '../../../rules/service/batch-processor.js';
import { EngineService } from '../../../rules/service/engine-service.js';
import { engineServiceMetrics } from '../../../rules/service/metrics.js';
import { FakeConsumer, fakeKafka } from './fake-kafka-consumer.js';

class StoppableConsumer extends FakeConsumer {
  disconnects = 0;
  /** Resolves the disconnect in progress (kafkajs waits for the batch running and leaves the group). */
  finishDisconnect: () => void = () => undefined;
  override disconnect(): Promise<void> {
    this.disconnects++;
    return new Promise((resolve) => {
      this.finishDisconnect = resolve;
    });
  }
}

function service(forgets: string[] = []): { svc: EngineService; consumer: StoppableConsumer; config: () => ConsumerConfig } {
  const consumer = new StoppableConsumer();
  const { kafka, config } = fakeKafka(consumer);
  const svc = new EngineService({
    kafka,
    groupId: 'engine',
    topic: 'signals',
    processor: {} as BatchProcessor,
    metrics: engineServiceMetrics(createRegistry('engine-stop-test')),
    clock: new ManualClock(0),
    logger: silentLogger,
    tickMs: 0,
    localState: { forget: (reason) => forgets.push(reason) },
  });
  return { svc, consumer, config };
}

const crash = Object.assign(new Error('Connection error: ECONNREFUSED'), { name: 'KafkaJSNumberOfRetriesExceeded' });

describe('EngineService.stop() and kafkajs consumer restarts', () => {
  it('a crash while running restarts the consumer; a crash once stop() has begun does not', async () => {
    const { svc, consumer, config } = service();
    await svc.start();
    const restartOnFailure = config().retry?.restartOnFailure;
    expect(restartOnFailure, 'restartOnFailure given to kafkajs').to.be.a('function');
    expect(await restartOnFailure?.(crash)).to.equal(true);

    // stop() is disconnecting (the batch in progress finishing) when kafkajs handles a crash:
    // its own disconnect shares that stop, then it asks whether to restart
    const stopped = svc.stop();
    expect(await restartOnFailure?.(crash)).to.equal(false);
    consumer.finishDisconnect();
    await stopped;
    expect(await restartOnFailure?.(crash)).to.equal(false);
  });

  it('a restart that joins the group after stop() leaves it again and does not count as joined', async () => {
    const { svc, consumer } = service();
    await svc.start();
    consumer.join();
    expect(svc.status.joined).to.equal(true);
    const stopped = svc.stop();
    consumer.finishDisconnect();
    await stopped;
    expect(consumer.disconnects).to.equal(1);

    // a restart already connecting when stop() ran joins afterwards
    consumer.join();
    expect(svc.status.joined).to.equal(false);
    await new Promise((resolve) => setImmediate(resolve));
    expect(consumer.disconnects).to.equal(2);
  });

  it('every partition assignment tells the replica to forget its node-scoped knowledge (partitions may have moved, ADR 0042)', async () => {
    const forgets: string[] = [];
    const { svc, consumer } = service(forgets);
    await svc.start();
    consumer.join();
    consumer.join();
    expect(forgets).to.deep.equal(['partition assignment', 'partition assignment']);
    const stopped = svc.stop();
    consumer.finishDisconnect();
    await stopped;
  });
});
