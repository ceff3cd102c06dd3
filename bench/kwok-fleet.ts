/**
 * 10,000 nodes on a real apiserver (issue 13, deliverable 3). KWOK keeps N GPU
 * Nodes (pools, zones, GPU labels) Ready on a real kube-apiserver + etcd with
 * kube-controller-manager's node lifecycle controller on; the real engine
 * (`nodewarden engine`, live API as its own ServiceAccount, real Kafka and
 * Redis) is started `--runs` times on that cluster, each run:
 *   - start-up to /readyz (the paged initial LIST of every Node, then watch),
 *     and RSS once ready;
 *   - a Xid 79 storm on `--storm` nodes published at once through Kafka:
 *     cordon latency (event published → the Node seen unschedulable and
 *     tainted through a watch), guard outcome (executed = maxUnavailable from
 *     the ledger AND the cluster, the rest denied, grouped into incidents),
 *     apiserver requests over the storm (apiserver_request_total by verb and
 *     resource, and the engine's own from the audit log) per decision;
 *   then the cordons are undone for the next run (fresh Redis prefix each run).
 * After the runs, one soak (`--soak-s`) with heartbeats from every node and
 * node churn, sampling heap and RSS.
 *
 * Run (about 10 min at 10,000 nodes on 2 cores; say the load average):
 *   npx tsc -p tsconfig.json && node dist/bench/kwok-fleet.js [--nodes 10000] [--storm 500]
 *     [--max-unavailable 100] [--runs 3] [--soak-s 120] [--action-concurrency N] [--json FILE]
 * Needs the provisioned servers (scripts/provision/{kube,kwok,kafka,redis}.sh; see docs/performance.md).
 */
import { startRedis } from '../test/harness/redis.js';
import {
  countNodes,
  formatCounts,
  rssMiB,
  runSoak,
  runStorm,
  startFleetEngine,
  startKwokCluster,
  sumWhere,
  type StormResult,
} from './lib/kwok-fleet.js';
import { startBenchKafka } from './lib/kafka-bench.js';
import { describeMachine, machine, numFlag, runMain, writeJsonSummary } from './lib/run.js';
import { fixed, int, median } from './lib/stats.js';
import os from 'node:os';
import { NW } from '../core/cluster.js';

const NODES = numFlag('nodes', 10_000);
const STORM = numFlag('storm', 500);
const MAX_UNAVAILABLE = numFlag('max-unavailable', Math.max(5, Math.floor(NODES / 100)));
const RUNS = numFlag('runs', 3);
const SOAK_S = numFlag('soak-s', 120);
/** guard.actionConcurrency for the engine; 0: the config default (8). */
const ACTION_CONCURRENCY = numFlag('action-concurrency', 0);

/** The bars each figure is held to (docs/performance.md). */
const BARS = {
  startSeconds: 30,
  rssMiB: 512,
  cordonP99Ms: 2000,
  requestsPerDecision: 1,
  listsPerDecision: 0,
  heapGrowthMiB: 8,
};

function line(label: string, value: string, bar: string, ok: boolean): void {
  console.log(`  ${label.padEnd(46)} ${value.padStart(14)}   bar ${bar.padEnd(10)} ${ok ? 'ok' : 'OVER'}`);
}

