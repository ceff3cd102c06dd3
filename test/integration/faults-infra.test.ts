/**
 * Infrastructure faults against REAL servers (Kafka KRaft broker and
 * redis-server of the harness, each owned by this file so it can stop them),
 * with `nodewarden engine` as a child process on a simulated cluster:
 *
 *  - start-up with the broker down: HTTP answers at once (/healthz 200,
 *    /readyz 503 naming the broker), the engine keeps retrying and becomes
 *    ready by itself once the broker is up; nothing is lost.
 *  - Redis down mid-stream: no remediation (fail closed), the page still goes
 *    out marked degraded, /readyz and /metrics show the outage (and /metrics
 *    stays fast), and after Redis returns the event is evaluated for real:
 *    the cordon happens exactly once.
 *
 * Measured figures are printed as `FAULT-FIGURE …` lines (RELIABILITY.md).
 */
import { expect } from 'chai';
import { startKafka } from '../harness/kafka.js';
import type { KafkaBroker } from '../harness/kafka.js';
import { startRedis } from '../harness/redis.js';
import type { RedisServer } from '../harness/redis.js';
import { produce, sleep, TopicFollower, uniqueTopics, waitFor, xid } from './engine-support.js';
import { ROOT, spawnEngine } from '../../bench/lib/kafka-bench.js';
import type { EngineChild } from '../../bench/lib/kafka-bench.js';
import { join } from 'node:path';

const CLUSTER_FILE = join(ROOT, 'test', 'fixtures', 'cluster', 'fleet-100.yaml');
const RULES_FILE = join(ROOT, 'test', 'fixtures', 'engine', 'rules.yaml');

