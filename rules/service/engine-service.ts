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
import { errorMessage, NodewardenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { BatchProcessor } from './batch-processor.js';
import type { EngineServiceMetrics } from './metrics.js';
import type { RawMessage } from './ports.js';
import { MAX_RECORD_HEADER, RECORD_HEADER } from './episode-release.js';
import type { WatermarkBoard } from './watermark.js';
import type { LocalStateKnowledge } from '../store/node-sustained-filter.js';
import type { PartitionOwnership } from '../store/partition-local-store.js';
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
  /** Messages per committed chunk (default 1000). */
  chunkSize?: number;
  /**
   * Partitions fetched and worked on at once (default 3; ADR 0046). The
   * processor's queue still evaluates one chunk at a time; what overlaps is
   * the rest of a chunk's round trips (dedupe claim and confirm, offset commit).
   */
  partitionsConcurrently?: number;
  /** Shares event-time watermarks between replicas (default: this replica's own only). */
  watermarks?: WatermarkBoard;
  /** A partition with no batch for this long is idle and follows wall time (default 10 s). */
  idleMs?: number;
  /** A batch running longer than this makes the replica not ready (default 60 s: 2× the action timeout). */
  stallMs?: number;
  /** Told to forget on every partition assignment: partitions may have moved (ADR 0042). */
  localState?: LocalStateKnowledge;
  /** Partition-local state (ADR 0045): told the assignment on every GROUP_JOIN (nothing is restored there). */
  partitions?: Pick<PartitionOwnership, 'assign'>;
}

/** What readiness needs to know about the consumer. */
export interface ConsumerStatus {
  joined: boolean;
  crashed: string | null;
  /** Why the consumer is not doing its job right now, or null when it is. */
  problem: string | null;
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
  private readonly sessionTimeoutMs: number;
  /** The chunks being worked on now (one per partition in flight), with when each started (ms). */
  private readonly running = new Set<{ startedAt: number }>();
  /** Last successful heartbeat or batch (ms): a silent broker shows as its age. */
  private lastContact = 0;
  /** First failure of the current run of failed batches, and the last error. */
  private failing: { since: number; error: string; count: number } | null = null;

  constructor(private readonly o: EngineServiceOptions) {
    this.chunkSize = Math.max(1, o.chunkSize ?? 1000);
    this.marks = new PartitionWatermarks(o.clock, o.idleMs ?? 10_000);
    this.board = o.watermarks ?? new LocalWatermarkBoard();
    this.sessionTimeoutMs = o.sessionTimeoutMs ?? 10_000;
  }

  /** Joined the group, not crashed, not stalled, batches not failing. */
  get ready(): boolean {
    return this.status.problem === null;
  }

  get status(): ConsumerStatus {
    return { joined: this.joined, crashed: this.crashed, problem: this.problem() };
  }

  private oldestRunning(): number | null {
    let oldest: number | null = null;
    for (const r of this.running) if (oldest === null || r.startedAt < oldest) oldest = r.startedAt;
    return oldest;
  }

  private problem(): string | null {
    const now = this.o.clock.now();
    if (this.crashed !== null) return `consumer crashed: ${this.crashed}`;
    if (!this.joined) return 'not a member of the consumer group (joining, rebalancing or broker unreachable)';
    const oldest = this.oldestRunning();
    if (oldest !== null && now - oldest > (this.o.stallMs ?? 60_000)) {
      return `consumer stalled: one batch has been running for ${Math.round((now - oldest) / 1000)} s`;
    }
    // heartbeats run every session/10 while the group is healthy; none for a whole session means the coordinator is gone
    if (this.lastContact > 0 && now - this.lastContact > this.sessionTimeoutMs) {
      return `no heartbeat for ${Math.round((now - this.lastContact) / 1000)} s: broker unreachable or consumer evicted`;
    }
    if (this.failing !== null) return `${this.failing.count} batch(es) failed in a row since ${new Date(this.failing.since).toISOString()}: ${this.failing.error}`;
    return null;
  }

  async start(): Promise<void> {
    try {
      await this.connect();
    } catch (err) {
      // a retried start must not leave a half-connected consumer behind
      const c = this.consumer;
      this.consumer = undefined;
      await c?.disconnect().catch(() => undefined);
      throw err;
    }
    const tickMs = this.o.tickMs ?? 1000;
    if (tickMs > 0) {
      this.tickTimer = setInterval(() => this.tick(), tickMs);
      this.tickTimer.unref();
    }
  }

