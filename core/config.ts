/**
 * Configuration: shipped defaults <- file (YAML or JSON) <- environment <- flags.
 * The merged result is validated against one JSON schema with
 * additionalProperties=false, so a typo is an error naming the file and the
 * field path, never a silently ignored setting. Secrets are never inline:
 * they are read from files (mounted Kubernetes Secrets) or environment variables.
 */
import { validateSchema } from './schema.js';
import { strictObject as obj } from './schema.js';
import type { Infer } from './schema.js';
import { PoisonInputError } from './errors.js';
import type { InputProblem } from './errors.js';
import { parseYamlDocuments } from './yaml.js';
import { DURATION_PATTERN, formatDuration, isDuration, parseDuration } from './duration.js';
import { isRecord } from './records.js';

/**
 * The configuration's TypeScript types are derived from CONFIG_SCHEMA (below):
 * one definition, so the type and the validation cannot drift apart. Field
 * documentation lives on the schema and in docs/configuration.md.
 */
export type NodewardenConfig = Infer<typeof CONFIG_SCHEMA>;
export type KafkaConfig = NodewardenConfig['kafka'];
/** DRA device taints of single GPUs (KEP-5055 DeviceTaintRule; docs/gpu-scope.md). */
export type DeviceTaintsConfig = NodewardenConfig['deviceTaints'];

export const DEFAULT_CONFIG: NodewardenConfig = {
  labels: { group: 'nodewarden.io/pool', zone: 'topology.kubernetes.io/zone' },
  kafka: {
    brokers: ['127.0.0.1:9092'],
    clientId: 'nodewarden',
    topics: { signals: 'nodewarden.signals', deadLetter: 'nodewarden.deadletter', ledger: 'nodewarden.ledger' },
    ssl: false,
    caFile: null,
    sasl: null,
  },
  redis: { url: 'redis://127.0.0.1:6379', keyPrefix: 'nw:', passwordFile: null, caFile: null },
  agent: {
    node: '',
    hostRoot: '/',
    stateDir: '',
    dcgmUrl: 'http://127.0.0.1:9400/metrics',
    containerdSocket: 'unix:///run/containerd/containerd.sock',
    kubeProxySelector: 'k8s-app=kube-proxy',
    kubeProxyHealthUrl: 'http://127.0.0.1:10256/healthz',
    intervals: { conntrack: '15s', dcgm: '15s', containerd: '10s', kubeProxyHealth: '15s', heartbeat: '30s', kmsgPoll: '1s' },
    containerdDeadline: '2s',
    spool: { maxEvents: 10_000 },
    http: { host: '0.0.0.0', port: 9101 },
    publish: { batchSize: 500, lingerMs: 50 },
  },
  engine: {
    groupId: 'nodewarden-engine',
    rulesPath: null,
    store: 'memory',
    http: { host: '0.0.0.0', port: 9102 },
    dedupeWindow: '10m',
    consumer: { chunkSize: 1000, partitionsConcurrently: 3 },
    eventTime: { maxFuture: '5m', maxPast: '7d' },
    watchedWorkloads: [{ kind: 'DaemonSet', namespace: 'gpu-operator', name: 'nvidia-driver-daemonset' }],
  },
  guard: {
    dryRun: false,
    maxUnavailable: '5%',
    maxUnavailablePerGroup: '20%',
    rateLimits: {
      cordon: { count: 10, per: '10m' },
      uncordon: { count: 10, per: '10m' },
      rollback: { count: 1, per: '1h' },
      page: { count: 60, per: '1m' },
    },
    targetCooldown: '10m',
    rollbackWindow: '6h',
    circuitBreaker: { failures: 5, window: '5m', openFor: '2m' },
    inFlightLease: '15s',
    actionConcurrency: 8,
    autoUncordon: false,
    maxTaintedGpusPerNode: '50%',
    gpuCountLabel: 'nvidia.com/gpu.count',
  },
  deviceTaints: {
    enabled: true,
    driver: 'gpu.nvidia.com',
    uuidAttribute: 'uuid',
    pciAttribute: 'pciBusID',
    key: 'nodewarden.io/unhealthy',
    discoveryTtl: '5m',
  },
  pager: { pagerduty: null, slack: null, slackApi: null },
  control: { tokensFile: null },
  incidents: {
    enabled: true,
    groupBy: ['rule', 'pool'],
    groupWait: '0s',
    groupInterval: '1m',
    repeatInterval: '4h',
    holdOnAck: true,
    keepResolved: '7d',
    pagerdutyWebhook: null,
    approvals: { requiredFor: ['rollback'], timeout: '15m', onTimeout: 'deny' },
    slackInteractivity: null,
  },
  jobs: {
    enabled: true,
    timezone: 'UTC',
    guardReconcile: { enabled: true, schedule: '* * * * *', timeout: '30s' },
    resolveCleared: { enabled: true, schedule: '* * * * *', timeout: '30s', minAge: '5m', lookback: '7d' },
    expireToggles: { enabled: true, schedule: '* * * * *', timeout: '30s' },
    trimState: { enabled: true, schedule: '7 * * * *', timeout: '5m', ledgerMaxLen: 100_000, ledgerMaxAge: '30d' },
    dailyDigest: { enabled: true, schedule: '0 9 * * *', timeout: '2m', window: '24h' },
  },
  repair: {
    enabled: false,
    namespace: 'nodewarden',
    window: '24h',
    maxAttemptsPerNode: 3,
    maxAttemptsPerGpu: 2,
    quietPeriod: '30m',
    retry: '1m',
    reset: { template: null, timeout: '10m' },
    reboot: { mode: 'job', template: null, annotation: 'nodewarden.io/reboot-requested', timeout: '30m' },
    validate: { template: null, timeout: '30m' },
  },
};

