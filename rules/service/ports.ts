/**
 * Ports of the engine service: what it needs from the dedupe store and the
 * dead-letter topic (the rule engine is `RuleEngine`, rules/engine/engine.ts).
 * Adapters live next to them (memory for embedded use and tests, Redis/Kafka
 * for production).
 */
import type { InputProblem } from '../../core/errors.js';

/**
 * Remembers which event ids were evaluated, so a redelivered event is not
 * evaluated twice. Two phases keep at-least-once intact: `claim` marks ids as
 * in progress for a short time (a replica killed mid-batch leaves claims that
 * lapse before Kafka redelivers), `confirm` marks them done for the dedupe
 * window once the batch's decisions are durable, `release` forgets claims of
 * a batch that failed so its redelivery is evaluated.
 */
/**
 * `claimed`: this caller evaluates it; `duplicate`: already evaluated (done);
 * `pending`: another batch holds an unconfirmed claim on it right now (a
 * replica still working on it after a rebalance) — neither evaluate it nor
 * skip it: retry the batch once that claim is confirmed or has lapsed.
 */
export type ClaimResult = 'claimed' | 'duplicate' | 'pending';

export interface EventDeduper {
  /** For each id, whether this caller claimed it. */
  claim(ids: readonly string[]): Promise<ClaimResult[]>;
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
  /**
   * The `nodewarden-record` header of an internal record on the events topic
   * (ADR 0049: a routed episode release), at most 64 characters; absent on events.
   */
  record?: string;
}
