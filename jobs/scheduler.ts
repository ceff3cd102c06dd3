/**
 * Runs named jobs on cron schedules. For every run, in order:
 *
 *   in-process overlap guard → slot claim (cluster-scoped jobs: one replica
 *   per cron slot) → running lease (cluster-scoped: no overlap across
 *   replicas either) → the job, raced against its timeout (its AbortSignal fires) → release.
 *
 * Every run ends as one `nodewarden_job_runs_total{job,result}` increment;
 * runs that executed also observe `nodewarden_job_duration_seconds{job}`.
 * Nothing a job does can escape as an unhandled rejection: every failure is
 * logged with the job name and counted. A run that times out keeps its
 * in-process overlap flag until the job's promise actually settles, so a
 * stuck job is never started a second time in the same process.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { Clock } from '../core/clock.js';
import { errorMessage, NodewardenError, PoisonInputError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Job, JobResult, JobRunReport, JobSummary } from './job.js';
import { JOB_RESULTS } from './job.js';
import type { JobLock } from './lock.js';

/** A running cron schedule. */
export interface CronHandle {
  stop(): void;
}

/** The cron timer, behind a port so tests fire slots by hand. Adapter: node-cron (cron.ts). */
export interface CronPort {
  /** null when valid, else what is wrong with the expression. */
  validate(expression: string): string | null;
  /** Calls `fire(slotMs)` at every match of `expression` in `timezone`. */
  schedule(expression: string, timezone: string, name: string, fire: (slotMs: number) => void): CronHandle;
}

export interface JobRegistration {
  job: Job;
  /** Cron expression (5 fields, or 6 with seconds). */
  schedule: string;
  timeoutMs: number;
  /** Config path of this job's settings, for error messages (e.g. `/jobs/trimState`). */
  configPath?: string;
}

export interface JobSchedulerOptions {
  lock: JobLock;
  cron: CronPort;
  clock: Clock;
  logger: Logger;
  registry?: Registry;
  /** IANA time zone of every cron expression (config `jobs.timezone`). */
  timezone: string;
  /** How long a slot claim lives: longer than the replicas' clock skew (default 10 min). */
  slotTtlMs?: number;
  /** A running lease outlives the timeout by this much (default 5 s). */
  leaseSlackMs?: number;
}

interface Entry extends JobRegistration {
  handle?: CronHandle;
  /** The run in progress in this process (possibly past its timeout). */
  inflight?: Promise<unknown>;
}

/** Throws CONFIG_INVALID when `tz` is not an IANA time zone this runtime knows. */
export function checkTimezone(tz: string, path = '/jobs/timezone'): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new PoisonInputError('CONFIG_INVALID', 'jobs', [{ path, message: `unknown time zone "${tz}" (use an IANA name like UTC or Europe/Berlin)` }]);
  }
}

class JobMetrics {
  readonly runs: Counter<'job' | 'result'>;
  readonly duration: Histogram<'job'>;
  readonly lastSuccess: Gauge<'job'>;
  constructor(registry: Registry) {
    const existing = registry.getSingleMetric('nodewarden_job_runs_total');
    if (existing) {
      this.runs = existing as Counter<'job' | 'result'>;
      this.duration = registry.getSingleMetric('nodewarden_job_duration_seconds') as Histogram<'job'>;
      this.lastSuccess = registry.getSingleMetric('nodewarden_job_last_success_timestamp_seconds') as Gauge<'job'>;
      return;
    }
    this.runs = new Counter({
      name: 'nodewarden_job_runs_total',
      help: 'Scheduled job runs by job and result (success, error, timeout, overlap, not_elected, lock_error)',
      labelNames: ['job', 'result'],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'nodewarden_job_duration_seconds',
      help: 'Time a scheduled job ran (runs that executed only)',
      labelNames: ['job'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    });
    this.lastSuccess = new Gauge({
      name: 'nodewarden_job_last_success_timestamp_seconds',
      help: 'Unix time of the last successful run of a job in this process',
      labelNames: ['job'],
      registers: [registry],
    });
  }
}

export class JobScheduler {
  private readonly entries = new Map<string, Entry>();
  private readonly metrics: JobMetrics | undefined;
  private readonly log: Logger;
  private readonly slotTtlMs: number;
  private readonly leaseSlackMs: number;
  private readonly aborts = new Set<AbortController>();
  private started = false;
  private stopped = false;

