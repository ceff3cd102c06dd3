/**
 * The transport ceiling for bench/engine-e2e.ts: a bare kafkajs consumer-group
 * member that only JSON-parses each message and commits offsets per batch the
 * way the engine does (manual commit; PARTITIONS_AT_ONCE partitions worked on
 * at once, default 1 — the bench passes the engine's own setting too). Run as a
 * child process so it pays the same process and event-loop costs as the engine.
 *
 *   node dist/bench/lib/bare-consumer.js BROKERS TOPIC GROUP [PARTITIONS_AT_ONCE]
 *
 * Prints "joined" on stdout once it has joined the group; SIGTERM stops it.
 */
import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;

async function main(): Promise<void> {
  const [brokers, topic, groupId, atOnce = '1'] = process.argv.slice(2);
  const concurrently = Number(atOnce);
  if (!brokers || !topic || !groupId || !Number.isInteger(concurrently) || concurrently < 1 || concurrently > 64) throw new Error('usage: bare-consumer BROKERS TOPIC GROUP [PARTITIONS_AT_ONCE 1-64]');
  const consumer = new Kafka({ clientId: 'nw-bench-bare', brokers: brokers.split(','), logLevel: logLevel.WARN }).consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1000 });
  consumer.on(consumer.events.GROUP_JOIN, () => process.stdout.write('joined\n'));
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let parsed = 0;
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: concurrently,
    eachBatch: async (p) => {
      const { batch } = p;
      for (const m of batch.messages) {
        if (m.value) {
          const v = JSON.parse(m.value.toString('utf8')) as { id?: unknown };
          if (v.id !== undefined) parsed++;
        }
      }
      const last = batch.messages[batch.messages.length - 1];
      if (!last) return;
      p.resolveOffset(last.offset);
      await p.commitOffsetsIfNecessary({ topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() }] }] });
      await p.heartbeat();
    },
  });
  process.once('SIGTERM', () => {
    void consumer.disconnect().finally(() => {
      process.stderr.write(`parsed ${parsed}\n`);
      process.exit(0);
    });
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
