/**
 * The port between producers and consumers of events. The Kafka adapter lives
 * with its user (agent/publisher); the in-memory bus here serves the embedded
 * demo and unit tests. Ledger sinks are remediations/ledger/sink.ts.
 */
import type { EventEnvelope } from './envelope.js';

/** Where the agent sends events. `publish` may buffer; `flush` waits until everything accepted is delivered or spooled. */
export interface EventSink {
  publish(events: EventEnvelope[]): Promise<void>;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** In-process bus for the demo: fan-out to subscribers, synchronous delivery. */
export class MemoryEventBus implements EventSink {
  private readonly subscribers: Array<(events: EventEnvelope[]) => void | Promise<void>> = [];
  subscribe(fn: (events: EventEnvelope[]) => void | Promise<void>): void {
    this.subscribers.push(fn);
  }
  async publish(events: EventEnvelope[]): Promise<void> {
    for (const s of this.subscribers) await s(events);
  }
  async flush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}