const duration = { type: 'string', pattern: DURATION_PATTERN, patternHint: 'must be a duration like 30s, 15m, 2h' } as const;
const budget = {
  type: 'string',
  pattern: '^((100(\\.0+)?|\\d{1,2}(\\.\\d+)?)%|\\d{1,7})$',
  patternHint: 'must be a percentage from 0% to 100% like 5%, or a count of nodes like 3',
} as const;
const str = { type: 'string' } as const;
/** A label/taint key: optional DNS prefix, then a name (bounded: it goes into API objects). */
const labelName = {
  type: 'string',
  pattern: '^(?=.{1,253}$)([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$',
  patternHint: 'must be a label name like nodewarden.io/unhealthy',
} as const;
const dnsName = { type: 'string', pattern: '^(?=.{1,63}$)[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', patternHint: 'must be a DNS name like gpu.nvidia.com' } as const;
const attrName = { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_]{0,31}$', patternHint: 'must be a device attribute name like uuid' } as const;
const nstr = { type: ['string', 'null'] } as const;
const port = { type: 'integer', minimum: 0, maximum: 65535 } as const;
/** 5 or 6 cron fields (node-cron syntax); the job scheduler checks the fields themselves. */
const cron = { type: 'string', pattern: '^\\S+(\\s+\\S+){4,5}$', patternHint: 'must be a cron expression of 5 or 6 fields, like "0 9 * * *"' } as const;
/**
 * A Kubernetes Job manifest (batch/v1) with `{{node}}`, `{{gpu}}`, `{{episode}}` placeholders; null: not configured.
 * Render-time checks (remediations/ladder/job-template.ts) name what is missing.
 */
const jobTemplate = { anyOf: [{ type: 'null' }, { type: 'object', required: ['spec'], properties: { apiVersion: { enum: ['batch/v1'] }, kind: { enum: ['Job'] } } }] } as const;

