/**
 * The node agent, composed: config → context (node, labels, clock, logger,
 * registry) → collectors → publisher (Kafka behind a spool) → /metrics and
 * /healthz. Also `runOnce`, one round of every collector for `agent --once`.
 *
 * Every event a collector emits is validated against envelope v1 before it
 * is published: a collector bug becomes a counted drop, not poison on the bus.
 */
import { boundEventData } from './bounds.js';
import { hostname } from 'node:os';
import type { CollectorContext, Emit } from './collector.js';
import type { EventSink } from '../core/bus.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import type { NodewardenConfig } from '../core/config.js';
import type { EventEnvelope, EventLabels, EventType } from '../core/envelope.js';
import { envelopeProblems } from '../core/envelope.js';
import { errorMessage } from '../core/errors.js';
import { UlidFactory } from '../core/ids.js';
import { withTimeout } from '../core/timeout.js';
import type { Logger } from '../core/logger.js';
import { Counter, createRegistry } from './metrics.js';
import type { Registry } from './metrics.js';
import { registerProcessMetrics } from './process-metrics.js';
import { buildCollectors, collectorErrors, startCollectors, stopCollectors } from './collectors/registry.js';
import type { CollectorDeps, CollectorFactory } from './collectors/registry.js';
import type { PodSource } from './collectors/kube-proxy.js';
import type { AgentHttpServer } from './http.js';
import { detectKubeAccess, labelsFromNode, parseLabelFlags, readNodeLabels } from './node-labels.js';
import type { KubeAccess } from './node-labels.js';
import type { MessageProducer } from './publisher/producer.js';

/** Builds the context every collector receives. */
export function createCollectorContext(opts: Omit<CollectorContext, 'newEvent'>): CollectorContext {
  const ids = new UlidFactory();
  const labels: EventLabels = {};
  for (const [k, v] of Object.entries(opts.labels)) if (typeof v === 'string') labels[k] = v;
  return {
    node: opts.node,
    labels,
    hostRoot: opts.hostRoot,
    clock: opts.clock,
    logger: opts.logger,
    registry: opts.registry,
    newEvent<D extends object>(type: EventType, source: string, data: D, observedAt?: number): EventEnvelope {
      const at = observedAt ?? opts.clock.now();
      return {
        v: 1,
        id: ids.next(opts.clock.now()),
        ts: new Date(at).toISOString(),
        node: opts.node,
        type,
        source,
        labels: { ...labels },
        data: boundEventData(data) as unknown as Record<string, unknown>,
      };
    },
  };
}

/** The node name: config/flag, else $NODE_NAME (via config env overrides), else the hostname. */
export function nodeName(config: NodewardenConfig): string {
  return config.agent.node || hostname();
}

/**
 * Labels for every event: from the Node object when the API is reachable,
 * then `--label` flags on top. A failed API read is logged, not fatal: events
 * without a pool still count for per-node and fleet rules.
 */
export async function resolveLabels(opts: {
  config: NodewardenConfig;
  node: string;
  kubeAccess: KubeAccess | null;
  labelFlags: readonly string[];
  logger: Logger;
  readLabels?: (node: string, access: KubeAccess) => Promise<Record<string, string>>;
}): Promise<EventLabels> {
  let labels: EventLabels = {};
  if (opts.kubeAccess) {
    try {
      const raw = await (opts.readLabels ?? readNodeLabels)(opts.node, opts.kubeAccess);
      labels = labelsFromNode(raw, opts.config.labels);
    } catch (err) {
      opts.logger.warn({ node: opts.node, err: errorMessage(err) }, 'cannot read node labels; events carry no pool/zone');
    }
  }
  return { ...labels, ...parseLabelFlags(opts.labelFlags, opts.config.labels) };
}

// ------------------------------------------------------------- --once

export interface OnceOptions {
  config: NodewardenConfig;
  logger: Logger;
  labelFlags?: readonly string[];
  clock?: Clock;
  /** Default: detected from the environment. */
  kubeAccess?: KubeAccess | null;
  podSource?: () => Promise<PodSource | null>;
  factories?: ReadonlyMap<string, CollectorFactory>;
  /** Bound on each collector's collectOnce (default 15 s). */
  collectorTimeoutMs?: number;
}

export interface OnceResult {
  events: EventEnvelope[];
  /** One line per collector that was skipped or failed, for stderr. */
  notes: string[];
}

/** One round of every collector over the host root: no Kafka, no cluster needed. Invalid events become notes. */
export async function runOnce(opts: OnceOptions): Promise<OnceResult> {
  const clock = opts.clock ?? systemClock;
  const registry = createRegistry('agent');
  const node = nodeName(opts.config);
  const labels = parseLabelFlags(opts.labelFlags ?? [], opts.config.labels);
  const ctx = createCollectorContext({ node, labels, hostRoot: opts.config.agent.hostRoot, clock, logger: opts.logger, registry });
  const kubeAccess = opts.kubeAccess === undefined ? detectKubeAccess() : opts.kubeAccess;
  const deps: CollectorDeps = { config: opts.config, kubeAccess, startedAt: clock.now() };
  if (opts.podSource) deps.podSource = opts.podSource;
  const { built, failed } = await buildCollectors(ctx, deps, opts.factories ? { factories: opts.factories } : {});
  const notes = failed.map((f) => `${f.key}: not available: ${f.error}`);
  const events: EventEnvelope[] = [];
  const timeoutMs = opts.collectorTimeoutMs ?? 15_000;
  for (const { key, collector } of built) {
    try {
      const r = await withTimeout(collector.collectOnce(), timeoutMs, key);
      if (r.skipped) notes.push(`${key}: skipped: ${r.skipped}`);
      for (const e of r.events) {
        const problems = envelopeProblems(e);
        if (problems.length === 0) events.push(e);
        else notes.push(`${key}: dropped an invalid event: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`);
      }
    } catch (err) {
      notes.push(`${key}: failed: ${errorMessage(err)}`);
    } finally {
      await collector.stop().catch(() => undefined);
    }
  }
  return { events, notes };
}

