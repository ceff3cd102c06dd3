import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { PoisonInputError } from '../../../core/errors.js';
import { MemoryLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../adapters/metrics.js';
import type { Registry } from '../../../adapters/metrics.js';
import { createNodeCron } from '../../../jobs/cron.js';
import type { Job, JobContext } from '../../../jobs/job.js';
import type { JobLock } from '../../../jobs/lock.js';
import { MemoryJobLock } from '../../../jobs/lock.js';
import { JobScheduler } from '../../../jobs/scheduler.js';
import type { CronPort } from '../../../jobs/scheduler.js';

const T0 = Date.parse('2026-11-21T09:00:00Z');

/** A cron port the test fires by hand. */
class FakeCron implements CronPort {
  readonly scheduled = new Map<string, { expression: string; timezone: string; fire: (slot: number) => void; stopped: boolean }>();
  validate(expression: string): string | null {
    return expression.trim().split(/\s+/).length >= 5 ? null : 'expected 5 or 6 fields';
  }
  schedule(expression: string, timezone: string, name: string, fire: (slot: number) => void) {
    const entry = { expression, timezone, fire, stopped: false };
    this.scheduled.set(name, entry);
    return { stop: () => (entry.stopped = true) };
  }
  fire(name: string, slot: number): void {
    const e = this.scheduled.get(name);
    if (!e || e.stopped) throw new Error(`no running schedule ${name}`);
    e.fire(slot);
  }
}

/** A job whose runs the test completes by hand. */
class ManualJob implements Job {
  readonly runs: JobContext[] = [];
  private pending: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  constructor(
    readonly name: string,
    readonly scope: 'cluster' | 'replica' = 'cluster',
  ) {}
  run(ctx: JobContext): Promise<undefined> {
    this.runs.push(ctx);
    return new Promise<undefined>((resolve, reject) => this.pending.push({ resolve: () => resolve(undefined), reject }));
  }
  finish(): void {
    this.pending.shift()?.resolve();
  }
  fail(msg: string): void {
    this.pending.shift()?.reject(new Error(msg));
  }
}

/** Value of one series; `sample` picks a histogram's `_count`/`_sum` line. */
async function metricValue(registry: Registry, name: string, labels: Record<string, string>, sample?: string): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => (sample === undefined || (x as { metricName?: string }).metricName === sample) && Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

async function runs(registry: Registry, job: string, result: string): Promise<number> {
  return metricValue(registry, 'nodewarden_job_runs_total', { job, result });
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(o: { lock?: JobLock; timezone?: string } = {}) {
  const clock = new ManualClock(T0);
  const logger = new MemoryLogger();
  const registry = createRegistry('test');
  const cron = new FakeCron();
  const scheduler = new JobScheduler({ lock: o.lock ?? new MemoryJobLock(clock), cron, clock, logger, registry, timezone: o.timezone ?? 'UTC' });
  return { clock, logger, registry, cron, scheduler };
}

describe('jobs: JobScheduler', () => {
  it('runs a job on its cron slot, counts success and observes the duration', async () => {
    const { scheduler, cron, registry } = setup();
    let ran = 0;
    scheduler.register({ job: { name: 'j', scope: 'cluster', run: () => Promise.resolve({ did: ++ran }) }, schedule: '* * * * *', timeoutMs: 1000 });
    scheduler.start();
    expect(cron.scheduled.get('j')?.expression).to.equal('* * * * *');
    expect(cron.scheduled.get('j')?.timezone).to.equal('UTC');
    const report = await scheduler.runNow('j', T0);
    expect(report.result).to.equal('success');
    expect(report.summary).to.deep.equal({ did: 1 });
    expect(await runs(registry, 'j', 'success')).to.equal(1);
    expect(await metricValue(registry, 'nodewarden_job_duration_seconds', { job: 'j' }, 'nodewarden_job_duration_seconds_count')).to.equal(1);
    expect(await metricValue(registry, 'nodewarden_job_last_success_timestamp_seconds', { job: 'j' })).to.equal(T0 / 1000);
  });

  it('exports every result at 0 from registration, so increase() sees the first failure', async () => {
    const { scheduler, registry } = setup();
    scheduler.register({ job: new ManualJob('j'), schedule: '* * * * *', timeoutMs: 1000 });
    const text = await registry.metrics();
    for (const r of ['success', 'error', 'timeout', 'overlap', 'not_elected', 'lock_error'])
      expect(text).to.include(`nodewarden_job_runs_total{job="j",result="${r}",component="test"} 0`);
  });

  it('a failing job is logged and counted as error, and never becomes an unhandled rejection', async () => {
    const { scheduler, cron, registry, logger } = setup();
    const unhandled: unknown[] = [];
    const onUnhandled = (r: unknown): void => {
      unhandled.push(r);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      scheduler.register({ job: { name: 'boom', scope: 'cluster', run: () => Promise.reject(new Error('redis down')) }, schedule: '* * * * *', timeoutMs: 1000 });
      scheduler.register({
        job: {
          name: 'sync-throw',
          scope: 'replica',
          run: () => {
            throw new Error('thrown before any await');
          },
        },
        schedule: '* * * * *',
        timeoutMs: 1000,
      });
      scheduler.start();
      cron.fire('boom', T0);
      cron.fire('sync-throw', T0);
      for (let i = 0; i < 20 && (await runs(registry, 'sync-throw', 'error')) === 0; i++) await tick();
      await new Promise((r) => setTimeout(r, 20));
      expect(await runs(registry, 'boom', 'error')).to.equal(1);
      expect(await runs(registry, 'sync-throw', 'error')).to.equal(1);
      const errs = logger.records.filter((r) => r.level === 'error' && r.msg === 'job failed');
      expect(errs.map((r) => [r.job, r.err])).to.deep.include.members([
        ['boom', 'redis down'],
        ['sync-throw', 'thrown before any await'],
      ]);
      expect(unhandled).to.deep.equal([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('never runs a job concurrently with itself in one process', async () => {
    const { scheduler, registry } = setup();
    const job = new ManualJob('slow');
    scheduler.register({ job, schedule: '* * * * *', timeoutMs: 10_000 });
    const first = scheduler.runNow('slow', T0);
    await tick();
    const second = await scheduler.runNow('slow', T0 + 60_000);
    expect(second.result).to.equal('overlap');
    expect(job.runs).to.have.length(1);
    job.finish();
    expect((await first).result).to.equal('success');
    const third = scheduler.runNow('slow', T0 + 120_000);
    await tick();
    job.finish();
    expect((await third).result).to.equal('success');
    expect(job.runs).to.have.length(2);
    expect(await runs(registry, 'slow', 'overlap')).to.equal(1);
  });

  it('times out a run, aborts its signal, and keeps the overlap guard until the job really ends', async () => {
    const { scheduler, registry, logger } = setup();
    const job = new ManualJob('stuck');
    scheduler.register({ job, schedule: '* * * * *', timeoutMs: 30 });
    const report = await scheduler.runNow('stuck', T0);
    expect(report.result).to.equal('timeout');
    expect(job.runs[0]?.signal.aborted).to.equal(true);
    expect(await runs(registry, 'stuck', 'timeout')).to.equal(1);
    expect(logger.records.some((r) => r.level === 'error' && r.msg === 'job timed out' && r.job === 'stuck')).to.equal(true);
    // still running in the background: a new slot must not start a second copy
    expect((await scheduler.runNow('stuck', T0 + 60_000)).result).to.equal('overlap');
    job.fail('gave up after abort');
    await tick();
    await tick();
    const next = scheduler.runNow('stuck', T0 + 120_000);
    await tick();
    expect(job.runs).to.have.length(2);
    job.finish();
    expect((await next).result).to.equal('success');
  });

  it('elects one replica per cron slot for cluster-scoped jobs (shared lock)', async () => {
    const clock = new ManualClock(T0);
    const shared = new MemoryJobLock(clock);
    const a = setup({ lock: shared });
    const b = setup({ lock: shared });
    let ranA = 0;
    let ranB = 0;
    a.scheduler.register({ job: { name: 'digest', scope: 'cluster', run: () => Promise.resolve({ n: ++ranA }) }, schedule: '0 9 * * *', timeoutMs: 1000 });
    b.scheduler.register({ job: { name: 'digest', scope: 'cluster', run: () => Promise.resolve({ n: ++ranB }) }, schedule: '0 9 * * *', timeoutMs: 1000 });
    // both replicas fire for the same slot, a few hundred ms apart
    const ra = await a.scheduler.runNow('digest', T0 + 120);
    const rb = await b.scheduler.runNow('digest', T0 + 480);
    expect([ra.result, rb.result]).to.deep.equal(['success', 'not_elected']);
    expect(ranA + ranB).to.equal(1);
    // the next day's slot is a new election
    const rb2 = await b.scheduler.runNow('digest', T0 + 86_400_000);
    expect(rb2.result).to.equal('success');
    expect(await runs(b.registry, 'digest', 'not_elected')).to.equal(1);
  });

  it('skips a slot while another replica still runs the previous one (no overlap across replicas)', async () => {
    const clock = new ManualClock(T0);
    const shared = new MemoryJobLock(clock);
    const a = setup({ lock: shared });
    const b = setup({ lock: shared });
    const jobA = new ManualJob('trim');
    const jobB = new ManualJob('trim');
    a.scheduler.register({ job: jobA, schedule: '* * * * *', timeoutMs: 120_000 });
    b.scheduler.register({ job: jobB, schedule: '* * * * *', timeoutMs: 120_000 });
    const running = a.scheduler.runNow('trim', T0);
    await tick();
    const rb = await b.scheduler.runNow('trim', T0 + 60_000);
    expect(rb.result).to.equal('overlap');
    expect(jobB.runs).to.have.length(0);
    jobA.finish();
    expect((await running).result).to.equal('success');
    const rb2 = b.scheduler.runNow('trim', T0 + 120_000);
    await tick();
    jobB.finish();
    expect((await rb2).result).to.equal('success');
  });

  it('replica-scoped jobs run on every replica', async () => {
    const clock = new ManualClock(T0);
    const shared = new MemoryJobLock(clock);
    const a = setup({ lock: shared });
    const b = setup({ lock: shared });
    let n = 0;
    const job: Job = { name: 'guard-reconcile', scope: 'replica', run: () => Promise.resolve({ n: ++n }) };
    a.scheduler.register({ job, schedule: '* * * * *', timeoutMs: 1000 });
    b.scheduler.register({ job, schedule: '* * * * *', timeoutMs: 1000 });
    expect((await a.scheduler.runNow('guard-reconcile', T0)).result).to.equal('success');
    expect((await b.scheduler.runNow('guard-reconcile', T0)).result).to.equal('success');
    expect(n).to.equal(2);
  });

  it('skips the run and counts lock_error when the lock store is unreachable', async () => {
    const failing: JobLock = {
      tryRun: () => Promise.reject(new Error('ECONNREFUSED')),
      release: () => Promise.resolve(),
      claimSlot: () => Promise.reject(new Error('ECONNREFUSED')),
    };
    const { scheduler, registry, logger } = setup({ lock: failing });
    let ran = false;
    scheduler.register({
      job: {
        name: 'j',
        scope: 'cluster',
        run: () => {
          ran = true;
          return Promise.resolve(undefined);
        },
      },
      schedule: '* * * * *',
      timeoutMs: 1000,
    });
    const r = await scheduler.runNow('j', T0);
    expect(r.result).to.equal('lock_error');
    expect(ran).to.equal(false);
    expect(await runs(registry, 'j', 'lock_error')).to.equal(1);
    expect(logger.records.some((x) => x.level === 'warn' && String(x.err).includes('ECONNREFUSED'))).to.equal(true);
  });

  it('rejects a bad cron expression, a bad time zone and a duplicate name with the config path', () => {
    const { scheduler } = setup();
    expect(() => scheduler.register({ job: new ManualJob('x'), schedule: '* *', timeoutMs: 1000, configPath: '/jobs/trimState' }))
      .to.throw(PoisonInputError)
      .with.property('message')
      .that.includes('/jobs/trimState/schedule');
    scheduler.register({ job: new ManualJob('x'), schedule: '* * * * *', timeoutMs: 1000 });
    expect(() => scheduler.register({ job: new ManualJob('x'), schedule: '* * * * *', timeoutMs: 1000 })).to.throw(/registered twice/);
    expect(() => setup({ timezone: 'Mars/Olympus' })).to.throw(PoisonInputError, /unknown time zone "Mars\/Olympus"/);
  });

  it('stop() stops the schedules, aborts a run in progress and waits for it', async () => {
    const { scheduler, cron } = setup();
    let aborted = false;
    scheduler.register({
      job: {
        name: 'long',
        scope: 'cluster',
        run: (ctx) =>
          new Promise((resolve) => {
            ctx.signal.addEventListener('abort', () => {
              aborted = true;
              setTimeout(() => resolve(undefined), 10);
            });
          }),
      },
      schedule: '* * * * *',
      timeoutMs: 60_000,
    });
    scheduler.start();
    cron.fire('long', T0);
    await tick();
    await scheduler.stop(2000);
    expect(aborted).to.equal(true);
    expect(cron.scheduled.get('long')?.stopped).to.equal(true);
    expect((await scheduler.runNow('long', T0 + 60_000)).result).to.equal('not_elected');
  });
});

describe('jobs: node-cron adapter', () => {
  it('validates expressions with node-cron and names the bad field', () => {
    const cron = createNodeCron(new MemoryLogger());
    expect(cron.validate('* * * * *')).to.equal(null);
    expect(cron.validate('0 9 * * *')).to.equal(null);
    expect(cron.validate('*/10 * * * * *')).to.equal(null);
    expect(cron.validate('61 * * * *')).to.be.a('string');
    expect(cron.validate('nonsense')).to.be.a('string');
  });

  it('fires at real cron matches with the slot time, in the given time zone, and stops', async function () {
    this.timeout(5000);
    const cron = createNodeCron(new MemoryLogger());
    const slots: number[] = [];
    const h = cron.schedule('* * * * * *', 'Asia/Kolkata', 'every-second', (slot) => slots.push(slot));
    await new Promise((r) => setTimeout(r, 2300));
    h.stop();
    const n = slots.length;
    expect(n).to.be.within(1, 3);
    for (const s of slots) expect(s % 1000).to.equal(0);
    await new Promise((r) => setTimeout(r, 1200));
    expect(slots.length).to.equal(n);
  });
});
