import { NodewardenError } from './errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * The one duration grammar: `0`, or one or more `<number><unit>` (units ms, s,
 * m, h, d), e.g. `250ms`, `60s`, `15m`, `2h`, `1d`, `1h30m`. The config schema
 * uses this pattern, every other reader (rules, control API, CLI flags) goes
 * through `parseDuration`, so they accept the same texts.
 */
export const DURATION_PATTERN = '^(0|(\\d+(\\.\\d+)?(ms|s|m|h|d))+)$';
const DURATION_RE = new RegExp(DURATION_PATTERN);
const PART_RE = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

/** Parses a duration (DURATION_PATTERN; surrounding blanks ignored) into milliseconds. */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (!s) throw new NodewardenError('REQUEST_INVALID', `empty duration`);
  if (!DURATION_RE.test(s)) throw new NodewardenError('REQUEST_INVALID', `invalid duration "${text}" (expected e.g. 30s, 15m, 2h, 1h30m)`);
  let total = 0;
  for (const m of s.matchAll(PART_RE)) total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? 0);
  return Math.round(total);
}

/** Whether `parseDuration` accepts `text`. */
export function isDuration(text: string): boolean {
  const s = text.trim();
  return DURATION_RE.test(s);
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms >= 3_600_000) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms >= 1000) return `${ms / 1000}s`;
  return `${ms}ms`;
}
