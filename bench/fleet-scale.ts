/**
 * Fleet scale (brief §7: 10,000 simulated nodes on one engine replica,
 * bounded memory). In-process, the same composition `nodewarden engine
 * --store memory` uses minus Kafka: raw JSON messages → BatchProcessor
 * (decode + validate, MemoryDeduper, the rule engine with the default pack on
 * the memory store, the remediator with the memory guard, the simulated
 * cluster's executor and a null pager) plus the 1 s tick, all in virtual time
 * (a ManualClock moved to each step's time).
 *
 * Traffic: every node sends a heartbeat every 30 s, a conntrack sample every
 * 15 s and a containerd check every 60 s (~1,170 events/s of virtual time for
 * 10,000 nodes), with faults at amplified published rates. Heap used (after a
 * forced GC when run with --expose-gc) is sampled every 5 virtual minutes; the
 * slope over the second half of the run says whether memory plateaus.
 *
 * The default run is short (30 virtual minutes, dedupe window scaled down to
 * 10 min so the run covers 3 windows); the production-shaped run is
 *   node --expose-gc dist/bench/fleet-scale.js --hours 3 --dedupe-window-min 60
 *
 * Run: npx tsc -p tsconfig.json && node --expose-gc dist/bench/fleet-scale.js
 *   [--nodes 10000] [--hours 0.5] [--dedupe-window-min 10] [--amplification 50] [--json FILE]
 */
import { ManualClock } from '../core/clock.js';
import { DEFAULT_CONFIG } from '../core/config.js';
import type { NodewardenConfig } from '../core/config.js';
import { silentLogger } from '../core/logger.js';
import { fleetObjects } from '../demo/fleet.js';
import { createRuleEngine } from '../rules/engine/engine.js';
import { defaultRulesPath, loadRules } from '../rules/language/load.js';
import { BatchProcessor } from '../rules/service/batch-processor.js';
import { MemoryDeduper } from '../rules/service/dedupe.js';
import { engineServiceMetrics } from '../rules/service/metrics.js';
import { ruleEngineMetrics } from '../rules/service/engine-metrics.js';
import type { RawMessage } from '../rules/service/ports.js';
import { MemoryStateStore } from '../rules/store/memory-store.js';
import { MemoryRuleToggles } from '../rules/toggles/memory-toggles.js';
import { createMemoryGuard } from '../remediations/guard/memory-guard.js';
import { guardOptionsFromConfig } from '../remediations/guard/policy.js';
import { createPagerExecutor } from '../remediations/pager/pager-executor.js';
import { createRemediator } from '../remediations/remediator.js';
import { createSimulatedCluster } from '../remediations/simulated/index.js';
import { createRegistry } from '../adapters/metrics.js';
import { benchFleet, describeMix, fleetTraffic, GROUP_LABEL } from './lib/fleet-traffic.js';
import { describeMachine, machine, numFlag, runMain, writeJsonSummary } from './lib/run.js';
import { fixed, int, linearFit } from './lib/stats.js';
import type { LedgerRecord } from '../core/decision.js';
import type { EventEnvelope } from '../core/envelope.js';

const NODES = numFlag('nodes', 10_000);
const HOURS = numFlag('hours', 0.5);
const DEDUPE_MIN = numFlag('dedupe-window-min', 10);
const AMPLIFICATION = numFlag('amplification', 50);
const CHUNK = 500;
const SAMPLE_EVERY_MS = 5 * 60_000;
const T0 = Date.parse('2026-11-21T00:00:00.000Z');

const gc = (globalThis as { gc?: () => void }).gc;

function heap(): { heapMiB: number; rssMiB: number } {
  gc?.();
  const m = process.memoryUsage();
  return { heapMiB: m.heapUsed / 2 ** 20, rssMiB: m.rss / 2 ** 20 };
}

