/**
 * Rule engine throughput on the default pack:
 *  - memory store (the embedded/replay path), events/s on one core;
 *  - Redis store (real redis-server from test/harness/redis.ts, one Lua batch
 *    script per batch phase): wall events/s, and CPU per event of the engine
 *    process and of redis-server (INFO cpu), robust to other load on the box;
 *  - json-rules-engine evaluating the same per-event match conditions (type +
 *    data predicates, no windows or state) on the same events, for a ratio.
 * Several runs each; medians reported. Short on purpose (shared 2-core box).
 *
 * Run: npx tsc -p tsconfig.json && node dist/bench/engine-throughput.js [--events N] [--runs R] [--no-redis] [--no-jre]
 */
import os from 'node:os';
import jre from 'json-rules-engine';
import type { TopLevelCondition } from 'json-rules-engine';
import { Redis } from 'ioredis';
import { ManualClock } from '../core/clock.js';
import { DEFAULT_CONFIG } from '../core/config.js';
import type { EventEnvelope } from '../core/envelope.js';
import { silentLogger } from '../core/logger.js';
import { createRuleEngine } from '../rules/engine/engine.js';
import { defaultRulesPath, loadRules } from '../rules/language/load.js';
import { createStaticCluster } from '../rules/replay/standin.js';
import { MemoryStateStore } from '../rules/store/memory-store.js';
import { NodeSustainedFilterStore } from '../rules/store/node-sustained-filter.js';
import { RedisStateStore } from '../rules/store/redis-store.js';
import type { StateStore } from '../rules/store/state-store.js';
import { fileOnlyToggles } from '../rules/toggles/port.js';
import { startRedis } from '../test/harness/redis.js';

const { Engine } = jre;

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const N = arg('events', 200_000);
const RUNS = arg('runs', 5);
const BATCH = arg('batch', 1000);
const NODES = 1000;
const T0 = Date.parse('2026-11-21T10:00:00.000Z');

/** A realistic mix: mostly heartbeats and conntrack samples, a little of everything else. */
function makeEvents(n: number): EventEnvelope[] {
  const out: EventEnvelope[] = [];
  let seed = 42;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const drops = new Float64Array(NODES);
  for (let i = 0; i < n; i++) {
    const node = `gpu-worker-${(i * 7919) % NODES}`;
    const ni = (i * 7919) % NODES;
    const ts = new Date(T0 + i * 5).toISOString(); // 200 events/s of virtual time
    const labels = { pool: `pool-${ni % 10}`, zone: 'us-west-2c' };
    const r = rnd();
    let e: EventEnvelope;
    if (r < 0.4) e = { v: 1, id: `b${i}`, ts, node, type: 'agent.heartbeat', source: 'agent', labels, data: {} };
    else if (r < 0.8) {
      if (rnd() < 0.01) drops[ni] = (drops[ni] ?? 0) + 1;
      e = { v: 1, id: `b${i}`, ts, node, type: 'net.conntrack', source: 'procfs', labels, data: { count: Math.floor(rnd() * 200_000), max: 262_144, counters: { drop: drops[ni], insert_failed: 0, found: i } } };
    } else if (r < 0.9) e = { v: 1, id: `b${i}`, ts, node, type: 'runtime.containerd', source: 'grpc', labels, data: { state: rnd() < 0.001 ? 'timeout' : 'serving' } };
    else if (r < 0.95) {
      const codes = [13, 31, 43, 45, 63, 94, 79, 48];
      e = { v: 1, id: `b${i}`, ts, node, type: 'gpu.xid', source: 'kmsg', labels, data: { code: codes[Math.floor(rnd() * (rnd() < 0.9 ? 6 : 8))], pci: '0000:3b:00', message: 'x' } };
    } else if (r < 0.97) e = { v: 1, id: `b${i}`, ts, node, type: 'kubeproxy.restart', source: 'kube', labels, data: { pod: 'kp', restartCount: i } };
    else e = { v: 1, id: `b${i}`, ts, node, type: 'gpu.health', source: 'dcgm', labels, data: { kind: 'pcie_replay', gpu: 'GPU-1', value: i } };
    out.push(e);
  }
  return out;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

/**
 * `rate` is events per wall-clock second; `cpuRate` events per CPU-second of
 * this process (the "per core" figure, robust to other load on a shared box).
 */
async function runEngine(events: EventEnvelope[], store: StateStore): Promise<{ rate: number; cpuRate: number; decisions: number }> {
  const engine = createRuleEngine({
    rules: loadRules(defaultRulesPath()),
    store,
    cluster: createStaticCluster([], []),
    toggles: fileOnlyToggles,
    clock: new ManualClock(T0),
    logger: silentLogger,
    config: DEFAULT_CONFIG,
  });
  let decisions = 0;
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < events.length; i += BATCH) decisions += (await engine.process(events.slice(i, i + BATCH))).length;
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  return { rate: events.length / s, cpuRate: events.length / ((c.user + c.system) / 1e6), decisions };
}

