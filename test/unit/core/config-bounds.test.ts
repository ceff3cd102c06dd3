import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../../adapters/config-file.js';
import { DURATION_BOUNDS, isTimeZone, resolveConfig } from '../../../core/config.js';
import { budgetFor } from '../../../remediations/guard/policy.js';
import { PoisonInputError } from '../../../core/errors.js';

function file(text: string): string {
  const p = join(mkdtempSync(join(tmpdir(), 'nw-cfg-bounds-')), 'config.yaml');
  writeFileSync(p, text);
  return p;
}

function failure(text: string): PoisonInputError {
  const p = file(text);
  try {
    loadConfig({ file: p });
  } catch (err) {
    expect(err).to.be.instanceOf(PoisonInputError);
    expect((err as PoisonInputError).message).to.contain(p);
    return err as PoisonInputError;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be rejected`);
}

describe('config: values that would switch safety off are rejected, naming file and field', function () {
  it('rejects maxUnavailable: 150% (and per group)', function () {
    const e = failure('guard:\n  maxUnavailable: "150%"\n  maxUnavailablePerGroup: "101%"\n');
    expect(e.problems.map((p) => p.path)).to.deep.equal(['/guard/maxUnavailable', '/guard/maxUnavailablePerGroup']);
    expect(e.problems[0]!.message).to.match(/0% to 100%/);
  });

  it('accepts the documented count form maxUnavailable: 3 (a YAML number) and 100%', function () {
    const cfg = loadConfig({ file: file('guard:\n  maxUnavailable: 3\n  maxUnavailablePerGroup: "100%"\n') });
    expect(cfg.guard.maxUnavailable).to.equal('3');
    expect(budgetFor(cfg.guard.maxUnavailable, 1000)).to.equal(3);
    expect(budgetFor(cfg.guard.maxUnavailablePerGroup, 40)).to.equal(40);
  });

  it('rejects a negative or fractional count', function () {
    expect(failure('guard:\n  maxUnavailable: -1\n').problems[0]!.path).to.equal('/guard/maxUnavailable');
    expect(failure('guard:\n  maxUnavailable: 2.5\n').problems[0]!.path).to.equal('/guard/maxUnavailable');
  });

  it('rejects an unknown time zone like Mars/Olympus', function () {
    const e = failure('jobs:\n  timezone: Mars/Olympus\n');
    expect(e.problems).to.deep.equal([{ path: '/jobs/timezone', message: 'unknown time zone "Mars/Olympus" (use an IANA name like UTC or Europe/Berlin)' }]);
  });

  it('time zones: the same answer as Intl for every name; the default UTC without touching Intl (its ICU data is ~8 MiB of the agent, ADR 0043)', function () {
    const viaIntl = (tz: string): boolean => {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    };
    for (const tz of ['UTC', 'utc', 'Etc/UTC', 'GMT', 'Europe/Berlin', 'America/New_York', 'Mars/Olympus', 'UTC ', ' UTC', 'U T C', 'UTC+1', '+01:00', 'Z', 'x'])
      expect(isTimeZone(tz), tz).to.equal(viaIntl(tz));
    const real = Intl.DateTimeFormat;
    let constructed = 0;
    const counting = function (this: unknown, ...args: ConstructorParameters<typeof Intl.DateTimeFormat>) {
      constructed++;
      return new real(...args);
    } as unknown as typeof Intl.DateTimeFormat;
    Intl.DateTimeFormat = counting;
    try {
      resolveConfig({ text: '{"kafka": {"brokers": ["k:9092"]}}' });
      expect(constructed, 'default config (UTC)').to.equal(0);
      resolveConfig({ text: '{"jobs": {"timezone": "Europe/Berlin"}}' });
      expect(constructed, 'another zone is checked with Intl').to.equal(1);
    } finally {
      Intl.DateTimeFormat = real;
    }
  });

  it('rejects intervals.conntrack: 0s (a hot loop) and every interval below its minimum', function () {
    const e = failure('agent:\n  intervals:\n    conntrack: 0s\n    kmsgPoll: 1ms\n');
    expect(e.problems.map((p) => p.path)).to.deep.equal(['/agent/intervals/conntrack', '/agent/intervals/kmsgPoll']);
    expect(e.problems[0]!.message).to.equal('must be between 1s and 1h, got 0s');
  });

  it('bounds every duration setting on both sides', function () {
    for (const [path, min, max] of DURATION_BOUNDS) {
      const concrete = path.replace('/guard/rateLimits/*', '/guard/rateLimits/cordon').replace('/jobs/*', '/jobs/guardReconcile');
      const parts = concrete.split('/').slice(1);
      const yamlAt = (v: string): string => parts.map((p, i) => `${'  '.repeat(i)}${p}:${i === parts.length - 1 ? ` "${v}"` : ''}`).join('\n') + '\n';
      expect(failure(yamlAt(`${max + 1}ms`)).problems[0]!.path, `${concrete} above max`).to.equal(concrete);
      if (min > 0) expect(failure(yamlAt(`${min - 1}ms`)).problems[0]!.path, `${concrete} below min`).to.equal(concrete);
      expect(() => loadConfig({ file: file(yamlAt(`${min}ms`)) }), `${concrete} at min`).to.not.throw();
    }
  });

  it('engine.consumer: one key given, the other keeps its default (3 partitions at once, chunks of 1,000; ADR 0046)', function () {
    expect(loadConfig({ file: file('engine:\n  consumer:\n    chunkSize: 2000\n') }).engine.consumer).to.deep.equal({ chunkSize: 2000, partitionsConcurrently: 3 });
    expect(loadConfig({ file: file('{}') }).engine.consumer).to.deep.equal({ chunkSize: 1000, partitionsConcurrently: 3 });
  });

  it('bounds numeric settings', function () {
    for (const [yaml, path] of [
      ['agent:\n  spool:\n    maxEvents: 100000000\n', '/agent/spool/maxEvents'],
      ['agent:\n  publish:\n    batchSize: 0\n', '/agent/publish/batchSize'],
      ['agent:\n  publish:\n    lingerMs: 600000\n', '/agent/publish/lingerMs'],
      ['agent:\n  http:\n    port: 70000\n', '/agent/http/port'],
      ['guard:\n  circuitBreaker:\n    failures: 0\n', '/guard/circuitBreaker/failures'],
      ['guard:\n  rateLimits:\n    cordon: { count: -1, per: 1m }\n', '/guard/rateLimits/cordon/count'],
      ['jobs:\n  trimState:\n    ledgerMaxLen: 10\n', '/jobs/trimState/ledgerMaxLen'],
      ['engine:\n  consumer:\n    chunkSize: 0\n', '/engine/consumer/chunkSize'],
      ['engine:\n  consumer:\n    chunkSize: 10001\n', '/engine/consumer/chunkSize'],
      ['engine:\n  consumer:\n    partitionsConcurrently: 0\n', '/engine/consumer/partitionsConcurrently'],
      ['engine:\n  consumer:\n    partitionsConcurrently: 65\n', '/engine/consumer/partitionsConcurrently'],
      ['engine:\n  consumer:\n    partitionsConcurrently: 2.5\n', '/engine/consumer/partitionsConcurrently'],
    ] as const)
      expect(failure(yaml).problems.map((p) => p.path), yaml).to.include(path);
  });
});