export const CONFIG_SCHEMA = obj({
  /** Node labels copied onto events and used for grouping. */
  labels: obj({ group: str, zone: str }),
  kafka: obj({
    brokers: { type: 'array', items: str, minItems: 1 },
    clientId: str,
    topics: obj({ signals: str, deadLetter: str, ledger: str }),
    ssl: { type: 'boolean' },
    /** PEM CA bundle the brokers' certificates must chain to (a mounted Secret); null = the system CAs. Needs ssl. */
    caFile: nstr,
    sasl: {
      anyOf: [{ type: 'null' }, obj({ mechanism: { enum: ['plain', 'scram-sha-256', 'scram-sha-512'] }, usernameFile: str, passwordFile: str })],
    },
  }),
  /** `rediss://` URLs use TLS (`caFile`: PEM CA bundle); an ACL user goes in the URL (`rediss://nodewarden@host:6380`), its password in `passwordFile`. */
  redis: obj({ url: str, keyPrefix: str, passwordFile: nstr, caFile: nstr }),
  agent: obj({
    node: str,
    hostRoot: str,
    /** Where the agent keeps its resume position (kernel-log cursor); '' = none (restart tails from the end). */
    stateDir: str,
    dcgmUrl: str,
    containerdSocket: str,
    kubeProxySelector: str,
    kubeProxyHealthUrl: str,
    intervals: obj({ conntrack: duration, dcgm: duration, containerd: duration, kubeProxyHealth: duration, heartbeat: duration, kmsgPoll: duration }),
    containerdDeadline: duration,
    spool: obj({ maxEvents: { type: 'integer', minimum: 1, maximum: 10_000_000 } }),
    http: obj({ host: str, port }),
    publish: obj({ batchSize: { type: 'integer', minimum: 1, maximum: 100_000 }, lingerMs: { type: 'integer', minimum: 0, maximum: 60_000 } }),
  }),
  engine: obj({
    groupId: str,
    /** Rule files or directories to load; null = the shipped pack. List the pack too to add site rules to it. */
    rulesPath: { anyOf: [{ type: 'null' }, { type: 'string', minLength: 1 }, { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 }] },
    store: { enum: ['memory', 'redis'] },
    http: obj({ host: str, port }),
    dedupeWindow: duration,
    /**
     * How the replica drains its partitions (ADR 0046): messages per committed
     * chunk, and how many of its partitions are fetched and worked on at once
     * (evaluation itself stays one chunk at a time; decoding, the dedupe
     * claims and confirms, and offset commits of the others overlap it).
     */
    consumer: obj({ chunkSize: { type: 'integer', minimum: 1, maximum: 10_000 }, partitionsConcurrently: { type: 'integer', minimum: 1, maximum: 64 } }),
    /**
     * Event time is bounded against the time an event is read (design brief §8):
     * an event whose `ts` is more than `maxFuture` ahead, or more than `maxPast`
     * behind, is a dead letter and never moves any window or watermark.
     */
    eventTime: obj({ maxFuture: duration, maxPast: duration }),
    watchedWorkloads: { type: 'array', items: obj({ kind: { enum: ['DaemonSet', 'Deployment'] }, namespace: str, name: str }) },
  }),
  guard: obj({
    dryRun: { type: 'boolean' },
    maxUnavailable: budget,
    maxUnavailablePerGroup: budget,
    rateLimits: { type: 'object', additionalProperties: obj({ count: { type: 'integer', minimum: 0, maximum: 1_000_000 }, per: duration }) },
    targetCooldown: duration,
    rollbackWindow: duration,
    circuitBreaker: obj({ failures: { type: 'integer', minimum: 1, maximum: 10_000 }, window: duration, openFor: duration }),
    /**
     * Lease of an authorized, not yet settled decision (ADR 0026): its replica
     * renews it every third of it until the settle; a replica that dies holding
     * it blocks the decision for at most this long before another takes it over.
     */
    inFlightLease: duration,
    /**
     * Cordons and GPU taints of one batch the guard authorized that are carried out
     * at the same time (ADR 0041); admission stays one at a time, one node never twice at once.
     */
    actionConcurrency: { type: 'integer', minimum: 1, maximum: 64 },
    autoUncordon: { type: 'boolean' },
    /**
     * Per-GPU scope (docs/gpu-scope.md): at most this many GPUs of one node
     * tainted at a time, `50%` of the node's GPUs or a count. A node with N of
     * its G GPUs tainted counts N/G of a node toward maxUnavailable.
     */
    maxTaintedGpusPerNode: budget,
    /** Node label with the node's GPU count when capacity `nvidia.com/gpu` is absent (DRA-only nodes): GPU feature discovery's. */
    gpuCountLabel: labelName,
  }),
  /** DRA device taints of single GPUs (KEP-5055 DeviceTaintRule; docs/gpu-scope.md). */
  deviceTaints: obj({
    /** Taint single GPUs where the cluster serves DeviceTaintRule; false: always cordon the node. */
    enabled: { type: 'boolean' },
    /** DRA driver whose devices are the GPUs (ResourceSlice spec.driver; the device attribute domain). */
    driver: dnsName,
    /** Device attribute holding the GPU UUID (NVIDIA DRA driver: `uuid`). */
    uuidAttribute: attrName,
    /** Device attribute holding the PCI bus id, used when an event names no UUID; null: cordon instead. */
    pciAttribute: { anyOf: [{ type: 'null' }, attrName] },
    /** Taint key on the device (the effect is NoSchedule; dry-run: None, or a server-side dry run where None is not served). */
    key: labelName,
    /** How long the answer "is DeviceTaintRule served, in which version" is cached. */
    discoveryTtl: duration,
  }),
  pager: obj({
    pagerduty: { anyOf: [{ type: 'null' }, obj({ url: str, routingKeyFile: nstr, routingKeyEnv: str })] },
    slack: { anyOf: [{ type: 'null' }, obj({ webhookUrlFile: nstr, webhookUrlEnv: str, minIntervalMs: { type: 'integer', minimum: 0, maximum: 60_000 } })] },
    /** Slack Web API with a bot token: one message per incident, edited; approval buttons (docs/paging.md). */
    slackApi: {
      anyOf: [
        { type: 'null' },
        obj({ url: str, channel: { type: 'string', minLength: 1 }, tokenFile: nstr, tokenEnv: str, minIntervalMs: { type: 'integer', minimum: 0, maximum: 60_000 }, approvals: { type: 'boolean' } }, ['channel']),
      ],
    },
  }),
  control: obj({ tokensFile: nstr }),
  /** Paging as incidents (remediations/incidents, docs/paging.md). */
  incidents: obj({
    /** Group pages into incidents (default true); false: every page is sent as it comes. */
    enabled: { type: 'boolean' },
    /** Grouping labels; `rule` is the rule id (default [rule, pool]). */
    groupBy: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
    groupWait: duration,
    groupInterval: duration,
    repeatInterval: duration,
    /** An acknowledged incident holds further automated actions on its group. */
    holdOnAck: { type: 'boolean' },
    keepResolved: duration,
    /** PagerDuty v3 webhooks (acknowledge/resolve), verified with the subscription's signing secret. */
    pagerdutyWebhook: { anyOf: [{ type: 'null' }, obj({ secretFile: nstr, secretEnv: str, maxAge: duration })] },
    /** Actions a person approves first (remediations/approvals). */
    approvals: obj({ requiredFor: { type: 'array', items: { enum: ['cordon', 'uncordon', 'rollback', 'taint'] } }, timeout: duration, onTimeout: { enum: ['deny', 'approve'] } }),
    /** Slack interactivity (Approve/Deny buttons), verified with the app's signing secret. */
    slackInteractivity: { anyOf: [{ type: 'null' }, obj({ signingSecretFile: nstr, signingSecretEnv: str })] },
  }),
  /** Scheduled operations jobs of the engine (jobs/, docs/jobs.md); each: a 5-field cron expression (6 with seconds) and a run timeout. */
  jobs: obj({
    /** Master switch: false starts no job at all. */
    enabled: { type: 'boolean' },
    /** IANA time zone the cron expressions are read in (e.g. `Europe/Berlin`). */
    timezone: { type: 'string', minLength: 1 },
    guardReconcile: obj({ enabled: { type: 'boolean' }, schedule: cron, timeout: duration }),
    /** `minAge`: pages and cordons younger than this are left alone; `lookback`: how far back open pages are tracked. */
    resolveCleared: obj({ enabled: { type: 'boolean' }, schedule: cron, timeout: duration, minAge: duration, lookback: duration }),
    expireToggles: obj({ enabled: { type: 'boolean' }, schedule: cron, timeout: duration }),
    /** Ledger stream bounds enforced by the hourly trim (exact length and age). */
    trimState: obj({ enabled: { type: 'boolean' }, schedule: cron, timeout: duration, ledgerMaxLen: { type: 'integer', minimum: 1000, maximum: 100_000_000 }, ledgerMaxAge: duration }),
    /** `window`: the span of ledger the digest covers, ending at the run. */
    dailyDigest: obj({ enabled: { type: 'boolean' }, schedule: cron, timeout: duration, window: duration }),
  }),
  /** The repair ladder: reset → reboot → hand-over, validation, return to service (docs/repair-ladder.md). */
  repair: obj({
    /** Off by default: nodewarden cordons and pages, and people repair. */
    enabled: { type: 'boolean' },
    /** Namespace of the repair Jobs (the engine's Role is granted Jobs there only). */
    namespace: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$', patternHint: 'must be a Kubernetes namespace name (lowercase letters, digits, dashes)' },
    /** Repair attempts are counted within this window (they outlive episodes). */
    window: duration,
    maxAttemptsPerNode: { type: 'integer', minimum: 1, maximum: 100 },
    maxAttemptsPerGpu: { type: 'integer', minimum: 1, maximum: 100 },
    /** After a passed validation the node must stay quiet this long before it is returned. */
    quietPeriod: duration,
    /** A step a guard denied is asked for again after this long. */
    retry: duration,
    reset: obj({ template: jobTemplate, timeout: duration }),
    /** `job`: a Job from the template; `annotation`: set `annotation` on the node for an external reboot controller, which removes it when done. */
    reboot: obj({ mode: { enum: ['job', 'annotation'] }, template: jobTemplate, annotation: { type: 'string', pattern: '^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$', patternHint: 'must be an annotation key like example.com/reboot' }, timeout: duration }),
    /** Without a template nodewarden never returns a node by itself (it holds it for a person). */
    validate: obj({ template: jobTemplate, timeout: duration }),
  }),
});