/** The default pack's per-event match conditions, expressed for json-rules-engine. */
function jreEngine(): InstanceType<typeof Engine> {
  const e = new Engine([], { allowUndefinedFacts: true });
  const t = (type: string): { fact: string; operator: string; value: string } => ({ fact: 'type', operator: 'equal', value: type });
  const rules: Array<{ name: string; conditions: TopLevelCondition }> = [
    { name: 'gpu-xid-fatal', conditions: { any: [{ all: [t('gpu.xid'), { fact: 'data', path: '$.code', operator: 'in', value: [48, 62, 64, 74, 79, 95, 119, 120, 140] }] }, { all: [t('gpu.health'), { fact: 'data', path: '$.kind', operator: 'in', value: ['ecc_dbe', 'row_remap_failure'] }] }] } },
    { name: 'gpu-xid-application-repeated', conditions: { all: [t('gpu.xid'), { fact: 'data', path: '$.code', operator: 'in', value: [13, 31, 43, 45, 68, 69] }] } },
    { name: 'gpu-xid-informational', conditions: { all: [t('gpu.xid'), { fact: 'data', path: '$.code', operator: 'in', value: [63, 92, 94, 154] }] } },
    { name: 'gpu-driver-rollout-regression', conditions: { all: [t('gpu.xid'), { fact: 'data', path: '$.code', operator: 'in', value: [48, 62, 64, 74, 79, 95, 119, 120, 140] }] } },
    { name: 'containerd-unresponsive', conditions: { all: [t('runtime.containerd'), { fact: 'data', path: '$.state', operator: 'in', value: ['unreachable', 'timeout'] }] } },
    { name: 'kubeproxy-restart-loop', conditions: { all: [t('kubeproxy.restart')] } },
    { name: 'conntrack-table-near-full', conditions: { all: [t('net.conntrack'), { fact: 'data', path: '$.count', operator: 'greaterThanInclusive', value: 235_929 }] } },
    { name: 'conntrack-dropping', conditions: { all: [t('net.conntrack'), { fact: 'data', path: '$.counters.drop', operator: 'greaterThan', value: 0 }] } },
    { name: 'node-heartbeat-missing', conditions: { all: [t('agent.heartbeat')] } },
  ];
  for (const r of rules) e.addRule({ name: r.name, conditions: r.conditions, event: { type: r.name } });
  return e;
}

