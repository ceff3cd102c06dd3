import type { EventSink } from '../core/bus.js';
import type { EventEnvelope } from '../core/envelope.js';

/** In-process bus for the demo: fan-out to subscribers, synchronous delivery. */
export class MemoryEventBus implements EventSink {
  private readonly subscribers: Array<(events: EventEnvelope[]) => void | Promise<void>> = [];
  subscribe(fn: (events: EventEnvelope[]) => void | Promise<void>): void {
    this.subscribers.push(fn);
  }
  async publish(events: EventEnvelope[], onSettled?: () => void): Promise<void> {
    for (const s of this.subscribers) await s(events);
    onSettled?.();
  }
  async flush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}
