/**
 * PagerDuty v3 webhooks in: a responder acknowledges, unacknowledges or
 * resolves the incident nodewarden opened (matched by `data.incident_key`,
 * which is our dedup key). The request must carry a valid
 * `X-PagerDuty-Signature`; an event id seen before (on any replica: the
 * paging store) or an `occurred_at` outside the window is a replay and is
 * rejected. Every accepted change becomes one ledger record naming who.
 *
 * Ledger records (docs/paging.md): acknowledge → action `page`, outcome
 * `suppressed`, guard `incidentAcknowledged` (from now on the group's pages
 * and, with `holdOnAck`, its automated actions are held); unacknowledge →
 * the same with guard `incidentUnacknowledged`; resolve → action `resolve`,
 * outcome `executed`; each with `details.by` and `details.via`.
 */
import type { Clock } from '../../core/clock.js';
import type { Decision, LedgerRecord } from '../../core/decision.js';
import type { Logger } from '../../core/logger.js';
import { buildLedgerRecord } from '../ledger/record.js';
import type { DocStore } from '../incidents/doc-store.js';
import type { Incident } from '../incidents/incident.js';
import type { IncidentPaging } from '../incidents/incident-paging.js';
import type { WebhookMetrics } from './metrics.js';
import { verifyPagerDuty } from './signatures.js';
import { validateSchema } from '../../core/schema.js';
import type { Infer } from '../../core/schema.js';

export interface WebhookReply {
  status: number;
  body: Record<string, unknown>;
}

export interface PagerDutyWebhookOptions {
  /** Signing secrets of the subscription (more than one during a rotation). */
  secrets: readonly string[];
  incidents: IncidentPaging;
  store: DocStore;
  /** Writes the ledger records of accepted changes (throws: PagerDuty retries). */
  record: (records: LedgerRecord[]) => Promise<void>;
  clock: Clock;
  logger: Logger;
  metrics: WebhookMetrics;
  /** Events older (or newer) than this are replays (default 10 min). */
  maxAgeMs?: number;
}

/** A string (or null) of at most 256 characters: names and ids go into ledger records. */
const nstr = { type: ['string', 'null'], pattern: '^[\\s\\S]{0,256}$', patternHint: 'must be at most 256 characters' } as const;
/**
 * The part of a PagerDuty v3 webhook body nodewarden reads (PagerDuty sends
 * more, which is allowed and ignored). A field of the wrong type is a malformed
 * body, never a `[object Object]` in the ledger.
 */
const PD_WEBHOOK_SCHEMA = {
  type: 'object',
  required: ['event'],
  properties: {
    event: {
      type: 'object',
      required: ['id', 'event_type', 'occurred_at'],
      properties: {
        id: { type: 'string', pattern: '^[\\s\\S]{1,128}$', patternHint: 'must be 1 to 128 characters' },
        event_type: { type: 'string' },
        occurred_at: { type: 'string' },
        agent: { anyOf: [{ type: 'null' }, { type: 'object', properties: { summary: nstr, id: nstr, type: nstr } }] },
        data: { anyOf: [{ type: 'null' }, { type: 'object', properties: { id: nstr, incident_key: nstr } }] },
      },
    },
  },
} as const;
type PdEvent = Infer<typeof PD_WEBHOOK_SCHEMA>['event'];

/** The event of a webhook body, or the one-line reason it is not one. */
function parseEvent(body: Buffer): PdEvent | string {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    return 'not JSON';
  }
  const problem = validateSchema(PD_WEBHOOK_SCHEMA, v)[0];
  if (problem) return `${problem.path || '/'} ${problem.message}`;
  const e = (v as Infer<typeof PD_WEBHOOK_SCHEMA>).event;
  if (Number.isNaN(Date.parse(e.occurred_at))) return '/event/occurred_at must be a timestamp';
  return e;
}