async function main(): Promise<void> {
  const mach = machine();
  console.log(`fleet scale, one replica, memory store: ${describeMachine(mach)}`);
  if (!gc) console.log('note: run with node --expose-gc for heap figures after a full GC (now: heapUsed as is, noisier)');
  const nodes = benchFleet(NODES);
  const clock = new ManualClock(T0);
  const config: NodewardenConfig = {
    ...DEFAULT_CONFIG,
    engine: { ...DEFAULT_CONFIG.engine, dedupeWindow: `${DEDUPE_MIN}m` },
  };
  const cluster = createSimulatedCluster(fleetObjects(nodes, { now: T0, groupLabel: GROUP_LABEL, driverRevisions: 3 }).items as Parameters<typeof createSimulatedCluster>[0], { clock, logger: silentLogger });
  const registry = createRegistry('engine');
  const store = new MemoryStateStore();
  const rules = loadRules(defaultRulesPath());
  const engine = createRuleEngine({ rules, store, cluster, toggles: new MemoryRuleToggles(clock), clock, logger: silentLogger, metrics: ruleEngineMetrics(registry), config });
  const ledger = { records: 0, byOutcome: new Map<string, number>() };
  const remediator = createRemediator({
    guard: createMemoryGuard({ view: cluster, options: guardOptionsFromConfig(config), clock }),
    executors: [cluster.executor, createPagerExecutor({ pagers: [{ name: 'null', send: () => Promise.resolve() }], logger: silentLogger })],
    ledger: [
      {
        name: 'count',
        append: (rs: readonly LedgerRecord[]) => {
          ledger.records += rs.length;
          for (const r of rs) ledger.byOutcome.set(`${r.action}/${r.outcome}`, (ledger.byOutcome.get(`${r.action}/${r.outcome}`) ?? 0) + 1);
          return Promise.resolve();
        },
      },
    ],
    clock,
    logger: silentLogger,
    registry,
    autoFlush: false,
  });
  const processor = new BatchProcessor({
    engine,
    remediator,
    deduper: new MemoryDeduper(clock, { windowMs: DEDUPE_MIN * 60_000, claimTtlMs: 5000 }),
    // Every generated event is valid: a dead letter here is a bench bug, so fail loudly.
    deadLetters: { send: (rs) => (rs.length === 0 ? Promise.resolve() : Promise.reject(new Error(`unexpected dead letter: ${rs[0]?.reason ?? ''}`))) },
    metrics: engineServiceMetrics(registry),
    clock,
    logger: silentLogger,
  });

  const endAt = T0 + HOURS * 3_600_000;
  console.log(`${int(NODES)} nodes, ${HOURS} h of virtual time, dedupe window ${DEDUPE_MIN} min, faults ×${AMPLIFICATION}, chunks of ${CHUNK}, tick every virtual second`);
  const samples: Array<{ hours: number; heapMiB: number; rssMiB: number; eventsPerSec: number }> = [];
  const mixSample: EventEnvelope[] = [];
  let pending: RawMessage[] = [];
  let offset = 0;
  let events = 0;
  let nextSample = T0;
  let windowEvents = 0;
  let windowStart = performance.now();
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const r = await processor.process(pending);
    if (r.processed !== pending.length) throw new Error(`processed ${r.processed} of ${pending.length} (invalid ${r.invalid}, duplicates ${r.duplicates})`);
    pending = [];
  };
  for (const step of fleetTraffic({ nodes, amplification: AMPLIFICATION }, T0)) {
    const now = clock.now();
    for (const e of step) {
      if (mixSample.length < 200_000) mixSample.push(e);
      pending.push({ topic: 'signals', partition: 0, offset: String(offset++), key: e.node, value: JSON.stringify(e) });
      if (pending.length >= CHUNK) await flush();
    }
    events += step.length;
    windowEvents += step.length;
    await flush();
    await processor.tick(now);
    if (now >= nextSample) {
      const wall = (performance.now() - windowStart) / 1000;
      const h = heap();
      const s = { hours: (now - T0) / 3_600_000, heapMiB: h.heapMiB, rssMiB: h.rssMiB, eventsPerSec: wall > 0 ? windowEvents / wall : NaN };
      samples.push(s);
      console.log(`  t=${fixed(s.hours, 2)} h  heap ${fixed(s.heapMiB, 1)} MiB  rss ${fixed(s.rssMiB, 0)} MiB  ${int(s.eventsPerSec)} events/s  (${int(events)} events, ${ledger.records} ledger records)`);
      nextSample += SAMPLE_EVERY_MS;
      windowEvents = 0;
      windowStart = performance.now();
    }
    if (now >= endAt) break;
    clock.set(now + 1000);
  }
  const wallSec = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  await remediator.close();

  // Slope once the windows have filled: the second half, and not before the dedupe window (the biggest) is full.
  const steadyFrom = Math.max(HOURS / 2, DEDUPE_MIN / 60 + 5 / 60);
  const half = samples.filter((s) => s.hours >= steadyFrom - 1e-9);
  const fit = linearFit(half.map((s) => [s.hours, s.heapMiB] as const));
  const firstHalf = samples.filter((s) => s.hours > 0 && s.hours < HOURS / 2);
  const fitFirst = linearFit(firstHalf.map((s) => [s.hours, s.heapMiB] as const));
  const rate = events / wallSec;
  const cpuRate = events / ((cpu.user + cpu.system) / 1e6);
  const peak = Math.max(...samples.map((s) => s.heapMiB));
  console.log('');
  console.log(`input mix (first ${int(mixSample.length)} events): ${describeMix(mixSample)}`);
  console.log(`ledger: ${[...ledger.byOutcome.entries()].map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
  console.log(`${int(events)} events in ${fixed(wallSec, 1)} s: ${int(rate)} events/s wall, ${int(cpuRate)} events per CPU-second (${fixed((events / ((HOURS * 3_600_000) / 1000)), 0)} events/s of virtual time)`);
  console.log(`heap: peak ${fixed(peak, 1)} MiB; slope first half ${fixed(fitFirst.slope, 1)} MiB/h, steady part (from ${fixed(steadyFrom, 2)} h) ${fixed(fit.slope, 1)} MiB/h over ${half.length} samples`);
  const bounded = half.length >= 3 && Math.abs(fit.slope) * HOURS < Math.max(16, 0.1 * peak);
  if (half.length < 3) console.log(`bounded memory: INCONCLUSIVE — run longer than ${fixed(steadyFrom + 0.25, 2)} h for 3 samples after the dedupe window filled`);
  else console.log(`bounded memory: ${bounded ? 'YES' : 'NO'} — steady-part slope × run length ${fixed(fit.slope * HOURS, 1)} MiB vs 10 % of peak heap (${fixed(0.1 * peak, 1)} MiB, at least 16 MiB)`);
  writeJsonSummary('fleet-scale', { nodes: NODES, hours: HOURS, dedupeWindowMin: DEDUPE_MIN, amplification: AMPLIFICATION, events, wallSec, eventsPerSec: rate, eventsPerCpuSec: cpuRate, samples, slopeSecondHalfMiBPerHour: fit.slope, slopeFirstHalfMiBPerHour: fitFirst.slope, peakHeapMiB: peak, bounded, gcExposed: gc !== undefined }, mach);
}

runMain(main);