  constructor(private readonly o: JobSchedulerOptions) {
    checkTimezone(o.timezone);
    this.log = o.logger.child({ component: 'jobs' });
    this.metrics = o.registry ? new JobMetrics(o.registry) : undefined;
    this.slotTtlMs = o.slotTtlMs ?? 600_000;
    this.leaseSlackMs = o.leaseSlackMs ?? 5000;
  }

  /** Adds a job; throws CONFIG_INVALID for a bad cron expression or a duplicate name. */
  register(r: JobRegistration): void {
    const path = r.configPath ?? `/jobs/${r.job.name}`;
    if (this.entries.has(r.job.name)) throw new PoisonInputError('CONFIG_INVALID', 'jobs', [{ path, message: `job ${r.job.name} registered twice` }]);
    const problem = this.o.cron.validate(r.schedule);
    if (problem !== null) throw new PoisonInputError('CONFIG_INVALID', 'jobs', [{ path: `${path}/schedule`, message: `invalid cron expression "${r.schedule}": ${problem}` }]);
    if (!(r.timeoutMs > 0)) throw new PoisonInputError('CONFIG_INVALID', 'jobs', [{ path: `${path}/timeout`, message: 'must be more than 0' }]);
    this.entries.set(r.job.name, { ...r });
    // every result starts at 0, so increase() sees the very first failure
    for (const result of JOB_RESULTS) this.metrics?.runs.inc({ job: r.job.name, result }, 0);
    if (this.started) this.arm(this.entries.get(r.job.name) as Entry);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  /** Starts every cron schedule. Idempotent. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    for (const e of this.entries.values()) this.arm(e);
    this.log.info({ jobs: [...this.entries.values()].map((e) => `${e.job.name} (${e.schedule})`), timezone: this.o.timezone }, 'jobs scheduled');
  }

  private arm(e: Entry): void {
    e.handle = this.o.cron.schedule(e.schedule, this.o.timezone, e.job.name, (slot) => {
      // the cron timer must never see a rejection
      this.runNow(e.job.name, slot).catch((err: unknown) => this.log.error({ job: e.job.name, err: errorMessage(err) }, 'job run failed unexpectedly'));
    });
  }

  /**
   * Stops the schedules, aborts runs in progress and waits for them to settle
   * (at most `waitMs`, default 10 s). Idempotent.
   */
  async stop(waitMs = 10_000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const e of this.entries.values()) e.handle?.stop();
    for (const a of this.aborts) a.abort(new NodewardenError('UNAVAILABLE', 'job scheduler stopping'));
    const inflight = [...this.entries.values()].flatMap((e) => (e.inflight ? [e.inflight] : []));
    if (inflight.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(inflight),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, waitMs);
        timer.unref();
      }),
    ]);
    if (timer) clearTimeout(timer);
  }

  /**
   * Runs `name` now, through every guard, as the cron would for slot
   * `scheduledAt` (default: now). Never rejects for a job failure: the report
   * says how it ended.
   */
  async runNow(name: string, scheduledAt?: number): Promise<JobRunReport> {
    const e = this.entries.get(name);
    if (!e) throw new NodewardenError('NOT_FOUND', `no job named ${name}`);
    const job = e.job;
    const log = this.log.child({ job: name });
    if (this.stopped) return this.finish(e, 'not_elected', 0, log, 'scheduler stopped');
    if (e.inflight) {
      log.warn({}, 'previous run still in progress: skipped');
      return this.finish(e, 'overlap', 0, log);
    }
    // marked in flight before the first await, so a second fire cannot slip in
    let done!: () => void;
    e.inflight = new Promise<void>((resolve) => (done = resolve));
    const clear = (): void => {
      e.inflight = undefined;
      done();
    };
    const slot = Math.floor((scheduledAt ?? this.o.clock.now()) / 1000) * 1000;
    let token: string | null = null;
    let late: Promise<unknown> | undefined;
    try {
      try {
        if (job.scope === 'cluster') {
          // the slot first: losing it is the normal case when every replica fires at once
          if (!(await this.o.lock.claimSlot(name, slot, this.slotTtlMs))) return this.finish(e, 'not_elected', 0, log);
          token = await this.o.lock.tryRun(name, e.timeoutMs + this.leaseSlackMs);
          if (token === null) {
            log.warn({}, 'an earlier run is still in progress on another replica: slot skipped');
            return this.finish(e, 'overlap', 0, log, 'an earlier run is still in progress on another replica');
          }
        }
      } catch (err) {
        log.warn({ err: errorMessage(err) }, 'job lock unavailable: run skipped');
        return this.finish(e, 'lock_error', 0, log, errorMessage(err));
      }
      const out = await this.execute(e, slot, log);
      late = out.late;
      return out.report;
    } finally {
      if (token !== null) {
        const t = token;
        await this.o.lock.release(name, t).catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'job lock release failed (the lease expires by itself)'));
      }
      // after a timeout the overlap flag stays until the job itself settles
      if (late) void late.then(clear);
      else clear();
    }
  }

  private async execute(e: Entry, slot: number, log: Logger): Promise<{ report: JobRunReport; late?: Promise<unknown> }> {
    const ac = new AbortController();
    this.aborts.add(ac);
    const now = this.o.clock.now();
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => {
        ac.abort(new NodewardenError('TIMEOUT', `job ${e.job.name} timed out after ${e.timeoutMs} ms`));
        resolve('timeout');
      }, e.timeoutMs);
      timer.unref();
    });
    let run: Promise<JobSummary | undefined>;
    try {
      run = e.job.run({ signal: ac.signal, now, scheduledAt: slot, logger: log });
    } catch (err) {
      run = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    // a job that loses the race still settles later: its rejection is observed here, never unhandled
    const settled = run.then(
      (summary) => ({ ok: true as const, summary }),
      (err: unknown) => ({ ok: false as const, err }),
    );
    try {
      const r = await Promise.race([settled, timedOut]);
      const secs = (performance.now() - started) / 1000;
      if (r === 'timeout') {
        log.error({ timeoutMs: e.timeoutMs }, 'job timed out');
        const late = settled.then((x) => {
          if (!x.ok) log.warn({ err: errorMessage(x.err) }, 'timed-out job ended with an error');
          else log.info({}, 'timed-out job finished late');
        });
        return { report: this.finish(e, 'timeout', secs, log, `timed out after ${e.timeoutMs} ms`), late };
      }
      if (!r.ok) {
        log.error({ err: errorMessage(r.err) }, 'job failed');
        return { report: this.finish(e, 'error', secs, log, errorMessage(r.err)) };
      }
      this.metrics?.lastSuccess.set({ job: e.job.name }, Math.floor(this.o.clock.now() / 1000));
      return { report: this.finish(e, 'success', secs, log, undefined, r.summary) };
    } finally {
      if (timer) clearTimeout(timer);
      this.aborts.delete(ac);
    }
  }

  private finish(e: Entry, result: JobResult, secs: number, log: Logger, error?: string, summary?: JobSummary): JobRunReport {
    this.metrics?.runs.inc({ job: e.job.name, result });
    const ran = result === 'success' || result === 'error' || result === 'timeout';
    if (ran) this.metrics?.duration.observe({ job: e.job.name }, secs);
    if (result === 'success') log.info({ durationMs: Math.round(secs * 1000), ...(summary ?? {}) }, 'job done');
    else if (result === 'not_elected') log.debug({}, 'another replica took this slot');
    return { job: e.job.name, result, durationSeconds: ran ? secs : 0, ...(summary ? { summary } : {}), ...(error !== undefined ? { error } : {}) };
  }
}
