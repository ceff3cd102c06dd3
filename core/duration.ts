import { NodewardenError } from './errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `250ms`, `60s`, `15m`, `2h`, `1d`, or compound `1h30m`. */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === '0') return 0;
  let total = 0;
  let rest = s;
  const part = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)/;
  if (!rest) throw new NodewardenError('REQUEST_INVALID', `empty duration`);
  while (rest.length > 0) {
    const m = part.exec(rest);
    if (!m || m[1] === undefined || m[2] === undefined) {
      throw new NodewardenError('REQUEST_INVALID', `invalid duration "${text}" (expected e.g. 30s, 15m, 2h, 1h30m)`);
    }
    total += Number(m[1]) * (UNIT_MS[m[2]] ?? 0);
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}

/** Whether `parseDuration` accepts `text` (a padded ` 0` excepted, as ever). */
export function isDuration(text: string): boolean {
  try {
    parseDuration(text);
  } catch {
    return false;
  }
  return text === '0' || text.trim() !== '0';
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms >= 3_600_000) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms >= 1000) return `${ms / 1000}s`;
  return `${ms}ms`;
}
