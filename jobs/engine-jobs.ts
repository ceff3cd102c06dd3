/**
 * The engine's jobs from its config and parts: Redis leases and state when
 * the engine runs on Redis (several replicas), memory when embedded. The
 * engine command calls `createEngineJobs(...).start()` once it consumes and
 * `stop()` first on shutdown.
 */
import type { Redis } from 'ioredis';
import type { Clock } from '../core/clock.js';
import type { ClusterView } from '../core/cluster.js';
import type { NodewardenConfig } from '../core/config.js';
import { parseDuration } from '../core/duration.js';
import type { Logger } from '../core/logger.js';
import type { Registry } from '../adapters/metrics.js';
import type { ControllableGuard, Remediator } from '../remediations/ports.js';
import type { Incident } from '../remediations/incidents/incident.js';
import type { SlackWebhook } from '../remediations/pager/slack.js';
import type { Silence } from '../remediations/silences/silence.js';
import { StoreKeys } from '../adapters/redis/keys.js';
import type { StateStore } from '../rules/store/state-store.js';
import type { ClosableRuleToggles } from '../rules/toggles/port.js';
import type { LedgerStore, LedgerWriter } from '../remediations/ledger/store.js';
import { createNodeCron } from './cron.js';
import { dailyDigestJob, slackDigestSender } from './daily-digest.js';
import type { DigestSender } from './daily-digest.js';
import { expireTogglesJob } from './expire-toggles.js';
import { guardReconcileJob } from './guard-reconcile.js';
import type { ReconcilableView } from './guard-reconcile.js';
import { MemoryJobState, RedisJobState } from './job-state.js';
import { MemoryJobLock } from './lock.js';
import { RedisJobLock } from './redis-lock.js';
import { resolveClearedJob } from './resolve-cleared.js';
import type { RuleActivity } from './resolve-cleared.js';
import { JobScheduler } from './scheduler.js';
import type { CronPort } from './scheduler.js';
import { ledgerTrimmer, ruleStateTrimmer, trimStateJob } from './trim-state.js';
import type { StateTrimmer } from './trim-state.js';

export interface EngineJobsDeps {
  config: NodewardenConfig;
  logger: Logger;
  registry?: Registry;
  clock: Clock;
  /** Present when the engine runs on Redis: leases, job state and trimming use it. */
  redis?: Redis;
  cluster: ClusterView;
  /** The guard: its stale cordon reservations are released by guard-reconcile. */
  guard: ControllableGuard;
  remediator: Pick<Remediator, 'submit'>;
  /** The ledger store the jobs read (and trim-state trims when the engine runs on Redis). */
  ledger: LedgerStore;
  toggles: ClosableRuleToggles;
  /** Where toggle audit records go (as for the control API's changes: every ledger writer). */
  toggleAudit: Pick<LedgerWriter, 'append'>;
  rules: ReadonlyArray<{ id: string; enabled: boolean }>;
  store: StateStore;
  /** The Slack pager's webhook (`pager.slack`): the digest posts through it, under the pager's rate limit. */
  slackWebhook?: SlackWebhook;
  /** Incidents and silences for the digest (the paging store). */
  paging?: { incidents?: { list(): Promise<Incident[]> }; silences?: { history(): Promise<Silence[]> } };
  /** Overrides where the digest goes (tests); default: `slackWebhook`. */
  digestSender?: DigestSender;
  /** Overrides node-cron (tests). */
  cron?: CronPort;
}

function isReconcilable(v: unknown): v is ReconcilableView {
  return typeof (v as Partial<ReconcilableView>).reconcile === 'function' && typeof (v as Partial<ReconcilableView>).listedAt === 'function';
}

/** Builds the scheduler with every enabled job registered (not started). Throws CONFIG_INVALID on a bad schedule. */
export function createEngineJobs(d: EngineJobsDeps): JobScheduler {
  const cfg = d.config.jobs;
  const prefix = d.config.redis.keyPrefix;
  const log = d.logger.child({ component: 'jobs' });
  const scheduler = new JobScheduler({
    lock: d.redis ? new RedisJobLock(d.redis, prefix) : new MemoryJobLock(d.clock),
    cron: d.cron ?? createNodeCron(log),
    clock: d.clock,
    logger: d.logger,
    ...(d.registry ? { registry: d.registry } : {}),
    timezone: cfg.timezone,
  });
  if (!cfg.enabled) return scheduler;
  const state = d.redis ? new RedisJobState(d.redis, prefix) : new MemoryJobState();
  const add = (key: keyof Omit<NodewardenConfig['jobs'], 'enabled' | 'timezone'>, job: Parameters<JobScheduler['register']>[0]['job']): void => {
    const c = cfg[key];
    if (!c.enabled) return;
    scheduler.register({ job, schedule: c.schedule, timeoutMs: parseDuration(c.timeout), configPath: `/jobs/${key}` });
  };

  add('guardReconcile', guardReconcileJob({ view: d.cluster, ...(isReconcilable(d.cluster) ? { reconcilable: d.cluster } : {}), guard: d.guard }));

  const byId = new Map(d.rules.map((r) => [r.id, r.enabled]));
  const activity: RuleActivity = (rule, now) => {
    const fileEnabled = byId.get(rule);
    return fileEnabled === undefined ? undefined : d.toggles.isEnabled(rule, fileEnabled, now);
  };
  add(
    'resolveCleared',
    resolveClearedJob({
      ledger: d.ledger,
      remediator: d.remediator,
      view: d.cluster,
      activity,
      state,
      minAgeMs: parseDuration(cfg.resolveCleared.minAge),
      lookbackMs: parseDuration(cfg.resolveCleared.lookback),
    }),
  );

  add(
    'expireToggles',
    expireTogglesJob({ ledger: d.ledger, audit: d.toggleAudit, toggles: d.toggles, state }),
  );

  const trimmers: StateTrimmer[] = [];
  // the Redis stream is trimmed; the memory ledger of an engine without Redis is bounded by construction
  if (d.redis) trimmers.push(ledgerTrimmer(d.ledger, { maxLen: cfg.trimState.ledgerMaxLen, maxAgeMs: parseDuration(cfg.trimState.ledgerMaxAge) }));
  trimmers.push(ruleStateTrimmer(d.store, { keys: new StoreKeys(prefix), rules: d.rules.map((r) => r.id) }));
  add('trimState', trimStateJob(trimmers));

  const sender = d.digestSender ?? (d.slackWebhook ? slackDigestSender(d.slackWebhook) : undefined);
  if (sender)
    add(
      'dailyDigest',
      dailyDigestJob({
        ledger: d.ledger,
        view: d.cluster,
        sender,
        timezone: cfg.timezone,
        windowMs: parseDuration(cfg.dailyDigest.window),
        ...(d.paging?.incidents ? { incidents: d.paging.incidents } : {}),
        ...(d.paging?.silences ? { silences: d.paging.silences } : {}),
      }),
    );
  else if (cfg.dailyDigest.enabled) log.info({}, 'daily digest off: no Slack webhook configured (pager.slack)');
  return scheduler;
}