  private async connect(): Promise<void> {
    const sessionTimeout = this.sessionTimeoutMs;
    const consumer = this.o.kafka.consumer({
      groupId: this.o.groupId,
      sessionTimeout,
      rebalanceTimeout: Math.max(sessionTimeout, 10_000),
      heartbeatInterval: Math.max(100, Math.floor(sessionTimeout / 10)),
      // heartbeats go out between fetches: an idle fetch must return well within the session
      maxWaitTimeInMs: Math.min(5000, Math.floor(sessionTimeout / 3)),
      retry: {
        retries: Number.MAX_SAFE_INTEGER,
        initialRetryTime: 300,
        maxRetryTime: 10_000,
        // kafkajs restarts a crashed consumer after a delay, even when disconnect() ran while it
        // was handling the crash (that disconnect returns before the restart is scheduled): once
        // stopping, a crash ends the consumer instead of bringing it back after stop().
        restartOnFailure: () => Promise.resolve(this.stopping === undefined),
      },
    });
    this.consumer = consumer;
    const { GROUP_JOIN, CRASH, REBALANCING, STOP, HEARTBEAT } = consumer.events;
    consumer.on(HEARTBEAT, () => {
      this.lastContact = this.o.clock.now();
    });
    consumer.on(GROUP_JOIN, (e) => {
      if (this.stopping) {
        // a restart that was already connecting when stop() ran joined after it: leave again,
        // once kafkajs has marked the consumer running (stop() on a runner still starting is a no-op)
        setImmediate(() => void consumer.disconnect().catch(() => undefined));
        return;
      }
      this.joined = true;
      this.lastContact = this.o.clock.now();
      this.crashed = null;
      this.marks.assign(e.payload.memberAssignment[this.o.topic] ?? []);
      this.o.localState?.forget('partition assignment');
      this.o.partitions?.assign(e.payload.memberAssignment[this.o.topic] ?? []);
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
      partitionsConsumedConcurrently: Math.max(1, this.o.partitionsConcurrently ?? 3),
      eachBatch: (payload) => this.eachBatch(payload),
    });
  }

  /**
   * Processes one chunk while heartbeating on a timer: a slow action (up to the
   * 30 s action timeout) must not get this replica evicted from the group
   * (session timeout 10 s), which would stall every partition it holds.
   */
  private async processChunk(p: EachBatchPayload, raw: RawMessage[]): Promise<Awaited<ReturnType<BatchProcessor['process']>>> {
    const every = Math.max(100, Math.floor(this.sessionTimeoutMs / 5));
    const hb = setInterval(() => {
      p.heartbeat().catch((err: unknown) => this.o.logger.warn({ err: errorMessage(err) }, 'heartbeat during a batch failed'));
    }, every);
    const run = { startedAt: this.o.clock.now() };
    this.running.add(run);
    try {
      const res = await this.o.processor.process(raw);
      this.failing = null;
      this.lastContact = this.o.clock.now();
      return res;
    } catch (err) {
      const code = err instanceof NodewardenError ? err.code : 'INTERNAL';
      // another replica's work in flight is normal hand-over, not a failing consumer
      if (code !== 'CONFLICT') {
        const now = this.o.clock.now();
        this.failing = { since: this.failing?.since ?? now, error: errorMessage(err), count: (this.failing?.count ?? 0) + 1 };
      }
      // lag keeps growing while batches fail: show it
      const first = raw[0];
      if (first) {
        const lag = BigInt(p.batch.highWatermark) - BigInt(first.offset);
        this.o.metrics.lag.set({ topic: p.batch.topic, partition: String(p.batch.partition) }, Number(lag > 0n ? lag : 0n));
      }
      throw err;
    } finally {
      clearInterval(hb);
      this.running.delete(run);
    }
  }

  private async eachBatch(p: EachBatchPayload): Promise<void> {
    const { batch } = p;
    const all = batch.messages;
    for (let i = 0; i < all.length; i += this.chunkSize) {
      if (!p.isRunning() || p.isStale()) return;
      const chunk = all.slice(i, i + this.chunkSize);
      const raw: RawMessage[] = chunk.map((m) => {
        const r: RawMessage = {
          topic: batch.topic,
          partition: batch.partition,
          offset: m.offset,
          key: m.key ? m.key.toString('utf8') : null,
          value: m.value ? m.value.toString('utf8') : null,
        };
        const h = m.headers?.[RECORD_HEADER];
        if (h !== undefined) r.record = recordHeader(h);
        return r;
      });
      const res = await this.processChunk(p, raw);
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

/** An internal record's header (ADR 0049), bounded: a longer or repeated one reads as unknown (the record is dead-lettered). */
function recordHeader(h: Buffer | string | Array<Buffer | string>): string {
  if (Array.isArray(h)) return h.length === 1 ? recordHeader(h[0] as Buffer | string) : '?';
  const text = typeof h === 'string' ? h : h.subarray(0, MAX_RECORD_HEADER + 1).toString('utf8');
  return text.length > MAX_RECORD_HEADER ? '?' : text;
}
