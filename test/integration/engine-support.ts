/**
 * Support for the engine integration tests: runs `./bin/nodewarden engine`
 * as a child process against the real broker and Redis (with a simulated
 * cluster file), produces events, and follows the ledger and dead-letter
 * topics.
 */
import { engineStateArgs } from '../../bench/lib/kafka-bench.js';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import type { Consumer, KafkaConfig } from 'kafkajs';
import { killUnlessReady, startAll } from '../harness/cleanup.js';
import { freePort } from '../harness/ports.js';
import { sharedKafka, sharedRedis } from './servers.js';
import { scrapeMetricSum } from '../harness/metrics.js';
import { stoppableConsumer } from '../harness/stoppable-consumer.js';

const { Kafka, logLevel, Partitioners } = kafkajs;

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = join(ROOT, 'bin', 'nodewarden');
export const CLUSTER_FILE = join(ROOT, 'test', 'fixtures', 'cluster', 'fleet-100.yaml');
export const RULES_FILE = join(ROOT, 'test', 'fixtures', 'engine', 'rules.yaml');

export interface Topics {
  signals: string;
  deadLetter: string;
  ledger: string;
}

export function uniqueTopics(tag: string): Topics {
  const s = `${tag}-${process.pid}-${Date.now().toString(36)}`;
  return { signals: `sig-${s}`, deadLetter: `dlq-${s}`, ledger: `ledger-${s}` };
}

export interface EngineProc {
  port: number;
  url: string;
  proc: ChildProcess;
  logFile: string;
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): Promise<number | null>;
  metric(name: string): Promise<number>;
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, intervalMs = 50): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export interface EngineConfig {
  brokers: string[];
  redisUrl: string;
  keyPrefix: string;
  groupId: string;
  topics: Topics;
  tokensFile?: string;
  /** Extra `kafka` / `redis` config settings (ssl, caFile, sasl, passwordFile), merged over the defaults above. */
  kafkaExtra?: Record<string, unknown>;
  redisExtra?: Record<string, unknown>;
  /** How long to wait for /readyz (default 60 s). */
  readyTimeoutMs?: number;
  /** More config, merged over the above (e.g. `incidents`). */
  extraConfig?: Record<string, unknown>;
}

