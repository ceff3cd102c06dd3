/**
 * A Pager tells humans: PagerDuty (incidents, trigger/resolve by dedup key),
 * Slack (grouped messages), or a recorder (replay, demo, tests).
 */
import { createHash } from 'node:crypto';
import type { Severity } from '../../core/decision.js';

export interface PageRequest {
  event: 'trigger' | 'resolve';
  /** Stable key: the same problem triggers and resolves one alert (≤ 255 chars). */
  dedupKey: string;
  /** One line for humans (≤ 1024 chars). */
  summary: string;
  severity: Severity;
  /** Where the problem is: node or workload name. */
  source: string;
  /** The rule that asked. */
  rule: string;
  /** Group label values, e.g. pool=h100-train. */
  group?: string;
  /** ISO time of the decision. */
  timestamp?: string;
  /** Evidence for humans (event ids, counts, windows, denied targets). */
  details?: Record<string, unknown>;
}

export interface Pager {
  readonly name: string;
  /** Resolves once delivered (or accepted for delivery in a group); rejects with a NodewardenError. */
  send(req: PageRequest): Promise<void>;
  /** Delivers anything held for grouping. */
  flush?(): Promise<void>;
  /** Idempotent: flushes and stops timers. */
  close?(): Promise<void>;
}

export const MAX_DEDUP_KEY = 255;

/** A dedup key within PagerDuty's 255 chars that stays stable for the same input. */
export function boundedDedupKey(key: string): string {
  if (key.length <= MAX_DEDUP_KEY) return key;
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 16);
  return `${key.slice(0, MAX_DEDUP_KEY - 17)}~${hash}`;
}

export const MAX_SUMMARY = 1024;

export function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}