interface Readyz {
  status: string;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

async function readyz(e: EngineChild): Promise<{ code: number; body: Readyz }> {
  const r = await fetch(`${e.url}/readyz`);
  return { code: r.status, body: (await r.json()) as Readyz };
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = Date.now();
  const v = await fn();
  return [v, Date.now() - t0];
}

function figure(name: string, value: number | string): void {
  process.stdout.write(`      FAULT-FIGURE ${name}=${value}\n`);
}

type Rec = Record<string, unknown> & { action?: string; outcome?: string; decisionId?: string; target?: { name?: string }; details?: Record<string, unknown> };

describe('infrastructure faults (real Kafka and Redis)', function () {
  this.timeout(240_000);
  let kafka: KafkaBroker;
  let redis: RedisServer;
  const engines: EngineChild[] = [];
  const followers: TopicFollower[] = [];

  before(async () => {
    [kafka, redis] = await Promise.all([startKafka({ numPartitions: 2 }), startRedis()]);
  });
  after(async () => {
    for (const e of engines) await e.kill('SIGKILL');
    for (const f of followers) await f.stop().catch(() => undefined);
    await Promise.all([kafka?.stop(), redis?.stop()]);
  });

  it('starts with the broker down: HTTP first, /readyz 503 naming the broker, keeps retrying, ready by itself once it is up', async () => {
    const topics = uniqueTopics('fault-start');
    await kafka.createTopics([topics.signals, topics.deadLetter, topics.ledger], 2);
    await kafka.stop();
    const t0 = Date.now();
    const [e, toHttp] = await timed(() =>
      spawnEngine({ brokers: kafka.brokers, redisUrl: redis.url, keyPrefix: `fs${Date.now()}:`, groupId: `fs-${Date.now()}`, topics, clusterFile: CLUSTER_FILE, rulesPath: RULES_FILE, waitFor: 'listening', readyTimeoutMs: 30_000, args: ['--session-timeout', '6s'] }),
    );
    engines.push(e);
    figure('start_broker_down_http_ms', toHttp);
    expect(toHttp, 'HTTP must come up without waiting for the broker').to.be.below(15_000);
    expect((await fetch(`${e.url}/healthz`)).status).to.equal(200);
    const [metrics, metricsMs] = await timed(() => fetch(`${e.url}/metrics`));
    expect(metrics.status).to.equal(200);
    expect(metricsMs).to.be.below(1000);
    // the start-up check names the dependency it waits for and why
    const r = await waitFor('readyz to name the broker', async () => {
      const x = await readyz(e);
      return x.body.checks.startup?.detail?.includes('kafka') ? x : undefined;
    }, 20_000, 200);
    expect(r.code).to.equal(503);
    expect(r.body.checks.startup?.ok).to.equal(false);
    expect(r.body.checks.startup?.detail).to.match(/^waiting for kafka broker \(attempt \d+\): .*ECONNREFUSED/);
    // still alive and retrying past the point where it used to give up (~55 s: kafkajs' 10 retries), one clear line per attempt
    await waitFor('a third attempt to reach the broker', () => e.log().split('\n').filter((l) => l.includes('waiting for kafka broker')).length >= 3, 60_000, 500);
    expect(e.proc.exitCode).to.equal(null);
    expect((await readyz(e)).body.checks.startup?.detail).to.match(/^waiting for kafka .*\(attempt [2-9]/);
    figure('start_broker_down_alive_ms', Date.now() - t0);

    const [, brokerUpMs] = await timed(() => kafka.restart());
    const [, readyMs] = await timed(() => waitFor('engine ready after the broker came back', async () => (await readyz(e)).code === 200, 90_000, 200));
    figure('start_broker_down_ready_after_broker_up_ms', readyMs);
    figure('broker_restart_ms', brokerUpMs);

    // nothing lost: an event produced now is acted on
    const ledger = await new TopicFollower(kafka.brokers, topics.ledger).start();
    followers.push(ledger);
    await produce(kafka.brokers, topics.signals, [{ key: 'gpu-node-011', value: xid('gpu-node-011', 79) }]);
    await waitFor('the cordon of gpu-node-011', () => ledger.records.some((x) => (x as Rec).action === 'cordon' && (x as Rec).outcome === 'executed'), 60_000, 200);
  });

  it('Redis down mid-stream: fails closed, pages degraded, /readyz and /metrics show it, recovers by itself with one cordon', async () => {
    const topics = uniqueTopics('fault-redis');
    await kafka.createTopics([topics.signals, topics.deadLetter, topics.ledger], 2);
    const e = await spawnEngine({ brokers: kafka.brokers, redisUrl: redis.url, keyPrefix: `fr${Date.now()}:`, groupId: `fr-${Date.now()}`, topics, clusterFile: CLUSTER_FILE, rulesPath: RULES_FILE, readyTimeoutMs: 90_000, args: ['--session-timeout', '6s'] });
    engines.push(e);
    const ledger = await new TopicFollower(kafka.brokers, topics.ledger).start();
    followers.push(ledger);
    const recs = (): Rec[] => ledger.records;
    const of = (node: string, action: string): Rec[] => recs().filter((x) => x.target?.name === node && x.action === action);

    await produce(kafka.brokers, topics.signals, [{ key: 'gpu-node-021', value: xid('gpu-node-021', 79) }]);
    await waitFor('the cordon of gpu-node-021 before the outage', () => of('gpu-node-021', 'cordon').some((x) => x.outcome === 'executed'), 60_000, 100);

    await redis.stop();
    const down = Date.now();
    await produce(kafka.brokers, topics.signals, [{ key: 'gpu-node-022', value: xid('gpu-node-022', 79) }]);
    const page = await waitFor('a degraded page for gpu-node-022 while Redis is down', () => of('gpu-node-022', 'page').find((x) => x.outcome === 'executed' && x.details?.degraded !== undefined), 60_000, 100);
    figure('redis_down_degraded_page_ms', Date.now() - down);
    expect(String(page.details?.degraded)).to.contain('guard unavailable');
    expect(of('gpu-node-022', 'cordon').filter((x) => x.outcome === 'executed'), 'no remediation without the guard').to.have.length(0);

    const r = await waitFor('readyz to report Redis', async () => {
      const x = await readyz(e);
      return x.code === 503 && x.body.checks.redis?.ok === false ? x : undefined;
    }, 20_000, 200);
    expect(r.body.checks.redis?.detail).to.be.a('string');
    let slowest = 0;
    for (let i = 0; i < 5; i++) {
      const [m, ms] = await timed(() => fetch(`${e.url}/metrics`));
      expect(m.status).to.equal(200);
      await m.text();
      slowest = Math.max(slowest, ms);
    }
    figure('redis_down_metrics_slowest_ms', slowest);
    expect(slowest, '/metrics must not wait on Redis').to.be.below(2000);
    expect(await e.metric('nodewarden_engine_batch_failures_total')).to.be.at.least(1);
    expect(await e.metric('nodewarden_engine_degraded_events_total')).to.be.at.least(1);
    // redelivered batches while down: still one degraded page
    await sleep(5000);
    expect(of('gpu-node-022', 'page').filter((x) => x.details?.degraded !== undefined)).to.have.length(1);

    await redis.restart();
    const up = Date.now();
    await waitFor('the cordon of gpu-node-022 once Redis is back', () => of('gpu-node-022', 'cordon').some((x) => x.outcome === 'executed'), 90_000, 100);
    figure('redis_recovery_to_cordon_ms', Date.now() - up);
    await waitFor('engine ready again', async () => (await readyz(e)).code === 200, 60_000, 200);
    figure('redis_recovery_to_ready_ms', Date.now() - up);
    await sleep(3000);
    for (const n of ['gpu-node-021', 'gpu-node-022']) {
      const cordons = of(n, 'cordon').filter((x) => x.outcome === 'executed');
      expect(cordons, `exactly one cordon of ${n}`).to.have.length(1);
    }
    expect(e.proc.exitCode).to.equal(null);
  });
});