async function main(): Promise<void> {
  const mach = machine();
  console.log(`KWOK fleet on a real apiserver: ${NODES} nodes, ${STORM}-node storm, maxUnavailable ${MAX_UNAVAILABLE}, ${RUNS} runs; ${describeMachine(mach)}`);
  const [kafka, redis] = await Promise.all([startBenchKafka(6), startRedis()]);
  const cluster = await startKwokCluster(NODES, (s) => console.log(`  ${s}`));
  const runs: Array<{ startMs: number; rss: number; storm: StormResult }> = [];
  try {
    for (let run = 1; run <= RUNS; run++) {
      const fe = await startFleetEngine({ cluster, kafka, redisUrl: redis.url, maxUnavailable: MAX_UNAVAILABLE, tag: `kwokb${run}`, ...(ACTION_CONCURRENCY > 0 ? { actionConcurrency: ACTION_CONCURRENCY } : {}) });
      const rss = rssMiB(fe.engine.pid);
      const storm = await runStorm(cluster, fe, kafka, STORM, MAX_UNAVAILABLE, 300_000);
      runs.push({ startMs: fe.startMs, rss, storm });
      console.log(
        `  run ${run}: ready in ${fixed(fe.startMs / 1000, 2)} s, RSS ${int(rss)} MiB; storm: executed ${storm.executed}, denied ${storm.denied} ${JSON.stringify(storm.deniedBy)}, ` +
          `cluster ${storm.unschedulable} unschedulable / ${storm.tainted} tainted, incidents ${storm.incidents.length}; cordon p50 ${int(storm.p50)} ms p99 ${int(storm.p99)} ms; decisions in ${fixed(storm.drainSeconds, 2)} s`,
      );
      console.log(`    engine requests (audit): ${formatCounts(storm.engineRequests)}; all clients: ${formatCounts(storm.allRequests)}`);
      const ph = storm.phases;
      console.log(`    engine: ${ph.batches} batches over ${int(ph.spanMs)} ms; batch ms ${JSON.stringify(Object.fromEntries(Object.entries(ph.batch).map(([k, v]) => [k, int(v)])))}`);
      console.log(`    submit steps (calls, ms; concurrent ones overlap): ${Object.entries(ph.submit).map(([k, v]) => `${k} ${v.calls}×/${int(v.ms)}`).join(', ')}`);
      console.log(`    redis calls per decision: ${JSON.stringify(storm.redisCallsPerDecision)}`);
      for (const [k, b] of ph.timeline.entries())
        console.log(`    batch ${k + 1} (${b.decisions} decisions), ms after publish: handed over ${int(b.start)}, its turn ${int(b.queued)}, evaluated ${int(b.evaluated)}, ${Number.isFinite(b.begun) ? `cordons over ${int(b.begun)}, ` : ''}submitted ${int(b.submitted)} (cordons ${int(b.steps.hoisted ?? 0)}, pages ${int(b.steps.inOrder ?? 0)}, commit ${int(b.steps.commit ?? 0)}), done ${int(b.done)}`);
      if (run < RUNS) {
        await fe.stop();
        // undo the cordons for the next run (as admin): schedulable, the fleet's own GPU taint only, no nodewarden annotations
        const undo = { metadata: { annotations: Object.fromEntries(Object.values(NW).filter((k) => k !== NW.taintKey).map((k) => [k, null])) }, spec: { unschedulable: null, taints: [{ key: 'nvidia.com/gpu', effect: 'NoSchedule' }] } };
        for (const name of (await countNodes(cluster.api)).unschedulable) {
          const r = await cluster.api.request('PATCH', `/api/v1/nodes/${name}`, undo);
          if (r.status !== 200) throw new Error(`uncordon ${name}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
        }
      } else {
        const soak = await runSoak(cluster, fe, kafka, SOAK_S, 1000, 100);
        console.log(`  soak ${int(soak.seconds)} s: ${soak.events} events, ${soak.churnedNodes} nodes churned; heap floors by quarter ${soak.heapFloorsMiB.map((h) => fixed(h)).join(' ')} MiB; after a forced full GC every 10 s ${soak.afterFullGcMiB.map(([, h]) => fixed(h)).join(' ')} MiB; RSS ${int(soak.rssFirstMiB)} → ${int(soak.rssLastMiB)} MiB; view ${soak.viewNodesAtEnd} nodes`);
        await fe.stop();
        const startS = median(runs.map((r) => r.startMs / 1000));
        const rss = median(runs.map((r) => r.rss));
        const p50 = median(runs.map((r) => r.storm.p50));
        const p99 = median(runs.map((r) => r.storm.p99));
        const rpd = median(runs.map((r) => r.storm.engineRequestsPerDecision));
        const lists = Math.max(...runs.map((r) => r.storm.engineListsDuringStorm + sumWhere(r.storm.allRequests, (k) => k === 'LIST nodes')));
        const exact = runs.every((r) => r.storm.executed === MAX_UNAVAILABLE && r.storm.unschedulable === MAX_UNAVAILABLE && r.storm.denied === STORM - MAX_UNAVAILABLE);
        const growth = soak.retainedGrowthMiB;
        const load = os.loadavg()[0] ?? 0;
        console.log(`\nfigures (medians of ${RUNS} runs; load average ${fixed(mach.loadAvg1, 2)} at start, ${fixed(load, 2)} at the end):`);
        line(`start-up to /readyz, ${NODES} nodes in the view`, `${fixed(startS, 2)} s`, `≤ ${BARS.startSeconds} s`, startS <= BARS.startSeconds);
        line('engine RSS once ready', `${int(rss)} MiB`, `≤ ${BARS.rssMiB} MiB`, rss <= BARS.rssMiB);
        line(`cordon latency p50 (${MAX_UNAVAILABLE} cordons/run)`, `${int(p50)} ms`, '-', true);
        line('cordon latency p99', `${int(p99)} ms`, `≤ ${BARS.cordonP99Ms} ms`, p99 <= BARS.cordonP99Ms);
        line(`guard: exactly ${MAX_UNAVAILABLE} executed, ${STORM - MAX_UNAVAILABLE} denied`, exact ? 'every run' : 'NO', 'every run', exact);
        line('engine apiserver requests per decision', fixed(rpd, 3), `< ${BARS.requestsPerDecision}`, rpd < BARS.requestsPerDecision);
        line('LIST requests during a storm (any client)', String(lists), `= ${BARS.listsPerDecision}`, lists === 0);
        line(`retained heap growth over the ${int(soak.seconds)} s soak`, `${fixed(growth)} MiB`, `< ${BARS.heapGrowthMiB} MiB`, growth < BARS.heapGrowthMiB);
        line('nodes in the view after churn', String(soak.viewNodesAtEnd), `= ${NODES}`, soak.viewNodesAtEnd === NODES);
        writeJsonSummary('kwok-fleet', {
          nodes: NODES,
          storm: STORM,
          maxUnavailable: MAX_UNAVAILABLE,
          fleetReadySeconds: cluster.fleetReadySeconds,
          runs: runs.map((r) => ({ startMs: r.startMs, rssMiB: r.rss, ...r.storm, allRequests: Object.fromEntries(r.storm.allRequests), engineRequests: Object.fromEntries(r.storm.engineRequests), latencyMs: r.storm.latencyMs })),
          soak,
          loadAvgEnd: load,
          bars: BARS,
        }, mach);
      }
    }
  } finally {
    await cluster.stop();
    await kafka.stop();
    await redis.stop();
  }
}

runMain(main);
