/**
 * Slack incoming webhook: Block Kit `blocks` plus a fallback `text`.
 * `createSlackWebhook` is the one client of a webhook: every message to it
 * (the Slack pager's, the daily digest's) leaves through it, at most one per
 * `minIntervalMs` (Slack allows about one per second per channel) from ONE
 * limiter, with retries on 429/5xx honouring Retry-After; a 429 holds the
 * next slot back for every sender. The pager groups a burst of pages within
 * `groupWindowMs` into ONE message. The webhook URL is a secret (it is the
 * credential): never logged.
 */
import axios from 'axios';
import type { Logger } from '../../core/logger.js';
import { errorMessage, NodewardenError } from '../../core/errors.js';
import type { PageRequest, Pager } from './pager.js';
import { truncate } from './pager.js';
import type { HttpSenderOptions } from './retry.js';
import { DEFAULT_RETRY, realSleep, withRetry } from './retry.js';
import { createSlackLimiter, postInSlot } from './slack-limiter.js';

export interface SlackWebhookOptions extends HttpSenderOptions {
  url: string;
  logger: Logger;
  /** At most one message per this interval (default 1000 ms). */
  minIntervalMs?: number;
  now?: () => number;
}

/** One Slack incoming webhook: the pager and the daily digest (jobs/) post through the same one. */
export interface SlackWebhook {
  /** Posts one message in the next free slot, retrying 429/5xx; rejects on a final failure. `what` names it in errors and logs. */
  send(message: SlackMessage, what?: string): Promise<void>;
}

export function createSlackWebhook(o: SlackWebhookOptions): SlackWebhook {
  const http = o.http ?? axios.create();
  const policy = { ...DEFAULT_RETRY, ...o.retry };
  const sleep = o.sleep ?? realSleep;
  const limiter = createSlackLimiter({ minIntervalMs: o.minIntervalMs ?? 1000, now: o.now ?? Date.now, sleep });
  return {
    async send(message: SlackMessage, what = 'slack message'): Promise<void> {
      await withRetry(what, () => postInSlot(http, o.url, message, limiter, o.timeoutMs ?? 10_000), {
        policy,
        sleep,
        random: o.random ?? Math.random,
        onRetry: (f, waitMs, n) => o.logger.warn({ status: f.status, waitMs, attempt: n, what }, 'slack: retrying'),
      });
    },
  };
}

export interface SlackOptions {
  /** The webhook the pages go to, shared with every other sender to it (the daily digest). */
  webhook: SlackWebhook;
  logger: Logger;
  /** Pages arriving within this window of the first one are grouped (default 2 s). */
  groupWindowMs?: number;
}

export interface SlackBlock {
  type: string;
  text?: { type: 'plain_text' | 'mrkdwn'; text: string };
  elements?: Array<{ type: 'mrkdwn' | 'plain_text'; text: string } | SlackButton>;
}

/** A Block Kit button (in an `actions` block). */
export interface SlackButton {
  type: 'button';
  action_id: string;
  value: string;
  text: { type: 'plain_text'; text: string };
  style?: 'primary' | 'danger';
}

export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
}

/** Items shown in full in one message; Block Kit allows 50 blocks (header + 2 per item + "more"). */
const MAX_ITEMS = 20;
const SEVERITY_ICON: Record<string, string> = { critical: ':red_circle:', error: ':large_orange_circle:', warning: ':warning:', info: ':information_source:' };

export function buildSlackMessage(reqs: readonly PageRequest[]): SlackMessage {
  const label = (r: PageRequest): string => (r.event === 'resolve' ? 'RESOLVED' : r.severity.toUpperCase());
  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: truncate(reqs.length === 1 ? `nodewarden: ${label(reqs[0] as PageRequest)}` : `nodewarden: ${reqs.length} alerts`, 150) } },
  ];
  for (const r of reqs.slice(0, MAX_ITEMS)) {
    const icon = r.event === 'resolve' ? ':white_check_mark:' : (SEVERITY_ICON[r.severity] ?? '');
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: truncate(`${icon} *${label(r)}* ${r.summary}`, 3000) } });
    const ctx = [`rule \`${r.rule}\``, `source \`${r.source}\``, r.group ? `group \`${r.group}\`` : '', `key \`${r.dedupKey}\``].filter(Boolean).join(' · ');
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: truncate(ctx, 3000) }] });
  }
  if (reqs.length > MAX_ITEMS) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `…and ${reqs.length - MAX_ITEMS} more` } });
  const text =
    reqs.length === 1
      ? `[${label(reqs[0] as PageRequest)}] ${(reqs[0] as PageRequest).summary}`
      : `nodewarden: ${reqs.length} alerts: ${reqs.map((r) => `[${label(r)}] ${r.summary}`).join('; ')}`;
  return { text: truncate(text, 3000), blocks };
}

interface Waiter {
  req: PageRequest;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface SlackPager extends Pager {
  /** Messages posted so far (for metrics and tests). */
  readonly sentMessages: number;
  flush(): Promise<void>;
  close(): Promise<void>;
}

export function createSlackPager(o: SlackOptions): SlackPager {
  const groupWindowMs = o.groupWindowMs ?? 2000;
  let group: Waiter[] = [];
  let groupTimer: NodeJS.Timeout | undefined;
  const queue: Waiter[][] = [];
  let pumping: Promise<void> | undefined;
  let sent = 0;
  let closed = false;

  function closeGroup(): void {
    if (groupTimer) clearTimeout(groupTimer);
    groupTimer = undefined;
    if (group.length === 0) return;
    queue.push(group);
    group = [];
    pump();
  }

  function pump(): void {
    pumping ??= (async () => {
      try {
        for (let batch = queue.shift(); batch; batch = queue.shift()) await deliver(batch);
      } finally {
        pumping = undefined;
      }
    })();
  }

  async function deliver(batch: Waiter[]): Promise<void> {
    const msg = buildSlackMessage(batch.map((w) => w.req));
    try {
      // a message leaves only when its slot (shared with the digest) has come
      await o.webhook.send(msg, `slack message of ${batch.length} page(s)`);
      sent++;
      o.logger.info({ pages: batch.length }, 'slack: message sent');
      for (const w of batch) w.resolve();
    } catch (err) {
      const e = err instanceof Error ? err : new NodewardenError('UNAVAILABLE', errorMessage(err));
      o.logger.error({ err: e.message, pages: batch.length }, 'slack: message failed');
      for (const w of batch) w.reject(e);
    }
  }

  async function flush(): Promise<void> {
    closeGroup();
    while (pumping) await pumping;
  }

  return {
    name: 'slack',
    get sentMessages() {
      return sent;
    },
    send(req: PageRequest): Promise<void> {
      if (closed) return Promise.reject(new NodewardenError('UNAVAILABLE', 'slack pager closed'));
      return new Promise<void>((resolve, reject) => {
        group.push({ req, resolve, reject });
        if (!groupTimer) {
          groupTimer = setTimeout(closeGroup, groupWindowMs);
          groupTimer.unref();
        }
      });
    },
    flush,
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await flush();
    },
  };
}
