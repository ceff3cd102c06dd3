/**
 * The one interface every node-level signal source implements (after
 * node-problem-detector's monitors). A collector that fails to start is
 * logged and counted; it never takes the agent down.
 */
import type { Clock } from '../core/clock.js';
import type { EventEnvelope, EventLabels, EventType } from '../core/envelope.js';
import type { Logger } from '../core/logger.js';
import type { Registry } from './metrics.js';

/**
 * Receives events as a collector produces them. Never throws. `onSettled`,
 * when given, is called once every event was delivered to Kafka or dropped
 * (invalid, spool full, shutdown): a collector that keeps a resume position
 * moves it only then.
 */
export type Emit = (events: EventEnvelope[], onSettled?: () => void) => void;

/** Everything a collector needs from its host; injected, never global. */
export interface CollectorContext {
  node: string;
  labels: EventLabels;
  /** Where host paths are read from (`/` on a node, `/host` in the DaemonSet, a fixture dir in tests). */
  hostRoot: string;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  /** Builds a valid envelope v1 (id, ts from `observedAt` or now, node, labels). */
  newEvent<D extends object>(type: EventType, source: string, data: D, observedAt?: number): EventEnvelope;
}

/** One round of collection for `agent --once`. `skipped` explains why there was nothing to read. */
export interface CollectResult {
  events: EventEnvelope[];
  skipped?: string;
}

export interface Collector {
  readonly name: string;
  /** Starts continuous collection; resolves once running. Rejects only if it cannot start at all. */
  start(emit: Emit): Promise<void>;
  /** Idempotent. */
  stop(): Promise<void>;
  /** Reads everything available once (kmsg from the start of the file), for `--once`. */
  collectOnce(): Promise<CollectResult>;
}
