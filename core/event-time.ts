/**
 * Event time bounded against the time an event is read (design brief §8). One
 * implementation for the live engine (rules/service/batch-processor.ts) and
 * replay (rules/replay/replay.ts): a node with a broken clock — an event
 * stamped 9999-12-31, or 1970 — is a dead letter with the reason, and never
 * moves any window, tick or watermark of the others.
 */
import type { NodewardenConfig } from './config.js';
import { formatDuration, parseDuration } from './duration.js';

export interface EventTimeBounds {
  /** How far an event's `ts` may be ahead of the read time. */
  maxFutureMs: number;
  /** How far an event's `ts` may be behind the reference of the past bound. */
  maxPastMs: number;
}

export function eventTimeBounds(config: Pick<NodewardenConfig, 'engine'>): EventTimeBounds {
  return { maxFutureMs: parseDuration(config.engine.eventTime.maxFuture), maxPastMs: parseDuration(config.engine.eventTime.maxPast) };
}

/** What an event's time is compared with: live both are the clock; replay keeps the wall clock for the future and virtual time for the past. */
export interface EventTimeReference {
  /** Upper reference: `ts` may be at most `maxFuture` after it. */
  future: number;
  /** Lower reference: `ts` may be at most `maxPast` before it. */
  past: number;
}

/** Why an event stamped `tsMs` is out of bounds, or null when it is within them. */
export function eventTimeProblem(tsMs: number, bounds: EventTimeBounds, ref: EventTimeReference): string | null {
  if (!Number.isFinite(tsMs)) return 'event time is not a valid time';
  if (tsMs > ref.future + bounds.maxFutureMs)
    return `event time ${iso(tsMs)} is ${ahead(tsMs - ref.future)} ahead of the read time ${iso(ref.future)} (engine.eventTime.maxFuture ${fmt(bounds.maxFutureMs)})`;
  if (tsMs < ref.past - bounds.maxPastMs)
    return `event time ${iso(tsMs)} is ${ahead(ref.past - tsMs)} behind the read time ${iso(ref.past)} (engine.eventTime.maxPast ${fmt(bounds.maxPastMs)})`;
  return null;
}

function fmt(ms: number): string {
  return ms >= 86_400_000 && ms % 86_400_000 === 0 ? `${ms / 86_400_000}d` : formatDuration(ms);
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

function ahead(ms: number): string {
  if (ms >= 86_400_000) return `${Math.floor(ms / 86_400_000)}d`;
  if (ms >= 3_600_000) return `${Math.floor(ms / 3_600_000)}h`;
  if (ms >= 60_000) return `${Math.floor(ms / 60_000)}m`;
  return `${Math.ceil(ms / 1000)}s`;
}
