/** Pagers from the config; secrets read from files or env (never from the config itself). */
import type { NodewardenConfig } from '../../core/config.js';
import { readSecret } from '../../adapters/config-file.js';
import { NodewardenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Pager } from './pager.js';
import { createPagerDutyPager } from './pagerduty.js';
import { createSlackPager } from './slack.js';
import type { SlackLimiter } from './slack-limiter.js';
import type { DocStore } from '../incidents/doc-store.js';
import type { SlackApprovalNotifier } from './slack-api.js';
import { createSlackApiClient, createSlackApiPager, createSlackApprovalNotifier, SLACK_API_URL } from './slack-api.js';

/** `slackLimiter`: the slot the daily digest shares with the Slack pager (same webhook). */
export function createPagersFromConfig(cfg: NodewardenConfig, logger: Logger, env: NodeJS.ProcessEnv = process.env, slackLimiter?: SlackLimiter): Pager[] {
  const pagers: Pager[] = [];
  const pd = cfg.pager.pagerduty;
  if (pd) {
    const routingKey = readSecret(pd.routingKeyFile, pd.routingKeyEnv, env);
    if (!routingKey)
      throw new NodewardenError('CONFIG_INVALID', `pager.pagerduty: no routing key (set pager.pagerduty.routingKeyFile or $${pd.routingKeyEnv})`);
    pagers.push(createPagerDutyPager({ url: pd.url, routingKey, logger: logger.child({ pager: 'pagerduty' }) }));
  }
  const sl = cfg.pager.slack;
  if (sl) {
    const webhookUrl = readSecret(sl.webhookUrlFile, sl.webhookUrlEnv, env);
    if (!webhookUrl) throw new NodewardenError('CONFIG_INVALID', `pager.slack: no webhook URL (set pager.slack.webhookUrlFile or $${sl.webhookUrlEnv})`);
    pagers.push(createSlackPager({ webhookUrl, minIntervalMs: sl.minIntervalMs, logger: logger.child({ pager: 'slack' }), ...(slackLimiter ? { limiter: slackLimiter } : {}) }));
  }
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