export function createPagerDutyWebhook(o: PagerDutyWebhookOptions): { handle(body: Buffer, headers: Record<string, string | string[] | undefined>): Promise<WebhookReply> } {
  const maxAgeMs = o.maxAgeMs ?? 10 * 60_000;
  const log = o.logger.child({ component: 'pagerduty-webhook' });
  const reject = (status: number, result: 'bad_signature' | 'stale' | 'replay' | 'malformed', message: string): WebhookReply => {
    o.metrics.count('pagerduty', result);
    log.warn({ result }, `pagerduty webhook rejected: ${message}`);
    return { status, body: { error: { code: result, message } } };
  };

  function recordFor(inc: Incident, e: PdEvent, who: string, kind: 'acknowledged' | 'unacknowledged' | 'resolved'): LedgerRecord {
    const now = o.clock.now();
    const d: Decision = {
      id: `pagerduty:${e.id}`,
      at: now,
      rule: inc.rule === '*' ? 'incident' : inc.rule,
      action: kind === 'resolved' ? 'resolve' : 'page',
      target: Object.keys(inc.labels).length ? { kind: 'Group', name: Object.entries(inc.labels).map(([k, v]) => `${k}=${v}`).join(',') } : { kind: 'Fleet', name: 'fleet' },
      reason:
        kind === 'acknowledged'
          ? `incident ${inc.dedupKey} acknowledged in PagerDuty by ${who}: automated actions on its group are held until it resolves or is unacknowledged`
          : kind === 'unacknowledged'
            ? `incident ${inc.dedupKey} unacknowledged in PagerDuty (by ${who}): automated actions resume`
            : `incident ${inc.dedupKey} resolved in PagerDuty by ${who}`,
      severity: inc.severity,
      dedupKey: inc.dedupKey,
    };
    const details = { incidentEvent: kind, by: who, via: 'pagerduty', pagerdutyEvent: e.id, ...(e.data?.id ? { pagerdutyIncident: e.data.id } : {}), nodes: Object.keys(inc.members) };
    if (kind === 'resolved') return buildLedgerRecord({ decision: d, outcome: 'executed', now, details });
    const guard = kind === 'acknowledged' ? 'incidentAcknowledged' : 'incidentUnacknowledged';
    return buildLedgerRecord({ decision: d, outcome: 'suppressed', now, verdict: { allowed: false, guard, outcome: 'suppressed', reason: d.reason }, details });
  }

  return {
    async handle(body, headers): Promise<WebhookReply> {
      const sig = headers['x-pagerduty-signature'];
      if (!verifyPagerDuty(body, Array.isArray(sig) ? sig.join(',') : sig, o.secrets)) return reject(401, 'bad_signature', 'X-PagerDuty-Signature missing or not valid for this body');
      const e = parseEvent(body);
      if (typeof e === 'string') return reject(400, 'malformed', `body is not a PagerDuty v3 webhook event ({event: {id, event_type, occurred_at, …}}): ${e}`);
      if (Math.abs(o.clock.now() - Date.parse(e.occurred_at)) > maxAgeMs) return reject(400, 'stale', `event ${e.id} occurred at ${e.occurred_at}, outside the ${Math.round(maxAgeMs / 1000)}s window`);
      if (!(await o.store.claimOnce('pd-webhook', e.id, 2 * maxAgeMs))) return reject(409, 'replay', `event ${e.id} was already received`);
      const key = e.data?.incident_key;
      const who = e.agent?.summary ?? e.agent?.id ?? 'PagerDuty';
      const kind = e.event_type === 'incident.acknowledged' ? 'acknowledged' : e.event_type === 'incident.unacknowledged' ? 'unacknowledged' : e.event_type === 'incident.resolved' ? 'resolved' : null;
      if (!kind || typeof key !== 'string' || key.length === 0 || key.length > 255) {
        o.metrics.count('pagerduty', 'ignored');
        return { status: 200, body: { result: 'ignored', reason: kind ? 'no incident_key' : `event type ${e.event_type} is not acted on` } };
      }
      const inc = kind === 'acknowledged' ? await o.incidents.acknowledge(key, who, 'pagerduty') : kind === 'unacknowledged' ? await o.incidents.unacknowledge(key) : await o.incidents.resolveExternally(key, who, 'pagerduty');
      if (!inc) {
        o.metrics.count('pagerduty', 'ignored');
        return { status: 200, body: { result: 'ignored', reason: `no open nodewarden incident ${key}` } };
      }
      await o.record([recordFor(inc, e, who, kind)]);
      o.metrics.count('pagerduty', 'accepted');
      log.info({ dedupKey: key, event: e.event_type, by: who }, `incident ${kind} in PagerDuty`);
      return { status: 200, body: { result: 'accepted', incident: key, event: kind } };
    },
  };
}
