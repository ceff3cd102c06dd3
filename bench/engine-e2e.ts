/**
 * End-to-end engine throughput through REAL Kafka and REAL Redis (brief §7:
 * ≥ 50k events/s on a 2-core machine).
 *
 * Per run: a fresh signals topic gets N pre-produced events of a simulated
 * fleet (heartbeats, conntrack samples, containerd, kube-proxy, Xids at
 * amplified published rates); then the real service, `nodewarden engine
 * --store redis --cluster <fleet> --dry-run`, runs as a child process and we
 * time from its /readyz (consumer joined) until the group's committed offsets
 * reach the topic's end. A bare kafkajs consumer that only JSON-parses the
 * same messages and commits the same way is timed on the same topic: the
 * transport ceiling. Several runs, medians.
 *
 * The event timeline starts at produce time: a backlog stamped in the past
 * would make "heartbeat absent for 2 m" fire for the whole fleet on the first
 * tick, which measures a page storm, not throughput.
 *
 * Run: npx tsc -p tsconfig.json && node dist/bench/engine-e2e.js
 *   [--events 100000] [--runs 3] [--nodes 4000] [--partitions 6]
 *   [--amplification 200] [--profile] [--no-bare] [--at-once N] [--json FILE]
 *
 * --at-once N: the second bare consumer's partitions worked on at once (default
 * the engine's `engine.consumer.partitionsConcurrently`); the engine's ratio is
 * printed against each bare consumer and against the faster one (the ceiling).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { DEFAULT_CONFIG } from '../core/config.js';
import { formatProfile, summarizeProfileFile } from './lib/cpuprofile.js';
import { benchFleet, describeMix, encodeEvents, takeEvents, writeClusterFile } from './lib/fleet-traffic.js';
import { createTopics, committed, produceAll, ROOT, spawnEngine, startBenchBackends, topicEnd } from './lib/kafka-bench.js';
import type { BenchBackends } from './lib/kafka-bench.js';
import { boolFlag, cpuSeconds, describeMachine, findPid, machine, numFlag, runMain, sleep, writeJsonSummary } from './lib/run.js';
import { fixed, int, median } from './lib/stats.js';

const N = numFlag('events', 100_000);
const RUNS = numFlag('runs', 3);
const NODES = numFlag('nodes', 4000);
const PARTITIONS = numFlag('partitions', 6);
const AMPLIFICATION = numFlag('amplification', 200);
const PROFILE = boolFlag('profile');
const BARE = !boolFlag('no-bare');
const BAR = 50_000;
/** The engine's partitions-at-once setting (config engine.consumer.partitionsConcurrently), for the second bare consumer. */
const AT_ONCE = numFlag('at-once', DEFAULT_CONFIG.engine.consumer.partitionsConcurrently);

interface Timing {
  /** events/s from joined to all committed */
  rate: number;
  /** events/s between 10 % and 90 % committed (no join/tail effects) */
  steady: number;
  seconds: number;
  /** CPU seconds used during the window by the consumer process, the broker and Redis */
  cpu: { consumer: number; kafka: number; redis: number };
}

