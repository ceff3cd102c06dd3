/**
 * A kafkajs consumer for tests that stays stopped once disconnect() was
 * called (ADR 0038). kafkajs restarts a crashed consumer (a broker stopped
 * or restarted under it) after a delay: a disconnect() that runs while it
 * handles the crash returns before the restart is scheduled, and one that
 * runs while a restart is connecting does not stop that restart — either way
 * the consumer comes back after its owner stopped it and reconnects forever
 * (in the integration run: after the shared broker stopped, holding the
 * process). Here a restart is vetoed once disconnect() was called, and a
 * restart that joins the group afterwards is disconnected again.
 */
import type { Consumer, ConsumerConfig, Kafka } from 'kafkajs';

export function stoppableConsumer(kafka: Kafka, config: ConsumerConfig): Consumer {
  let stopped = false;
  const own = config.retry?.restartOnFailure;
  const consumer = kafka.consumer({
    ...config,
    retry: { ...config.retry, restartOnFailure: async (e) => !stopped && (own ? await own(e) : true) },
  });
  const disconnect = consumer.disconnect.bind(consumer);
  consumer.on(consumer.events.GROUP_JOIN, () => {
    if (stopped) setImmediate(() => void disconnect().catch(() => undefined));
  });
  consumer.disconnect = async () => {
    stopped = true;
    await disconnect();
  };
  return consumer;
}
