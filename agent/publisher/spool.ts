/**
 * A bounded, priority-aware FIFO of events waiting for Kafka. Events leave
 * in the order they entered (the order of observation, so per-node order
 * holds); when full, the oldest routine sample is evicted before any alarm,
 * and an alarm is refused only when the spool holds nothing but alarms.
 *
 * The batch in flight counts against the capacity but is never changed: a
 * failed batch is resent exactly as it was (an idempotent producer can only
 * recognise a resend of the same records), so it stays pinned until it is
 * delivered. A batch takes at most half the capacity, so the other half can
 * always make room for alarms by evicting routine samples.
 * Pure data structure: no timers, no I/O.
 */
import type { EventEnvelope } from '../../core/envelope.js';
import type { EventPriority } from './priority.js';

export interface SpoolEntry {
  /** Arrival order; a batch put back keeps its place ahead of everything newer. */
  seq: number;
  event: EventEnvelope;
  priority: EventPriority;
  enqueuedAt: number;
}

/** What an offer cost: the event that had to go, if any (the incoming one or an evicted routine sample). */
export interface OfferResult {
  accepted: boolean;
  dropped: SpoolEntry | null;
}

/** Array-backed FIFO with O(1) amortised shift. */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(v: T): void {
    this.items.push(v);
  }
  peek(): T | undefined {
    return this.items[this.head];
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const v = this.items[this.head];
    this.items[this.head] = undefined as T;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return v;
  }
}

export class PrioritySpool {
  private readonly alarms = new Fifo<SpoolEntry>();
  private readonly routine = new Fifo<SpoolEntry>();
  private inflight: SpoolEntry[] = [];
  /** The batch in flight failed and must be resent as is. */
  private retryPending = false;
  private nextSeq = 0;

  /** @param capacity most events held, counting those in flight. */
  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`spool capacity must be a positive integer, got ${capacity}`);
  }

  private queueOf(p: EventPriority): Fifo<SpoolEntry> {
    return p === 'alarm' ? this.alarms : this.routine;
  }

  /** Events waiting (not in flight). */
  get queued(): number {
    return this.alarms.length + this.routine.length;
  }
  /** Events held, waiting or in flight. */
  get depth(): number {
    return this.queued + this.inflight.length;
  }
  get inflightCount(): number {
    return this.inflight.length;
  }
  /** Something to send: waiting events, or a failed batch to resend. */
  get hasWork(): boolean {
    return this.queued > 0 || this.retryPending;
  }

  offer(event: EventEnvelope, priority: EventPriority, now: number): OfferResult {
    const entry: SpoolEntry = { seq: this.nextSeq++, event, priority, enqueuedAt: now };
    if (this.depth < this.capacity) {
      this.queueOf(priority).push(entry);
      return { accepted: true, dropped: null };
    }
    // Full: the oldest routine sample goes first, whatever arrives.
    const victim = this.routine.shift();
    if (victim) {
      this.queueOf(priority).push(entry);
      return { accepted: true, dropped: victim };
    }
    // Nothing but alarms (and the batch in flight): refuse the newcomer, keep the oldest facts.
    return { accepted: false, dropped: entry };
  }

  /**
   * The batch to send: the failed batch again, unchanged, if there is one;
   * else up to `max` (and at most half the capacity) of the oldest events, in
   * arrival order. Only one batch may be in flight.
   */
  take(max: number): SpoolEntry[] {
    if (this.inflight.length > 0) {
      if (!this.retryPending) throw new Error('spool: a batch is already in flight');
      this.retryPending = false;
      return this.inflight;
    }
    const limit = Math.max(1, Math.min(max, Math.floor(this.capacity / 2)));
    const out: SpoolEntry[] = [];
    while (out.length < limit) {
      const a = this.alarms.peek();
      const r = this.routine.peek();
      if (!a && !r) break;
      const next = !r || (a && a.seq < r.seq) ? this.alarms.shift() : this.routine.shift();
      if (next) out.push(next);
    }
    this.inflight = out;
    return out;
  }

  /** The batch in flight was delivered. */
  ack(): SpoolEntry[] {
    const done = this.inflight;
    this.inflight = [];
    this.retryPending = false;
    return done;
  }

  /** The batch in flight failed: the next take() returns it again, unchanged, ahead of everything newer. */
  nack(): void {
    if (this.inflight.length > 0) this.retryPending = true;
  }

  /** Empties the spool (shutdown gave up); returns what was lost, in flight included. */
  drain(): SpoolEntry[] {
    const out = this.inflight;
    this.inflight = [];
    this.retryPending = false;
    for (let e = this.alarms.shift(); e; e = this.alarms.shift()) out.push(e);
    for (let e = this.routine.shift(); e; e = this.routine.shift()) out.push(e);
    return out;
  }
}