async function runJre(events: EventEnvelope[]): Promise<number> {
  const e = jreEngine();
  const t0 = process.hrtime.bigint();
  for (const ev of events) await e.run({ type: ev.type, node: ev.node, data: ev.data, labels: ev.labels });
  return events.length / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function main(): Promise<void> {
  const events = makeEvents(N);
  const fmt = (x: number): string => `${Math.round(x).toLocaleString('en-US')} events/s`;
  console.log(`engine throughput: default pack (${loadRules(defaultRulesPath()).rules.length} rules), ${N} events over ${NODES} nodes, batches of ${BATCH}, ${RUNS} runs`);

  const mem: number[] = [];
  const memCpu: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const { rate, cpuRate, decisions } = await runEngine(events, new MemoryStateStore());
    mem.push(rate);
    memCpu.push(cpuRate);
    console.log(`  memory run ${r + 1}: ${fmt(rate)} wall, ${fmt(cpuRate)} per CPU-second (${decisions} decisions)`);
  }
  console.log(`memory store median: ${fmt(median(mem))} wall, ${fmt(median(memCpu))} per CPU-second (load average ${os.loadavg()[0]?.toFixed(1)} on ${os.cpus().length} cores)`);

  if (!process.argv.includes('--no-jre')) {
    const jreN = Math.min(N, 40_000);
    const jres: number[] = [];
    for (let r = 0; r < Math.min(RUNS, 3); r++) jres.push(await runJre(events.slice(0, jreN)));
    console.log(`json-rules-engine (same per-event match conditions, no state) median: ${fmt(median(jres))} over ${jreN} events`);
    console.log(`ratio nodewarden memory / json-rules-engine: ${(median(mem) / median(jres)).toFixed(1)}x`);
  }

  if (!process.argv.includes('--no-redis')) {
    const server = await startRedis();
    const client = new Redis(server.url);
    try {
      const redisN = Math.min(N, 100_000);
      const red: number[] = [];
      const perCpu: number[] = [];
      const engUs: number[] = [];
      const redUs: number[] = [];
      const cmds: number[] = [];
      for (let r = 0; r < Math.max(RUNS, 3); r++) {
        await client.flushdb();
        await client.config('RESETSTAT');
        const cpu0 = await redisCpuSeconds(client);
        // as `nodewarden engine --store redis` composes it (ADR 0042)
        const store = new NodeSustainedFilterStore(new RedisStateStore({ client }));
        const { rate, cpuRate } = await runEngine(events.slice(0, redisN), store);
        const redisCpu = (await redisCpuSeconds(client)) - cpu0;
        const calls = await redisCalls(client);
        const eng = 1e6 / cpuRate;
        const rus = (redisCpu * 1e6) / redisN;
        red.push(rate);
        engUs.push(eng);
        redUs.push(rus);
        perCpu.push(1e6 / (eng + rus));
        cmds.push(calls.all / redisN);
        console.log(
          `  redis run ${r + 1}: ${fmt(rate)} wall; engine ${eng.toFixed(1)} µs CPU/event, redis-server ${rus.toFixed(1)} µs CPU/event ` +
            `(${fmt(1e6 / (eng + rus))} per CPU-second of both), ${calls.scripts} script calls, ${(calls.all / redisN).toFixed(2)} Redis commands/event (inside scripts included); store ops/event sent ${(store.stats.sent / redisN).toFixed(2)}, answered by the sustained filter ${(store.stats.skipped / redisN).toFixed(2)}`,
        );
      }
      console.log(
        `redis store (one Lua batch script per phase) median: ${fmt(median(red))} wall over ${redisN} events; ` +
          `engine ${median(engUs).toFixed(1)} + redis-server ${median(redUs).toFixed(1)} µs CPU/event = ${fmt(median(perCpu))} per CPU-second of both ` +
          `(the engine awaits each batch, so on an idle box wall ≈ this); ${median(cmds).toFixed(2)} Redis commands/event`,
      );
    } finally {
      client.disconnect();
      await server.stop();
    }
  }
}

/** CPU seconds (user + sys) the redis-server process has used, from INFO cpu. */
async function redisCpuSeconds(client: Redis): Promise<number> {
  const info = await client.info('cpu');
  const f = (name: string): number => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? 0);
  return f('used_cpu_user') + f('used_cpu_sys');
}

/** Since RESETSTAT (INFO commandstats): script calls (EVAL/EVALSHA) and every command, the ones run inside scripts included. */
async function redisCalls(client: Redis): Promise<{ scripts: number; all: number }> {
  const info = await client.info('commandstats');
  let scripts = 0;
  let all = 0;
  for (const m of info.matchAll(/^cmdstat_([a-z|_-]+):calls=(\d+)/gm)) {
    const n = Number(m[2]);
    if (m[1] === 'info' || m[1] === 'config|resetstat') continue;
    all += n;
    if (m[1] === 'eval' || m[1] === 'evalsha') scripts += n;
  }
  return { scripts, all };
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
