/**
 * DigestSender over a Slack incoming webhook (the same webhook as the Slack
 * pager, config `pager.slack`): one POST with retries on 429/5xx honouring
 * Retry-After (remediations/pager/retry.ts). The webhook URL is the
 * credential: it is never logged.
 */
import axios from 'axios';
import type { AxiosInstance } from 'axios';
import type { Logger } from '../../core/logger.js';
import type { SlackMessage } from '../../remediations/pager/slack.js';
import type { RetryPolicy, Sleep } from '../../remediations/pager/retry.js';
import { DEFAULT_RETRY, realSleep, withRetry } from '../../remediations/pager/retry.js';
import type { DigestSender } from './daily-digest.js';

export interface SlackDigestSenderOptions {
  webhookUrl: string;
  logger: Logger;
  http?: AxiosInstance;
  retry?: Partial<RetryPolicy>;
  timeoutMs?: number;
  sleep?: Sleep;
  random?: () => number;
}

export function createSlackDigestSender(o: SlackDigestSenderOptions): DigestSender {
  const http = o.http ?? axios.create();
  const policy = { ...DEFAULT_RETRY, ...o.retry };
  return {
    async send(message: SlackMessage): Promise<void> {
      await withRetry(
        'slack digest',
        () => http.post(o.webhookUrl, message, { timeout: o.timeoutMs ?? 10_000, headers: { 'content-type': 'application/json' } }),
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
