/** Pagers from the config; secrets read from files or env (never from the config itself). */
import type { NodewardenConfig } from '../../core/config.js';
import { readSecret } from '../../adapters/config-file.js';
import { NodewardenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Pager } from './pager.js';
import { createPagerDutyPager } from './pagerduty.js';
import { createSlackPager } from './slack.js';
import type { SlackLimiter } from './slack-limiter.js';

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
