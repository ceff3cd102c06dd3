/**
 * Realistic signal traffic of a simulated GPU fleet for benchmarks, built
 * from the demo's fleet model and fault injector (demo/fleet.ts,
 * demo/faults.ts): a heartbeat per node every 30 s, a conntrack sample per
 * node every 15 s (the agent's default intervals), containerd state while a
 * node's runtime is down, kube-proxy OOM bursts, and Xids / DCGM thermal
 * events at the Llama 3 published fault rates times an amplification factor
 * (at 1× a 4,000-node fleet sees ~30 faults a day, too few for a short
 * benchmark to exercise the rules).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventEnvelope } from '../../core/envelope.js';
import { FaultInjector } from '../../demo/faults.js';
import { buildFleet, fleetObjects, rng } from '../../demo/fleet.js';
import type { FleetNode } from '../../demo/fleet.js';

/** Pool shares of the demo's default fleet (48/20/20/12 %). */
const POOL_SHARES: ReadonlyArray<[string, number]> = [
  ['h100-train', 0.48],
  ['h100-infer', 0.2],
  ['a100-train', 0.2],
  ['l40s-batch', 0.12],
];
const ZONES = ['us-west-2a', 'us-west-2b', 'us-west-2c'];
export const GROUP_LABEL = 'nodewarden.io/pool';

/** A fleet of `n` nodes in the demo's pools, deterministic for a seed. */
export function benchFleet(n: number, seed = 42): FleetNode[] {
  const pools: Record<string, number> = {};
  let left = n;
  POOL_SHARES.forEach(([pool, share], i) => {
    const c = i === POOL_SHARES.length - 1 ? left : Math.round(n * share);
    pools[pool] = c;
    left -= c;
  });
  return buildFleet({ pools, zones: ZONES, now: Date.now(), gpusPerNode: 8 }, seed);
}

/**
 * Writes the fleet as `kubectl get ... -o yaml` would print it (JSON is
 * YAML) to a temp file for `nodewarden engine --cluster`; returns the path.
 */
export function writeClusterFile(nodes: FleetNode[], now = Date.now()): string {
  const dir = mkdtempSync(join(tmpdir(), 'nw-bench-cluster-'));
  const file = join(dir, `fleet-${nodes.length}.json`);
  writeFileSync(file, JSON.stringify(fleetObjects(nodes, { now, groupLabel: GROUP_LABEL, driverRevisions: 3 })));
  return file;
}

export interface TrafficOptions {
  nodes: FleetNode[];
  seed?: number;
  /** Multiplier on the published fault rates (default 200). */
  amplification?: number;
  /** Virtual time step of the injector (default 1 s). */
  stepMs?: number;
}

/**
 * Virtual-time traffic, one step at a time, from `startMs`: yields each
 * step's events (sorted by ts) forever; the caller stops iterating.
 */
export function* fleetTraffic(o: TrafficOptions, startMs: number): Generator<EventEnvelope[], void, undefined> {
  const inj = new FaultInjector({ nodes: o.nodes, rand: rng(o.seed ?? 7), amplification: o.amplification ?? 200 });
  const step = o.stepMs ?? 1000;
  for (let t = startMs; ; t += step) yield inj.step(t).events;
}

/** The first `count` events of the fleet's traffic from `startMs`. */
export function takeEvents(o: TrafficOptions, count: number, startMs = 0): EventEnvelope[] {
  const out: EventEnvelope[] = [];
  for (const evs of fleetTraffic(o, startMs)) {
    for (const e of evs) {
      out.push(e);
      if (out.length >= count) return out;
    }
  }
  return out;
}

/** Counts per event type (and Xid codes), for the bench's description of its input. */
export function describeMix(events: readonly EventEnvelope[]): string {
  const byType = new Map<string, number>();
  let hwXid = 0;
  const HW = new Set([48, 62, 64, 74, 79, 95, 119, 120, 140]);
  for (const e of events) {
    byType.set(e.type, (byType.get(e.type) ?? 0) + 1);
    if (e.type === 'gpu.xid' && HW.has(Number(e.data['code']))) hwXid++;
  }
  const parts = [...byType.entries()].sort((a, b) => b[1] - a[1]).map(([t, c]) => `${t} ${((c / events.length) * 100).toFixed(2)}% (${c})`);
  return `${parts.join(', ')}; hardware-class Xids: ${hwXid}`;
}

/**
 * JSON-encodes events for Kafka with fresh ids (`<idPrefix><i>`) and the
 * timeline shifted by `shiftMs`, so one generated stream can be replayed in
 * several runs ending near the wall clock (time-driven rules such as
 * "heartbeat absent for 2 m" then see a live fleet, not a silent one).
 */
export function encodeEvents(events: readonly EventEnvelope[], idPrefix: string, shiftMs: number): Array<{ key: string; value: string }> {
  return events.map((e, i) => ({
    key: e.node,
    value: JSON.stringify({ ...e, id: `${idPrefix}${i}`, ts: new Date(Date.parse(e.ts) + shiftMs).toISOString() }),
  }));
}
