/**
 * `nodewarden engine`: the composition root of the rules engine service.
 *
 * Wires the Kafka consumer (signals), the state store, toggles, dedupe and
 * guard (Redis for production, memory for a single embedded replica), the
 * cluster view (live API, or a simulated cluster file), executors and pagers,
 * the remediator with its ledger sinks, and the HTTP endpoint with the
 * control API. SIGTERM/SIGINT: finish the batch, commit, close everything.
 */
import { eventTimeBounds } from '../../core/event-time.js';
import kafkajs from 'kafkajs';
import type { Kafka as KafkaClient, KafkaConfig, LogEntry, Producer } from 'kafkajs';
import { Redis } from 'ioredis';
import { parseFlags } from '../args.js';
import { describeStartup, StartupRunner } from '../../core/backoff.js';
import type { StartupStep } from '../../core/backoff.js';
import { systemClock } from '../../core/clock.js';
import type { ClusterView } from '../../core/cluster.js';
import { loadConfig, readSecret } from '../../adapters/config-file.js';
import type { NodewardenConfig } from '../../core/config.js';
import { parseDuration } from '../../core/duration.js';
import { errorMessage, PoisonInputError } from '../../core/errors.js';
import { createLogger } from '../../adapters/logger.js';
import type { Logger } from '../../core/logger.js';
import { createRegistry } from '../../adapters/metrics.js';
import { kafkaTransport, redisTransport } from '../../adapters/transport-security.js';
import { loadRules, defaultRulesPath } from '../../rules/language/load.js';
import { createRuleEngine, nodeScopedKeyTest } from '../../rules/engine/engine.js';
import type { StateStore } from '../../rules/store/state-store.js';
import { MemoryStateStore } from '../../rules/store/memory-store.js';
import { NodeSustainedFilterStore } from '../../rules/store/node-sustained-filter.js';
import { PartitionLocalStore } from '../../rules/store/partition-local-store.js';
import { kafkaReleasePublisher, newReleaseRecord } from '../../rules/service/episode-release.js';
import type { RuleScope } from '../../core/held-fault.js';
import { RedisPartitionState } from '../../rules/store/partition-state-redis.js';
import { RedisStateStore } from '../../rules/store/redis-store.js';
import { BatchProcessor } from '../../rules/service/batch-processor.js';
import { KafkaDeadLetterSink } from '../../rules/service/dead-letter.js';
import { MemoryDeduper, RedisDeduper } from '../../rules/service/dedupe.js';
import { EngineService } from '../../rules/service/engine-service.js';
import { RedisWatermarkBoard } from '../../rules/service/watermark.js';
import { engineServiceMetrics } from '../../rules/service/metrics.js';
import { ruleEngineMetrics } from '../../rules/service/engine-metrics.js';
import type { EventDeduper } from '../../rules/service/ports.js';
import { MemoryRuleToggles } from '../../rules/toggles/memory-toggles.js';
import type { ClosableRuleToggles } from '../../rules/toggles/port.js';
import { RedisRuleToggles } from '../../rules/toggles/redis-toggles.js';
import { ToggleService } from '../../rules/toggles/toggle-service.js';
import { createRemediator } from '../../remediations/remediator.js';
import type { DeviceIsolation } from '../../remediations/device-isolation.js';
import { LadderDriver } from '../../remediations/ladder/driver.js';
import { createHandoverExecutor, createRepairJobExecutor, createRepairJobWatch } from '../../remediations/ladder/job-executor.js';
import type { RepairJobsApi } from '../../remediations/ladder/job-executor.js';
import { createOutcomeMetrics } from '../../remediations/ladder/metrics.js';
import { ladderPolicyFromConfig, ladderView, withRepairLadder } from '../../remediations/ladder/wire.js';
import { SimulatedRepairJobs } from '../../remediations/simulated/simulated-jobs.js';
import { createMemoryGuard } from '../../remediations/guard/memory-guard.js';
import { createRedisGuard } from '../../remediations/guard/redis-guard.js';
import { guardOptionsFromConfig } from '../../remediations/guard/policy.js';
import { KafkaLedger } from '../../remediations/ledger/kafka-ledger.js';
import { MemoryLedger } from '../../remediations/ledger/memory-ledger.js';
import { RedisStreamLedger } from '../../remediations/ledger/redis-stream-ledger.js';
import { fanOutLedger } from '../../remediations/ledger/store.js';
import type { LedgerStore, LedgerWriter } from '../../remediations/ledger/store.js';
import type { Approval } from '../../remediations/approvals/approvals.js';
import { createPagersFromConfig, slackApiFromConfig, slackWebhookFromConfig } from '../../remediations/pager/from-config.js';
import { createPagerExecutor } from '../../remediations/pager/pager-executor.js';
import { createRecordingPager } from '../../remediations/pager/recording-pager.js';
import type { ControllableGuard, Executor } from '../../remediations/ports.js';
import type { DeviceTaintExecutor } from '../../remediations/kube/device-taints.js';
import { createSimulatedCluster, loadClusterFile } from '../../remediations/simulated/index.js';
import { MemoryDocStore } from '../../remediations/incidents/doc-store.js';
import { RedisDocStore } from '../../remediations/incidents/redis-doc-store.js';
import { incidentPagingFromConfig } from '../../remediations/incidents/from-config.js';
import { createPagerDutyWebhook } from '../../remediations/webhooks/pagerduty-webhook.js';
import { createSlackInteractivity } from '../../remediations/webhooks/slack-interactivity.js';
import { webhookMetrics } from '../../remediations/webhooks/metrics.js';
import type { WebhookHandler } from '../../control/server.js';
import { pagingRoutes } from '../../control/paging-routes.js';
import { createControlBackend } from '../../control/backend.js';
import { EngineHttpServer } from '../../control/server.js';
import type { ReadinessReport } from '../../control/server.js';
import { TokenFile } from '../../control/tokens.js';
import { createEngineJobs } from '../../jobs/engine-jobs.js';

