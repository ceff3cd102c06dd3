/**
 * The one-message-per-interval slot of a Slack webhook (Slack allows about
 * one message per second per channel). Everything that posts to the same
 * webhook in a process — the Slack pager and the daily digest — takes its
 * slot from ONE limiter, so together they stay within the limit; a 429's
 * Retry-After pushes the next slot back for all of them.
 */
import axios from 'axios';
import type { AxiosInstance, AxiosResponse } from 'axios';
import type { Sleep } from './retry.js';
import { parseRetryAfter, realSleep } from './retry.js';

export interface SlackLimiter {
  /** Waits for the next free slot (slots are handed out in call order). */
  take(): Promise<void>;
  /** No slot before `ms` from now (a 429's Retry-After). */
  holdFor(ms: number): void;
}

export function createSlackLimiter(o: { minIntervalMs?: number; now?: () => number; sleep?: Sleep } = {}): SlackLimiter {
  const minIntervalMs = o.minIntervalMs ?? 1000;
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? realSleep;
  let nextAllowedAt = 0;
  return {
    async take(): Promise<void> {
      // a token bucket of one: the slot is reserved before waiting, so concurrent senders queue up
      const at = Math.max(now(), nextAllowedAt);
      nextAllowedAt = at + minIntervalMs;
      const wait = at - now();
      if (wait > 0) await sleep(wait);
    },
    holdFor(ms: number): void {
      nextAllowedAt = Math.max(nextAllowedAt, now() + ms);
    },
  };
}

/** One POST of a message to a webhook in its slot; a 429/503 Retry-After holds the limiter. */
export async function postInSlot(http: AxiosInstance, url: string, body: unknown, limiter: SlackLimiter, timeoutMs: number): Promise<AxiosResponse> {
  await limiter.take();
  try {
    return await http.post(url, body, { timeout: timeoutMs, headers: { 'content-type': 'application/json' } });
  } catch (err) {
    const ra: unknown = axios.isAxiosError(err) ? err.response?.headers?.['retry-after'] : undefined;
    const raMs = parseRetryAfter(ra);
    if (raMs !== undefined) limiter.holdFor(raMs);
    throw err;
  }
}
