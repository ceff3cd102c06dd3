/**
 * The one-message-per-interval slot of a Slack webhook (Slack allows about
 * one message per second per channel). Everything that posts to the same
 * webhook in a process — the Slack pager and the daily digest — takes its
 * slot from ONE limiter, so together they stay within the limit; a 429's
 * Retry-After pushes the next slot back for all of them.
 */
import axios from 'axios';
import type { AxiosInstance, AxiosResponse } from 'axios';
import type { DocStore } from '../incidents/doc-store.js';
import { updateDoc } from '../incidents/doc-store.js';
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

/** Paging-store namespace of the shared Slack slots: one document per channel, `{ next }` (ms since the epoch). */
export const SLACK_SLOT_NS = 'slack-slot';

/**
 * The same one-message-per-interval slot, shared by every replica through the
 * paging store (Redis in production: a compare-and-set per slot, so two
 * replicas never take the same second; memory in the demo). The slot is
 * reserved before waiting, like the local limiter. If the store fails, the
 * process falls back to its own `local` limiter (the page still goes out;
 * Slack's 429 and its Retry-After remain the last word) and `onError` is told.
 */
export function createSharedSlackLimiter(o: {
  store: DocStore;
  /** The channel, as configured (every replica names it the same). */
  key: string;
  minIntervalMs?: number;
  now?: () => number;
  sleep?: Sleep;
  onError?: (err: unknown) => void;
}): SlackLimiter {
  const minIntervalMs = o.minIntervalMs ?? 1000;
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? realSleep;
  const local = createSlackLimiter({ minIntervalMs, now, sleep });
  // the document outlives its slot by a minute, so an idle channel leaves nothing behind
  const ttl = (d: { next: number }): number => Math.max(1, d.next - now()) + 60_000;
  const update = (f: (next: number) => { at: number; next: number }): Promise<number> =>
    updateDoc<{ next: number }, number>(
      o.store,
      SLACK_SLOT_NS,
      o.key,
      (cur) => {
        const r = f(typeof cur?.next === 'number' && Number.isFinite(cur.next) ? cur.next : 0);
        return { doc: { next: r.next }, result: r.at };
      },
      ttl,
    ).then((r) => r.result);
  return {
    async take(): Promise<void> {
      let at: number;
      try {
        at = await update((next) => {
          const slot = Math.max(now(), next);
          return { at: slot, next: slot + minIntervalMs };
        });
      } catch (err) {
        o.onError?.(err);
        return local.take();
      }
      const wait = at - now();
      if (wait > 0) await sleep(wait);
    },
    holdFor(ms: number): void {
      local.holdFor(ms);
      // no replica's next slot before now + ms
      update((next) => ({ at: 0, next: Math.max(next, now() + ms) })).catch((err: unknown) => o.onError?.(err));
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
