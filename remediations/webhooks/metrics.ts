/** One counter for every signed request nodewarden receives, by source and result. */
import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';

export type WebhookResult = 'accepted' | 'ignored' | 'bad_signature' | 'stale' | 'replay' | 'malformed';

export interface WebhookMetrics {
  count(source: 'pagerduty' | 'slack', result: WebhookResult): void;
}

export function webhookMetrics(registry?: Registry): WebhookMetrics {
  const c = registry
    ? new Counter({ name: 'nodewarden_webhook_requests_total', help: 'Signed requests received (PagerDuty v3 webhooks, Slack interactivity), by source and result (rejected: bad_signature, stale, replay, malformed)', labelNames: ['source', 'result'], registers: [registry] })
    : undefined;
  return { count: (source, result) => c?.inc({ source, result }) };
}
