/**
 * The shape shared by collectors that sample on an interval (conntrack,
 * dcgm): one round at start, then every interval on an unref'd timer; a slow
 * round is never overlapped by the next; a round's error is the round's to
 * report (it must not throw). `stop()` waits for a round in flight, and nothing
 * a round emits after stop was called reaches the sink.
 */
import type { CollectResult, Collector, Emit } from '../collector.js';

export function periodicCollector(name: string, intervalMs: number, round: (emit: Emit) => Promise<void>, collectOnce: () => Promise<CollectResult>): Collector {
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  let running = false;

  function tick(emit: Emit): Promise<void> {
    if (inFlight) return inFlight;
    const gated: Emit = (events) => {
      if (running) emit(events);
    };
    inFlight = round(gated).finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  return {
    name,
    async start(emit: Emit): Promise<void> {
      if (timer) return;
      running = true;
      await tick(emit);
      timer = setInterval(() => void tick(emit), intervalMs);
      timer.unref();
    },
    async stop(): Promise<void> {
      running = false;
      if (timer) clearInterval(timer);
      timer = undefined;
      await inFlight?.catch(() => undefined);
    },
    collectOnce,
  };
}

/**
 * The shape shared by the probe collectors (containerd, kube-proxy health):
 * `start` returns at once and the first round runs on a zero timer, then each
 * round schedules the next `intervalMs` after it finished (never overlapped).
 * A round's rejection goes to `onError`; `running()` is false once stopped, and
 * nothing emitted after stop reaches the sink.
 */
export function probeLoopCollector(o: {
  name: string;
  intervalMs: number;
  round: (emit: Emit, running: () => boolean) => Promise<void>;
  onError: (err: unknown) => void;
  collectOnce: () => Promise<CollectResult>;
}): Collector {
  let timer: NodeJS.Timeout | undefined;
  let stopped = true;
  const running = (): boolean => !stopped;

  function schedule(emit: Emit, delay: number): void {
    if (stopped) return;
    const gated: Emit = (events) => {
      if (!stopped) emit(events);
    };
    timer = setTimeout(() => {
      o.round(gated, running)
        .catch(o.onError)
        .finally(() => schedule(emit, o.intervalMs));
    }, delay);
  }

  return {
    name: o.name,
    start(emit: Emit): Promise<void> {
      if (stopped) {
        stopped = false;
        schedule(emit, 0);
      }
      return Promise.resolve();
    },
    stop(): Promise<void> {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      return Promise.resolve();
    },
    collectOnce: o.collectOnce,
  };
}
