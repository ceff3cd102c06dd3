/**
 * Kafka-side plumbing for the end-to-end benchmarks and the resilience test:
 * a broker with full-JIT JVM options, fast bulk produce, committed-offset
 * progress of a consumer group, and `nodewarden engine` as a child process
 * (the real service, exactly as operators run it).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import type { Admin } from 'kafkajs';
import { startKafka } from '../../test/harness/kafka.js';
import type { KafkaBroker } from '../../test/harness/kafka.js';
import { freePort } from '../../test/harness/ports.js';
import { Redis } from 'ioredis';
import { startRedis } from '../../test/harness/redis.js';
import type { RedisServer } from '../../test/harness/redis.js';
import { scrapeMetricSum } from '../../test/harness/metrics.js';

const { Kafka, logLevel, Partitioners, CompressionTypes } = kafkajs;

/** Repo root (dist/bench/lib → ../../../). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = join(ROOT, 'bin', 'nodewarden');

/**
 * Kafka's own kafka-server-start.sh flags (G1, 20 ms pause goal) with full
 * tiered JIT: the harness default stops at C1 for a fast start, which is
 * right for tests and wrong for throughput.
 */
export const BENCH_JVM_OPTS = [
  '-Xms512m',
  '-Xmx1g',
  '-XX:+UseG1GC',
  '-XX:MaxGCPauseMillis=20',
  '-XX:InitiatingHeapOccupancyPercent=35',
  '-XX:+ExplicitGCInvokesConcurrent',
  '-XX:-UsePerfData',
  '-XX:+ExitOnOutOfMemoryError',
  '-Djava.awt.headless=true',
];

export async function startBenchKafka(partitions = 6): Promise<KafkaBroker> {
  return await startKafka({ jvmOpts: BENCH_JVM_OPTS, numPartitions: partitions, startTimeoutMs: 120_000 });
}

/**
 * broker.createTopics with retries: right after another topic was created or
 * deleted, kafkajs' wait for leaders can fail with UNKNOWN_TOPIC_OR_PARTITION.
 */
