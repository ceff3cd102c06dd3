/**
 * The engine as a Kafka consumer-group member. Replicas share the signals
 * topic's partitions; all window state lives in the StateStore (Redis in
 * production), so a rebalance hands a partition over without losing state.
 *
 * Offsets are committed by hand, only after `BatchProcessor.process` has made
 * the batch's decisions durable (at-least-once). Large batches are cut into
 * chunks, each committed on its own, with a heartbeat between chunks.
 *
 * The tick for time-driven rules runs in event time while the group lags
 * (watermark.ts): after an outage the backlog's heartbeats are evaluated
 * before any `absent` rule can see them missing.
 */
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Clock } from '../../core/clock.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { BatchProcessor } from './batch-processor.js';
import type { EngineServiceMetrics } from './metrics.js';
import type { RawMessage } from './ports.js';
import type { WatermarkBoard } from './watermark.js';
import { LocalWatermarkBoard, PartitionWatermarks } from './watermark.js';

export interface EngineServiceOptions {
  kafka: Kafka;
  groupId: string;
  topic: string;
  processor: BatchProcessor;
  metrics: EngineServiceMetrics;
  clock: Clock;
  logger: Logger;
  /** Tick period for time-driven rules (default 1000 ms; 0 disables). */
  tickMs?: number;
  /** Consumer session timeout: how fast a dead replica's partitions move (default 10 s). */
  sessionTimeoutMs?: number;
  /** Messages per committed chunk (default 500). */
  chunkSize?: number;
  /** Shares event-time watermarks between replicas (default: this replica's own only). */
  watermarks?: WatermarkBoard;
  /** A partition with no batch for this long is idle and follows wall time (default 10 s). */
  idleMs?: number;
}

export class EngineService {
  private consumer: Consumer | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private ticking = false;
  private joined = false;
  private crashed: string | null = null;
  private stopping: Promise<void> | undefined;
  private readonly chunkSize: number;
  private readonly marks: PartitionWatermarks;
  private readonly board: WatermarkBoard;

  constructor(private readonly o: EngineServiceOptions) {
    this.chunkSize = o.chunkSize ?? 500;
    this.marks = new PartitionWatermarks(o.clock, o.idleMs ?? 10_000);
    this.board = o.watermarks ?? new LocalWatermarkBoard();
  }

  /** Joined the group and not crashed. */
  get ready(): boolean {
    return this.joined && this.crashed === null;
  }

  get status(): { joined: boolean; crashed: string | null } {
    return { joined: this.joined, crashed: this.crashed };
  }

  async start(): Promise<void> {
    const sessionTimeout = this.o.sessionTimeoutMs ?? 10_000;
    const consumer = this.o.kafka.consumer({
      groupId: this.o.groupId,
      sessionTimeout,
      rebalanceTimeout: Math.max(sessionTimeout, 10_000),
      heartbeatInterval: Math.max(100, Math.floor(sessionTimeout / 10)),
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 10_000 },
    });
    this.consumer = consumer;
    const { GROUP_JOIN, CRASH, REBALANCING, STOP } = consumer.events;
    consumer.on(GROUP_JOIN, (e) => {
      this.joined = true;
      this.crashed = null;
      this.marks.assign(e.payload.memberAssignment[this.o.topic] ?? []);
      this.o.logger.info({ memberId: e.payload.memberId, assignment: e.payload.memberAssignment }, 'joined consumer group');
    });
    consumer.on(REBALANCING, () => {
      this.joined = false;
    });
    consumer.on(STOP, () => {
      this.joined = false;
    });
    consumer.on(CRASH, (e) => {
      this.joined = false;
      this.crashed = errorMessage(e.payload.error);
      this.o.logger.error({ err: this.crashed, restart: e.payload.restart }, 'consumer crashed');
      if (e.payload.restart) this.crashed = null;
    });
    await consumer.connect();
    // A new group starts at the earliest offset: a first deployment loses nothing already published.
    await consumer.subscribe({ topics: [this.o.topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.eachBatch(payload),
    });
    const tickMs = this.o.tickMs ?? 1000;
    if (tickMs > 0) {
      this.tickTimer = setInterval(() => this.tick(), tickMs);
      this.tickTimer.unref();
    }
  }

  private async eachBatch(p: EachBatchPayload): Promise<void> {
    const { batch } = p;
    const all = batch.messages;
    for (let i = 0; i < all.length; i += this.chunkSize) {
      if (!p.isRunning() || p.isStale()) return;
      const chunk = all.slice(i, i + this.chunkSize);
      const raw: RawMessage[] = chunk.map((m) => ({
        topic: batch.topic,
        partition: batch.partition,
        offset: m.offset,
        key: m.key ? m.key.toString('utf8') : null,
        value: m.value ? m.value.toString('utf8') : null,
      }));
      const res = await this.o.processor.process(raw);
      const last = chunk[chunk.length - 1];
      if (!last) continue;
      p.resolveOffset(last.offset);
      const next = (BigInt(last.offset) + 1n).toString();
      await p.commitOffsetsIfNecessary({ topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: next }] }] });
      const lag = BigInt(batch.highWatermark) - BigInt(next);
      this.o.metrics.lag.set({ topic: batch.topic, partition: String(batch.partition) }, Number(lag > 0n ? lag : 0n));
      this.marks.observe(batch.partition, res.maxEventTs, Number(lag));
      await p.heartbeat();
    }
  }

  private tick(): void {
    if (this.ticking || this.stopping) return;
    this.ticking = true;
    this.tickTime()
      .then((t) => (t === null ? [] : this.o.processor.tick(t)))
      .catch((err: unknown) => this.o.logger.warn({ err: errorMessage(err) }, 'engine tick failed'))
      .finally(() => {
        this.ticking = false;
      });
  }

  /** Event time while lagging, wall time once caught up; null holds the tick (a partition not yet read). */
  private async tickTime(): Promise<number | null> {
    const now = this.o.clock.now();
    const t = await this.board.exchange(this.marks.marks(), now);
    this.o.metrics.tickDelay.set(t === null ? -1 : (now - t) / 1000);
    return t === null ? null : Math.min(t, now);
  }

  /** Finishes the running batch, commits it, leaves the group. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.tickTimer) clearInterval(this.tickTimer);
      // kafkajs waits for the batch in progress to finish (and commit) before disconnecting.
      await this.consumer?.disconnect();
      this.joined = false;
    })();
    return this.stopping;
  }
}
