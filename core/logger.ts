/**
 * The Logger port, with secrets redacted (`REDACT_PATHS`, `scrubRecord`).
 * Components receive a Logger; they never import a global one. The pino
 * factory that writes the structured JSON logs is adapters/logger.ts.
 */

export interface Logger {
  debug(obj: Record<string, unknown>, msg?: string): void;
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
  error(obj: Record<string, unknown>, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** Field paths never written to logs. */
export const REDACT_PATHS = [
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'routingKey',
  '*.routingKey',
  'routing_key',
  '*.routing_key',
  'webhookUrl',
  '*.webhookUrl',
  'password',
  '*.password',
  'sasl',
  '*.sasl',
];

/** Keys whose values are never logged, at any depth (compared lower-case, without - and _). */
const SECRET_KEYS = new Set(['token', 'accesstoken', 'authorization', 'proxyauthorization', 'cookie', 'setcookie', 'routingkey', 'webhookurl', 'password', 'passwd', 'sasl', 'auth', 'xapikey', 'apikey', 'secret']);
/** Values that are credentials whatever their key: Slack webhook URLs, URLs with a password, bearer tokens. */
const SECRET_VALUES: RegExp[] = [/https?:\/\/hooks\.slack\.com\/\S*/gi, /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]*:[^\s/@]+@/gi, /\bBearer\s+[A-Za-z0-9._~+/=-]{8,}/g];
const MAX_DEPTH = 8;

function scrubString(v: string): string {
  let out = v;
  for (const re of SECRET_VALUES) out = out.replace(re, (m, scheme: string | undefined) => (typeof scheme === 'string' && m.includes('@') ? `${scheme}[redacted]@` : '[redacted]'));
  return out;
}

/**
 * A copy of a log record with every secret-named key censored at any depth,
 * credential-shaped strings scrubbed, and Errors reduced to name, message, code
 * and status: an axios error carries its request config (URL, headers, body
 * with the routing key), a kafkajs or ioredis error its connection options.
 */
export function scrubRecord(v: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof v === 'string') return scrubString(v);
  if (typeof v !== 'object' || v === null) return v;
  if (seen.has(v)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[truncated]';
  if (v instanceof Error) {
    const e = v as Error & { code?: unknown; status?: unknown; response?: { status?: unknown } };
    const out: Record<string, unknown> = { type: e.name, message: scrubString(e.message) };
    if (typeof e.code === 'string' || typeof e.code === 'number') out.code = e.code;
    const status = e.status ?? e.response?.status;
    if (typeof status === 'number') out.status = status;
    return out;
  }
  seen.add(v);
  let out: unknown;
  if (Array.isArray(v)) out = v.map((x) => scrubRecord(x, depth + 1, seen));
  else if (Buffer.isBuffer(v)) out = `[${v.length} bytes]`;
  else {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = SECRET_KEYS.has(k.toLowerCase().replace(/[-_]/g, '')) && x !== null && x !== undefined ? '[redacted]' : scrubRecord(x, depth + 1, seen);
    out = o;
  }
  seen.delete(v); // `seen` holds the ancestors only: an object met twice side by side is not a cycle
  return out;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** A logger that drops everything: unit tests and benchmarks. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};

/** A logger that keeps records in memory, for tests that assert on logs. */
export class MemoryLogger implements Logger {
  readonly records: Array<{ level: string; msg?: string } & Record<string, unknown>> = [];
  constructor(private readonly bindings: Record<string, unknown> = {}) {}
  private push(level: string, o: Record<string, unknown>, msg?: string): void {
    this.records.push({ ...this.bindings, ...o, level, ...(msg === undefined ? {} : { msg }) });
  }
  debug(o: Record<string, unknown>, m?: string): void { this.push('debug', o, m); }
  info(o: Record<string, unknown>, m?: string): void { this.push('info', o, m); }
  warn(o: Record<string, unknown>, m?: string): void { this.push('warn', o, m); }
  error(o: Record<string, unknown>, m?: string): void { this.push('error', o, m); }
  child(b: Record<string, unknown>): Logger {
    const c = new MemoryLogger({ ...this.bindings, ...b });
    // share the same record array so the parent sees the child's records
    (c as { records: unknown }).records = this.records;
    return c;
  }
}
