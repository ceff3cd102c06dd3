/**
 * Structured JSON logs (pino) with secrets redacted. Components receive a
 * Logger; they never import a global one.
 */
import { pino } from 'pino';

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

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export function createLogger(opts: { component: string; level?: LogLevel; destination?: NodeJS.WritableStream | number } = { component: 'nodewarden' }): Logger {
  const dest = opts.destination ?? 2; // stderr: stdout is reserved for command output (JSONL)
  const stream = typeof dest === 'number' ? pino.destination({ fd: dest, sync: true }) : dest;
  const base = pino(
    {
      level: opts.level ?? ((process.env.NODEWARDEN_LOG_LEVEL as LogLevel | undefined) ?? 'info'),
      base: { component: opts.component },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
  return wrap(base);
}

function wrap(p: pino.Logger): Logger {
  return {
    debug: (o, m) => p.debug(o, m),
    info: (o, m) => p.info(o, m),
    warn: (o, m) => p.warn(o, m),
    error: (o, m) => p.error(o, m),
    child: (b) => wrap(p.child(b)),
  };
}

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