const { Kafka, logLevel } = kafkajs;

const USAGE = `usage: nodewarden engine [options]

  --config FILE          config file (YAML or JSON); defaults are built in
  --rules PATH           rule file or directory (default: the shipped rule pack)
  --store memory|redis   state, toggles, dedupe and guard backend (default: config engine.store)
  --dry-run              shadow mode: decide and record, never act
  --port N               HTTP port for /metrics, /healthz, /readyz and the control API (default 9102)
  --host ADDR            HTTP bind address (default 0.0.0.0)
  --cluster FILE         use a simulated cluster from a kubectl YAML dump instead of the live API
  --session-timeout D    consumer session timeout, how fast a dead replica's partitions move (default 10s)
  --tick D               tick period for time-driven rules (default 1s)
  --state shared|partition-local
                         where node-scoped rule state lives (default shared): partition-local keeps it
                         in the memory of the replica owning the node's partition, its changes logged
                         to Redis before offsets commit, snapshotted from time to time (EXPERIMENTAL:
                         known gaps in ADR 0045, ADR 0047; needs --store redis)

Kubernetes credentials: in-cluster service account, else $KUBECONFIG or ~/.kube/config.
`;

const OPTIONS = {
  config: { type: 'string' },
  rules: { type: 'string' },
  store: { type: 'string' },
  'dry-run': { type: 'boolean' },
  port: { type: 'string' },
  host: { type: 'string' },
  cluster: { type: 'string' },
  'session-timeout': { type: 'string' },
  tick: { type: 'string' },
  state: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function bad(message: string): PoisonInputError {
  return new PoisonInputError('REQUEST_INVALID', 'nodewarden engine', [{ path: '', message }]);
}

function durationFlag(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  try {
    return parseDuration(v);
  } catch {
    throw bad(`--${name} must be a duration like 10s, got "${v}"`);
  }
}

/** kafkajs logs through our logger (stdout stays clean). */
function kafkaLogCreator(logger: Logger): KafkaConfig['logCreator'] {
  return () => (entry: LogEntry) => {
    const { message, ...extra } = entry.log;
    const o = { kafka: entry.namespace, ...extra };
    if (entry.level <= logLevel.ERROR) logger.error(o, message);
    else if (entry.level === logLevel.WARN) logger.warn(o, message);
    else logger.debug(o, message);
  };
}

function kafkaClient(cfg: NodewardenConfig, logger: Logger, retry: KafkaConfig['retry'] = { retries: 10, initialRetryTime: 300, maxRetryTime: 10_000 }): KafkaClient {
  const k = cfg.kafka;
  const { ssl, sasl } = kafkaTransport(k);
  return new Kafka({
    clientId: k.clientId,
    brokers: k.brokers,
    ssl,
    ...(sasl ? { sasl } : {}),
    logLevel: logLevel.WARN,
    logCreator: kafkaLogCreator(logger.child({ component: 'kafka' })),
    retry,
  });
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags('engine', argv, OPTIONS, false);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.store !== undefined && values.store !== 'memory' && values.store !== 'redis') throw bad(`--store must be memory or redis, got "${values.store}"`);
  if (values.state !== undefined && values.state !== 'shared' && values.state !== 'partition-local') throw bad(`--state must be shared or partition-local, got "${values.state}"`);
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw bad(`--port must be a port number, got "${values.port}"`);
  }
  const sessionTimeoutMs = durationFlag('session-timeout', values['session-timeout'], 10_000);
  if (sessionTimeoutMs < 1000) throw bad('--session-timeout must be at least 1s');
  const tickMs = durationFlag('tick', values.tick, 1000);

  const config = loadConfig({
    file: values.config,
    env: process.env,
    flags: {
      'engine.rulesPath': values.rules,
      'engine.store': values.store,
      'guard.dryRun': values['dry-run'] ? true : undefined,
      'engine.http.port': port,
      'engine.http.host': values.host,
    },
  });
  const logger = createLogger({ component: 'engine' });
  const clock = systemClock;
  const registry = createRegistry('engine', { defaultMetrics: true });
  const rules = loadRules(config.engine.rulesPath ?? defaultRulesPath());
  const useRedis = config.engine.store === 'redis';
  const prefix = config.redis.keyPrefix;
  const closers: Array<[string, () => unknown]> = [];

  // --- Redis
  let redis: Redis | undefined;
  if (useRedis) {
    const t = redisTransport(config.redis);
    redis = new Redis(t.url, { ...t.options, maxRetriesPerRequest: 3, enableOfflineQueue: true });
    redis.on('error', (err: unknown) => logger.warn({ err: errorMessage(err) }, 'redis connection error'));
  }
  // Dependencies are waited for after HTTP is up (/healthz answers, /readyz names what is missing).
  const startup = new StartupRunner({ logger });
  const steps: StartupStep[] = [];
  if (redis) {
    const r = redis;
    steps.push({ name: 'redis', run: () => r.ping() });
  }

  // --- cluster view and executors
  let cluster: ClusterView;
  let kubeExecutor: Executor;
  // GPU-level isolation (docs/gpu-scope.md): only against a real cluster that serves DeviceTaintRule
  let isolation: DeviceIsolation | undefined;
  const deviceExecutors: { live?: DeviceTaintExecutor; dryRun?: Executor } = {};
  let repairJobs: RepairJobsApi;
  if (values.cluster) {
    const sim = createSimulatedCluster(await loadClusterFile(values.cluster), { clock, logger });
    cluster = sim;
    kubeExecutor = sim.executor;
    repairJobs = new SimulatedRepairJobs(clock);
    logger.info({ file: values.cluster, nodes: sim.listNodes().length }, 'using a simulated cluster');
  } else {
    // Loaded only here: the Kubernetes client is heavy and not needed with --cluster.
    const [{ KubeConfig }, { createClientNodeKubeApi, loadDefaultKubeConfig }, { createClientNodeListWatch }, { createKubeExecutor }, { createLiveCluster }, { createClientNodeRepairJobs }] = await Promise.all([
      import('@kubernetes/client-node'),
      import('../../remediations/kube/client-node-api.js'),
      import('../../remediations/kube/client-node-watch.js'),
      import('../../remediations/kube/executors.js'),
      import('../../remediations/kube/live-cluster.js'),
      import('../../remediations/kube/client-node-jobs.js'),
    ]);
    const kc = new KubeConfig();
    loadDefaultKubeConfig(kc);
    const dt = config.deviceTaints;
    // with device taints on, the view also watches DeviceTaintRules and ResourceSlices (GPUs tainted by others, docs/gpu-scope.md)
    const deviceTaints = dt.enabled ? { driver: dt.driver, uuidAttribute: dt.uuidAttribute, pciAttribute: dt.pciAttribute } : undefined;
    const live = createLiveCluster({ source: createClientNodeListWatch(kc, { registry }), logger, now: () => clock.now(), ...(deviceTaints ? { deviceTaints } : {}) });
    steps.push({ name: 'kubernetes api (cluster view)', run: () => live.start() });
    closers.push(['cluster view', () => live.stop()]);
    cluster = live;
    // ADR 0041: cordons patch with the watch-fed view's resourceVersion (GET only on a 409); Events are recorded after the action
    const exec = createKubeExecutor(createClientNodeKubeApi(kc, { registry }), { clock, logger, registry, nodeView: (name) => live.nodeForPlan(name), eventQueue: { max: 10_000, concurrency: 2 } });
    closers.push(['kubernetes events', () => exec.drainEvents(5000)]);
    kubeExecutor = exec;
    if (config.deviceTaints.enabled) {
      const [{ createClientNodeDeviceTaintApi }, { DeviceTaintDiscovery, createDeviceTaintExecutor }, { createDeviceIsolation }] = await Promise.all([
        import('../../remediations/kube/client-node-device-taints.js'),
        import('../../remediations/kube/device-taints.js'),
        import('../../remediations/device-isolation.js'),
      ]);
      const api = createClientNodeDeviceTaintApi(kc, { registry });
      const discovery = new DeviceTaintDiscovery({ api, clock, ttlMs: parseDuration(config.deviceTaints.discoveryTtl), logger });
      const common = { api, discovery, config: config.deviceTaints, clock, logger };
      deviceExecutors.live = createDeviceTaintExecutor(common);
      deviceExecutors.dryRun = createDeviceTaintExecutor({ ...common, dryRun: true });
      isolation = createDeviceIsolation({ config: config.deviceTaints, discovery, logger });
    }
    repairJobs = createClientNodeRepairJobs(kc, { registry });
  }

  // --- pagers, guard, ledger, remediator
  // one Slack webhook client (one rate limit: ~1 message/s per webhook) for the pager and the daily digest
  const slackWebhook = slackWebhookFromConfig(config, logger);
  let pagers = createPagersFromConfig(config, logger, process.env, slackWebhook);
  const guardOptions = guardOptionsFromConfig(config);
  const guard: ControllableGuard = redis
    ? createRedisGuard({ redis, keyPrefix: prefix, view: cluster, options: guardOptions, clock })
    : createMemoryGuard({ view: cluster, options: guardOptions, clock });
  const kafka = kafkaClient(config, logger);
  // the ledger (remediations/ledger): the Kafka topic (long-term, folded by key) and the store the
  // control API and the jobs read back: the Redis stream shared by the replicas, or memory without Redis.
  // Decisions and operator audits go to both.
  const ledgerStore: LedgerStore = redis ? new RedisStreamLedger({ redis, keyPrefix: prefix }) : new MemoryLedger(50_000);
  const ledgerWriters: LedgerWriter[] = [new KafkaLedger({ kafka, topic: config.kafka.topics.ledger }), ledgerStore];
  const ledger = fanOutLedger(ledgerWriters);
  // paging state (incidents, silences, webhook event ids): shared by every replica through Redis
  const pagingStore = redis ? new RedisDocStore(redis, prefix) : new MemoryDocStore(clock);
  const { incidents, silences, approvals } = incidentPagingFromConfig(config, pagingStore, clock);
  const slackApi = slackApiFromConfig(config, pagingStore, logger);
  if (slackApi) pagers.push(slackApi.pager);
  if (pagers.length === 0) {
    logger.warn({}, 'no pager configured (pager.pagerduty / pager.slack / pager.slackApi): pages are only logged and recorded in the ledger');
    const rec = createRecordingPager('log-only');
    pagers = [{ name: rec.name, send: async (req) => { logger.info({ page: req }, 'page (no pager configured)'); await rec.send(req); } }];
  }
  const slackApprovals = slackApi?.approvals;
  const pageExecutor = createPagerExecutor({ pagers, logger });
  const inner = createRemediator({
    guard,
    leaseMs: guardOptions.inFlightTtlMs,
    actionConcurrency: config.guard.actionConcurrency,
    executors: [
      kubeExecutor,
      pageExecutor,
      createRepairJobExecutor({ api: repairJobs, repair: config.repair }),
      createHandoverExecutor(pageExecutor),
      ...(deviceExecutors.live ? [deviceExecutors.live] : []),
    ],
    ...(deviceExecutors.dryRun ? { dryRunExecutors: [deviceExecutors.dryRun] } : {}),
    ...(isolation ? { isolation } : {}),
    ledger: ledgerWriters,
    clock,
    logger,
    registry,
    dryRun: config.guard.dryRun,
    ...(incidents ? { incidents } : {}),
    approvals,
    ...(slackApprovals ? { onApprovalRequested: (a: Approval) => slackApprovals.requested(a), onApprovalDecided: (a: Approval) => slackApprovals.decided(a) } : {}),
  });
  // the repair ladder (docs/repair-ladder.md): its state next to the paging state, shared by every replica
  const ladder = new LadderDriver({
    store: pagingStore,
    policy: ladderPolicyFromConfig(config),
    submit: async (ds) => ladderView(await inner.submit(ds)),
    view: cluster,
    jobs: createRepairJobWatch(repairJobs),
    clock,
    logger,
    catalogue: rules.xidCatalogue,
    ledger: ledgerWriters,
    metrics: createOutcomeMetrics(registry),
    deviceTaints: deviceExecutors.live,
  });
  const remediator = withRepairLadder(inner, ladder, logger);
  const webhooks: Record<string, WebhookHandler> = {};
  const hookMetrics = webhookMetrics(registry);
  const pdHook = config.incidents.pagerdutyWebhook;
  if (pdHook && incidents) {
    const raw = readSecret(pdHook.secretFile, pdHook.secretEnv);
    if (!raw) throw new PoisonInputError('CONFIG_INVALID', 'incidents.pagerdutyWebhook', [{ path: '/incidents/pagerdutyWebhook', message: `no signing secret (set secretFile or $${pdHook.secretEnv})` }]);
    // one secret per line: during a rotation both are accepted
    const secrets = raw.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    const hook = createPagerDutyWebhook({
      secrets,
      incidents,
      store: pagingStore,
      record: (rs) => ledger.append(rs),
      clock,
      logger,
      metrics: hookMetrics,
      maxAgeMs: parseDuration(pdHook.maxAge),
    });
    webhooks.pagerduty = (body, headers) => hook.handle(body, headers);
  }
  const slackHook = config.incidents.slackInteractivity;
  if (slackHook) {
    const signingSecret = readSecret(slackHook.signingSecretFile, slackHook.signingSecretEnv);
    if (!signingSecret) throw new PoisonInputError('CONFIG_INVALID', 'incidents.slackInteractivity', [{ path: '/incidents/slackInteractivity', message: `no signing secret (set signingSecretFile or $${slackHook.signingSecretEnv})` }]);
    const hook = createSlackInteractivity({ signingSecret, approvals, store: pagingStore, clock, logger, metrics: hookMetrics });
    webhooks.slack = (body, headers) => hook.handle(body, headers);
  }

  // --- state, toggles, dedupe, engine
  // A redelivered event re-derives the decisions of the episode it fired (episode.fire, state-store.ts).
  // Node-scoped sustained observations that change nothing are answered by this replica (ADR 0042).
  // --state partition-local (ADR 0045): node-scoped rules' state in the memory of the partition's owner, written behind.
  const partitionLocal =
    redis && values.state === 'partition-local'
      ? new PartitionLocalStore({
          backend: new RedisPartitionState({ client: redis, shared: new RedisStateStore({ client: redis }), keyPrefix: prefix, groupId: config.engine.groupId, topic: config.kafka.topics.signals }),
          isLocal: nodeScopedKeyTest(rules, prefix),
          onRestore: (partition, keys, ms, skipped, refused) =>
            refused > 0
              ? logger.warn({ partition, keys, ms, skipped, refused }, 'partition-local state restored; malformed op-log entries refused (their ops are lost; the next write snapshots the partition)')
              : logger.info({ partition, keys, ms, skipped }, 'partition-local state restored'),
          onDiscard: (partition, reason) => logger.info({ partition, reason }, 'partition-local state discarded (restored from Redis on next use)'),
        })
      : undefined;
  if (values.state === 'partition-local' && !partitionLocal) throw bad('--state partition-local needs --store redis');
  const sustainedFilter =
    redis && !partitionLocal
      ? new NodeSustainedFilterStore(new RedisStateStore({ client: redis }), { onForget: (reason, keys) => logger.debug({ reason, keys }, 'node-scoped state knowledge dropped') })
      : undefined;
  const store: StateStore = partitionLocal ?? sustainedFilter ?? new MemoryStateStore();
  // a reconnect may be to a promoted replica that missed the last writes: learn again from what it holds
  if (redis && sustainedFilter) redis.on('ready', () => sustainedFilter.forget('redis connection (re)established'));
  const toggles: ClosableRuleToggles = redis ? new RedisRuleToggles({ redis, keyPrefix: prefix, clock, logger }) : new MemoryRuleToggles(clock);
  steps.push({ name: 'rule toggles', run: () => toggles.start() });
  const dedupeTimes = { windowMs: parseDuration(config.engine.dedupeWindow), claimTtlMs: Math.floor(sessionTimeoutMs / 2) };
  const deduper: EventDeduper = redis ? new RedisDeduper(redis, prefix, dedupeTimes) : new MemoryDeduper(clock, dedupeTimes);
  // Idempotent: a send retried after NOT_LEADER (broker restart) is not written twice (dead letters, audit).
  const producer: Producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  // partition-local: a ladder release of a node-scoped episode goes to the owner of the node's partition, as a
  // record on that partition of the events topic, applied in order with the node's events (ADR 0049)
  const publishRelease = partitionLocal ? kafkaReleasePublisher(producer, config.kafka.topics.signals) : undefined;
  const engine = createRuleEngine({
    rules,
    store,
    cluster,
    toggles,
    clock,
    logger,
    metrics: ruleEngineMetrics(registry),
    config,
    tickOutbox: true,
    ...(publishRelease ? { routeRelease: (node: string, episodes: RuleScope[]) => publishRelease(newReleaseRecord(node, episodes, clock.now())) } : {}),
  });

  // One quick probe per start-up attempt (the client's own retries would hold one attempt for ~55 s);
  // the start-up runner owns the back-off, so /readyz and the log tell each attempt.
  steps.push({
    name: 'kafka broker',
    run: async () => {
      const probe = kafkaClient(config, logger.child({ probe: true }), { retries: 0 }).admin();
      try {
        await probe.connect();
      } finally {
        await probe.disconnect().catch(() => undefined);
      }
    },
  });
  steps.push({ name: 'kafka producer', run: () => producer.connect() });
  const metrics = engineServiceMetrics(registry);
  const processor = new BatchProcessor({
    engine,
    remediator,
    deduper,
    deadLetters: new KafkaDeadLetterSink(producer, config.kafka.topics.deadLetter),
    metrics,
    clock,
    eventTime: eventTimeBounds(config),
    logger,
    ...(sustainedFilter ? { localState: sustainedFilter } : {}),
    ...(partitionLocal ? { partitions: partitionLocal } : {}),
    // Redis down: pages still go out from replica-local state (remediation fails closed)
    ...(redis ? { degraded: { engine: createRuleEngine({ rules, store: new MemoryStateStore(), cluster, toggles, clock, logger, config }), deduper: new MemoryDeduper(clock, dedupeTimes) } } : {}),
  });
  const service = new EngineService({
    kafka,
    groupId: config.engine.groupId,
    topic: config.kafka.topics.signals,
    processor,
    metrics,
    clock,
    logger,
    tickMs,
    sessionTimeoutMs,
    chunkSize: config.engine.consumer.chunkSize,
    partitionsConcurrently: config.engine.consumer.partitionsConcurrently,
    ...(sustainedFilter ? { localState: sustainedFilter } : {}),
    ...(partitionLocal ? { partitions: partitionLocal } : {}),
    ...(redis ? { watermarks: new RedisWatermarkBoard(redis, prefix, config.engine.groupId, config.kafka.topics.signals, Math.max(30_000, 3 * sessionTimeoutMs)) } : {}),
  });

  // --- HTTP and control API
  const backend = createControlBackend({
    rules: rules.rules,
    toggles,
    toggleService: new ToggleService(toggles, ledger, clock),
    audit: ledger,
    guard,
    ledger: ledgerStore,
    clock,
    cluster,
    groupLabel: config.labels.group,
    dryRun: config.guard.dryRun,
  });
  const tokensFile = config.control.tokensFile;
  if (!tokensFile) logger.warn({}, 'control API disabled: set control.tokensFile (or NODEWARDEN_CONTROL_TOKENS_FILE)');
  const tokens = tokensFile ? new TokenFile(tokensFile, (err) => logger.error({ err: errorMessage(err) }, 'tokens file reload failed; keeping the previous tokens')) : undefined;
  const readiness = async (): Promise<ReadinessReport> => {
    const checks: ReadinessReport['checks'] = {};
    const up = startup.status;
    checks.startup = up.done ? { ok: true } : { ok: false, detail: describeStartup(up, clock.now()) };
    const problem = service.status.problem;
    checks.consumer = problem === null ? { ok: true } : { ok: false, detail: up.done ? problem : 'not started' };
    if (redis) {
      const r = redis;
      checks.redis = await Promise.race([
        r.ping().then(() => ({ ok: true })),
        new Promise<{ ok: boolean; detail: string }>((resolve) => setTimeout(() => resolve({ ok: false, detail: 'PING timed out' }), 1000).unref()),
      ]).catch((err: unknown) => ({ ok: false, detail: errorMessage(err) }));
    }
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  };
  const http = new EngineHttpServer({
    host: config.engine.http.host,
    port: config.engine.http.port,
    registry,
    readiness,
    ...(tokens ? { control: { backend, tokens } } : {}),
    webhooks,
    extraRoutes: pagingRoutes({ ...(incidents ? { incidents } : {}), silences, approvals }),
    clock,
    logger,
  });
  const addr = await http.listen();
  logger.info({ host: addr.host, port: addr.port, store: config.engine.store, dryRun: config.guard.dryRun, rules: rules.rules.length }, 'engine http listening');

  steps.push({ name: 'kafka consumer group', run: () => service.start() });

  // --- scheduled operations jobs (jobs/, docs/jobs.md)
  const jobs = createEngineJobs({
    config,
    logger,
    registry,
    clock,
    ...(redis ? { redis } : {}),
    cluster,
    guard,
    remediator,
    ledger: ledgerStore,
    toggles,
    toggleAudit: ledger,
    rules: rules.rules,
    store,
    ...(slackWebhook ? { slackWebhook } : {}),
    paging: { ...(incidents ? { incidents } : {}), silences },
  });

  // --- graceful shutdown
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      startup.stop();
      logger.info({ signal }, 'shutting down: finishing the batch in progress');
      const steps: Array<[string, () => unknown]> = [
        ['jobs', () => jobs.stop()],
        ['consumer', () => service.stop()],
        ['remediator', () => remediator.close()],
        ['http', () => http.close()],
        ['producer', () => producer.disconnect()],
        ...ledgerWriters.map((s): [string, () => unknown] => [`ledger ${s.name}`, () => s.close?.()]),
        ['toggles', () => toggles.close()],
        ['guard', () => guard.close?.()],
        ['store', () => store.close()],
        ...closers,
        ['redis', () => redis?.quit()],
      ];
      void (async () => {
        let code = 0;
        for (const [name, step] of steps) {
          try {
            await step();
          } catch (err) {
            code = 1;
            logger.warn({ step: name, err: errorMessage(err) }, 'shutdown step failed');
          }
        }
        logger.info({}, 'engine stopped');
        // Everything was closed; a client library that still holds a socket must not keep the process alive.
        setTimeout(() => {
          logger.warn({}, 'handles still open after shutdown: exiting');
          process.exit(code);
        }, 3000).unref();
        resolve(code);
      })();
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
    void startup.run(steps).then((started) => {
      if (!started) return;
      jobs.start();
      logger.info({ groupId: config.engine.groupId, topic: config.kafka.topics.signals }, 'engine consuming');
    });
  });
}
