/**
 * Ports of the engine service: what it needs from the rule engine, the
 * dedupe store and the dead-letter topic. Adapters live next to them
 * (memory for embedded use and tests, Redis/Kafka for production).
 */
import type { Decision } from '../../core/decision.js';
import type { EventEnvelope } from '../../core/envelope.js';
import type { InputProblem } from '../../core/errors.js';

/** The pure rule engine as the service sees it (rules/engine/engine.ts `createRuleEngine`). */
export interface DecisionEngine {
  process(events: EventEnvelope[]): Promise<Decision[]>;
  tick(now: number): Promise<Decision[]>;
}

/**
 * Remembers which event ids were evaluated, so a redelivered event is not
 * evaluated twice. Two phases keep at-least-once intact: `claim` marks ids as
 * in progress for a short time (a replica killed mid-batch leaves claims that
 * lapse before Kafka redelivers), `confirm` marks them done for the dedupe
 * window once the batch's decisions are durable, `release` forgets claims of
 * a batch that failed so its redelivery is evaluated.
 */
export interface EventDeduper {
  /** For each id, true when this caller claimed it (not seen before), false for a duplicate. */
  claim(ids: readonly string[]): Promise<boolean[]>;
  confirm(ids: readonly string[]): Promise<void>;
  release(ids: readonly string[]): Promise<void>;
}

/** One message that failed validation, as written to the dead-letter topic. */
export interface DeadLetterRecord {
  /** When it was dead-lettered (RFC 3339). */
  ts: string;
  reason: string;
  problems: InputProblem[];
  /** The message value exactly as received (UTF-8), or null for an empty message. */
  original: string | null;
  topic: string;
  partition: number;
  offset: string;
  /** The message key, when it had one. */
  key: string | null;
}

export interface DeadLetterSink {
  /** Resolves once the records are durable. */
  send(records: DeadLetterRecord[]): Promise<void>;
}

/** One consumed message, independent of the Kafka client. */
export interface RawMessage {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: string | null;
}