// ------------------------------------------------------------- live agent

export interface AgentOptions {
  config: NodewardenConfig;
  logger: Logger;
  clock?: Clock;
  labelFlags?: readonly string[];
  /** Default: detected from the environment. */
  kubeAccess?: KubeAccess | null;
  /** Replaces the Kafka publisher (tests, embedded use). */
  sink?: EventSink;
  /** Replaces the Kafka producer (agent/publisher/kafka-wire) behind the default publisher (tests). */
  producer?: MessageProducer;
  factories?: ReadonlyMap<string, CollectorFactory>;
  podSource?: () => Promise<PodSource | null>;
  /** Serve /metrics and /healthz (default true). */
  http?: boolean;
}

export interface RunningAgent {
  readonly node: string;
  readonly labels: EventLabels;
  readonly registry: Registry;
  readonly collectors: readonly string[];
  /** Bound HTTP port, or null when disabled. */
  readonly httpPort: number | null;
  /** Stops collectors, flushes the publisher (bounded), closes HTTP. Idempotent. */
  stop(): Promise<void>;
}

export async function startAgent(opts: AgentOptions): Promise<RunningAgent> {
  const { config } = opts;
  const clock = opts.clock ?? systemClock;
  const log = opts.logger;
  const startedAt = clock.now();
  const registry = createRegistry('agent');
  // Event-loop lag sampled once a second, not every 10 ms: the agent's CPU budget is 0.5 % of a core.
  const stopProcessMetrics = registerProcessMetrics(registry, 'nodewarden_agent_');
  const node = nodeName(config);
  const kubeAccess = opts.kubeAccess === undefined ? detectKubeAccess() : opts.kubeAccess;
  const labels = await resolveLabels({ config, node, kubeAccess, labelFlags: opts.labelFlags ?? [], logger: log });
  const ctx = createCollectorContext({ node, labels, hostRoot: config.agent.hostRoot, clock, logger: log, registry });

  let sink: EventSink;
  if (opts.sink) sink = opts.sink;
  else {
    const [{ BatchPublisher }, producer] = await Promise.all([
      import('./publisher/batch-publisher.js'),
      opts.producer ?? import('./publisher/kafka-producer.js').then((m) => m.createKafkaProducer({ kafka: config.kafka, logger: log, clientIdSuffix: node })),
    ]);
    sink = new BatchPublisher({
      producer,
      topic: config.kafka.topics.signals,
      batchSize: config.agent.publish.batchSize,
      lingerMs: config.agent.publish.lingerMs,
      maxEvents: config.agent.spool.maxEvents,
      registry,
      logger: log,
      clock,
    });
  }

  const invalid = new Counter({
    name: 'nodewarden_agent_events_invalid_total',
    help: 'Events a collector produced that failed envelope v1 validation (dropped)',
    labelNames: ['type'],
    registers: [registry],
  });
  const errors = collectorErrors(registry);
  let stopping = false;

  const emit: Emit = (events, onSettled) => {
    const valid: EventEnvelope[] = [];
    for (const e of events) {
      const problems = envelopeProblems(e);
      if (problems.length === 0) valid.push(e);
      else {
        invalid.inc({ type: typeof e.type === 'string' ? e.type : 'unknown' });
        log.error({ type: e.type, problems }, 'collector produced an invalid event; dropped');
      }
    }
    if (valid.length === 0) onSettled?.();
    else
      sink.publish(valid, onSettled).catch((err: unknown) => {
        errors.inc({ collector: 'publisher' });
        log.error({ err: errorMessage(err) }, 'publish failed');
      });
  };

  const deps: CollectorDeps = { config, kubeAccess, startedAt };
  if (opts.podSource) deps.podSource = opts.podSource;
  const { built } = await buildCollectors(ctx, deps, opts.factories ? { factories: opts.factories } : {});
  const { started } = await startCollectors(ctx, built, emit);

  let server: AgentHttpServer | null = null;
  if (opts.http !== false) {
    const { startAgentHttp } = await import('./http.js');
    server = await startAgentHttp({
      host: config.agent.http.host,
      port: config.agent.http.port,
      registry,
      logger: log,
      health: () => ({
        ok: !stopping,
        node,
        collectors: started.map((c) => c.key),
        uptimeSeconds: Math.round((clock.now() - startedAt) / 1000),
        ...('depth' in sink ? { spoolDepth: (sink as { depth: number }).depth } : {}),
      }),
    });
  }
  log.info({ node, labels, collectors: started.map((c) => c.key), httpPort: server?.port ?? null, kubeApi: kubeAccess !== null }, 'agent started');

  let stopPromise: Promise<void> | null = null;
  return {
    node,
    labels,
    registry,
    collectors: started.map((c) => c.key),
    httpPort: server?.port ?? null,
    stop(): Promise<void> {
      stopPromise ??= (async () => {
        stopping = true;
        await stopCollectors(ctx, started);
        try {
          await sink.shutdown();
        } catch (err) {
          log.error({ err: errorMessage(err) }, 'publisher shutdown failed');
        }
        await server?.close();
        stopProcessMetrics();
        log.info({ node }, 'agent stopped');
      })();
      return stopPromise;
    },
  };
}
