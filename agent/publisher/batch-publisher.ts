/**
 * The agent's EventSink: a batch processor after OpenTelemetry's
 * BatchSpanProcessor, in front of a MessageProducer (Kafka).
 *
 * - `publish` never waits for the broker: events go into a bounded,
 *   priority-aware spool (see spool.ts) and leave in batches of `batchSize`,
 *   or after `lingerMs` when fewer are waiting.
 * - One batch is in flight at a time. A failed batch stays pinned and is
 *   resent unchanged after a back-off, so delivery is in observation order
 *   and, with an idempotent producer, without duplicates.
 * - While the broker is down events wait; when the spool is full, routine
 *   samples are dropped before alarms, and every drop is counted.
 * - Timers are unref'd; background failures go to one `onError` handler,
 *   never to an unhandled rejection.
 * - `flush()` and `shutdown()` are bounded by a timeout; `shutdown()` is idempotent.
 */
import { Counter, Gauge, Histogram } from '../metrics.js';
import { exponentialDelay } from '../../core/backoff.js';
import type { EventSink } from '../../core/bus.js';
import type { Clock } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';
import type { EventEnvelope } from '../../core/envelope.js';
import type { Logger } from '../../core/logger.js';
import type { Registry } from '../metrics.js';
import { errorMessage } from '../../core/errors.js';
import type { MessageProducer, ProducerMessage } from './producer.js';
import { eventPriority } from './priority.js';
import type { EventPriority } from './priority.js';
import { PrioritySpool } from './spool.js';
import type { SpoolEntry } from './spool.js';

export interface BatchPublisherOptions {
  producer: MessageProducer;
  topic: string;
  /** Most events per send. */
  batchSize: number;
  /** How long a partial batch waits for company. */
  lingerMs: number;
  /** Spool capacity (events waiting or in flight). */
  maxEvents: number;
  registry: Registry;
  logger: Logger;
  clock?: Clock;
  /** Bound on flush() and shutdown() (default 10 s). */
  flushTimeoutMs?: number;
  /** Back-off between failed sends (default 250 ms doubling to 5 s). */
  retry?: { initialMs: number; maxMs: number };
  /** Receives every background failure (default: logged once per outage). */
  onError?: (err: unknown) => void;
  priorityOf?: (e: EventEnvelope) => EventPriority;
}

/** Publisher metrics on the agent's registry. */
interface PublisherMetrics {
  published: Counter<'type'>;
  errors: Counter;
  dropped: Counter<'type' | 'reason'>;
  latency: Histogram;
}

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

function createMetrics(registry: Registry, spool: () => PrioritySpool): PublisherMetrics {
  metric(registry, 'nodewarden_agent_spool_depth', () =>
    new Gauge({
      name: 'nodewarden_agent_spool_depth',
      help: 'Events waiting for Kafka or in flight',
      registers: [registry],
      collect() {
        this.set(spool().depth);
      },
    }),
  );
  return {
    published: metric(registry, 'nodewarden_agent_events_published_total', () =>
      new Counter({ name: 'nodewarden_agent_events_published_total', help: 'Events acknowledged by Kafka', labelNames: ['type'], registers: [registry] }),
    ),
    errors: metric(registry, 'nodewarden_agent_publish_errors_total', () =>
      new Counter({ name: 'nodewarden_agent_publish_errors_total', help: 'Failed batch sends (the batch is retried)', registers: [registry] }),
    ),
    dropped: metric(registry, 'nodewarden_agent_events_dropped_total', () =>
      new Counter({ name: 'nodewarden_agent_events_dropped_total', help: 'Events dropped before reaching Kafka', labelNames: ['type', 'reason'], registers: [registry] }),
    ),
    latency: metric(registry, 'nodewarden_agent_publish_latency_seconds', () =>
      new Histogram({
        name: 'nodewarden_agent_publish_latency_seconds',
        help: 'Time from an event entering the spool to its acknowledgement by Kafka',
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
        registers: [registry],
      }),
    ),
  };
}

export function toMessage(e: EventEnvelope): ProducerMessage {
  const ts = Date.parse(e.ts);
  const m: ProducerMessage = { key: e.node, value: JSON.stringify(e) };
  if (!Number.isNaN(ts)) m.timestamp = String(ts);
  return m;
}

export class BatchPublisher implements EventSink {
  private readonly spool: PrioritySpool;
  private readonly metrics: PublisherMetrics;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly flushTimeoutMs: number;
  private readonly retry: { initialMs: number; maxMs: number };
  private readonly onError: (err: unknown) => void;
  private readonly priorityOf: (e: EventEnvelope) => EventPriority;

  private lingerTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private pumping: Promise<void> | null = null;
  private failures = 0;
  private connected = false;
  private outage = false;
  private closed = false;
  private shutdownPromise: Promise<void> | null = null;
  /** Per-event settle hooks of `publish(events, onSettled)`: fired when the event is delivered or dropped. */
  private readonly settleHooks = new WeakMap<EventEnvelope, () => void>();
  /** Resolved whenever a pump round ends, so flush() can re-check. */
  private waiters: Array<() => void> = [];

  constructor(private readonly opts: BatchPublisherOptions) {
    this.spool = new PrioritySpool(opts.maxEvents);
    this.metrics = createMetrics(opts.registry, () => this.spool);
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger.child({ component: 'publisher' });
    this.flushTimeoutMs = opts.flushTimeoutMs ?? 10_000;
    this.retry = opts.retry ?? { initialMs: 250, maxMs: 5000 };
    this.priorityOf = opts.priorityOf ?? eventPriority;
    this.onError = opts.onError ?? ((err) => this.defaultOnError(err));
  }

