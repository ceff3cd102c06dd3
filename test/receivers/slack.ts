/**
 * A local Slack incoming-webhook receiver for tests: a real HTTP server on a
 * free loopback port that checks EVERY request against the documented payload
 * (text and/or Block Kit blocks, Block Kit size limits, no channel/username/icon
 * override), records accepted messages with their arrival time, counts
 * messages that came less than `minIntervalMs` after the previous one, and can
 * answer 429 (with Retry-After) or 5xx for the next N requests.
 */
import http from 'node:http';
import { slackRequestValidator } from './contract.js';
import type { Failure } from './http-util.js';
import { checkJsonBody, closeServer, listenLoopback, readBody } from './http-util.js';

export interface SlackMessageBody {
  text?: string;
  blocks?: Array<{ type: string; text?: { type: string; text: string }; elements?: Array<{ type: string; text: string }> }>;
}

export interface SlackReceiver {
  /** The webhook URL to post to. */
  readonly url: string;
  readonly accepted: Array<{ at: number; body: SlackMessageBody }>;
  readonly rejected: Array<{ body: string; errors: string[] }>;
  readonly attempts: number;
  /** Accepted messages that arrived sooner than minIntervalMs after the previous accepted one. */
  readonly tooFast: number;
  failNext(n: number, f: Failure): void;
  close(): Promise<void>;
}

export async function startSlackReceiver(opts: { minIntervalMs?: number; host?: string } = {}): Promise<SlackReceiver> {
  const host = opts.host ?? '127.0.0.1';
  const validate = slackRequestValidator();
  const minInterval = opts.minIntervalMs ?? 1000;
  const accepted: Array<{ at: number; body: SlackMessageBody }> = [];
  const rejected: Array<{ body: string; errors: string[] }> = [];
  const failures: Failure[] = [];
  let attempts = 0;
  let tooFast = 0;
  const path = '/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX';

  const server = http.createServer((req, res) => {
    void (async () => {
      attempts++;
      const text = await readBody(req);
      const fail = failures.shift();
      if (fail) {
        res.writeHead(fail.status, { 'content-type': 'text/plain', ...(fail.retryAfter ? { 'retry-after': fail.retryAfter } : {}) });
        res.end(fail.status === 429 ? 'rate_limited' : 'service_unavailable');
        return;
      }
      if (req.method !== 'POST' || req.url !== path) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('no_service');
        return;
      }
      const errors: string[] = [];
      const body = checkJsonBody(text, validate, errors);
      if (errors.length > 0) {
        rejected.push({ body: text, errors });
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end('invalid_payload');
        return;
      }
      const at = Date.now();
      const prev = accepted[accepted.length - 1];
      // small allowance for the loopback hop between the sender's clock read and arrival
      if (prev && at - prev.at < minInterval - 50) tooFast++;
      accepted.push({ at, body: body as SlackMessageBody });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    })().catch(() => {
      res.writeHead(500);
      res.end('receiver_error');
    });
  });
  const port = await listenLoopback(server, host);
  return {
    url: `http://${host}:${port}${path}`,
    accepted,
    rejected,
    get attempts() {
      return attempts;
    },
    get tooFast() {
      return tooFast;
    },
    failNext(n: number, f: Failure): void {
      for (let i = 0; i < n; i++) failures.push(f);
    },
    close: () => closeServer(server),
  };
}
