/**
 * Slack Web API (bot token): ONE message per incident. The incident's trigger
 * is a `chat.postMessage`; its updates, repeats and resolve `chat.update` that
 * same message. Where the message is (the channel ID Slack answered — chat.update
 * wants an ID, not a name — and its `ts`) is kept in the paging store keyed by
 * the dedup key, so whichever engine replica sends the next update edits it.
 * Approval requests are messages with Approve / Deny buttons (the action ids
 * the interactivity webhook understands), edited when the approval is decided.
 *
 * Slack answers HTTP 200 with `{ok:false, error}` for most failures:
 * `ratelimited` (also HTTP 429 with Retry-After) and Slack's own transient
 * errors are retried with back-off; `invalid_auth`, `channel_not_found` and
 * the like are final, with a one-line error naming Slack's code. The bot
 * token is the credential: it is sent as `Authorization: Bearer` only and
 * never logged. Posting waits for the channel's slot of the shared Slack
 * limiter (about one message per second per channel).
 */
import axios from 'axios';
import type { Logger } from '../../core/logger.js';
import type { ErrorCode } from '../../core/errors.js';
import { errorMessage } from '../../core/errors.js';
import type { Approval } from '../approvals/approvals.js';
import type { DocStore } from '../incidents/doc-store.js';
import { APPROVE_ACTION, DENY_ACTION } from '../webhooks/slack-interactivity.js';
import type { PageRequest, Pager } from './pager.js';
import { truncate } from './pager.js';
import type { HttpSenderOptions } from './retry.js';
import { AttemptFailure, DEFAULT_RETRY, parseRetryAfter, realSleep, withRetry } from './retry.js';
import type { SlackBlock } from './slack.js';
import { buildSlackMessage } from './slack.js';
import { createSharedSlackLimiter } from './slack-limiter.js';

export const SLACK_API_URL = 'https://slack.com/api';
/** Paging-store namespaces of the message references. */
export const SLACK_MESSAGE_NS = 'slack-message';
export const SLACK_APPROVAL_NS = 'slack-approval';

/** Slack error codes worth another attempt; every other one is final. */
const TRANSIENT = new Set(['ratelimited', 'internal_error', 'fatal_error', 'service_unavailable', 'request_timeout']);
const AUTH = new Set(['invalid_auth', 'not_authed', 'account_inactive', 'token_revoked', 'token_expired', 'missing_scope', 'no_permission']);

export interface SlackApiOptions extends HttpSenderOptions {
  token: string;
  /** Channel ID or name the messages go to. */
  channel: string;
  /** Base URL of the Web API (default https://slack.com/api). */
  url?: string;
  store: DocStore;
  logger: Logger;
  minIntervalMs?: number;
  /** How long a message reference is kept (default 7 d, like a resolved incident). */
  keepMs?: number;
  now?: () => number;
}

export interface SlackMessageRef {
  channel: string;
  ts: string;
  resolved?: boolean;
}

interface SlackApiAnswer {
  ok?: boolean;
  error?: string;
  channel?: string;
  ts?: string;
}

/** The Web API calls nodewarden makes, rate-limited per channel and retried. */
export interface SlackApiClient {
  post(body: { text: string; blocks: SlackBlock[] }): Promise<SlackMessageRef>;
  update(ref: SlackMessageRef, body: { text: string; blocks: SlackBlock[] }): Promise<void>;
}