  /** Events waiting or in flight. */
  get depth(): number {
    return this.spool.depth;
  }

  /** Never rejects and never waits for the broker. `onSettled`: once all of `events` are delivered or dropped. */
  publish(events: EventEnvelope[], onSettled?: () => void): Promise<void> {
    const now = this.clock.now();
    if (onSettled) {
      let left = events.length;
      const one = (): void => {
        left -= 1;
        if (left === 0) onSettled();
      };
      if (left === 0) onSettled();
      for (const e of events) this.settleHooks.set(e, one);
    }
    for (const e of events) {
      if (this.closed) {
        this.countDrop(e, 'shutdown');
        continue;
      }
      const r = this.spool.offer(e, this.priorityOf(e), now);
      if (r.dropped) this.countDrop(r.dropped.event, 'spool_full');
    }
    this.schedule();
    return Promise.resolve();
  }

  /** Sends everything accepted so far; resolves when delivered, when the broker refused (the rest stays spooled), or after the flush timeout. */
  async flush(): Promise<void> {
    await this.drainUntil(this.clock.now() + this.flushTimeoutMs, false);
  }

  /** Stops accepting, keeps trying to deliver until the flush timeout, counts what is left as dropped, disconnects. Idempotent. */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= (async () => {
      this.closed = true;
      await this.drainUntil(Date.now() + this.flushTimeoutMs, true);
      this.clearTimers();
      if (this.pumping) await this.pumping;
      this.clearTimers();
      for (const left of this.spool.drain()) this.countDrop(left.event, 'shutdown');
      try {
        await this.opts.producer.disconnect();
      } catch (err) {
        this.onError(err);
      }
    })();
    return this.shutdownPromise;
  }

  // ----------------------------------------------------------- internals

  private countDrop(e: EventEnvelope, reason: string): void {
    this.metrics.dropped.inc({ type: e.type, reason });
    this.settled(e);
  }

  private settled(e: EventEnvelope): void {
    const hook = this.settleHooks.get(e);
    if (hook) {
      this.settleHooks.delete(e);
      hook();
    }
  }

  private defaultOnError(err: unknown): void {
    if (!this.outage) {
      this.outage = true;
      this.log.warn({ err: errorMessage(err), spooled: this.spool.depth }, 'kafka unreachable: spooling events');
    } else {
      this.log.debug({ err: errorMessage(err) }, 'kafka still unreachable');
    }
  }

  private clearTimers(): void {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.lingerTimer = undefined;
    this.retryTimer = undefined;
  }

  /** Starts a pump now (a full batch is waiting) or after the linger, unless a retry back-off is pending. */
  private schedule(): void {
    if (this.retryTimer || this.pumping) return;
    if (this.spool.queued >= this.opts.batchSize || this.opts.lingerMs === 0 || (this.spool.hasWork && this.spool.queued === 0)) {
      this.kick();
      return;
    }
    if (this.spool.queued > 0 && !this.lingerTimer) {
      this.lingerTimer = setTimeout(() => {
        this.lingerTimer = undefined;
        this.kick();
      }, this.opts.lingerMs);
      this.lingerTimer.unref();
    }
  }

  private kick(): void {
    if (this.pumping) return;
    if (this.lingerTimer) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = undefined;
    }
    this.pumping = this.pump()
      .catch((err: unknown) => this.onError(err))
      .finally(() => {
        this.pumping = null;
        const ws = this.waiters;
        this.waiters = [];
        for (const w of ws) w();
        // Events that arrived while this round was sending.
        if (this.spool.hasWork && !this.retryTimer) this.schedule();
      });
  }

  /** Sends batches until the spool is empty or a send fails. Never throws past kick(). */
  private async pump(): Promise<void> {
    while (this.spool.hasWork) {
      if (!this.connected) {
        try {
          await this.opts.producer.connect();
          this.connected = true;
        } catch (err) {
          this.failed(err);
          return;
        }
      }
      const batch = this.spool.take(this.opts.batchSize);
      try {
        await this.opts.producer.send(this.opts.topic, batch.map((b) => toMessage(b.event)));
      } catch (err) {
        this.spool.nack();
        this.connected = false;
        this.failed(err);
        return;
      }
      this.delivered(this.spool.ack());
    }
  }

  private delivered(batch: SpoolEntry[]): void {
    const now = this.clock.now();
    for (const b of batch) {
      this.metrics.published.inc({ type: b.event.type });
      this.metrics.latency.observe(Math.max(0, now - b.enqueuedAt) / 1000);
      this.settled(b.event);
    }
    if (this.outage) {
      this.outage = false;
      this.log.info({ spooled: this.spool.depth }, 'kafka reachable again: draining spool');
    }
    this.failures = 0;
  }

  private failed(err: unknown): void {
    this.metrics.errors.inc();
    this.failures++;
    this.onError(err);
    const delay = exponentialDelay(this.failures, { baseMs: this.retry.initialMs, maxMs: this.retry.maxMs });
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, delay);
    this.retryTimer.unref();
  }

  /** Waits until the spool is empty or the deadline passes; with `persist`, keeps going through failures. */
  private async drainUntil(deadline: number, persist: boolean): Promise<void> {
    for (;;) {
      if (this.spool.depth === 0) return;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return;
      const failuresBefore = this.failures;
      if (!this.pumping) {
        if (this.retryTimer) {
          // In an outage: a flush leaves the rest spooled; a shutdown keeps the back-off and waits.
          if (!persist) return;
        } else this.kick(); // skip the linger: flush means now
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(remaining, 100));
        t.unref();
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
      if (!persist && this.failures > failuresBefore) return;
    }
  }
}
