/**
 * The port between producers and consumers of events. The Kafka adapter lives
 * with its user (agent/publisher); the in-memory bus of the embedded demo is
 * demo/memory-bus.ts. The ledger is remediations/ledger/store.ts.
 */
import type { EventEnvelope } from './envelope.js';

/** Where the agent sends events. `publish` may buffer; `flush` waits until everything accepted is delivered or spooled. */
export interface EventSink {
  /**
   * `onSettled`, when given, is called once after every one of `events` was
   * delivered or dropped (and counted): the agent moves its kernel-log resume
   * cursor only then. A sink that cannot tell calls it when it has delivered.
   */
  publish(events: EventEnvelope[], onSettled?: () => void): Promise<void>;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}