const S = 1000;
const MIN = 60 * S;
const H = 60 * MIN;
const D = 24 * H;
/**
 * Bounds of every duration setting ([min, max] in ms; `*` matches one key).
 * Minimums keep loops from spinning (`intervals.conntrack: 0s` would be a hot
 * loop), maximums keep a typo (`300d`) from switching a safety off.
 */
export const DURATION_BOUNDS: ReadonlyArray<readonly [string, number, number]> = [
  ['/agent/intervals/conntrack', 1 * S, 1 * H],
  ['/agent/intervals/dcgm', 1 * S, 1 * H],
  ['/agent/intervals/containerd', 1 * S, 1 * H],
  ['/agent/intervals/kubeProxyHealth', 1 * S, 1 * H],
  ['/agent/intervals/heartbeat', 1 * S, 1 * H],
  ['/agent/intervals/kmsgPoll', 100, 1 * MIN],
  ['/agent/containerdDeadline', 100, 1 * MIN],
  ['/engine/dedupeWindow', 1 * MIN, 1 * D],
  ['/engine/eventTime/maxFuture', 1 * S, 1 * D],
  ['/engine/eventTime/maxPast', 1 * MIN, 30 * D],
  ['/guard/rateLimits/*/per', 1 * S, 7 * D],
  ['/guard/targetCooldown', 0, 30 * D],
  ['/guard/rollbackWindow', 1 * MIN, 30 * D],
  ['/guard/circuitBreaker/window', 1 * S, 1 * D],
  ['/guard/circuitBreaker/openFor', 1 * S, 1 * D],
  ['/guard/inFlightLease', 3 * S, 10 * MIN],
  ['/deviceTaints/discoveryTtl', 1 * S, 1 * D],
  ['/jobs/*/timeout', 1 * S, 1 * H],
  ['/jobs/resolveCleared/minAge', 0, 7 * D],
  ['/jobs/resolveCleared/lookback', 1 * MIN, 90 * D],
  ['/jobs/trimState/ledgerMaxAge', 1 * H, 3650 * D],
  ['/jobs/dailyDigest/window', 1 * H, 31 * D],
  ['/repair/window', 1 * H, 30 * D],
  ['/repair/quietPeriod', 0, 7 * D],
  ['/repair/retry', 1 * S, 1 * H],
  ['/repair/reset/timeout', 10 * S, 1 * D],
  ['/repair/reboot/timeout', 10 * S, 1 * D],
  ['/repair/validate/timeout', 10 * S, 1 * D],
];

