/**
 * A PagerDuty v3 webhook SENDER for tests: builds events shaped like the
 * documented payload and signs them as PagerDuty does (CONTRACTS.md),
 * independently of the production verifier.
 */
import { createHmac, randomUUID } from 'node:crypto';

export interface PdWebhookEvent {
  body: string;
  id: string;
}

export function pdIncidentEvent(o: { type: 'incident.acknowledged' | 'incident.unacknowledged' | 'incident.resolved' | 'incident.priority_updated'; incidentKey: string; occurredAt: Date; by?: string; id?: string }): PdWebhookEvent {
  const id = o.id ?? randomUUID();
  const event = {
    event: {
      id,
      event_type: o.type,
      resource_type: 'incident',
      occurred_at: o.occurredAt.toISOString(),
      agent: o.by ? { html_url: 'https://acme.pagerduty.com/users/PLH1HKV', id: 'PLH1HKV', self: 'https://api.pagerduty.com/users/PLH1HKV', summary: o.by, type: 'user_reference' } : null,
      client: { name: 'PagerDuty' },
      data: {
        id: 'PGR0VU2',
        type: 'incident',
        self: 'https://api.pagerduty.com/incidents/PGR0VU2',
        html_url: 'https://acme.pagerduty.com/incidents/PGR0VU2',
        number: 2,
        status: o.type === 'incident.resolved' ? 'resolved' : o.type === 'incident.acknowledged' ? 'acknowledged' : 'triggered',
        incident_key: o.incidentKey,
        created_at: o.occurredAt.toISOString(),
        title: 'nodewarden incident',
        urgency: 'high',
        resolve_reason: null,
      },
    },
  };
  return { id, body: JSON.stringify(event) };
}

/** The `X-PagerDuty-Signature` header value: one `v1=` per secret, comma separated. */
export function pdSignature(body: string, secrets: readonly string[]): string {
  return secrets.map((s) => `v1=${createHmac('sha256', s).update(Buffer.from(body, 'utf8')).digest('hex')}`).join(',');
}
