/**
 * DigestSender over a Slack incoming webhook (the same webhook as the Slack
 * pager, config `pager.slack`): one POST with retries on 429/5xx honouring
 * Retry-After (remediations/pager/retry.ts), in a slot of the limiter the
 * Slack pager uses, so pages and the digest together keep Slack's one
 * message per second. The webhook URL is the credential: it is never logged.
 */
import axios from 'axios';
import type { Logger } from '../core/logger.js';
import type { SlackMessage } from '../remediations/pager/slack.js';
import type { HttpSenderOptions } from '../remediations/pager/retry.js';
import { DEFAULT_RETRY, realSleep, withRetry } from '../remediations/pager/retry.js';
import type { SlackLimiter } from '../remediations/pager/slack-limiter.js';
import { createSlackLimiter, postInSlot } from '../remediations/pager/slack-limiter.js';
import type { DigestSender } from './daily-digest.js';

export interface SlackDigestSenderOptions extends HttpSenderOptions {
  webhookUrl: string;
  logger: Logger;
  /** The Slack pager's limiter (same webhook); default: its own at `minIntervalMs`. */
  limiter?: SlackLimiter;
  minIntervalMs?: number;
}

export function createSlackDigestSender(o: SlackDigestSenderOptions): DigestSender {
  const http = o.http ?? axios.create();
  const policy = { ...DEFAULT_RETRY, ...o.retry };
  const limiter = o.limiter ?? createSlackLimiter({ minIntervalMs: o.minIntervalMs ?? 1000, ...(o.sleep ? { sleep: o.sleep } : {}) });
  return {
    async send(message: SlackMessage): Promise<void> {
      await withRetry(
        'slack digest',
        () => postInSlot(http, o.webhookUrl, message, limiter, o.timeoutMs ?? 10_000),
        {
          policy,
          sleep: o.sleep ?? realSleep,
          random: o.random ?? Math.random,
          onRetry: (f, waitMs, n) => o.logger.warn({ status: f.status, waitMs, attempt: n }, 'slack digest: retrying'),
        },
      );
    },
  };
}