function valuesAt(root: unknown, path: string): Array<[string, unknown]> {
  let cur: Array<[string, unknown]> = [['', root]];
  for (const part of path.split('/').slice(1)) {
    const next: Array<[string, unknown]> = [];
    for (const [p, v] of cur) {
      if (!isRecord(v)) continue;
      if (part === '*') for (const [k, c] of Object.entries(v)) next.push([`${p}/${k}`, c]);
      else if (part in v) next.push([`${p}/${part}`, v[part]]);
    }
    cur = next;
  }
  return cur;
}

/**
 * Whether `tz` is a time zone Intl (and so node-cron) knows. `UTC`, the default,
 * is answered without Intl: the first `Intl.DateTimeFormat` of a process loads
 * ICU's locale and zone data, ~8 MiB of RSS (6 of it file pages of the node
 * binary), which the agent, that never reads `jobs`, must not pay (ADR 0043).
 */
export function isTimeZone(tz: string): boolean {
  if (tz === 'UTC') return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Problems the schema cannot express: duration bounds and IANA time zones. Runs on a schema-valid config. */
export function configBoundProblems(cfg: NodewardenConfig): InputProblem[] {
  const problems: InputProblem[] = [];
  for (const [path, min, max] of DURATION_BOUNDS)
    for (const [p, v] of valuesAt(cfg, path)) {
      if (typeof v !== 'string' || !isDuration(v)) continue;
      const ms = parseDuration(v);
      if (ms < min || ms > max) problems.push({ path: p, message: `must be between ${formatDuration(min)} and ${formatDuration(max)}, got ${v}` });
    }
  if (!isTimeZone(cfg.jobs.timezone))
    problems.push({ path: '/jobs/timezone', message: `unknown time zone "${cfg.jobs.timezone}" (use an IANA name like UTC or Europe/Berlin)` });
  // Label names are looked up in label maps: `constructor` would find Object's.
  for (const [p, v] of [...valuesAt(cfg, '/labels/*'), ...cfg.incidents.groupBy.map((g, i) => [`/incidents/groupBy/${i}`, g] as const)])
    if (typeof v === 'string' && v in Object.prototype) problems.push({ path: p, message: `"${v}" is a name every object inherits, not a label name` });
  return problems;
}

/** The documented count form `maxUnavailable: 3` is a YAML number: read it as the count it is. */
function normalizeBudgets(cfg: NodewardenConfig): NodewardenConfig {
  const g = cfg.guard as unknown as Record<string, unknown> | undefined;
  if (!isRecord(g)) return cfg;
  for (const k of ['maxUnavailable', 'maxUnavailablePerGroup', 'maxTaintedGpusPerNode']) {
    const v = g[k];
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) g[k] = String(v);
  }
  return cfg;
}

