/**
 * The agent's structured JSON logger: one JSON object per line, the same line
 * shape as the engine's pino logger (adapters/logger.ts) —
 * `{"level":"info","time":"<ISO>","component":"agent",<bindings>,<fields>,"msg":"…"}` —
 * and the same redaction: every record (fields and child bindings) goes
 * through `scrubRecord` (core/logger.ts), which censors the REDACT_PATHS keys
 * at any depth, credential-shaped strings and Error internals.
 *
 * Why not pino here (the engine keeps it): pino and its helpers are ~1 MiB of
 * the agent's RSS on every node, for a process that logs a few lines an hour
 * (ADR 0039). Writes are synchronous, like the engine's pino destination.
 */
import fs from 'node:fs';
import type { Logger, LogLevel } from '../core/logger.js';
import { scrubRecord } from '../core/logger.js';

const LEVELS: Record<LogLevel, number> = { debug: 20, info: 30, warn: 40, error: 50, silent: Infinity };
type Emitting = Exclude<LogLevel, 'silent'>;

export function isLogLevel(x: string): x is LogLevel {
  return Object.prototype.hasOwnProperty.call(LEVELS, x);
}

/** A line as JSON; a BigInt becomes its decimal string (JSON.stringify would throw). */
function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
}

/** Body of a JSON object without its braces ("" for an empty one). */
function members(o: Record<string, unknown>): string {
  const s = toJson(o);
  return s.length <= 2 ? '' : s.slice(1, -1);
}

const EAGAIN_RETRIES = 100;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** write(2) on a file descriptor, retried on EAGAIN (a non-blocking pipe that is full). */
function writeFd(fd: number, line: string): void {
  let buf = Buffer.from(line);
  for (let attempt = 0; buf.length > 0; ) {
    try {
      const n = fs.writeSync(fd, buf);
      buf = buf.subarray(n);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || ++attempt > EAGAIN_RETRIES) throw err;
      Atomics.wait(sleeper, 0, 0, 10);
    }
  }
}

export interface JsonLoggerOptions {
  component: string;
  /** Default: $NODEWARDEN_LOG_LEVEL, else info. */
  level?: LogLevel;
  /** A file descriptor (default 2, stderr: stdout carries command output) or a stream. */
  destination?: NodeJS.WritableStream | number;
  /** Default: Date.now. */
  now?: () => number;
}

export function createJsonLogger(opts: JsonLoggerOptions = { component: 'nodewarden' }): Logger {
  const level = opts.level ?? process.env.NODEWARDEN_LOG_LEVEL ?? 'info';
  if (!isLogLevel(level)) throw new Error(`unknown log level "${level}" (debug, info, warn, error, silent)`);
  const threshold = LEVELS[level];
  const dest = opts.destination ?? 2;
  const write = typeof dest === 'number' ? (line: string) => writeFd(dest, line) : (line: string) => void dest.write(line);
  const now = opts.now ?? Date.now;
  const base = members(scrubRecord({ component: opts.component }) as Record<string, unknown>);

  const make = (bindings: string): Logger => {
    const log = (lvl: Emitting, obj: Record<string, unknown>, msg?: string) => {
      if (LEVELS[lvl] < threshold) return;
      let line = `{"level":"${lvl}","time":"${new Date(now()).toISOString()}"`;
      if (bindings) line += `,${bindings}`;
      const fields = members(scrubRecord(obj) as Record<string, unknown>);
      if (fields) line += `,${fields}`;
      if (msg !== undefined) line += `,"msg":${toJson(scrubRecord(msg))}`;
      write(`${line}}\n`);
    };
    return {
      debug: (o, m) => log('debug', o, m),
      info: (o, m) => log('info', o, m),
      warn: (o, m) => log('warn', o, m),
      error: (o, m) => log('error', o, m),
      child: (b) => {
        const more = members(scrubRecord(b) as Record<string, unknown>);
        return make(bindings && more ? `${bindings},${more}` : bindings || more);
      },
    };
  };
  return make(base);
}
