/**
 * The port between producers and consumers of events. The Kafka adapter lives
 * with its user (agent/publisher); the in-memory bus of the embedded demo is
 * demo/memory-bus.ts. Ledger sinks are remediations/ledger/sink.ts.
 */
import type { EventEnvelope } from './envelope.js';

/** Where the agent sends events. `publish` may buffer; `flush` waits until everything accepted is delivered or spooled. */
export interface EventSink {
  publish(events: EventEnvelope[]): Promise<void>;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}
