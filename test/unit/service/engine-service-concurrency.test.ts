/**
 * EngineService works on several partitions at once (ADR 0046): kafkajs gets
 * `partitionsConsumedConcurrently` from the setting, each partition's batch is
 * cut into chunks that commit in order, each after its own chunk was
 * processed, and the stall check of readiness looks at the OLDEST chunk in
 * flight, not the latest one to start (a partition stuck in a slow action must
 * not be hidden by the other partitions' chunks coming and going).
 */
import { expect } from 'chai';
import type { EachBatchPayload } from 'kafkajs';
import { createRegistry } from '../../../adapters/metrics.js';
import { ManualClock } from '../../../core/clock.js';
import { silentLogger } from '../../../core/logger.js';
import type { BatchProcessor, BatchResult } from '../../../rules/service/batch-processor.js';
import type { RawMessage } from '../../../rules/service/ports.js';
import { EngineService } from '../../../rules/service/engine-service.js';
import { engineServiceMetrics } from '../../../rules/service/metrics.js';
import { FakeConsumer, fakeKafka } from './fake-kafka-consumer.js';

/** A processor whose chunks wait until the test lets each one finish. */
class GatedProcessor {
  readonly started: RawMessage[][] = [];
  private readonly gates: Array<() => void> = [];
  process(raw: RawMessage[]): Promise<BatchResult> {
    this.started.push(raw);
    return new Promise((resolve) => {
      this.gates.push(() => resolve({ consumed: raw.length, invalid: 0, duplicates: 0, processed: raw.length, decisions: [], records: [], maxEventTs: null }));
    });
  }
  /** Lets the chunk that started `i`-th finish. */
  finish(i: number): void {
    const g = this.gates[i];
    if (!g) throw new Error(`no chunk ${i}`);
    g();
  }
}

function payload(partition: number, offsets: number[], commits: Array<[number, string]>): EachBatchPayload {
  const p = {
    batch: {
      topic: 'signals',
      partition,
      highWatermark: String(Math.max(...offsets) + 1),
      messages: offsets.map((o) => ({ offset: String(o), key: Buffer.from('n'), value: Buffer.from('{}'), timestamp: '0', attributes: 0, headers: {} })),
    },
    resolveOffset: () => undefined,
    commitOffsetsIfNecessary: (o?: { topics: Array<{ partitions: Array<{ partition: number; offset: string }> }> }) => {
      for (const t of o?.topics ?? []) for (const x of t.partitions) commits.push([x.partition, x.offset]);
      return Promise.resolve();
    },
    heartbeat: () => Promise.resolve(),
    isRunning: () => true,
    isStale: () => false,
  };
  return p as unknown as EachBatchPayload;
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

async function started(o: { partitionsConcurrently?: number; chunkSize?: number }): Promise<{ svc: EngineService; consumer: FakeConsumer; proc: GatedProcessor; clock: ManualClock }> {
  const consumer = new FakeConsumer();
  const proc = new GatedProcessor();
  const clock = new ManualClock(1_000_000);
  const svc = new EngineService({
    kafka: fakeKafka(consumer).kafka,
    groupId: 'engine',
    topic: 'signals',
    processor: proc as unknown as BatchProcessor,
    metrics: engineServiceMetrics(createRegistry('engine-concurrency-test')),
    clock,
    logger: silentLogger,
    tickMs: 0,
    stallMs: 60_000,
    ...o,
  });
  await svc.start();
  consumer.join([0, 1, 2]);
  return { svc, consumer, proc, clock };
}

describe('EngineService: several partitions at once (ADR 0046)', () => {
  it('gives kafkajs the partitions-at-once setting (default 3) and never 0', async () => {
    expect((await started({})).consumer.runConfig?.partitionsConsumedConcurrently).to.equal(3);
    expect((await started({ partitionsConcurrently: 5 })).consumer.runConfig?.partitionsConsumedConcurrently).to.equal(5);
    expect((await started({ partitionsConcurrently: 0 })).consumer.runConfig?.partitionsConsumedConcurrently).to.equal(1);
  });

  it('cuts a batch into chunks of chunkSize, each committed after its own processing, in order', async () => {
    const { consumer, proc } = await started({ chunkSize: 2 });
    const commits: Array<[number, string]> = [];
    const run = consumer.runConfig?.eachBatch?.(payload(0, [10, 11, 12, 13, 14], commits));
    await flush();
    expect(proc.started.map((c) => c.map((m) => m.offset))).to.deep.equal([['10', '11']]);
    expect(commits, 'nothing committed before the chunk is processed').to.deep.equal([]);
    proc.finish(0);
    await flush();
    expect(commits).to.deep.equal([[0, '12']]);
    proc.finish(1);
    await flush();
    proc.finish(2);
    await run;
    expect(proc.started.map((c) => c.map((m) => m.offset))).to.deep.equal([['10', '11'], ['12', '13'], ['14']]);
    expect(commits).to.deep.equal([[0, '12'], [0, '14'], [0, '15']]);
  });

  it('readiness reports a partition stalled in one chunk while other partitions keep finishing chunks', async () => {
    const { svc, consumer, proc, clock } = await started({ chunkSize: 1 });
    const commits: Array<[number, string]> = [];
    // partition 0: one chunk that does not finish (a slow action)
    const stuck = consumer.runConfig?.eachBatch?.(payload(0, [1], commits));
    await flush();
    clock.advance(40_000);
    // partition 1 meanwhile: chunks start and finish
    const other = consumer.runConfig?.eachBatch?.(payload(1, [1, 2], commits));
    await flush();
    clock.advance(25_000);
    try {
      proc.finish(1);
      await flush();
      proc.finish(2);
      await other;
      expect(commits).to.deep.equal([[1, '2'], [1, '3']]);
      // 65 s since partition 0's chunk started: stalled, though partition 1 just finished its chunks
      expect(svc.status.problem).to.equal('consumer stalled: one batch has been running for 65 s');
    } finally {
      // (its heartbeat timer would otherwise keep the test process alive)
      proc.finish(0);
      await stuck;
    }
    expect(svc.status.problem).to.equal(null);
  });
});
