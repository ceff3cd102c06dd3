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

interface PdEvent {
  id: string;
  event_type: string;
  occurred_at: string;
  agent?: { summary?: string; id?: string; type?: string } | null;
  data?: { id?: string; incident_key?: string; html_url?: string } | null;
}

function parseEvent(body: Buffer): PdEvent | null {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  const e = (v as { event?: unknown } | null)?.event as Partial<PdEvent> | undefined;
  if (!e || typeof e !== 'object' || typeof e.id !== 'string' || e.id.length === 0 || e.id.length > 128 || typeof e.event_type !== 'string' || typeof e.occurred_at !== 'string') return null;
  if (Number.isNaN(Date.parse(e.occurred_at))) return null;
  return e as PdEvent;
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
      if (!e) return reject(400, 'malformed', 'body is not a PagerDuty v3 webhook event ({event: {id, event_type, occurred_at, …}})');
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