export function createSlackApiClient(o: SlackApiOptions): SlackApiClient {
  const http = o.http ?? axios.create();
  const base = (o.url ?? SLACK_API_URL).replace(/\/+$/, '');
  const policy = { ...DEFAULT_RETRY, ...o.retry };
  const sleep = o.sleep ?? realSleep;
  const now = o.now ?? Date.now;
  // One limiter: every call of this client goes to the one configured channel (posts by its name, updates by
  // the ID Slack answered), and it is shared by every replica through the paging store, keyed by the configured
  // name (a replica that never posted knows the channel only by the ID in a stored message reference).
  const limiter = createSharedSlackLimiter({
    store: o.store,
    key: o.channel,
    minIntervalMs: o.minIntervalMs ?? 1000,
    sleep,
    now,
    onError: (err) => o.logger.warn({ channel: o.channel, err: errorMessage(err) }, 'slack api: shared rate-limit slot unavailable; spacing calls in this replica only'),
  });

  async function call(method: 'chat.postMessage' | 'chat.update', body: Record<string, unknown>): Promise<SlackApiAnswer> {
    return withRetry(
      `slack ${method}`,
      async () => {
        await limiter.take();
        let answer: SlackApiAnswer;
        try {
          const r = await http.post<SlackApiAnswer>(`${base}/${method}`, body, {
            timeout: o.timeoutMs ?? 10_000,
            headers: { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${o.token}` },
          });
          answer = r.data;
        } catch (err) {
          const raMs = parseRetryAfter(axios.isAxiosError(err) ? err.response?.headers?.['retry-after'] : undefined);
          if (raMs !== undefined) limiter.holdFor(raMs);
          throw err;
        }
        if (typeof answer !== 'object' || answer === null) throw new AttemptFailure({ retriable: true, message: 'answer is not JSON' });
        if (answer.ok === true) return answer;
        const error = typeof answer.error === 'string' ? answer.error.slice(0, 100) : 'unknown_error';
        const code: ErrorCode = error === 'ratelimited' ? 'RATE_LIMITED' : AUTH.has(error) ? 'UNAUTHORIZED' : TRANSIENT.has(error) ? 'UNAVAILABLE' : error.endsWith('not_found') ? 'NOT_FOUND' : 'REQUEST_INVALID';
        throw new AttemptFailure({ retriable: TRANSIENT.has(error), message: `Slack error ${error}`, code });
      },
      { policy, sleep, random: o.random ?? Math.random, onRetry: (f, waitMs, n) => o.logger.warn({ method, status: f.status, reason: f.message, waitMs, attempt: n }, 'slack api: retrying') },
    );
  }

  return {
    async post(body) {
      const a = await call('chat.postMessage', { channel: o.channel, ...body });
      if (typeof a.channel !== 'string' || typeof a.ts !== 'string') throw new AttemptFailure({ retriable: false, message: 'slack chat.postMessage: answer without channel/ts', code: 'UNAVAILABLE' });
      return { channel: a.channel, ts: a.ts };
    },
    async update(ref, body) {
      await call('chat.update', { channel: ref.channel, ts: ref.ts, ...body });
    },
  };
}

/** The incident pager: post once, then edit the same message. */
export function createSlackApiPager(o: SlackApiOptions, client: SlackApiClient = createSlackApiClient(o)): Pager {
  const keepMs = o.keepMs ?? 7 * 24 * 3_600_000;
  return {
    name: 'slack-api',
    async send(req: PageRequest): Promise<void> {
      const msg = buildSlackMessage([req]);
      const cur = (await o.store.read<SlackMessageRef>(SLACK_MESSAGE_NS, req.dedupKey)) ?? null;
      const resolved = req.event === 'resolve';
      if (cur && !cur.doc.resolved) {
        try {
          await client.update(cur.doc, msg);
          if (resolved) await o.store.write(SLACK_MESSAGE_NS, req.dedupKey, { ...cur.doc, resolved }, cur.version, keepMs);
          o.logger.info({ dedupKey: req.dedupKey, event: req.event }, 'slack api: message updated');
          return;
        } catch (err) {
          // deleted by someone: a fresh message carries the news
          if (!(err instanceof Error && /message_not_found/.test(err.message))) throw err;
        }
      }
      // no message of ours to edit (or one already resolved: a reopened incident): a new message
      const ref = await client.post(msg);
      await o.store.write(SLACK_MESSAGE_NS, req.dedupKey, { ...ref, ...(resolved ? { resolved } : {}) }, cur?.version ?? 0, keepMs);
      o.logger.info({ dedupKey: req.dedupKey, event: req.event }, 'slack api: message posted');
    },
  };
}

/** Block Kit of an approval request: what, why, and the buttons (pending only). */
export function buildApprovalMessage(a: Approval): { text: string; blocks: SlackBlock[] } {
  const d = a.decision;
  const target = `${d.target.kind}/${d.target.namespace ? `${d.target.namespace}/` : ''}${d.target.name}`;
  const what = `${d.action} ${target}`;
  const state = a.state === 'pending' ? `waiting for approval until ${new Date(a.deadline).toISOString()}` : `${a.state === 'executed' ? 'approved' : a.state}${a.by ? ` by ${a.by}` : ''}`;
  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: truncate(`nodewarden: approve ${what}?`, 150) } },
    { type: 'section', text: { type: 'mrkdwn', text: truncate(`*${d.action}* \`${target}\` (rule \`${d.rule}\`): ${d.reason}`, 3000) } },
    { type: 'context', elements: [{ type: 'mrkdwn', text: truncate(`decision \`${a.id}\` · ${state}`, 3000) }] },
  ];
  if (a.state === 'pending')
    blocks.push({
      type: 'actions',
      elements: [
        { type: 'button', action_id: APPROVE_ACTION, value: a.id, style: 'primary', text: { type: 'plain_text', text: 'Approve' } },
        { type: 'button', action_id: DENY_ACTION, value: a.id, style: 'danger', text: { type: 'plain_text', text: 'Deny' } },
      ],
    });
  return { text: truncate(`nodewarden: ${what} — ${state}`, 3000), blocks };
}

export interface SlackApprovalNotifier {
  requested(a: Approval): Promise<void>;
  decided(a: Approval): Promise<void>;
}

export function createSlackApprovalNotifier(o: SlackApiOptions, client: SlackApiClient = createSlackApiClient(o)): SlackApprovalNotifier {
  const keepMs = o.keepMs ?? 7 * 24 * 3_600_000;
  return {
    async requested(a) {
      const ref = await client.post(buildApprovalMessage(a));
      await o.store.write(SLACK_APPROVAL_NS, a.id, ref, 0, keepMs);
    },
    async decided(a) {
      const cur = await o.store.read<SlackMessageRef>(SLACK_APPROVAL_NS, a.id);
      if (!cur) return;
      await client.update(cur.doc, buildApprovalMessage(a));
    },
  };
}
