/**
 * The whole daily-digest job as the engine wires it (createEngineJobs:
 * config `pager.slack`, webhook URL from the environment, Redis leases and
 * ledger reader, incidents and silences in the Redis paging store) against a
 * real Redis ledger stream and the local Slack receiver that checks every
 * request against the webhook contract — while the Slack pager posts to the
 * same webhook through the same rate limiter.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { ManualClock } from '../../core/clock.js';
import { DEFAULT_CONFIG } from '../../core/config.js';
import type { NodewardenConfig } from '../../core/config.js';
import type { LedgerRecord } from '../../core/decision.js';
import { MemoryLogger, silentLogger } from '../../core/logger.js';
import { createRegistry } from '../../adapters/metrics.js';
import { createEngineJobs } from '../../jobs/engine-jobs.js';
import type { CronPort } from '../../jobs/scheduler.js';
import { createMemoryGuard } from '../../remediations/guard/memory-guard.js';
import { guardOptionsFromConfig } from '../../remediations/guard/policy.js';
import { RedisStreamLedger } from '../../remediations/ledger/redis-stream-ledger.js';
import { createRecordingPager } from '../../remediations/pager/recording-pager.js';
import { createPagerExecutor } from '../../remediations/pager/pager-executor.js';
import { createRemediator } from '../../remediations/remediator.js';
import { createSimulatedCluster, loadClusterFile } from '../../remediations/simulated/index.js';
import { MemoryStateStore } from '../../rules/store/memory-store.js';
import { MemoryRuleToggles } from '../../rules/toggles/memory-toggles.js';
import { RedisDocStore } from '../../remediations/incidents/redis-doc-store.js';
import { incidentPagingFromConfig } from '../../remediations/incidents/from-config.js';
import { createSlackPager } from '../../remediations/pager/slack.js';
import { slackWebhookFromConfig } from '../../remediations/pager/from-config.js';
import { releaseAfterEach } from '../harness/cleanup.js';
import { startSlackReceiver } from '../receivers/slack.js';
import type { SlackMessageBody, SlackReceiver } from '../receivers/slack.js';
import { CLUSTER_FILE } from './engine-support.js';
import { sharedRedis } from './servers.js';

const noCron: CronPort = { validate: () => null, schedule: () => ({ stop: () => undefined }) };
const HOUR = 3_600_000;

function text(body: SlackMessageBody): string {
  return (body.blocks ?? []).map((b) => [b.text?.text ?? '', ...(b.elements ?? []).map((e) => e.text)].join('\n')).join('\n');
}

describe('jobs: daily digest to Slack from the Redis ledger', function () {
  this.timeout(60_000);
  let redis: Redis;
  let slack: SlackReceiver;
  /** What a test opened, closed even when it fails (an open connection would outlive the run). */
  const release = releaseAfterEach();
  before(async () => {
    redis = new Redis((await sharedRedis()).url);
    slack = await startSlackReceiver({ minIntervalMs: 1000 });
  });
  after(async () => {
    await slack.close();
    await redis.quit();
  });

  it('posts one contract-valid Block Kit digest of the last 24 h, after a 429, elected once across two replicas', async () => {
    const prefix = `jobs-digest-${process.pid}-${Date.now().toString(36)}:`;
    const now = Date.now();
    const clock = new ManualClock(now);
    const cluster = createSimulatedCluster(await loadClusterFile(CLUSTER_FILE), { clock, logger: silentLogger });
    const nodes = cluster.listNodes().map((n) => n.name);
    const [a, b, c] = [nodes[10] as string, nodes[11] as string, nodes[12] as string];
    // a and b are cordoned by nodewarden (the simulated executor changes the simulated cluster); c was uncordoned since
    for (const n of [a, b]) await cluster.executor.execute({ id: `d-${n}`, at: now, rule: 'gpu-xid-fatal', action: 'cordon', target: { kind: 'Node', name: n }, reason: 'test' });
    const at = (hoursAgo: number): string => new Date(now - hoursAgo * HOUR).toISOString();
    const rec = (hoursAgo: number, over: Partial<LedgerRecord>): LedgerRecord => ({ ts: at(hoursAgo), rule: 'gpu-xid-fatal', action: 'cordon', target: { kind: 'Node', name: a }, outcome: 'executed', reason: 'Xid 79', guard: null, ...over });
    await new RedisStreamLedger({ redis, keyPrefix: prefix }).append([
      rec(30, { target: { kind: 'Node', name: nodes[20] as string } }), // before the window
      rec(20, {}),
      rec(20, { action: 'page', severity: 'critical', dedupKey: `nodewarden/gpu-xid-fatal/${a}` }),
      rec(10, { target: { kind: 'Node', name: b } }),
      rec(9, { target: { kind: 'Node', name: c }, rule: 'containerd-unresponsive' }),
      rec(9, { target: { kind: 'Node', name: nodes[13] as string }, outcome: 'denied', guard: 'maxUnavailable' }),
      rec(9, { target: { kind: 'Node', name: nodes[14] as string }, outcome: 'denied', guard: 'maxUnavailable' }),
      rec(1, { target: { kind: 'Node', name: b }, outcome: 'suppressed', guard: 'cooldown' }),
    ]);
    await new RedisStreamLedger({ redis, keyPrefix: prefix }).append([{ ts: at(2), kind: 'rule-toggle', rule: 'conntrack-dropping', enabled: false, reason: 'noisy', by: 'alice', expiresAt: null }]);

    const config: NodewardenConfig = structuredClone(DEFAULT_CONFIG);
    config.redis.keyPrefix = prefix;
    config.pager.slack = { webhookUrlFile: null, webhookUrlEnv: 'NW_TEST_SLACK_WEBHOOK', minIntervalMs: 1000 };
    config.jobs.timezone = 'Europe/Berlin';
    // incidents and silences as the remediator and the control API leave them in the Redis paging store
    const pagingClock = new ManualClock(now - 24 * HOUR); // moves forward through the day below
    const paging = incidentPagingFromConfig(config, new RedisDocStore(redis, prefix), pagingClock);
    const incidents = paging.incidents;
    if (!incidents) throw new Error('incidents are off in DEFAULT_CONFIG');
    const page = async (hoursAgo: number, rule: string, node: string) => {
      pagingClock.set(now - hoursAgo * HOUR);
      const r = await incidents.route({ id: `p-${rule}-${node}`, at: clock.now(), rule, action: 'page', target: { kind: 'Node', name: node }, reason: `${rule} on ${node}`, severity: 'critical', group: { pool: 'h100-train' } });
      if (r.kind === 'send') await incidents.settleSend(r.dedupKey, r.seq, true); // the trigger went out
    };
    const resolve = (hoursAgo: number, rule: string, node: string) => {
      pagingClock.set(now - hoursAgo * HOUR);
      return incidents.route({ id: `r-${rule}-${node}`, at: clock.now(), rule, action: 'resolve', target: { kind: 'Node', name: node }, reason: 'cleared', severity: 'critical', group: { pool: 'h100-train' } });
    };
    await page(20, 'gpu-xid-fatal', a); // resolved after 2 h
    await resolve(18, 'gpu-xid-fatal', a);
    await page(6, 'containerd-unresponsive', c); // still open, acknowledged
    await incidents.acknowledge((await incidents.list())[0]?.dedupKey ?? '', 'bob@example.com', 'pagerduty');
    pagingClock.set(now - 3 * HOUR);
    await paging.silences.create({ matchers: ['pool=h100-train', 'rule=~conntrack-.*'], ttlMs: 6 * HOUR, reason: 'switch firmware upgrade', by: 'alice' });
    pagingClock.set(now);
    // the engine's wiring: one webhook client from the config, the pager over it and the digest through it
    const webhook = slackWebhookFromConfig(config, silentLogger, { NW_TEST_SLACK_WEBHOOK: slack.url });
    if (!webhook) throw new Error('pager.slack is configured: a webhook is expected');
    const replica = (name: string) => {
      const logger = new MemoryLogger();
      const registry = createRegistry(name);
      const toggles = new MemoryRuleToggles(clock);
      const guard = createMemoryGuard({ view: cluster, options: guardOptionsFromConfig(config), clock });
      const conn = redis.duplicate();
      const jobs = createEngineJobs({
        config,
        logger,
        registry,
        clock,
        redis: conn,
        cluster,
        guard,
        remediator: createRemediator({ guard, executors: [createPagerExecutor({ pagers: [createRecordingPager()], logger })], ledger: [], clock, logger, autoFlush: false }),
        ledger: new RedisStreamLedger({ redis: conn, keyPrefix: prefix }),
        toggles,
        toggleAudit: new RedisStreamLedger({ redis: conn, keyPrefix: prefix }),
        rules: [{ id: 'gpu-xid-fatal', enabled: true }],
        store: new MemoryStateStore(),
        cron: noCron,
        slackWebhook: webhook,
        paging: { incidents, silences: paging.silences },
      });
      release.defer(async () => {
        await jobs.stop();
        await conn.quit();
      });
      return { jobs, logger, registry };
    };
    const r1 = replica('engine-1');
    const r2 = replica('engine-2');
    expect(r1.jobs.names()).to.include('daily-digest');
    slack.failNext(1, { status: 429, retryAfter: '1' });
    const slot = Date.parse('2026-11-21T08:00:00Z');
    // the Slack pager posts to the same webhook at the same moment, through the same client and limiter
    const pager = createSlackPager({ webhook, logger: silentLogger, groupWindowMs: 10 });
    const paged = pager.send({ event: 'trigger', dedupKey: 'k', summary: 'gpu-1 Xid 79', severity: 'critical', source: 'gpu-1', rule: 'gpu-xid-fatal' });
    const [x, y] = await Promise.all([r1.jobs.runNow('daily-digest', slot), r2.jobs.runNow('daily-digest', slot)]);
    await paged;
    await pager.close();
    expect([x.result, y.result].sort()).to.deep.equal(['not_elected', 'success']);
    expect(slack.rejected, JSON.stringify(slack.rejected)).to.deep.equal([]);
    expect(slack.attempts).to.equal(3);
    expect(slack.accepted).to.have.length(2);
    expect(slack.tooFast, 'messages less than 1 s apart').to.equal(0);
    const body = slack.accepted.find((m) => m.body.text?.startsWith('nodewarden daily digest'))?.body as SlackMessageBody;
    const t = text(body);
    expect(body.blocks?.[0]?.text?.text).to.match(/^nodewarden daily digest · \d{4}-\d{2}-\d{2}$/);
    expect(t).to.include('(Europe/Berlin)');
    expect(t).to.include('*7* decisions');
    expect(t).to.include('*Actions taken*\n• cordon: *3*\n• page: *1*');
    expect(t).to.include('*Denied by the guard* (2)\n• maxUnavailable: *2*');
    expect(t).to.include('*Top rules* (pages · decisions)\n1. `gpu-xid-fatal`: 1 · 5\n2. `containerd-unresponsive`: 0 · 1 — *1* cordon(s) undone outside nodewarden');
    expect(t).to.include('*Nodes cordoned*: 3, *still cordoned*: 2');
    expect(t).to.include(`• \`${c}\`: *uncordoned outside nodewarden* since`);
    expect(t).to.include('*Incidents*: opened *2*, resolved *1*, still open *1*\nMTTR: mean *2h 00m*, median *2h 00m* over 1 resolved');
    expect(t).to.include('Longest open: `nodewarden/incident/containerd-unresponsive/pool=h100-train` (`containerd-unresponsive`) for *6h 00m*');
    expect(t).to.include('• open: `nodewarden/incident/containerd-unresponsive/pool=h100-train` critical, 1 member(s), 1 page(s), acknowledged by bob@example.com');
    expect(t).to.include('• acknowledged: `nodewarden/incident/containerd-unresponsive/pool=h100-train` by *bob@example.com* via pagerduty');
    expect(t).to.include('*Silences*: active *1*, expired in the window *0*\n• active until ');
    expect(t).to.include(': `pool=h100-train, rule=~conntrack-.*` (switch firmware upgrade, by alice)');
    expect(t).to.include('rule toggle changes: 1');
    expect(body.text).to.equal('nodewarden daily digest ' + (body.blocks?.[0]?.text?.text ?? '').slice('nodewarden daily digest · '.length) + ': 3 cordon, 1 page executed; 2 denied by the guard; 3 nodes cordoned, 2 still cordoned; incidents: 2 opened, 1 resolved, 1 open');
    const metrics = (await r1.registry.metrics()) + (await r2.registry.metrics());
    expect(metrics).to.match(/nodewarden_job_runs_total\{job="daily-digest",result="success",component="engine-\d"\} 1/);
    expect(metrics).to.match(/nodewarden_job_runs_total\{job="daily-digest",result="not_elected",component="engine-\d"\} 1/);
  });
});
