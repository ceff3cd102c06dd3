/**
 * The shape shared by collectors that sample on an interval (conntrack,
 * dcgm): one round at start, then every interval on an unref'd timer; a slow
 * round is never overlapped by the next; a round's error is the round's to
 * report (it must not throw).
 */
import type { CollectResult, Collector, Emit } from '../collector.js';

export function periodicCollector(name: string, intervalMs: number, round: (emit: Emit) => Promise<void>, collectOnce: () => Promise<CollectResult>): Collector {
  let timer: NodeJS.Timeout | undefined;
  let busy = false;

  async function tick(emit: Emit): Promise<void> {
    if (busy) return;
    busy = true;
    try {
      await round(emit);
    } finally {
      busy = false;
    }
  }

  return {
    name,
    async start(emit: Emit): Promise<void> {
      if (timer) return;
      await tick(emit);
      timer = setInterval(() => void tick(emit), intervalMs);
      timer.unref();
    },
    stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = undefined;
      return Promise.resolve();
    },
    collectOnce,
  };
}
