/**
 * Structured JSON logs (pino) with secrets redacted (core/logger.ts): the one
 * factory of the process's Logger, in the composition roots (cli/commands).
 */
import { pino } from 'pino';
import type { Logger, LogLevel } from '../core/logger.js';
import { REDACT_PATHS, scrubRecord } from '../core/logger.js';

export function createLogger(opts: { component: string; level?: LogLevel; destination?: NodeJS.WritableStream | number } = { component: 'nodewarden' }): Logger {
  const dest = opts.destination ?? 2; // stderr: stdout is reserved for command output (JSONL)
  const stream = typeof dest === 'number' ? pino.destination({ fd: dest, sync: true }) : dest;
  const base = pino(
    {
      level: opts.level ?? ((process.env.NODEWARDEN_LOG_LEVEL as LogLevel | undefined) ?? 'info'),
      base: { component: opts.component },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Errors are reduced by scrubRecord (formatters.log runs first); pino's err serializer would re-expand them.
      serializers: { err: (v: unknown) => v },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }), log: (o) => scrubRecord(o) as Record<string, unknown> },
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