/** Every problem of a merged config (schema, then bounds); normalizes the count form of budgets in place. */
export function configProblems(cfg: NodewardenConfig): InputProblem[] {
  normalizeBudgets(cfg);
  const problems = validateSchema(CONFIG_SCHEMA, cfg);
  if (problems.length === 0) problems.push(...configBoundProblems(cfg));
  return problems;
}

/** Environment variables that override config paths. */
export const ENV_OVERRIDES: ReadonlyArray<{ env: string; path: string; kind: 'string' | 'list' | 'int' | 'bool' }> = [
  { env: 'NODEWARDEN_KAFKA_BROKERS', path: 'kafka.brokers', kind: 'list' },
  { env: 'NODEWARDEN_REDIS_URL', path: 'redis.url', kind: 'string' },
  { env: 'NODEWARDEN_NODE_NAME', path: 'agent.node', kind: 'string' },
  { env: 'NODE_NAME', path: 'agent.node', kind: 'string' },
  { env: 'NODEWARDEN_HOST_ROOT', path: 'agent.hostRoot', kind: 'string' },
  { env: 'NODEWARDEN_AGENT_STATE_DIR', path: 'agent.stateDir', kind: 'string' },
  { env: 'NODEWARDEN_DCGM_URL', path: 'agent.dcgmUrl', kind: 'string' },
  { env: 'NODEWARDEN_AGENT_PORT', path: 'agent.http.port', kind: 'int' },
  { env: 'NODEWARDEN_ENGINE_PORT', path: 'engine.http.port', kind: 'int' },
  { env: 'NODEWARDEN_ENGINE_STORE', path: 'engine.store', kind: 'string' },
  { env: 'NODEWARDEN_RULES', path: 'engine.rulesPath', kind: 'string' },
  { env: 'NODEWARDEN_DRY_RUN', path: 'guard.dryRun', kind: 'bool' },
  { env: 'NODEWARDEN_CONTROL_TOKENS_FILE', path: 'control.tokensFile', kind: 'string' },
];