/** Writes a config file and starts `nodewarden engine`; resolves once /readyz answers 200. */
export async function startEngine(cfg: EngineConfig, extraArgs: string[] = []): Promise<EngineProc> {
  const dir = mkdtempSync(join(tmpdir(), 'nw-engine-'));
  const configFile = join(dir, 'config.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      kafka: { brokers: cfg.brokers, clientId: 'nw-test-engine', topics: cfg.topics, ...cfg.kafkaExtra },
      redis: { url: cfg.redisUrl, keyPrefix: cfg.keyPrefix, passwordFile: null, ...cfg.redisExtra },
      engine: { groupId: cfg.groupId, store: 'redis' },
      control: { tokensFile: cfg.tokensFile ?? null },
      ...cfg.extraConfig,
    }),
  );
  const port = await freePort();
  const logFile = join(dir, 'engine.log');
  const log = createWriteStream(logFile);
  const proc = spawn(process.execPath, [BIN, 'engine', '--config', configFile, '--rules', RULES_FILE, '--cluster', CLUSTER_FILE, '--port', String(port), '--host', '127.0.0.1', '--session-timeout', '6s', ...engineStateArgs(), ...extraArgs], {
    cwd: ROOT,
    env: { ...process.env, NODEWARDEN_LOG_LEVEL: process.env.NODEWARDEN_LOG_LEVEL ?? 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout?.pipe(log, { end: false });
  proc.stderr?.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const e: EngineProc = {
    port,
    url,
    proc,
    logFile,
    exited,
    async kill(signal) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
    metric: (name) => scrapeMetricSum(url, name),
  };
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  try {
    await waitFor(
      `engine on port ${port} to be ready`,
      async () => {
        if (exitedEarly) throw new Error(`engine exited early:\n${readFileSync(logFile, 'utf8').slice(-4000)}`);
        try {
          return (await fetch(`${url}/readyz`)).status === 200;
        } catch {
          return false;
        }
      },
      cfg.readyTimeoutMs ?? 60_000,
      100,
    );
  } catch (err) {
    await e.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n--- engine log tail ---\n${readFileSync(logFile, 'utf8').slice(-3000)}`, { cause: err });
  }
  return e;
}

export function engineLog(e: EngineProc): string {
  return readFileSync(e.logFile, 'utf8');
}

let seq = 0;
export function xid(node: string, code: number, id = `ev-${process.pid}-${Date.now()}-${seq++}`): Record<string, unknown> {
  return {
    v: 1,
    id,
    ts: new Date().toISOString(),
    node,
    type: 'gpu.xid',
    source: 'kmsg',
    labels: { pool: 'h100-train', zone: 'us-west-2a' },
    data: { code, pci: '0000:3b:00', message: code === 79 ? 'GPU has fallen off the bus.' : 'Xid' },
  };
}

/** Produces messages (objects are JSON-encoded, strings sent as is), key = node. */
export async function produce(brokers: string[], topic: string, messages: Array<{ key: string; value: unknown }>): Promise<void> {
  const producer = new Kafka({ clientId: 'nw-test-producer', brokers, logLevel: logLevel.NOTHING }).producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: messages.map((m) => ({ key: m.key, value: typeof m.value === 'string' ? m.value : JSON.stringify(m.value) })) });
  } finally {
    await producer.disconnect();
  }
}

/** Follows a topic from the beginning, keeping every JSON message. */
export class TopicFollower {
  readonly records: Array<Record<string, unknown>> = [];
  private consumer: Consumer | undefined;
  constructor(
    private readonly brokers: string[],
    private readonly topic: string,
    /** kafkajs `ssl`/`sasl` options for a secured broker. */
    private readonly security: Partial<KafkaConfig> = {},
  ) {}
  async start(): Promise<this> {
    const c = stoppableConsumer(new Kafka({ clientId: 'nw-test-follower', brokers: this.brokers, ...this.security, logLevel: logLevel.NOTHING }), { groupId: `follower-${this.topic}-${Date.now()}`, sessionTimeout: 6000, heartbeatInterval: 500 });
    this.consumer = c;
    await c.connect();
    await c.subscribe({ topic: this.topic, fromBeginning: true });
    let joined = false;
    c.on(c.events.GROUP_JOIN, () => (joined = true));
    await killUnlessReady(
      (async () => {
        await c.run({
          eachMessage: ({ message }) => {
            this.records.push(JSON.parse(message.value?.toString('utf8') ?? 'null') as Record<string, unknown>);
            return Promise.resolve();
          },
        });
        await waitFor(`follower of ${this.topic} to join`, () => joined, 30_000);
      })(),
      () => c.disconnect(),
    );
    return this;
  }
  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

/** Runs `nodewarden ctl ...` as a child process. */
export async function ctl(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return await new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, 'ctl', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Two engine replicas in one consumer group on the shared broker and Redis (4 partitions), and a follower of their ledger topic. */
export async function startReplicaPair(
  topics: Topics,
  keyPrefix: string,
  extraConfig?: Record<string, unknown>,
  /** A control tokens file, and more engine flags (a later `--rules` / `--cluster` overrides the default). */
  opts: { tokensFile?: string; extraArgs?: string[] } = {},
): Promise<{ brokers: string[]; engines: EngineProc[]; ledger: TopicFollower }> {
  const [kafka, redis] = await Promise.all([sharedKafka(), sharedRedis()]);
  await kafka.createTopics([topics.signals, topics.deadLetter, topics.ledger], 4);
  const cfg: EngineConfig = { brokers: kafka.brokers, redisUrl: redis.url, keyPrefix, groupId: `engine-${topics.signals}`, topics, ...(extraConfig ? { extraConfig } : {}), ...(opts.tokensFile ? { tokensFile: opts.tokensFile } : {}) };
  const kill = (e: EngineProc): Promise<number | null> => e.kill('SIGTERM');
  const engines = await startAll([() => startEngine(cfg, opts.extraArgs), () => startEngine(cfg, opts.extraArgs)], kill);
  const ledger = await killUnlessReady(new TopicFollower(kafka.brokers, topics.ledger).start(), () => Promise.all(engines.map(kill)));
  return { brokers: kafka.brokers, engines, ledger };
}

/** Warms up until the group has settled with partitions on every replica (one Xid 13 per node never pages). */
export interface ReplicaPairSuite {
  topics: Topics;
  brokers: string[];
  engines: EngineProc[];
  ledger: TopicFollower;
}

/**
 * Registers mocha hooks for a suite over two engine replicas sharing the real
 * broker and Redis: `before` runs `setup` (which returns extra engine config),
 * starts the pair, runs `afterStart`, and (unless `consuming: false`) waits
 * until both replicas consume; `after` stops both, the ledger follower and
 * runs `teardown`. `engine` (read after `setup`) gives a control tokens file
 * and more engine flags. The returned object is filled in by `before`.
 */
export function replicaPairSuite(
  tag: string,
  o: { setup?: () => Promise<Record<string, unknown> | undefined> | Record<string, unknown> | undefined; engine?: () => { tokensFile?: string; extraArgs?: string[] }; afterStart?: () => void; teardown?: () => Promise<void>; consuming?: boolean } = {},
): ReplicaPairSuite {
  const rp = { topics: uniqueTopics(tag), brokers: [], engines: [], ledger: undefined } as unknown as ReplicaPairSuite;
  before(async () => {
    const extra = await o.setup?.();
    const pair = await startReplicaPair(rp.topics, `nw${tag}${process.pid}:`, extra, o.engine?.());
    o.afterStart?.();
    rp.brokers = pair.brokers;
    rp.engines.push(...pair.engines);
    rp.ledger = pair.ledger;
    if (o.consuming !== false) await untilAllConsuming(rp.brokers, rp.topics.signals, rp.engines);
  });
  after(async () => {
    for (const e of rp.engines) await e.kill('SIGTERM');
    await (rp.ledger as TopicFollower | undefined)?.stop();
    await o.teardown?.();
  });
  return rp;
}

export async function untilAllConsuming(brokers: string[], topic: string, engines: readonly EngineProc[]): Promise<void> {
  let round = 0;
  await waitFor('every replica consuming', async () => {
    const keys = Array.from({ length: 20 }, (_, i) => `warm-${round}-${i}`);
    round++;
    await produce(brokers, topic, keys.map((k) => ({ key: k, value: xid(k, 13) })));
    const c = await Promise.all(engines.map((e) => e.metric('nodewarden_engine_events_processed_total')));
    return c.every((n) => n > 0);
  }, 90_000, 2000);
}