export async function createTopics(broker: KafkaBroker, names: string[], partitions: number): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await broker.createTopics(names, partitions);
      return;
    } catch (err) {
      if (attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}

export function admin(brokers: string[]): Admin {
  return new Kafka({ clientId: 'nw-bench-admin', brokers, logLevel: logLevel.NOTHING }).admin();
}

/** What the engine benches run against: a bench broker, a Redis server with a client, and a connected admin. */
export interface BenchBackends {
  kafka: KafkaBroker;
  redisServer: RedisServer;
  redis: Redis;
  admin: Admin;
  /** Disconnects the clients and stops both servers. */
  stop(): Promise<void>;
}

export async function startBenchBackends(partitions: number): Promise<BenchBackends> {
  const [kafka, redisServer] = await Promise.all([startBenchKafka(partitions), startRedis()]);
  const redis = new Redis(redisServer.url);
  const a = admin(kafka.brokers);
  await a.connect();
  return {
    kafka,
    redisServer,
    redis,
    admin: a,
    async stop() {
      await a.disconnect().catch(() => undefined);
      redis.disconnect();
      await Promise.all([kafka.stop(), redisServer.stop()]);
    },
  };
}

/**
 * Produces pre-encoded messages in batches (key = node, default murmur2
 * partitioner like the agent), acks=all, `inFlight` batches at a time.
 */
export async function produceAll(brokers: string[], topic: string, messages: ReadonlyArray<{ key: string; value: string }>, batch = 2000, inFlight = 4): Promise<void> {
  const producer = new Kafka({ clientId: 'nw-bench-producer', brokers, logLevel: logLevel.NOTHING }).producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  try {
    const pending = new Set<Promise<unknown>>();
    for (let i = 0; i < messages.length; i += batch) {
      const p = producer.send({ topic, acks: -1, compression: CompressionTypes.None, messages: messages.slice(i, i + batch) }).finally(() => pending.delete(p));
      pending.add(p);
      if (pending.size >= inFlight) await Promise.race(pending);
    }
    await Promise.all(pending);
  } finally {
    await producer.disconnect();
  }
}

/** Sum over partitions of the topic's end offsets (high watermarks). */
export async function topicEnd(a: Admin, topic: string): Promise<number> {
  const offs = await a.fetchTopicOffsets(topic);
  return offs.reduce((s, p) => s + Number(p.high), 0);
}

/** Sum over partitions of the group's committed offsets (a partition never committed counts 0). */
export async function committed(a: Admin, groupId: string, topic: string): Promise<number> {
  const res = await a.fetchOffsets({ groupId, topics: [topic] });
  let sum = 0;
  for (const t of res) for (const p of t.partitions) sum += Math.max(0, Number(p.offset));
  return sum;
}

export interface EngineChildOptions {
  brokers: string[];
  redisUrl: string;
  keyPrefix: string;
  groupId: string;
  topics: { signals: string; deadLetter: string; ledger: string };
  /** A simulated cluster (`--cluster`); with `kubeconfig` instead, the live API. */
  clusterFile?: string;
  /** The live cluster's kubeconfig (KUBECONFIG of the engine) when there is no `clusterFile`. */
  kubeconfig?: string;
  dryRun?: boolean;
  rulesPath?: string;
  /** Merged over the generated config (e.g. guard budgets). */
  extraConfig?: Record<string, unknown>;
  /** Extra node flags (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Extra engine flags. */
  args?: string[];
  /** NODEWARDEN_LOG_LEVEL (default info, as in production). */
  logLevel?: string;
  readyTimeoutMs?: number;
  /** Resolve once /readyz says ready (default), or as soon as HTTP answers /healthz (dependencies may be down). */
  waitFor?: 'ready' | 'listening';
}

export interface EngineChild {
  proc: ChildProcess;
  pid: number;
  url: string;
  logFile: string;
  dir: string;
  exited: Promise<number | null>;
  /** Sends the signal (if still running) and waits for the exit. */
  kill(signal: NodeJS.Signals): Promise<number | null>;
  /** Sum of a counter/gauge's samples on /metrics. */
  metric(name: string): Promise<number>;
  log(): string;
}

/**
 * Starts `nodewarden engine --store redis [--cluster FILE] [--dry-run]` with a
 * generated config; resolves once /readyz says the consumer joined.
 */
/**
 * `--state partition-local` when $NW_ENGINE_STATE says so (ADR 0045): the
 * tests and benches that spawn engines run in either state mode, unchanged.
 */
export function engineStateArgs(env: NodeJS.ProcessEnv = process.env): string[] {
  const v = env.NW_ENGINE_STATE;
  return v === undefined || v === '' ? [] : ['--state', v];
}

export async function spawnEngine(o: EngineChildOptions): Promise<EngineChild> {
  const dir = mkdtempSync(join(tmpdir(), 'nw-bench-engine-'));
  const configFile = join(dir, 'config.json');
  const config: Record<string, unknown> = {
    kafka: { brokers: o.brokers, clientId: 'nw-bench-engine', topics: o.topics },
    redis: { url: o.redisUrl, keyPrefix: o.keyPrefix, passwordFile: null },
    engine: { groupId: o.groupId, store: 'redis' },
    control: { tokensFile: null },
    ...(o.extraConfig ?? {}),
  };
  writeFileSync(configFile, JSON.stringify(config));
  const port = await freePort();
  const logFile = join(dir, 'engine.log');
  const fd = openSync(logFile, 'a');
  const args = [
    ...(o.nodeArgs ?? []),
    BIN,
    'engine',
    '--config',
    configFile,
    '--store',
    'redis',
    ...(o.clusterFile !== undefined ? ['--cluster', o.clusterFile] : []),
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    ...(o.dryRun ? ['--dry-run'] : []),
    ...(o.rulesPath ? ['--rules', o.rulesPath] : []),
    ...engineStateArgs(),
    ...(o.args ?? []),
  ];
  // Logs straight into a file descriptor: the parent never copies them.
  const proc = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, NODEWARDEN_LOG_LEVEL: o.logLevel ?? 'info', ...(o.kubeconfig !== undefined ? { KUBECONFIG: o.kubeconfig } : {}) },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  const url = `http://127.0.0.1:${port}`;
  const child: EngineChild = {
    proc,
    pid: proc.pid ?? -1,
    url,
    logFile,
    dir,
    exited,
    async kill(signal) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return await exited;
    },
    metric: (name) => scrapeMetricSum(url, name),
    log: () => readFileSync(logFile, 'utf8'),
  };
  const deadline = Date.now() + (o.readyTimeoutMs ?? 90_000);
  for (;;) {
    if (gone) throw new Error(`engine exited early:\n${child.log().slice(-4000)}`);
    try {
      if ((await fetch(`${url}${o.waitFor === 'listening' ? '/healthz' : '/readyz'}`)).status === 200) return child;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await child.kill('SIGKILL');
      throw new Error(`engine not ready after ${o.readyTimeoutMs ?? 90_000} ms:\n${child.log().slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