export type Overrides = Record<string, unknown>;

/** Deep merge: objects merge key by key; arrays and scalars replace. */
export function deepMerge<T>(base: T, over: unknown): T {
  if (!isRecord(base) || !isRecord(over)) return (over === undefined ? base : over) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const cur = Object.hasOwn(out, k) ? out[k] : undefined;
    // defineProperty, not `out[k] =`: a `__proto__` key stays a key (and the
    // schema names it) instead of replacing the object's prototype.
    Object.defineProperty(out, k, { value: isRecord(cur) && isRecord(v) ? deepMerge(cur, v) : v, enumerable: true, writable: true, configurable: true });
  }
  return out as T;
}

/** Sets a dotted path in a nested object, creating objects on the way. */
export function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur: Record<string, unknown> = target;
  for (let i = 0; i < parts.length - 1; i++) {
    const p = parts[i] as string;
    const next = cur[p];
    if (!isRecord(next)) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1] as string] = value;
}

function envValue(raw: string, kind: 'string' | 'list' | 'int' | 'bool', env: string): unknown {
  switch (kind) {
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter(Boolean);
    case 'int': {
      const n = Number(raw);
      if (!Number.isInteger(n)) throw new PoisonInputError('CONFIG_INVALID', `env ${env}`, [{ path: '', message: `must be an integer, got "${raw}"` }]);
      return n;
    }
    case 'bool':
      if (!['true', 'false', '1', '0'].includes(raw))
        throw new PoisonInputError('CONFIG_INVALID', `env ${env}`, [{ path: '', message: `must be true or false, got "${raw}"` }]);
      return raw === 'true' || raw === '1';
    default:
      return raw;
  }
}

/** Parses a config file's text (YAML is a superset of JSON). */
export function parseConfigText(text: string, source: string): Overrides {
  const problems: InputProblem[] = [];
  const docs = parseYamlDocuments(text, problems);
  if (problems.length > 0) throw new PoisonInputError('CONFIG_INVALID', source, problems);
  if (docs.length > 1) throw new PoisonInputError('CONFIG_INVALID', source, [{ path: '/', message: 'config must be one YAML document' }]);
  const doc = docs[0];
  if (doc === undefined) return {};
  if (!isRecord(doc)) throw new PoisonInputError('CONFIG_INVALID', source, [{ path: '', message: 'config must be a mapping' }]);
  return doc;
}

