/**
 * Scheduled operations jobs: small periodic chores of the engine (refresh the
 * cluster view, resolve pages nobody else will, record toggle expiries, trim
 * Redis, post the daily digest). Each job is a function behind ports; the
 * scheduler owns timing, overlap, cross-replica election, timeouts, metrics
 * and error handling, so a job only does its chore.
 */
import type { Logger } from '../core/logger.js';

/** What a run gets from the scheduler. */
export interface JobContext {
  /** Aborted when the run exceeds its timeout or the scheduler stops: stop at the next await. */
  signal: AbortSignal;
  /** ms since epoch when the run started (the injected clock). */
  now: number;
  /** ms since epoch of the cron slot this run belongs to (= now for a manual run). */
  scheduledAt: number;
  logger: Logger;
}

/** Numbers worth a log line (what the run did); never secrets. */
export type JobSummary = Record<string, number | string | boolean | null>;

/** One named chore. */
export interface Job {
  readonly name: string;
  /**
   * Where the run is elected: `cluster` = one replica per cron slot (a Redis
   * lock when the engine runs on Redis), `replica` = every replica runs it for
   * itself (e.g. refreshing its own cluster view). Overlap with itself is
   * prevented in both.
   */
  readonly scope: 'cluster' | 'replica';
  run(ctx: JobContext): Promise<JobSummary | undefined>;
}

/** How a run ended; also the `result` label of `nodewarden_job_runs_total`. */
export const JOB_RESULTS = ['success', 'error', 'timeout', 'overlap', 'not_elected', 'lock_error'] as const;
export type JobResult = (typeof JOB_RESULTS)[number];

export interface JobRunReport {
  job: string;
  result: JobResult;
  /** Seconds the job itself ran (0 when it did not run). */
  durationSeconds: number;
  summary?: JobSummary;
  error?: string;
}

/** Throws if the run was aborted (timeout or shutdown): jobs call it between steps. */
export function checkAborted(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
}
