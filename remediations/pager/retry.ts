/**
 * Retrying an HTTP delivery: 429 and 5xx (and network errors) are retried with
 * exponential back-off and full jitter, waiting at least what Retry-After asks;
 * any other 4xx is final (the request itself is wrong; retrying cannot help).
 */
import type { AxiosInstance } from 'axios';
import { isAxiosError } from 'axios';
import { fullJitterDelay } from '../../core/backoff.js';
import { NodewardenError } from '../../core/errors.js';
import type { ErrorCode } from '../../core/errors.js';

export interface RetryPolicy {
  /** Total attempts including the first (default 5). */
  maxAttempts: number;
  /** First back-off step (default 500 ms). */
  baseMs: number;
  /** Cap of one wait (default 30 s); also caps a Retry-After. */
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, baseMs: 500, maxMs: 30_000 };

export type Sleep = (ms: number) => Promise<void>;

/** What every HTTP sender (PagerDuty, Slack webhook and Web API, the digest) takes for its transport and retries. */
export interface HttpSenderOptions {
  http?: AxiosInstance;
  retry?: Partial<RetryPolicy>;
  timeoutMs?: number;
  sleep?: Sleep;
  random?: () => number;
}
export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Retry-After as ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(v: unknown, now = Date.now()): number | undefined {
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  const s = String(v).trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** How an attempt failed, as far as retrying is concerned. */
export interface Failure {
  status?: number;
  retryAfterMs?: number;
  retriable: boolean;
  message: string;
  /** The error code when the API said more than its HTTP status (Slack's `ok:false`). */
  code?: ErrorCode;
}

/** An attempt that failed in a way the API told in its body (HTTP 200 with an error): classified as given. */
export class AttemptFailure extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
  }
}

/** Classifies an axios error without keeping the request (whose body may hold a secret). */
export function classify(err: unknown): Failure {
  if (err instanceof AttemptFailure) return err.failure;
  if (isAxiosError(err)) {
    const status = err.response?.status;
    if (status === undefined) return { retriable: true, message: `network error ${err.code ?? ''}`.trim() };
    const retryAfterMs = parseRetryAfter(err.response?.headers?.['retry-after']);
    const retriable = status === 429 || status >= 500;
    return { status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }), retriable, message: `HTTP ${status}` };
  }
  return { retriable: false, message: err instanceof Error ? err.message : String(err) };
}

export function backoffMs(attempt: number, p: RetryPolicy, random: () => number, retryAfterMs?: number): number {
  const jittered = fullJitterDelay(attempt + 1, p, random);
  return retryAfterMs === undefined ? jittered : Math.min(p.maxMs, Math.max(retryAfterMs, jittered));
}

/**
 * Runs `attempt` until it succeeds, a final failure, or maxAttempts.
 * The thrown NodewardenError names the target and the last status only.
 */
export async function withRetry<T>(
  what: string,
  attempt: () => Promise<T>,
  o: { policy: RetryPolicy; sleep: Sleep; random: () => number; onRetry?: (f: Failure, waitMs: number, n: number) => void },
): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      const f = classify(err);
      if (!f.retriable || n + 1 >= o.policy.maxAttempts) {
        const code = f.code ?? (f.status === 429 ? 'RATE_LIMITED' : f.status !== undefined && f.status < 500 ? 'REQUEST_INVALID' : 'UNAVAILABLE');
        // cause carries the status only: the axios error holds the request body (routing key, webhook URL)
        throw new NodewardenError(code, `${what}: ${f.message}${f.retriable ? ` after ${n + 1} attempts` : ' (not retried)'}`, {
          retriable: f.retriable,
          cause: { status: f.status },
        });
      }
      const wait = backoffMs(n, o.policy, o.random, f.retryAfterMs);
      o.onRetry?.(f, wait, n + 1);
      await o.sleep(wait);
    }
  }
}