export interface LoadConfigOptions {
  /** Where `text` came from (named in errors); the file itself is read by adapters/config-file.ts. */
  file?: string | undefined;
  /** The config file's text. */
  text?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Dotted-path overrides from command-line flags, applied last. */
  flags?: Record<string, unknown>;
}

/** Keys that would hold a secret value; each has a `...File` (and for pagers `...Env`) form instead. */
const SECRET_KEYS = /^(password|passwd|token|tokens|secret|webhookurl|routingkey|routing_key|apikey|api_key|username|sasl_password)$/i;
/** Secret-bearing URLs recognised by their shape, wherever they are written. */
const SECRET_URLS: ReadonlyArray<[RegExp, string]> = [
  [/^xox[abpre]-/i, 'a Slack token is a credential: put it in the file named by pager.slackApi.tokenFile (a mounted Secret) or in $NODEWARDEN_SLACK_BOT_TOKEN'],
  [/^https:\/\/hooks\.slack\.com\//i, 'a Slack webhook URL is a credential: put it in the file named by pager.slack.webhookUrlFile (a mounted Secret) or in $NODEWARDEN_SLACK_WEBHOOK_URL'],
  [/^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]+@/i, 'a URL must not carry a password: use the matching ...File setting (a mounted Secret)'],
];

/**
 * Literal secrets written into a config file (or an env/flag override): every
 * one is a problem with a message naming the file-based form. A config file is
 * a ConfigMap, readable by anyone who can read the namespace's config.
 */
export function literalSecretProblems(doc: unknown, path = ''): InputProblem[] {
  const out: InputProblem[] = [];
  if (typeof doc === 'string') {
    for (const [re, message] of SECRET_URLS) if (re.test(doc)) out.push({ path, message });
  } else if (Array.isArray(doc)) {
    doc.forEach((v, i) => out.push(...literalSecretProblems(v, `${path}/${i}`)));
  } else if (isRecord(doc)) {
    for (const [k, v] of Object.entries(doc)) {
      const p = `${path}/${k}`;
      if (SECRET_KEYS.test(k) && v !== null && typeof v !== 'object')
        out.push({ path: p, message: `secrets are never read from the config file: use ${k}File (a mounted Secret)${k === 'webhookUrl' || k === 'routingKey' ? ` or ${k}Env` : ''} instead` });
      else out.push(...literalSecretProblems(v, p));
    }
  }
  return out;
}

/** Merges and validates the configuration; throws PoisonInputError with every problem. */
export function resolveConfig(opts: LoadConfigOptions = {}): NodewardenConfig {
  let cfg: NodewardenConfig = structuredClone(DEFAULT_CONFIG);
  let source = 'defaults';
  if (opts.text !== undefined) {
    source = opts.file ?? 'config';
    cfg = deepMerge(cfg, parseConfigText(opts.text, source));
  }
  const env = opts.env ?? {};
  const envOver: Record<string, unknown> = {};
  for (const o of ENV_OVERRIDES) {
    const raw = env[o.env];
    if (raw !== undefined && raw !== '') setPath(envOver, o.path, envValue(raw, o.kind, o.env));
  }
  cfg = deepMerge(cfg, envOver);
  const flagOver: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts.flags ?? {})) if (v !== undefined) setPath(flagOver, k, v);
  cfg = deepMerge(cfg, flagOver);
  const secrets = literalSecretProblems(cfg);
  if (secrets.length > 0) throw new PoisonInputError('CONFIG_INVALID', source, secrets);
  const problems = configProblems(cfg);
  if (cfg.kafka.caFile !== null && cfg.kafka.ssl !== true) problems.push({ path: '/kafka/caFile', message: 'needs kafka.ssl: true' });
  if (cfg.redis.caFile !== null && !/^rediss:\/\//i.test(cfg.redis.url)) problems.push({ path: '/redis/caFile', message: 'needs a rediss:// url (TLS)' });
  if (problems.length > 0) throw new PoisonInputError('CONFIG_INVALID', source, problems);
  return cfg;
}
