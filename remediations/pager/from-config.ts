/** Pagers from the config; secrets read from files or env (never from the config itself). */
import type { NodewardenConfig } from '../../core/config.js';
import { readSecret } from '../../adapters/config-file.js';
import { NodewardenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Pager } from './pager.js';
import { createPagerDutyPager } from './pagerduty.js';
import { createSlackPager, createSlackWebhook } from './slack.js';
import type { SlackWebhook } from './slack.js';
import type { DocStore } from '../incidents/doc-store.js';
import type { SlackApprovalNotifier } from './slack-api.js';
import { createSlackApiClient, createSlackApiPager, createSlackApprovalNotifier, SLACK_API_URL } from './slack-api.js';

/**
 * The webhook of `pager.slack` (null when not configured): the one client the
 * Slack pager and the daily digest post through, so they share one rate limit.
 */
export function slackWebhookFromConfig(cfg: NodewardenConfig, logger: Logger, env: NodeJS.ProcessEnv = process.env): SlackWebhook | null {
  const sl = cfg.pager.slack;
  if (!sl) return null;
  const url = readSecret(sl.webhookUrlFile, sl.webhookUrlEnv, env);
  if (!url) throw new NodewardenError('CONFIG_INVALID', `pager.slack: no webhook URL (set pager.slack.webhookUrlFile or $${sl.webhookUrlEnv})`);
  return createSlackWebhook({ url, minIntervalMs: sl.minIntervalMs, logger: logger.child({ pager: 'slack' }) });
}

/** `slack`: the webhook of `pager.slack` when the caller shares it (the engine, with the digest); default: read from the config. */
export function createPagersFromConfig(cfg: NodewardenConfig, logger: Logger, env: NodeJS.ProcessEnv = process.env, slack?: SlackWebhook | null): Pager[] {
  const pagers: Pager[] = [];
  const pd = cfg.pager.pagerduty;
  if (pd) {
    const routingKey = readSecret(pd.routingKeyFile, pd.routingKeyEnv, env);
    if (!routingKey)
      throw new NodewardenError('CONFIG_INVALID', `pager.pagerduty: no routing key (set pager.pagerduty.routingKeyFile or $${pd.routingKeyEnv})`);
    pagers.push(createPagerDutyPager({ url: pd.url, routingKey, logger: logger.child({ pager: 'pagerduty' }) }));
  }
  const webhook = slack ?? slackWebhookFromConfig(cfg, logger, env);
  if (webhook) pagers.push(createSlackPager({ webhook, logger: logger.child({ pager: 'slack' }) }));
  return pagers;
}

/** The Slack Web API pager (and the approval messages) from `pager.slackApi`; null when not configured. */
export function slackApiFromConfig(cfg: NodewardenConfig, store: DocStore, logger: Logger, env: NodeJS.ProcessEnv = process.env): { pager: Pager; approvals: SlackApprovalNotifier | null } | null {
  const sa = cfg.pager.slackApi;
  if (!sa) return null;
  const tokenEnv = sa.tokenEnv ?? 'NODEWARDEN_SLACK_BOT_TOKEN';
  const token = readSecret(sa.tokenFile, tokenEnv, env);
  if (!token) throw new NodewardenError('CONFIG_INVALID', `pager.slackApi: no bot token (set pager.slackApi.tokenFile or $${tokenEnv})`);
  if (/[\s]/.test(token) || token.length > 512) throw new NodewardenError('CONFIG_INVALID', 'pager.slackApi: the bot token holds whitespace or is too long (one token, e.g. xoxb-…)');
  if (sa.channel.length > 80) throw new NodewardenError('CONFIG_INVALID', 'pager.slackApi.channel: a channel ID or name is at most 80 characters');
  const opts = { token, channel: sa.channel, url: sa.url ?? SLACK_API_URL, minIntervalMs: sa.minIntervalMs ?? 1000, store, logger: logger.child({ pager: 'slack-api' }) };
  // one client: the approval messages and the incident messages share the channel's rate limit
  const client = createSlackApiClient(opts);
  return { pager: createSlackApiPager(opts, client), approvals: sa.approvals === false ? null : createSlackApprovalNotifier(opts, client) };
}
