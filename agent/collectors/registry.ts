/**
 * The collector registry: name → factory, built from the `agent.*` config.
 * Factories load their module lazily, so a collector that is not used costs
 * no memory. One collector
 * failing to build or start is logged and counted in
 * `nodewarden_agent_collector_errors_total{collector}`; the others run on.
 */
import { Counter } from '../metrics.js';
import type { Collector, CollectorContext, Emit } from '../collector.js';
import type { NodewardenConfig } from '../../core/config.js';
import { parseDuration } from '../../core/duration.js';
import { errorMessage } from '../../core/errors.js';
import type { Registry } from '../metrics.js';
import type { KubeAccess } from '../node-labels.js';
import type { PodSource } from './kube-proxy.js';

/** What a factory may need beyond the context: the config and how to reach the API. */
export interface CollectorDeps {
  config: NodewardenConfig;
  /** null: no cluster (kube-proxy restart watching is skipped). */
  kubeAccess: KubeAccess | null;
  /** Overrides the client-node PodSource (tests). */
  podSource?: () => Promise<PodSource | null>;
  /** When the agent started, for the heartbeat. */
  startedAt?: number;
}

export type CollectorFactory = (ctx: CollectorContext, deps: CollectorDeps) => Promise<Collector>;

const ms = (d: string) => parseDuration(d);

/** Every collector nodewarden ships, in start order. Keys are the `collector` label of the agent's metrics. */
export const COLLECTOR_FACTORIES: ReadonlyMap<string, CollectorFactory> = new Map<string, CollectorFactory>([
  [
    'kernel-log',
    async (ctx, { config }) => {
      const { createKernelLogCollector } = await import('./kernel-log.js');
      const stateDir = config.agent.stateDir;
      if (stateDir === '') return createKernelLogCollector(ctx, { pollMs: ms(config.agent.intervals.kmsgPoll) });
      const { fileCursorStore } = await import('./kernel-log-cursor.js');
      const log = ctx.logger.child({ collector: 'kernel-log' });
      const cursor = fileCursorStore(stateDir, (why) => log.warn({ stateDir }, why));
      return createKernelLogCollector(ctx, { pollMs: ms(config.agent.intervals.kmsgPoll), cursor });
    },
  ],
  [
    'dcgm',
    async (ctx, { config }) => {
      const { createDcgmCollector } = await import('./dcgm.js');
      const intervalMs = ms(config.agent.intervals.dcgm);
      return createDcgmCollector(ctx, { url: config.agent.dcgmUrl, intervalMs, timeoutMs: Math.min(5000, intervalMs) });
    },
  ],
  [
    'conntrack',
    async (ctx, { config }) => {
      const { createConntrackCollector } = await import('./conntrack.js');
      return createConntrackCollector(ctx, { intervalMs: ms(config.agent.intervals.conntrack) });
    },
  ],
  [
    'containerd',
    async (ctx, { config }) => {
      const { createContainerdCollector } = await import('./containerd.js');
      return createContainerdCollector(ctx, {
        socket: config.agent.containerdSocket,
        deadlineMs: ms(config.agent.containerdDeadline),
        intervalMs: ms(config.agent.intervals.containerd),
      });
    },
  ],
  [
    'kubeproxy-restart',
    async (ctx, { config, kubeAccess, podSource }) => {
      const { createKubeProxyRestartCollector, kubePodSource } = await import('./kube-proxy.js');
      const source =
        podSource ??
        (async () =>
          kubeAccess ? kubePodSource({ kubeconfigPath: kubeAccess.kubeconfigPath, node: ctx.node, labelSelector: config.agent.kubeProxySelector }) : null);
      return createKubeProxyRestartCollector(ctx, { source });
    },
  ],
  [
    'kubeproxy-health',
    async (ctx, { config }) => {
      const { createKubeProxyHealthCollector } = await import('./kube-proxy.js');
      const intervalMs = ms(config.agent.intervals.kubeProxyHealth);
      return createKubeProxyHealthCollector(ctx, { url: config.agent.kubeProxyHealthUrl, intervalMs, timeoutMs: Math.min(2000, intervalMs) });
    },
  ],
  [
    'heartbeat',
    async (ctx, { config, startedAt }) => {
      const { createHeartbeatCollector } = await import('./heartbeat.js');
      const opts: { intervalMs: number; startedAt?: number } = { intervalMs: ms(config.agent.intervals.heartbeat) };
      if (startedAt !== undefined) opts.startedAt = startedAt;
      return createHeartbeatCollector(ctx, opts);
    },
  ],
]);

/** `nodewarden_agent_collector_errors_total{collector}`, created once per registry. */
export function collectorErrors(registry: Registry): Counter<'collector'> {
  const name = 'nodewarden_agent_collector_errors_total';
  return (
    (registry.getSingleMetric(name) as Counter<'collector'> | undefined) ??
    new Counter({ name, help: 'Collector failures (build, start, collect)', labelNames: ['collector'], registers: [registry] })
  );
}

export interface BuiltCollector {
  key: string;
  collector: Collector;
}

/**
 * Builds every registered collector (or those named in `only`). A factory
 * that throws (a module missing, a bad option) is logged, counted and left out.
 */
export async function buildCollectors(
  ctx: CollectorContext,
  deps: CollectorDeps,
  opts: { only?: readonly string[]; factories?: ReadonlyMap<string, CollectorFactory> } = {},
): Promise<{ built: BuiltCollector[]; failed: Array<{ key: string; error: string }> }> {
  const factories = opts.factories ?? COLLECTOR_FACTORIES;
  const errors = collectorErrors(ctx.registry);
  const built: BuiltCollector[] = [];
  const failed: Array<{ key: string; error: string }> = [];
  for (const [key, factory] of factories) {
    if (opts.only && !opts.only.includes(key)) continue;
    try {
      built.push({ key, collector: await factory(ctx, deps) });
    } catch (err) {
      errors.inc({ collector: key });
      failed.push({ key, error: errorMessage(err) });
      ctx.logger.error({ collector: key, err: errorMessage(err) }, 'collector could not be built; the others run on');
    }
  }
  return { built, failed };
}

/** Starts each collector independently; a start failure is logged and counted, never thrown. */
export async function startCollectors(
  ctx: CollectorContext,
  collectors: readonly BuiltCollector[],
  emit: Emit,
): Promise<{ started: BuiltCollector[]; failed: Array<{ key: string; error: string }> }> {
  const errors = collectorErrors(ctx.registry);
  const results = await Promise.allSettled(collectors.map((c) => c.collector.start(emit)));
  const started: BuiltCollector[] = [];
  const failed: Array<{ key: string; error: string }> = [];
  results.forEach((r, i) => {
    const c = collectors[i] as BuiltCollector;
    if (r.status === 'fulfilled') started.push(c);
    else {
      errors.inc({ collector: c.key });
      failed.push({ key: c.key, error: errorMessage(r.reason) });
      ctx.logger.error({ collector: c.key, err: errorMessage(r.reason) }, 'collector failed to start; the others run on');
    }
  });
  return { started, failed };
}

/** Stops collectors, each bounded and isolated. */
export async function stopCollectors(ctx: CollectorContext, collectors: readonly BuiltCollector[]): Promise<void> {
  await Promise.allSettled(
    collectors.map(async (c) => {
      try {
        await c.collector.stop();
      } catch (err) {
        ctx.logger.warn({ collector: c.key, err: errorMessage(err) }, 'collector stop failed');
      }
    }),
  );
}
