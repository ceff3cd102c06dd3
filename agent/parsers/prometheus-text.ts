/**
 * A small, strict-where-it-matters parser for the Prometheus text exposition
 * format 0.0.4 (what dcgm-exporter serves). Hand-written because the npm
 * candidates (`parse-prometheus-text-format` and forks) are unmaintained and
 * lose precision on the DCGM sentinels: here every sample keeps its value
 * text, so 9223372036854775794 can be compared exactly.
 *
 * Handles `# HELP`/`# TYPE`, label values with `\"`, `\\`, `\n` escapes and
 * commas/braces inside quotes, a trailing comma in the label set,
 * `NaN`/`+Inf`/`-Inf`, exponent floats, optional timestamps, CRLF. A line it
 * cannot read is counted and skipped, never fatal.
 */

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  /** Parsed value (may be imprecise above 2^53). */
  value: number;
  /** The value exactly as written. */
  valueText: string;
  timestampMs?: number;
}

export interface PromParseResult {
  samples: PromSample[];
  /** `# TYPE` per metric family. */
  types: Record<string, string>;
  help: Record<string, string>;
  /** Lines that could not be parsed. */
  invalidLines: number;
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*/;

function parseValue(text: string): number | null {
  switch (text) {
    case 'NaN':
      return NaN;
    case '+Inf':
    case 'Inf':
      return Infinity;
    case '-Inf':
      return -Infinity;
    default:
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return null;
      return Number(text);
  }
}

/** Parses `{a="x",b="y"}` starting at `s[i] === '{'`; returns labels and the index after `}`. */
function parseLabels(s: string, start: number): { labels: Record<string, string>; end: number } | null {
  const labels: Record<string, string> = {};
  let i = start + 1;
  for (;;) {
    while (s[i] === ' ' || s[i] === '\t') i += 1;
    if (s[i] === '}') return { labels, end: i + 1 };
    const nm = LABEL_NAME_RE.exec(s.slice(i));
    if (!nm) return null;
    const key = nm[0];
    i += key.length;
    while (s[i] === ' ') i += 1;
    if (s[i] !== '=') return null;
    i += 1;
    while (s[i] === ' ') i += 1;
    if (s[i] !== '"') return null;
    i += 1;
    let val = '';
    for (;;) {
      const c = s[i];
      if (c === undefined) return null;
      if (c === '\\') {
        const n = s[i + 1];
        if (n === 'n') val += '\n';
        else if (n === '"' || n === '\\') val += n;
        else val += `\\${n ?? ''}`;
        i += 2;
        continue;
      }
      if (c === '"') {
        i += 1;
        break;
      }
      val += c;
      i += 1;
    }
    labels[key] = val;
    while (s[i] === ' ') i += 1;
    if (s[i] === ',') {
      i += 1;
      continue;
    }
    if (s[i] === '}') return { labels, end: i + 1 };
    return null;
  }
}

export function parsePrometheusText(text: string): PromParseResult {
  const samples: PromSample[] = [];
  const types: Record<string, string> = {};
  const help: Record<string, string> = {};
  let invalidLines = 0;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/\r$/, '').trim();
    if (line.length === 0) continue;
    if (line.startsWith('#')) {
      const m = /^#\s*(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(.*)$/.exec(line);
      if (m) {
        if (m[1] === 'TYPE') types[m[2] ?? ''] = (m[3] ?? '').trim();
        else help[m[2] ?? ''] = m[3] ?? '';
      }
      continue;
    }
    const nm = NAME_RE.exec(line);
    if (!nm) {
      invalidLines += 1;
      continue;
    }
    const name = nm[0];
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === '{') {
      const parsed = parseLabels(line, i);
      if (parsed === null) {
        invalidLines += 1;
        continue;
      }
      labels = parsed.labels;
      i = parsed.end;
    }
    const rest = line.slice(i).trim().split(/\s+/);
    const valueText = rest[0] ?? '';
    const value = parseValue(valueText);
    if (value === null || rest.length > 2) {
      invalidLines += 1;
      continue;
    }
    const sample: PromSample = { name, labels, value, valueText };
    if (rest[1] !== undefined) {
      const ts = Number(rest[1]);
      if (Number.isFinite(ts)) sample.timestampMs = ts;
    }
    samples.push(sample);
  }
  return { samples, types, help, invalidLines };
}
