/**
 * The engine service's metrics, on the registry it is given. A metric that
 * another engine component already registered under the same name is reused
 * rather than registered twice.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import { reuseMetric as reuse } from '../../adapters/metrics.js';

export interface EngineServiceMetrics {
  consumed: Counter<string>;
  processed: Counter<string>;
  invalid: Counter<string>;
  duplicate: Counter<string>;
  batchDuration: Histogram<string>;
  lag: Gauge<'topic' | 'partition'>;
  decisions: Counter<'rule' | 'action' | 'outcome'>;
  batchFailures: Counter<string>;
  tickFailures: Counter<string>;
  /** Events evaluated on replica-local state because the shared store was unreachable. */
  degraded: Counter<string>;
  /** How far the tick runs behind wall time (event time while lagging); -1 while held. */
  tickDelay: Gauge<string>;
}

export function engineServiceMetrics(registry: Registry): EngineServiceMetrics {
  const registers = [registry];
  return {
    consumed: reuse(registry, 'nodewarden_engine_events_consumed_total', () =>
      new Counter({ name: 'nodewarden_engine_events_consumed_total', help: 'Messages read from the signals topic.', registers }),
    ),
    processed: reuse(registry, 'nodewarden_engine_events_processed_total', () =>
      new Counter({ name: 'nodewarden_engine_events_processed_total', help: 'Valid, first-seen events evaluated by the rules.', registers }),
    ),
    invalid: reuse(registry, 'nodewarden_engine_events_invalid_total', () =>
      new Counter({ name: 'nodewarden_engine_events_invalid_total', help: 'Messages that failed envelope validation (sent to the dead-letter topic).', registers }),
    ),
    duplicate: reuse(registry, 'nodewarden_engine_events_duplicate_total', () =>
      new Counter({ name: 'nodewarden_engine_events_duplicate_total', help: 'Redelivered or repeated event ids skipped by dedupe.', registers }),
    ),
    batchDuration: reuse(registry, 'nodewarden_engine_batch_duration_seconds', () =>
      new Histogram({
        name: 'nodewarden_engine_batch_duration_seconds',
        help: 'Time from receiving a batch to its decisions being durable.',
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        registers,
      }),
    ),
    lag: reuse(registry, 'nodewarden_engine_consumer_lag', () =>
      new Gauge({ name: 'nodewarden_engine_consumer_lag', help: 'Messages behind the high watermark, per partition.', labelNames: ['topic', 'partition'] as const, registers }),
    ),
    decisions: reuse(registry, 'nodewarden_engine_service_decisions_total', () =>
      new Counter({
        name: 'nodewarden_engine_service_decisions_total',
        help: 'Decisions submitted to the remediator, by rule, action and ledger outcome.',
        labelNames: ['rule', 'action', 'outcome'] as const,
        registers,
      }),
    ),
    batchFailures: reuse(registry, 'nodewarden_engine_batch_failures_total', () =>
      new Counter({ name: 'nodewarden_engine_batch_failures_total', help: 'Batches that failed and will be redelivered.', registers }),
    ),
    tickFailures: reuse(registry, 'nodewarden_engine_tick_failures_total', () =>
      new Counter({ name: 'nodewarden_engine_tick_failures_total', help: 'Periodic ticks that failed.', registers }),
    ),
    degraded: reuse(registry, 'nodewarden_engine_degraded_events_total', () =>
      new Counter({
        name: 'nodewarden_engine_degraded_events_total',
        help: 'Events evaluated in degraded mode (shared state store unreachable): pages only, no remediation; the batch is redelivered.',
        registers,
      }),
    ),
    tickDelay: reuse(registry, 'nodewarden_engine_tick_delay_seconds', () =>
      new Gauge({
        name: 'nodewarden_engine_tick_delay_seconds',
        help: 'Wall time minus the tick time of time-driven rules (event time while the consumer lags); -1 while the tick is held.',
        registers,
      }),
    ),
  };
}
