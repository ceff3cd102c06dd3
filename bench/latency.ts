/**
 * Signal-to-action latency through REAL Kafka and REAL Redis (brief §7:
 * p99 ≤ 250 ms on loopback under 5k events/s).
 *
 * Per run: `nodewarden engine --store redis --cluster <fleet>` (not dry-run:
 * the simulated cluster's executor really cordons) consumes a steady
 * background of fleet traffic at --rate events/s (heartbeats, conntrack,
 * containerd, kube-proxy, Xids; re-stamped with the send time), while marked
 * Xid 79 events, each on its own node, are produced every --every ms. For each
 * marker we measure from just before `producer.send` to
 *   - action: the `ts` of its executed cordon ledger record (the remediator
 *     writes it after the executor and the guard settle returned);
 *   - ledger: the moment that record is read back from the ledger topic.
 * Several runs; per-run p50/p99 and the median of those, plus all markers
 * pooled.
 *
 * Run: npx tsc -p tsconfig.json && node dist/bench/latency.js
 *   [--runs 3] [--seconds 20] [--rate 5000] [--every 250] [--nodes 2000] [--json FILE]
 */
import kafkajs from 'kafkajs';
import type { Consumer } from 'kafkajs';
import type { EventEnvelope } from '../core/envelope.js';
import { benchFleet, describeMix, fleetTraffic, writeClusterFile } from './lib/fleet-traffic.js';
import { createTopics, spawnEngine, startBenchBackends } from './lib/kafka-bench.js';
import { describeMachine, machine, numFlag, runMain, sleep, writeJsonSummary } from './lib/run.js';
import { fixed, int, median, quantile, summarize } from './lib/stats.js';
import type { Summary } from './lib/stats.js';

const { Kafka, logLevel, Partitioners } = kafkajs;

const RUNS = numFlag('runs', 3);
const SECONDS = numFlag('seconds', 20);
const RATE = numFlag('rate', 5000);
const EVERY = numFlag('every', 250);
const NODES = numFlag('nodes', 2000);
const PARTITIONS = numFlag('partitions', 6);
const WARMUP_MS = 3000;
const BAR_P99 = 250;

interface LedgerSeen {
  rec: { ts: string; rule: string; action: string; outcome: string; target: { name: string } };
  at: number;
}

async function follow(brokers: string[], topic: string, onRecord: (s: LedgerSeen) => void): Promise<Consumer> {
  const c = new Kafka({ clientId: 'nw-bench-ledger', brokers, logLevel: logLevel.NOTHING }).consumer({ groupId: `lat-follow-${topic}`, maxWaitTimeInMs: 100, sessionTimeout: 10_000, heartbeatInterval: 1000 });
  let joined = false;
  c.on(c.events.GROUP_JOIN, () => (joined = true));
  await c.connect();
  await c.subscribe({ topics: [topic], fromBeginning: true });
  await c.run({
    eachMessage: ({ message }) => {
      const at = Date.now();
      if (message.value) onRecord({ rec: JSON.parse(message.value.toString('utf8')) as LedgerSeen['rec'], at });
      return Promise.resolve();
    },
  });
  while (!joined) await sleep(20);
  return c;
}

interface RunResult {
  markers: number;
  matched: number;
  action: Summary;
  ledger: Summary;
  backgroundRate: number;
  outcomes: Record<string, number>;
}

