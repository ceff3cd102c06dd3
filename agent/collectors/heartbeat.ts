/**
 * `agent.heartbeat`: a periodic "still here" so the engine can tell a silent
 * node (agent dead, node partitioned) from a healthy quiet one (rule: signal
 * absent for T). Carries enough to spot a crash-looping agent (uptime, seq).
 */
import type { Collector, CollectorContext, CollectResult, Emit } from '../collector.js';

export interface HeartbeatData {
  /** Heartbeats sent by this agent process, from 1. */
  seq: number;
  /** Seconds since this agent process started. */
  uptimeSeconds: number;
  startedAt: string;
}

export interface HeartbeatOptions {
  intervalMs: number;
  /** When the agent started (ms); default: when the collector was built. */
  startedAt?: number;
}

export function createHeartbeatCollector(ctx: CollectorContext, opts: HeartbeatOptions): Collector {
  const startedAt = opts.startedAt ?? ctx.clock.now();
  let seq = 0;
  let timer: NodeJS.Timeout | undefined;

  const beat = () => {
    const now = ctx.clock.now();
    seq++;
    const data: HeartbeatData = { seq, uptimeSeconds: Math.round((now - startedAt) / 1000), startedAt: new Date(startedAt).toISOString() };
    return ctx.newEvent('agent.heartbeat', 'agent', data, now);
  };

  return {
    name: 'agent.heartbeat',
    start(emit: Emit): Promise<void> {
      if (!timer) {
        emit([beat()]);
        timer = setInterval(() => emit([beat()]), opts.intervalMs);
      }
      return Promise.resolve();
    },
    stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = undefined;
      return Promise.resolve();
    },
    collectOnce(): Promise<CollectResult> {
      return Promise.resolve({ events: [beat()] });
    },
  };
}
