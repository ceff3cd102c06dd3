/**
 * agent/json-logger.ts: one JSON object per line, the engine pino logger's
 * line shape (same keys, same order, same values but the time), the same
 * redaction, level filtering.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { createJsonLogger } from '../../../agent/json-logger.js';
import { createLogger } from '../../../adapters/logger.js';
import type { Logger, LogLevel } from '../../../core/logger.js';
import { REDACT_PATHS } from '../../../core/logger.js';

const TOKEN = 'ctl-admin-token-5f0c0b2d9a7e4410';
const WEBHOOK = 'https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX';
const PASSWORD = 'kafka-scram-pw-7d1e0c';

function sink(): { lines: string[]; destination: Writable } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { lines, destination };
}

function both(level: LogLevel = 'debug'): { lean: Logger; pino: Logger; leanLines: string[]; pinoLines: string[] } {
  const a = sink();
  const b = sink();
  return {
    lean: createJsonLogger({ component: 'agent', level, destination: a.destination, now: () => Date.parse('2026-12-03T06:00:00.000Z') }),
    pino: createLogger({ component: 'agent', level, destination: b.destination }),
    leanLines: a.lines,
    pinoLines: b.lines,
  };
}

/** Keys in order and values, the time left out (pino's clock is not injectable). */
function shape(line: string): Array<[string, unknown]> {
  return Object.entries(JSON.parse(line) as Record<string, unknown>).filter(([k]) => k !== 'time');
}

describe('agent/json-logger', () => {
  it('writes the same lines as the engine pino logger (key order, values, bindings), one JSON object per line', () => {
    const { lean, pino, leanLines, pinoLines } = both();
    for (const l of [lean, pino]) {
      l.info({ node: 'gpu-1', labels: { pool: 'h100' }, collectors: ['dcgm', 'kernel-log'], httpPort: 9101, kubeApi: false }, 'agent started');
      l.warn({}, 'no fields');
      l.error({ err: new Error('boom\nsecond line') }, 'with an error');
      l.child({ collector: 'dcgm' }).child({ url: 'http://127.0.0.1:9400/metrics' }).debug({ n: 1 }, 'child of a child');
      l.info({ q: 'a "quoted" \\ value\u0001' });
    }
    expect(leanLines.length).to.equal(5);
    expect(leanLines.length).to.equal(pinoLines.length);
    leanLines.forEach((line, i) => {
      expect(line.endsWith('}\n')).to.equal(true);
      expect(line.slice(0, -1)).not.to.contain('\n');
      expect(shape(line), `line ${i}`).to.deep.equal(shape(pinoLines[i] ?? '{}'));
    });
    expect(JSON.parse(leanLines[0] ?? '{}')).to.deep.include({ level: 'info', time: '2026-12-03T06:00:00.000Z', component: 'agent', msg: 'agent started' });
    expect(Object.keys(JSON.parse(leanLines[0] ?? '{}') as object).slice(0, 3)).to.deep.equal(['level', 'time', 'component']);
  });

  it('filters by level; silent writes nothing; an unknown level is refused', () => {
    const { lines, destination } = sink();
    const l = createJsonLogger({ component: 'agent', level: 'warn', destination });
    l.debug({}, 'd');
    l.info({}, 'i');
    l.warn({}, 'w');
    l.error({}, 'e');
    l.child({ a: 1 }).info({}, 'child info');
    expect(lines.map((x) => (JSON.parse(x) as { msg: string }).msg)).to.deep.equal(['w', 'e']);
    const quiet = sink();
    const s = createJsonLogger({ component: 'agent', level: 'silent', destination: quiet.destination });
    s.error({}, 'e');
    expect(quiet.lines).to.deep.equal([]);
    expect(() => createJsonLogger({ component: 'agent', level: 'loud' as LogLevel, destination: quiet.destination })).to.throw(/unknown log level/);
  });

  it('takes the level from NODEWARDEN_LOG_LEVEL when none is given', () => {
    const saved = process.env.NODEWARDEN_LOG_LEVEL;
    process.env.NODEWARDEN_LOG_LEVEL = 'error';
    try {
      const { lines, destination } = sink();
      const l = createJsonLogger({ component: 'agent', destination });
      l.warn({}, 'w');
      l.error({}, 'e');
      expect(lines.length).to.equal(1);
    } finally {
      if (saved === undefined) delete process.env.NODEWARDEN_LOG_LEVEL;
      else process.env.NODEWARDEN_LOG_LEVEL = saved;
    }
  });

  it('redacts every REDACT_PATHS key, at any depth, in fields, child bindings and the message', () => {
    const { lines, destination } = sink();
    const l = createJsonLogger({ component: 'agent', level: 'debug', destination });
    const fields: Record<string, unknown> = {};
    for (const p of REDACT_PATHS) {
      const parts = p.split('.').map((x) => (x === '*' ? 'any' : x));
      let o = fields;
      for (const k of parts.slice(0, -1)) o = (o[k] ??= {}) as Record<string, unknown>;
      o[parts[parts.length - 1] ?? 'x'] = TOKEN;
    }
    l.info(fields, 'every path');
    l.info({ deep: { a: { b: { password: PASSWORD, sasl: { password: PASSWORD } } } } }, 'deep');
    l.child({ authorization: `Bearer ${TOKEN}`, target: WEBHOOK }).warn({ url: `redis://u:${PASSWORD}@redis:6379/0` }, `posting to ${WEBHOOK}`);
    l.error({ err: Object.assign(new Error(`auth failed for ${WEBHOOK}`), { config: { headers: { Authorization: `Bearer ${TOKEN}` } } }) }, 'error');
    const all = lines.join('');
    for (const s of [TOKEN, PASSWORD, WEBHOOK, 'XXXXXXXXXXXXXXXXXXXXXXXX']) expect(all, s).not.to.contain(s);
    expect(lines.length).to.equal(4);
    expect(JSON.parse(lines[0] ?? '{}')).to.deep.include({ token: '[redacted]', routingKey: '[redacted]', password: '[redacted]' });
    expect(lines[2]).to.contain('redis://[redacted]@redis:6379/0');
    expect(JSON.parse(lines[3] ?? '{}')).to.deep.include({ err: { type: 'Error', message: 'auth failed for [redacted]' } });
  });

  it('writes to a file descriptor synchronously (the default is fd 2)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nw-jsonlog-'));
    const file = path.join(dir, 'log');
    const fd = fs.openSync(file, 'w');
    try {
      const l = createJsonLogger({ component: 'agent', level: 'info', destination: fd });
      l.info({ a: 1 }, 'one');
      l.info({ a: 2 }, 'two');
      const got = fs.readFileSync(file, 'utf8').split('\n');
      expect(got.length).to.equal(3);
      expect(got[2]).to.equal('');
      expect(got.slice(0, 2).map((x) => (JSON.parse(x) as { a: number }).a)).to.deep.equal([1, 2]);
    } finally {
      fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
