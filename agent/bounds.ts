/**
 * Bounds on everything the agent reads and emits (issue 10): a hostile or
 * broken host (a 5 MB kernel line, a device that never stops returning data,
 * a counter of 24 digits) must neither eat the agent's memory budget nor put
 * nonsense like `1e+23` on the wire. Pure: the bounded file read that uses
 * these limits is agent/collectors/read-bounded.ts.
 */

/** Longest string field of an event (e.g. an Xid message); longer ones are cut with a marker. */
export const MAX_FIELD_CHARS = 4096;
/** Longest kernel-log line kept; the rest of a longer line is dropped with a marker. */
export const MAX_LINE_CHARS = 64 * 1024;
/** `--once` reads at most this much of a kernel log (device or file). */
export const ONCE_MAX_BYTES = 32 * 1024 * 1024;
/** `--once` gives a kernel-log device at most this long. */
export const ONCE_MAX_MS = 10_000;
/** One live poll of a kernel log reads at most this much; the rest comes at the next poll. */
export const POLL_MAX_BYTES = 4 * 1024 * 1024;
/** Small files (/proc counters, uptime) are read up to this size. */
export const SMALL_FILE_MAX_BYTES = 1024 * 1024;

/** `s` cut to `max` characters with a visible marker saying how much was dropped. */
export function truncateField(s: string, max = MAX_FIELD_CHARS): string {
  if (s.length <= max) return s;
  return `${s.slice(0, max)}…[truncated ${s.length - max} chars]`;
}

/** An integer field parsed from text, or null when it is not a safe integer within [min, max]. */
export function boundedInt(text: string, min: number, max: number, radix = 10): number | null {
  const n = radix === 10 ? Number(text) : parseInt(text, radix);
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : null;
}

/**
 * Event data made safe for the wire: strings truncated, numbers that are not
 * finite or not safely representable dropped (a field becomes null, a map
 * entry disappears). Walks plain objects a few levels deep; arrays are left as is.
 */
export function boundEventData<D extends object>(data: D, depth = 0): D {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) {
    if (typeof v === 'string') out[k] = truncateField(v);
    else if (typeof v === 'number') {
      if (Number.isFinite(v) && Math.abs(v) <= Number.MAX_SAFE_INTEGER) out[k] = v;
      else if (depth === 0) out[k] = null;
    } else if (v !== null && typeof v === 'object' && !Array.isArray(v) && depth < 3) out[k] = boundEventData(v, depth + 1);
    else out[k] = v;
  }
  return out as D;
}
