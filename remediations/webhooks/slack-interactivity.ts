/**
 * Slack interactivity in: the Approve / Deny buttons of an approval request.
 * The request must carry a valid `X-Slack-Signature` over
 * `v0:<X-Slack-Request-Timestamp>:<raw body>` with a timestamp within five
 * minutes (CONTRACTS.md in test/receivers); the same request seen twice is a
 * replay (Slack retries carry the same body: the signature is the id).
 * The decision is the same one `ctl approve/deny` and the control API make,
 * named after the Slack user.
 */
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { Approvals } from '../approvals/approvals.js';
import type { DocStore } from '../incidents/doc-store.js';
import type { WebhookMetrics } from './metrics.js';
import type { WebhookReply } from './pagerduty-webhook.js';
import { verifySlack } from './signatures.js';
import { validateSchema } from '../../core/schema.js';
import type { Infer } from '../../core/schema.js';

export const APPROVE_ACTION = 'nodewarden_approve';
export const DENY_ACTION = 'nodewarden_deny';

/** At most 256 characters: names and ids go into approvals and ledger records. */
const str = { type: 'string', pattern: '^[\\s\\S]{0,256}$', patternHint: 'must be at most 256 characters' } as const;
/**
 * The part of a Slack interactivity payload nodewarden reads (Slack sends
 * more, which is allowed and ignored). Anything else — `payload=null`, a list,
 * a field of the wrong type — is a malformed request.
 */
const SLACK_PAYLOAD_SCHEMA = {
  type: 'object',
  properties: {
    type: str,
    user: { type: 'object', properties: { id: str, username: str, name: str } },
    actions: { type: 'array', items: { type: 'object', properties: { action_id: str, value: str } } },
  },
} as const;
type BlockActions = Infer<typeof SLACK_PAYLOAD_SCHEMA>;

/** The payload of a form body, or the one-line reason it is not one. */
function parsePayload(body: Buffer): BlockActions | string {
  let v: unknown;
  try {
    v = JSON.parse(new URLSearchParams(body.toString('utf8')).get('payload') ?? '');
  } catch {
    return 'payload is not JSON';
  }
  const problem = validateSchema(SLACK_PAYLOAD_SCHEMA, v)[0];
  return problem ? `${problem.path || '/'} ${problem.message}` : (v as BlockActions);
}

export function createSlackInteractivity(o: { signingSecret: string; approvals: Approvals; store: DocStore; clock: Clock; logger: Logger; metrics: WebhookMetrics }): { handle(body: Buffer, headers: Record<string, string | string[] | undefined>): Promise<WebhookReply> } {
  const log = o.logger.child({ component: 'slack-interactivity' });
  const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
  const reject = (status: number, result: 'bad_signature' | 'stale' | 'replay' | 'malformed', message: string): WebhookReply => {
    o.metrics.count('slack', result);
    log.warn({ result }, `slack request rejected: ${message}`);
    return { status, body: { error: { code: result, message } } };
  };
  return {
    async handle(body, headers): Promise<WebhookReply> {
      const signature = one(headers['x-slack-signature']);
      const v = verifySlack(body, { ...(signature ? { signature } : {}), ...(one(headers['x-slack-request-timestamp']) ? { timestamp: one(headers['x-slack-request-timestamp']) } : {}) }, o.signingSecret, o.clock.now());
      if (v === 'malformed') return reject(401, 'malformed', 'X-Slack-Signature or X-Slack-Request-Timestamp missing or malformed');
      if (v === 'bad_signature') return reject(401, 'bad_signature', 'X-Slack-Signature does not match the body');
      if (v === 'stale') return reject(401, 'stale', 'X-Slack-Request-Timestamp is more than 5 minutes from now');
      if (!(await o.store.claimOnce('slack-request', signature as string, 10 * 60_000))) return reject(409, 'replay', 'this request was already received');
      const p = parsePayload(body);
      if (typeof p === 'string') return reject(400, 'malformed', `body is not a Slack interactivity payload (payload=<JSON object>): ${p}`);
      const action = p.actions?.[0];
      const id = action?.value;
      if (p.type !== 'block_actions' || !action || (action.action_id !== APPROVE_ACTION && action.action_id !== DENY_ACTION) || typeof id !== 'string' || id.length === 0 || id.length > 200) {
        o.metrics.count('slack', 'ignored');
        return { status: 200, body: { text: 'nothing to do' } };
      }
      const who = p.user?.username ?? p.user?.name ?? p.user?.id ?? 'slack user';
      const verdict = action.action_id === APPROVE_ACTION ? 'approved' : 'denied';
      const r = await o.approvals.decide(id, verdict, `${who} (slack)`, 'slack');
      o.metrics.count('slack', 'accepted');
      log.info({ approval: id, verdict, by: who, changed: r.changed }, 'approval decided in slack');
      const text = !r.approval ? `no approval ${id}` : r.changed ? `${verdict} by ${who}` : `already ${r.approval.state}${r.approval.by ? ` by ${r.approval.by}` : ''}`;
      return { status: 200, body: { text, replace_original: false } };
    },
  };
}
