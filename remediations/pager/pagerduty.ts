/**
 * PagerDuty Events API v2 (contract: ../shared/contracts/pagerduty-events-v2.openapi.json):
 * POST {base}/v2/enqueue, trigger and resolve one alert by a stable dedup_key.
 * The routing key comes from a file or the environment (adapters/config-file readSecret)
 * and never reaches a log line or an error message.
 */
import axios from 'axios';
import type { Logger } from '../../core/logger.js';
import { NodewardenError } from '../../core/errors.js';
import type { PageRequest, Pager } from './pager.js';
import { MAX_DEDUP_KEY, MAX_SUMMARY, truncate } from './pager.js';
import type { HttpSenderOptions } from './retry.js';
import { DEFAULT_RETRY, realSleep, withRetry } from './retry.js';

export interface PagerDutyOptions extends HttpSenderOptions {
  /** Base URL (`https://events.pagerduty.com`) or the full enqueue URL. */
  url: string;
  routingKey: string;
  logger: Logger;
  /** `client` field shown in PagerDuty. */
  client?: string;
}

/** The Events v2 request body (only the fields nodewarden sends). */
export interface PagerDutyEvent {
  routing_key: string;
  event_action: 'trigger' | 'resolve';
  dedup_key: string;
  client?: string;
  payload?: {
    summary: string;
    source: string;
    severity: 'critical' | 'error' | 'warning' | 'info';
    timestamp?: string;
    component?: string;
    group?: string;
    class?: string;
    custom_details?: Record<string, unknown>;
  };
}

export function enqueueUrl(url: string): string {
  const u = url.replace(/\/+$/, '');
  if (u.endsWith('/enqueue')) return u;
  return u.endsWith('/v2') ? `${u}/enqueue` : `${u}/v2/enqueue`;
}

export function toPagerDutyEvent(req: PageRequest, routingKey: string, client: string): PagerDutyEvent {
  if (req.dedupKey.length === 0 || req.dedupKey.length > MAX_DEDUP_KEY)
    throw new NodewardenError('REQUEST_INVALID', `pagerduty: dedup key must be 1..${MAX_DEDUP_KEY} chars (got ${req.dedupKey.length})`);
  const ev: PagerDutyEvent = { routing_key: routingKey, event_action: req.event, dedup_key: req.dedupKey, client };
  // A resolve needs only the key; PagerDuty ignores a payload on resolve, so none is sent.
  if (req.event === 'trigger') {
    ev.payload = {
      summary: truncate(req.summary, MAX_SUMMARY),
      source: req.source || 'nodewarden',
      severity: req.severity,
      component: 'nodewarden',
      class: req.rule,
      custom_details: { rule: req.rule, ...(req.group ? { group: req.group } : {}), ...req.details },
      ...(req.timestamp ? { timestamp: req.timestamp } : {}),
      ...(req.group ? { group: req.group } : {}),
    };
  }
  return ev;
}

export function createPagerDutyPager(o: PagerDutyOptions): Pager {
  const http = o.http ?? axios.create();
  const url = enqueueUrl(o.url);
  const policy = { ...DEFAULT_RETRY, ...o.retry };
  const client = o.client ?? 'nodewarden';
  if (o.routingKey.length !== 32) o.logger.warn({ length: o.routingKey.length }, 'pagerduty routing key is not 32 characters; PagerDuty will reject it');
  return {
    name: 'pagerduty',
    async send(req: PageRequest): Promise<void> {
      const body = toPagerDutyEvent(req, o.routingKey, client);
      await withRetry(
        `pagerduty ${req.event} ${req.dedupKey}`,
        () => http.post(url, body, { timeout: o.timeoutMs ?? 10_000, headers: { 'content-type': 'application/json' } }),
        {
          policy,
          sleep: o.sleep ?? realSleep,
          random: o.random ?? Math.random,
          onRetry: (f, waitMs, n) => o.logger.warn({ dedupKey: req.dedupKey, status: f.status, waitMs, attempt: n }, 'pagerduty: retrying'),
        },
      );
      o.logger.info({ dedupKey: req.dedupKey, event: req.event, severity: req.severity }, 'pagerduty: sent');
    },
  };
}
