/**
 * Ports between producers and consumers of events and ledger records. Kafka
 * adapters live with their users (agent/publisher, rules/service); the
 * in-memory adapters here serve the embedded demo, replay and unit tests.
 */
import type { EventEnvelope } from './envelope.js';
import type { LedgerRecord } from './decision.js';

/** Where the agent sends events. `publish` may buffer; `flush` waits until everything accepted is delivered or spooled. */
export interface EventSink {
  publish(events: EventEnvelope[]): Promise<void>;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** Where decisions are recorded. */
export interface LedgerSink {
  append(records: LedgerRecord[]): Promise<void>;
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

export class MemoryLedger implements LedgerSink {
  readonly records: LedgerRecord[] = [];
  async append(records: LedgerRecord[]): Promise<void> {
    this.records.push(...records);
  }
}