/** Polls committed offsets until they reach `end`; times from now. */
async function timeUntilCommitted(a: BenchBackends['admin'], groupId: string, topic: string, end: number, pids: { consumer: number; kafka?: number; redis?: number }, timeoutMs: number): Promise<Timing> {
  const c0 = { consumer: cpuSeconds(pids.consumer), kafka: cpuSeconds(pids.kafka), redis: cpuSeconds(pids.redis) };
  const t0 = performance.now();
  let t10: number | undefined;
  let t90: number | undefined;
  for (;;) {
    const done = await committed(a, groupId, topic);
    const t = performance.now();
    if (t10 === undefined && done >= end * 0.1) t10 = t;
    if (t90 === undefined && done >= end * 0.9) t90 = t;
    if (done >= end) {
      const seconds = (t - t0) / 1000;
      const steadySec = t90 !== undefined && t10 !== undefined && t90 > t10 ? (t90 - t10) / 1000 : seconds;
      return {
        rate: end / seconds,
        steady: (end * 0.8) / steadySec,
        seconds,
        cpu: { consumer: cpuSeconds(pids.consumer) - c0.consumer, kafka: cpuSeconds(pids.kafka) - c0.kafka, redis: cpuSeconds(pids.redis) - c0.redis },
      };
    }
    if (t - t0 > timeoutMs) throw new Error(`group ${groupId}: committed ${done} of ${end} after ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Starts the bare consumer child and resolves once it has joined its group. */
async function spawnBare(brokers: string[], topic: string, groupId: string, atOnce = 1): Promise<{ pid: number; stop: () => Promise<void> }> {
  const proc = spawn(process.execPath, [join(ROOT, 'dist', 'bench', 'lib', 'bare-consumer.js'), brokers.join(','), topic, groupId, String(atOnce)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('joined')) resolve();
    });
    void exited.then(() => reject(new Error('bare consumer exited before joining')));
  });
  return {
    pid: proc.pid ?? -1,
    stop: async () => {
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

async function main(): Promise<void> {
  const m = machine();
  console.log(`engine end-to-end (Kafka + Redis): ${describeMachine(m)}`);
  const fleet = benchFleet(NODES);
  const clusterFile = writeClusterFile(fleet);
  const events = takeEvents({ nodes: fleet, amplification: AMPLIFICATION }, N, 0);
  const firstTs = Date.parse(events[0]?.ts ?? '1970-01-01T00:00:00Z');
  const lastTs = Date.parse(events[events.length - 1]?.ts ?? '1970-01-01T00:00:00Z');
  console.log(`input: ${int(N)} events of a ${NODES}-node fleet over ${fixed((lastTs - firstTs) / 1000, 0)} s of virtual time (faults ×${AMPLIFICATION}): ${describeMix(events)}`);
  console.log(`${PARTITIONS} partitions, ${RUNS} runs, default rule pack, --store redis --dry-run${PROFILE ? ', engine under --cpu-prof (slower)' : ''}`);

  const backends = await startBenchBackends(PARTITIONS);
  const { kafka, redisServer, redis, admin: a } = backends;
  const kafkaPid = findPid(join(kafka.dir, 'server.properties'));
  const redisPid = findPid(`--port ${redisServer.port}`) ?? findPid(String(redisServer.port));
  const engineRuns: Timing[] = [];
  const bareRuns: Timing[] = [];
  // The bare consumer also with the engine's partitions-at-once setting (ADR 0046): the ceiling is the faster of the two.
  const bareWideRuns: Timing[] = [];
  const decisionsPerRun: number[] = [];
  // Warm-up, not measured: the broker's JIT compiles its fetch/produce paths
  // during the first seconds of load, which would tax run 1 only.
  {
    const warm = `e2e-warmup-${Date.now().toString(36)}`;
    await createTopics(kafka, [warm], PARTITIONS);
    await produceAll(kafka.brokers, warm, encodeEvents(events.slice(0, Math.min(N, 50_000)), 'warm-', 0));
    const bare = await spawnBare(kafka.brokers, warm, `${warm}-g`);
    await timeUntilCommitted(a, `${warm}-g`, warm, await topicEnd(a, warm), { consumer: bare.pid }, 120_000);
    await bare.stop();
  }
  let profileWindow: { fromMs: number; toMs: number } | undefined;
  try {
    for (let r = 0; r < RUNS; r++) {
      const tag = `${r}-${Date.now().toString(36)}`;
      const topics = { signals: `e2e-sig-${tag}`, deadLetter: `e2e-dlq-${tag}`, ledger: `e2e-ledger-${tag}` };
      await createTopics(kafka, [topics.signals, topics.deadLetter, topics.ledger], PARTITIONS);
      await redis.flushdb();
      const msgs = encodeEvents(events, `e2e-${tag}-`, Date.now() - firstTs);
      const p0 = performance.now();
      await produceAll(kafka.brokers, topics.signals, msgs);
      const end = await topicEnd(a, topics.signals);
      console.log(`run ${r + 1}: produced ${int(end)} events in ${fixed((performance.now() - p0) / 1000, 1)} s`);

      const groupId = `e2e-engine-${tag}`;
      const spawnedAt = Date.now();
      const engine = await spawnEngine({
        brokers: kafka.brokers,
        redisUrl: redisServer.url,
        keyPrefix: 'nw:',
        groupId,
        topics,
        clusterFile,
        dryRun: true,
        nodeArgs: PROFILE ? ['--cpu-prof', '--cpu-prof-dir', join(ROOT, '.bench-profiles')] : [],
      });
      const readyAt = Date.now();
      const et = await timeUntilCommitted(a, groupId, topics.signals, end, { consumer: engine.pid, kafka: kafkaPid, redis: redisPid }, 600_000);
      // The consuming phase, relative to the engine's start (≈ the profile's start).
      profileWindow = { fromMs: readyAt - spawnedAt, toMs: Date.now() - spawnedAt };
      const processed = await engine.metric('nodewarden_engine_events_processed_total');
      const dup = await engine.metric('nodewarden_engine_events_duplicate_total');
      const invalid = await engine.metric('nodewarden_engine_events_invalid_total');
      const decisions = await engine.metric('nodewarden_engine_service_decisions_total');
      const failures = await engine.metric('nodewarden_engine_batch_failures_total');
      await engine.kill('SIGTERM');
      engineRuns.push(et);
      decisionsPerRun.push(decisions);
      console.log(
        `  engine: ${int(et.rate)} events/s (${fixed(et.seconds, 2)} s; 10→90 %: ${int(et.steady)} events/s); processed ${int(processed)}, duplicates ${dup}, invalid ${invalid}, batch failures ${failures}, decisions ${decisions}; ` +
          `CPU s: engine ${fixed(et.cpu.consumer, 1)}, kafka ${fixed(et.cpu.kafka, 1)}, redis ${fixed(et.cpu.redis, 1)} → ${int(N / et.cpu.consumer)} events per engine CPU-second`,
      );
      if (processed !== N) console.log(`  WARNING: engine processed ${processed} of ${N} events`);

      if (BARE) {
        // the same topic drained by the bare consumer, one partition at a time, then with the engine's setting
        const timeBare = async (atOnce: number, label: string): Promise<Timing> => {
          const group = `e2e-bare-${atOnce}-${tag}`;
          const bare = await spawnBare(kafka.brokers, topics.signals, group, atOnce);
          const t = await timeUntilCommitted(a, group, topics.signals, end, { consumer: bare.pid, kafka: kafkaPid, redis: redisPid }, 600_000);
          await bare.stop();
          console.log(`  ${label}: ${int(t.rate)} events/s (${fixed(t.seconds, 2)} s; 10→90 %: ${int(t.steady)} events/s); CPU s: consumer ${fixed(t.cpu.consumer, 1)}, kafka ${fixed(t.cpu.kafka, 1)}`);
          return t;
        };
        bareRuns.push(await timeBare(1, 'bare kafkajs consumer (JSON.parse only)'));
        if (AT_ONCE > 1) bareWideRuns.push(await timeBare(AT_ONCE, `bare kafkajs consumer, ${AT_ONCE} partitions at once`));
      }
    }
  } finally {
    await backends.stop();
  }

  const eng = median(engineRuns.map((x) => x.rate));
  const engSteady = median(engineRuns.map((x) => x.steady));
  const engCpu = median(engineRuns.map((x) => N / x.cpu.consumer));
  console.log('');
  console.log(`engine median: ${int(eng)} events/s end to end (10→90 %: ${int(engSteady)}); ${int(engCpu)} events per engine CPU-second`);
  console.log(`  vs the brief's bar (${int(BAR)} events/s on 2 cores): ${fixed((eng / BAR) * 100, 0)} % of the bar — ${eng >= BAR ? 'MEETS' : 'BELOW'} the bar`);
  let bare: number | undefined;
  if (bareRuns.length > 0) {
    bare = median(bareRuns.map((x) => x.rate));
    console.log(`bare kafkajs consumer median: ${int(bare)} events/s (10→90 %: ${int(median(bareRuns.map((x) => x.steady)))}); engine / bare = ${fixed(eng / bare, 2)}`);
    if (bareWideRuns.length > 0) {
      const wide = median(bareWideRuns.map((x) => x.rate));
      console.log(`bare kafkajs consumer, ${AT_ONCE} partitions at once, median: ${int(wide)} events/s; engine / bare = ${fixed(eng / wide, 2)}`);
      bare = Math.max(bare, wide);
      console.log(`ceiling (the faster bare consumer): ${int(bare)} events/s; engine / ceiling = ${fixed(eng / bare, 2)} (issue 13 target 0.5)`);
    }
  }
  if (PROFILE) {
    const dir = join(ROOT, '.bench-profiles');
    const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
    const last = files[files.length - 1];
    if (last) console.log(`last run, consuming phase only:\n${formatProfile(summarizeProfileFile(join(dir, last), 30, profileWindow))}\n  (${join(dir, last)})`);
  }
  writeJsonSummary(
    'engine-e2e',
    {
      events: N,
      nodes: NODES,
      partitions: PARTITIONS,
      amplification: AMPLIFICATION,
      runs: engineRuns,
      bareRuns,
      bareWideRuns,
      bareAtOnce: AT_ONCE,
      decisionsPerRun,
      medianEventsPerSec: eng,
      medianSteadyEventsPerSec: engSteady,
      medianEventsPerEngineCpuSec: engCpu,
      /** The ceiling: the faster of the two bare consumers' medians. */
      bareMedianEventsPerSec: bare ?? null,
      bar: BAR,
    },
    m,
  );
}

runMain(main);