async function main(): Promise<void> {
  const m = machine();
  console.log(`signal-to-action latency (Kafka + Redis): ${describeMachine(m)}`);
  const fleet = benchFleet(NODES);
  const clusterFile = writeClusterFile(fleet);
  const markersPerRun = Math.floor((SECONDS * 1000) / EVERY);
  // Marker nodes never see background faults, so their one cordon is the marker's.
  const markerNodes = fleet.slice(0, markersPerRun * RUNS);
  const reserved = new Set(markerNodes.map((n) => n.name));
  const sample: EventEnvelope[] = [];
  console.log(`fleet ${NODES} nodes; background ${int(RATE)} events/s for ${SECONDS} s after ${WARMUP_MS / 1000} s warm-up; a marked Xid 79 every ${EVERY} ms (${markersPerRun} per run); ${RUNS} runs`);

  const backends = await startBenchBackends(PARTITIONS);
  const { kafka, redisServer, redis } = backends;
  const results: RunResult[] = [];
  const pooledAction: number[] = [];
  const pooledLedger: number[] = [];
  try {
    for (let r = 0; r < RUNS; r++) {
      const tag = `${r}-${Date.now().toString(36)}`;
      const topics = { signals: `lat-sig-${tag}`, deadLetter: `lat-dlq-${tag}`, ledger: `lat-ledger-${tag}` };
      await createTopics(kafka, [topics.signals, topics.deadLetter, topics.ledger], PARTITIONS);
      await redis.flushdb();
      const engine = await spawnEngine({
        brokers: kafka.brokers,
        redisUrl: redisServer.url,
        keyPrefix: 'nw:',
        groupId: `lat-engine-${tag}`,
        topics,
        clusterFile,
        // Budgets big enough that every marker's cordon executes: this measures latency, not the guard saying no.
        extraConfig: {
          guard: {
            maxUnavailable: '60%',
            maxUnavailablePerGroup: '100%',
            rateLimits: { cordon: { count: 100_000, per: '1m' }, uncordon: { count: 10, per: '10m' }, rollback: { count: 1, per: '1h' }, page: { count: 100_000, per: '1m' } },
          },
        },
      });
      const sentAt = new Map<string, number>();
      const action: number[] = [];
      const ledger: number[] = [];
      const outcomes: Record<string, number> = {};
      const follower = await follow(kafka.brokers, topics.ledger, ({ rec, at }) => {
        // Xid 79 (fallen off the bus) is the node-level rule's since the per-GPU split (ADR 0029)
        if (rec.rule !== 'gpu-xid-node-fatal' || rec.action !== 'cordon') return;
        const sent = sentAt.get(rec.target.name);
        if (sent === undefined) return;
        outcomes[rec.outcome] = (outcomes[rec.outcome] ?? 0) + 1;
        if (rec.outcome !== 'executed') return;
        action.push(Date.parse(rec.ts) - sent);
        ledger.push(at - sent);
      });
      const producer = new Kafka({ clientId: 'nw-bench-agents', brokers: kafka.brokers, logLevel: logLevel.NOTHING }).producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
      await producer.connect();

      const traffic = fleetTraffic({ nodes: fleet, amplification: 200, seed: 11 + r }, 0);
      let buffered: EventEnvelope[] = [];
      const nextBackground = (): EventEnvelope => {
        while (buffered.length === 0) buffered = (traffic.next().value ?? []).filter((e) => !(reserved.has(e.node) && (e.type === 'gpu.xid' || e.type === 'gpu.health')));
        return buffered.shift() as EventEnvelope;
      };
      let seq = 0;
      const stamp = (e: EventEnvelope, now: number): { key: string; value: string } => ({ key: e.node, value: JSON.stringify({ ...e, id: `lat-${tag}-${seq++}`, ts: new Date(now).toISOString() }) });

      // Background: a drift-free 10 ms schedule; sends are not awaited one by one so a slow ack never lowers the rate.
      const inflight = new Set<Promise<unknown>>();
      let sentBackground = 0;
      let stop = false;
      const t0 = Date.now();
      const background = (async () => {
        while (!stop) {
          const now = Date.now();
          const due = Math.floor(((now - t0) / 1000) * RATE) - sentBackground;
          if (due > 0) {
            const batch: Array<{ key: string; value: string }> = [];
            for (let i = 0; i < due; i++) {
              const e = nextBackground();
              if (r === 0 && sample.length < 50_000) sample.push(e);
              batch.push(stamp(e, now));
            }
            sentBackground += due;
            const p = producer.send({ topic: topics.signals, acks: -1, messages: batch }).finally(() => inflight.delete(p));
            inflight.add(p);
          }
          await sleep(10);
        }
      })();

      await sleep(WARMUP_MS);
      const tStart = Date.now();
      for (let i = 0; i < markersPerRun; i++) {
        const node = markerNodes[r * markersPerRun + i];
        if (!node) break;
        const gpu = node.gpus[0] ?? { pci: '0000:18:00', uuid: 'GPU-unknown' };
        const now = Date.now();
        const e: EventEnvelope = { v: 1, id: '', ts: '', node: node.name, type: 'gpu.xid', source: 'kmsg', labels: { pool: node.pool, zone: node.zone }, data: { code: 79, pci: gpu.pci, gpu: gpu.uuid, pid: null, process: null, message: 'GPU has fallen off the bus.' } };
        sentAt.set(node.name, now);
        const p = producer.send({ topic: topics.signals, acks: -1, messages: [stamp(e, now)] }).finally(() => inflight.delete(p));
        inflight.add(p);
        await sleep(Math.max(0, tStart + (i + 1) * EVERY - Date.now()));
      }
      const drainUntil = Date.now() + 15_000;
      while (action.length < markersPerRun && Date.now() < drainUntil) await sleep(50);
      stop = true;
      await background;
      await Promise.all(inflight);
      const bgRate = sentBackground / ((Date.now() - t0) / 1000);
      await producer.disconnect();
      await follower.disconnect();
      await engine.kill('SIGTERM');

      const res: RunResult = { markers: markersPerRun, matched: action.length, action: summarize(action), ledger: summarize(ledger), backgroundRate: bgRate, outcomes };
      results.push(res);
      pooledAction.push(...action);
      pooledLedger.push(...ledger);
      if (r === 0) console.log(`background mix: ${describeMix(sample)}`);
      console.log(
        `run ${r + 1}: ${res.matched}/${res.markers} markers cordoned (outcomes ${JSON.stringify(outcomes)}), background ${int(bgRate)} events/s; ` +
          `to action p50 ${int(res.action.p50)} ms p99 ${int(res.action.p99)} ms max ${int(res.action.max)} ms; to ledger topic p50 ${int(res.ledger.p50)} ms p99 ${int(res.ledger.p99)} ms max ${int(res.ledger.max)} ms`,
      );
      if (res.matched < res.markers) console.log(`  WARNING: ${res.markers - res.matched} markers without an executed cordon in the ledger`);
    }
  } finally {
    await backends.stop();
  }

  const medP50 = median(results.map((x) => x.ledger.p50));
  const medP99 = median(results.map((x) => x.ledger.p99));
  const medActP50 = median(results.map((x) => x.action.p50));
  const medActP99 = median(results.map((x) => x.action.p99));
  console.log('');
  console.log(`median over runs: to action p50 ${int(medActP50)} ms, p99 ${int(medActP99)} ms; to ledger topic p50 ${int(medP50)} ms, p99 ${int(medP99)} ms`);
  console.log(`pooled (${pooledLedger.length} markers): to action p99 ${int(quantile(pooledAction, 0.99))} ms; to ledger topic p50 ${int(quantile(pooledLedger, 0.5))} ms, p99 ${int(quantile(pooledLedger, 0.99))} ms`);
  console.log(`vs the brief's bar (p99 ≤ ${BAR_P99} ms): ledger-topic p99 median ${int(medP99)} ms — ${medP99 <= BAR_P99 ? 'MEETS' : 'ABOVE'} the bar (${fixed((medP99 / BAR_P99) * 100, 0)} % of it)`);
  writeJsonSummary('latency', { runs: results, rate: RATE, seconds: SECONDS, everyMs: EVERY, nodes: NODES, medianLedgerP50: medP50, medianLedgerP99: medP99, medianActionP50: medActP50, medianActionP99: medActP99, pooledLedgerP99: quantile(pooledLedger, 0.99), bar: BAR_P99 }, m);
}

runMain(main);
