/**
 * Bounded exponential back-off with full jitter, and a start-up step runner
 * that keeps retrying a dependency (broker, Redis, Kubernetes API) while the
 * process stays observable: every failed attempt is recorded so `/readyz`
 * can name the failing check, and logged as one line.
 */
import { errorMessage } from './errors.js';
import type { Logger } from './logger.js';

export interface BackoffPolicy {
  /** First wait (ms). */
  baseMs: number;
  /** Cap of one wait (ms). */
  maxMs: number;
}

/*
 * The one back-off formula of the code base: every retry loop (start-up
 * steps, the remediator's retry queue, the pagers, the agent's publisher and
 * kube-proxy watch, the engine's Kubernetes watches) waits one of these three.
 */

/** Wait before attempt `attempt + 1` (attempt counts from 1) without jitter: base·2^(attempt-1), capped at maxMs. */
export function exponentialDelay(attempt: number, p: BackoffPolicy): number {
  return Math.min(p.maxMs, p.baseMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
}

/** exponentialDelay with jitter in [½, 1] of it. */
export function backoffDelay(attempt: number, p: BackoffPolicy, random: () => number = Math.random): number {
  const exp = exponentialDelay(attempt, p);
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/** exponentialDelay with full jitter: anywhere in [0, 1] of it. */
export function fullJitterDelay(attempt: number, p: BackoffPolicy, random: () => number = Math.random): number {
  return Math.round(exponentialDelay(attempt, p) * random());
}

/** One dependency the process waits for at start-up. */
export interface StartupStep {
  name: string;
  run: () => Promise<unknown>;
}

/** The state of start-up, for readiness: null while every step so far succeeded. */
export interface StartupStatus {
  done: boolean;
  /** The step being attempted and why its last attempt failed. */
  failing: { step: string; attempts: number; error: string; nextRetryMs: number } | null;
  /** The step now running and since when (ms), while start-up is not done. */
  current?: { step: string; since: number };
}

/** One line for readiness: what start-up waits for. */
export function describeStartup(s: StartupStatus, now: number): string {
  if (s.done) return 'started';
  if (s.failing) return `waiting for ${s.failing.step} (attempt ${s.failing.attempts}): ${s.failing.error}`;
  if (s.current) return `waiting for ${s.current.step} (attempt 1, ${Math.round((now - s.current.since) / 1000)} s so far)`;
  return 'starting';
}

/**
 * Runs the steps in order, retrying each until it succeeds or `stopped()`
 * says the process is shutting down (then resolves false). Never throws for
 * a step's failure: a dependency that is down is waited for, not fatal.
 */
export class StartupRunner {
  private st: StartupStatus = { done: false, failing: null };
  private wake: (() => void) | undefined;
  private stopRequested = false;

  constructor(
    private readonly o: { logger: Logger; policy?: BackoffPolicy; sleep?: (ms: number) => Promise<void> },
  ) {}

  get status(): StartupStatus {
    return this.st;
  }

  /** Stops waiting (shutdown): the running `run` resolves false after the current attempt. */
  stop(): void {
    this.stopRequested = true;
    this.wake?.();
  }

  async run(steps: readonly StartupStep[]): Promise<boolean> {
    const policy = this.o.policy ?? { baseMs: 500, maxMs: 15_000 };
    for (const step of steps) {
      for (let attempt = 1; ; attempt++) {
        if (this.stopRequested) return false;
        this.st = { ...this.st, current: { step: step.name, since: Date.now() } };
        try {
          await step.run();
          if (attempt > 1) this.o.logger.info({ step: step.name, attempts: attempt }, `${step.name} is up`);
          this.st = { done: false, failing: null };
          break;
        } catch (err) {
          const wait = backoffDelay(attempt, policy);
          const error = errorMessage(err);
          this.st = { done: false, failing: { step: step.name, attempts: attempt, error, nextRetryMs: wait }, current: { step: step.name, since: Date.now() } };
          this.o.logger.warn({ step: step.name, attempt, retryInMs: wait, err: error }, `waiting for ${step.name}: ${error}`);
          await this.sleep(wait);
        }
      }
    }
    this.st = { done: true, failing: null };
    return true;
  }

  private sleep(ms: number): Promise<void> {
    if (this.o.sleep) return this.o.sleep(ms);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }
}
