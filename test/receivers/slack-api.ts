/**
 * A local Slack Web API receiver for tests: a real HTTP server on a free
 * loopback port serving `chat.postMessage` and `chat.update` as documented
 * (docs.slack.dev): `Authorization: Bearer <bot token>`, a JSON body checked
 * against the method's arguments (slackApiRequestValidator), answers
 * `{ok:true, channel, ts, message}`; `{ok:false, error}` for a wrong token
 * (`invalid_auth`), an unknown channel (`channel_not_found`; chat.update wants
 * the channel ID) and an unknown `ts` (`message_not_found`). Keeps the
 * messages by channel and ts, counts calls that came less than
 * `minIntervalMs` after the previous one in the same channel, and can inject
 * Slack errors for the next calls (`ratelimited` as HTTP 429 + Retry-After).
 */
import http from 'node:http';
import type { ValidateFunction } from 'ajv';
import { slackApiRequestValidator } from './contract.js';
import { checkJsonBody, closeServer, listenLoopback, readBody } from './http-util.js';

export interface SlackApiMessage {
  channel: string;
  ts: string;
  text?: string;
  blocks?: unknown[];
  edits: number;
}

export interface SlackApiCall {
  at: number;
  method: string;
  body: Record<string, unknown>;
}

export interface SlackApiReceiver {
  /** Base URL to configure as pager.slackApi.url. */
  readonly url: string;
  readonly channelId: string;
  /** Messages by `${channel}/${ts}`. */
  readonly messages: Map<string, SlackApiMessage>;
  readonly calls: SlackApiCall[];
  readonly rejected: Array<{ method: string; body: string; errors: string[] }>;
  readonly attempts: number;
  readonly tooFast: number;
  /** The next n calls answer Slack error `error` (`ratelimited`: HTTP 429 with Retry-After). */
  failNext(n: number, error: string, retryAfter?: string): void;
  close(): Promise<void>;
}

export async function startSlackApiReceiver(opts: { token: string; channelName?: string; minIntervalMs?: number }): Promise<SlackApiReceiver> {
  const channelId = 'C0NODEWARD';
  const names = new Set([channelId, opts.channelName ?? 'alerts', `#${opts.channelName ?? 'alerts'}`]);
  const validators: Record<string, ValidateFunction> = { 'chat.postMessage': slackApiRequestValidator('chat.postMessage'), 'chat.update': slackApiRequestValidator('chat.update') };
  const minInterval = opts.minIntervalMs ?? 1000;
  const messages = new Map<string, SlackApiMessage>();
  const calls: SlackApiCall[] = [];
  const rejected: Array<{ method: string; body: string; errors: string[] }> = [];
  const failures: Array<{ error: string; retryAfter?: string }> = [];
  const lastAt = new Map<string, number>();
  let attempts = 0;
  let tooFast = 0;
  let seq = 0;

  const reply = (res: http.ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(JSON.stringify(body));
  };

  const server = http.createServer((req, res) => {
    void (async () => {
      attempts++;
      const text = await readBody(req);
      const method = (req.url ?? '').replace(/^\/api\//, '');
      const validate = validators[method];
      if (req.method !== 'POST' || !req.url?.startsWith('/api/') || !validate) return reply(res, 404, { ok: false, error: 'unknown_method' });
      if (req.headers.authorization !== `Bearer ${opts.token}`) return reply(res, 200, { ok: false, error: req.headers.authorization ? 'invalid_auth' : 'not_authed' });
      if (!/^application\/json/.test(req.headers['content-type'] ?? '')) return reply(res, 200, { ok: false, error: 'invalid_form_data' });
      const fail = failures.shift();
      if (fail) return fail.error === 'ratelimited' ? reply(res, 429, { ok: false, error: 'ratelimited' }, { 'retry-after': fail.retryAfter ?? '1' }) : reply(res, 200, { ok: false, error: fail.error });
      const errors: string[] = [];
      const body = checkJsonBody(text, validate, errors) as Record<string, unknown>;
      if (errors.length > 0) {
        rejected.push({ method, body: text, errors });
        return reply(res, 200, { ok: false, error: 'invalid_arguments', response_metadata: { messages: errors } });
      }
      const channel = body.channel as string;
      if (method === 'chat.update' ? channel !== channelId : !names.has(channel)) return reply(res, 200, { ok: false, error: 'channel_not_found' });
      const at = Date.now();
      const prev = lastAt.get(channelId);
      if (prev !== undefined && at - prev < minInterval - 50) tooFast++;
      lastAt.set(channelId, at);
      calls.push({ at, method, body });
      const content = { ...(typeof body.text === 'string' ? { text: body.text } : {}), ...(Array.isArray(body.blocks) ? { blocks: body.blocks as unknown[] } : {}) };
      if (method === 'chat.update') {
        const m = messages.get(`${channelId}/${body.ts as string}`);
        if (!m) return reply(res, 200, { ok: false, error: 'message_not_found' });
        Object.assign(m, content, { edits: m.edits + 1 });
        return reply(res, 200, { ok: true, channel: channelId, ts: m.ts, text: m.text, message: { type: 'message', ...content } });
      }
      const ts = `${Math.floor(at / 1000)}.${String(++seq).padStart(6, '0')}`;
      messages.set(`${channelId}/${ts}`, { channel: channelId, ts, ...content, edits: 0 });
      return reply(res, 200, { ok: true, channel: channelId, ts, message: { type: 'message', subtype: 'bot_message', ts, ...content } });
    })().catch(() => reply(res, 500, { ok: false, error: 'receiver_error' }));
  });
  const port = await listenLoopback(server);
  return {
    url: `http://127.0.0.1:${port}/api`,
    channelId,
    messages,
    calls,
    rejected,
    get attempts() {
      return attempts;
    },
    get tooFast() {
      return tooFast;
    },
    failNext(n, error, retryAfter) {
      for (let i = 0; i < n; i++) failures.push({ error, ...(retryAfter ? { retryAfter } : {}) });
    },
    close: () => closeServer(server),
  };
}
