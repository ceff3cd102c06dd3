/**
 * One engine replica of the guard race test (forked by guard-race.test.ts):
 * its own ioredis connection, the real remediator and Redis guard, a cluster
 * view refreshed from a Redis set before each decision (as a live view lags
 * behind), and executors that record every execution in Redis so the parent
 * can check the invariants across all replicas.
 */
import { Redis } from 'ioredis';
import { systemClock } from '../../core/clock.js';
import type { ClusterView, NodeInfo } from '../../core/cluster.js';
import { DEFAULT_CONFIG } from '../../core/config.js';
import type { ActionKind, Decision } from '../../core/decision.js';
import { NodewardenError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import { createRedisGuard } from '../../remediations/guard/redis-guard.js';
import { guardOptionsFromConfig } from '../../remediations/guard/policy.js';
import type { ExecutionResult, Executor } from '../../remediations/ports.js';
import { createRemediator } from '../../remediations/remediator.js';

export interface StormSpec {
  prefix: string;
  nodes: number;
  pools: number;
  maxUnavailable: string;
  maxUnavailablePerGroup: string;
  cordonRate: number;
  pageRate: number;
  failRate: number;
}

export type ToWorker = { type: 'storm'; storm: StormSpec; decisions: Decision[] } | { type: 'exit' };
export type FromWorker = { type: 'ready' } | { type: 'done'; prefix: string; error?: string };

export const POOL = 'nodewarden.io/pool';
export const nodeName = (i: number): string => `gpu-${String(i).padStart(4, '0')}`;
export const poolOf = (i: number, pools: number): string => `p${i % pools}`;
export const stormKeys = (prefix: string) => ({ unavailable: `${prefix}sim:unavailable`, execCount: `${prefix}sim:exec`, log: `${prefix}sim:log` });

class SnapshotView implements ClusterView {
  private nodes = new Map<string, NodeInfo>();
  constructor(private readonly spec: StormSpec) {}
  refresh(unavailable: ReadonlySet<string>): void {
    this.nodes.clear();
    for (let i = 0; i < this.spec.nodes; i++) {
      const name = nodeName(i);
      this.nodes.set(name, { name, labels: { [POOL]: poolOf(i, this.spec.pools) }, unschedulable: unavailable.has(name), ready: true, cordonedByNodewarden: unavailable.has(name) });
    }
  }
  listNodes(): NodeInfo[] {
    return [...this.nodes.values()];
  }
  getNode(name: string): NodeInfo | undefined {
    return this.nodes.get(name);
  }
  workloadRevisions(): [] {
    return [];
  }
}

function recordingExecutor(redis: Redis, spec: StormSpec, actions: readonly ActionKind[]): Executor {
  const k = stormKeys(spec.prefix);
  return {
    actions,
    async execute(d: Decision): Promise<ExecutionResult> {
      if (Math.random() < spec.failRate) return { ok: false, error: new NodewardenError('UNAVAILABLE', 'injected failure', { retriable: true }) };
      const m = redis.multi();
      if (d.action === 'cordon') m.sadd(k.unavailable, d.target.name);
      m.hincrby(k.execCount, d.id, 1);
      m.rpush(k.log, JSON.stringify({ id: d.id, action: d.action, node: d.target.name, t: Date.now() }));
      await m.exec();
      return { ok: true };
    },
  };
}

async function runStorm(redis: Redis, spec: StormSpec, decisions: readonly Decision[]): Promise<void> {
  const view = new SnapshotView(spec);
  const options = guardOptionsFromConfig(DEFAULT_CONFIG, {
    maxUnavailable: spec.maxUnavailable,
    maxUnavailablePerGroup: spec.maxUnavailablePerGroup,
    rateLimits: { cordon: { count: spec.cordonRate, windowMs: 600_000 }, page: { count: spec.pageRate, windowMs: 600_000 } },
    breaker: { failures: 1000, windowMs: 60_000, openForMs: 1000 },
  });
  const guard = createRedisGuard({ redis, keyPrefix: spec.prefix, view, options, clock: systemClock });
  const remediator = createRemediator({
    guard,
    executors: [recordingExecutor(redis, spec, ['cordon', 'uncordon']), recordingExecutor(redis, { ...spec, failRate: 0 }, ['page', 'resolve'])],
    ledger: [],
    clock: systemClock,
    logger: silentLogger,
    autoFlush: false,
    // cordons of one submit admitted in runs, one guard script call per run (ADR 0044)
    actionConcurrency: 8,
  });
  const k = stormKeys(spec.prefix);
  for (let i = 0; i < decisions.length; ) {
    // a fresh (but possibly already stale) view, as a live watch-fed view would be
    view.refresh(new Set(await redis.smembers(k.unavailable)));
    // batches of 1..8 decisions, as the consumer hands them over
    const n = 1 + Math.floor(Math.random() * 8);
    await remediator.submit(decisions.slice(i, i + n));
    i += n;
  }
  await remediator.flush(); // denial pages race on the page rate limit too
}

if (process.send) {
  const url = process.argv[2] ?? 'redis://127.0.0.1:6379';
  const redis = new Redis(url, { maxRetriesPerRequest: 3 });
  const send = (m: FromWorker): void => {
    process.send?.(m);
  };
  process.on('message', (m: ToWorker) => {
    if (m.type === 'exit') {
      void redis.quit().finally(() => process.exit(0));
      return;
    }
    runStorm(redis, m.storm, m.decisions).then(
      () => send({ type: 'done', prefix: m.storm.prefix }),
      (err: unknown) => send({ type: 'done', prefix: m.storm.prefix, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
    );
  });
  send({ type: 'ready' });
}
