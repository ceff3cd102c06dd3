/**
 * Proves the real-server test harnesses work: Kafka (KRaft), Redis, Prometheus.
 * A missing server binary makes the `before all` hook fail with a clear message;
 * nothing here is ever skipped.
 */
import http from 'node:http';
import { expect } from 'chai';
import kafkajs from 'kafkajs';
import { Redis } from 'ioredis';
import { startKafka, type KafkaBroker } from '../harness/kafka.js';
import { freePort } from '../harness/ports.js';
import { startPrometheus, type PrometheusServer } from '../harness/prometheus.js';
import { startRedis, type RedisServer } from '../harness/redis.js';

const { Kafka, logLevel, Partitioners } = kafkajs;

interface Msg {
  key: string;
  seq: number;
  phase: string;
}

describe('harness: Kafka (KRaft single node)', function () {
  this.timeout(180_000);
  const topic = 'harness-orders';
  const KEYS = 10;
  const nextSeq = new Map<string, number>();
  let broker: KafkaBroker | undefined;

  before(async function () {
    const t0 = Date.now();
    broker = await startKafka();
    console.log(`      kafka ${broker.brokers.join(',')} started in ${Date.now() - t0} ms`);
    await broker.createTopics([topic]);
  });

  after(async function () {
    await broker?.stop();
  });

  function client(id: string): InstanceType<typeof Kafka> {
    if (!broker) throw new Error('broker not started');
    return new Kafka({ clientId: id, brokers: broker.brokers, logLevel: logLevel.ERROR, retry: { retries: 8 } });
  }

  async function produce(phase: string, count: number): Promise<void> {
    const producer = client(`producer-${phase}`).producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    try {
      const messages = [];
      for (let i = 0; i < count; i++) {
        const key = `gpu-node-${i % KEYS}`;
        const seq = nextSeq.get(key) ?? 0;
        nextSeq.set(key, seq + 1);
        messages.push({ key, value: JSON.stringify({ key, seq, phase } satisfies Msg) });
      }
      await producer.send({ topic, acks: -1, messages });
    } finally {
      await producer.disconnect();
    }
  }

  /** Consume with `groupId` until `count` messages arrived (then wait a little to catch extras). */
  async function consume(groupId: string, count: number): Promise<Msg[]> {
    const consumer = client(`consumer-${groupId}`).consumer({ groupId, maxWaitTimeInMs: 200 });
    const got: Msg[] = [];
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`consumer ${groupId}: got ${got.length}/${count} messages in 60 s`)), 60_000);
        consumer
          .run({
            eachMessage: ({ message }) => {
              const parsed = JSON.parse(message.value?.toString('utf8') ?? 'null') as Msg;
              const key = message.key?.toString('utf8');
              if (key !== parsed.key) reject(new Error(`message key ${String(key)} does not match payload key ${parsed.key}`));
              got.push(parsed);
              if (got.length >= count) {
                clearTimeout(timer);
                resolve();
              }
              return Promise.resolve();
            },
          })
          .catch(reject);
      });
      // Give any unexpected extra message (duplicates) a chance to show up.
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await consumer.disconnect();
    }
    return got;
  }

  function expectPerKeyOrder(msgs: Msg[], expectedTotal: number): void {
    expect(msgs).to.have.length(expectedTotal);
    const byKey = new Map<string, number[]>();
    for (const m of msgs) byKey.set(m.key, [...(byKey.get(m.key) ?? []), m.seq]);
    expect(byKey.size).to.equal(KEYS);
    for (const [key, seqs] of byKey) {
      const start = seqs[0] ?? -1;
      expect(seqs, `per-key order for ${key}`).to.deep.equal(seqs.map((_, i) => start + i));
    }
  }

  it('produces 100 keyed messages and consumes them back in per-key order', async function () {
    await produce('initial', 100);
    const msgs = await consume('g-main', 100);
    expectPerKeyOrder(msgs, 100);
    for (const m of msgs) expect(m.phase).to.equal('initial');
  });

  it('keeps messages and committed offsets across stop()/restart() on the same port', async function () {
    if (!broker) throw new Error('broker not started');
    const before = [...broker.brokers];
    const t0 = Date.now();
    await broker.restart();
    console.log(`      kafka restarted in ${Date.now() - t0} ms`);
    expect(broker.brokers).to.deep.equal(before);

    await produce('after-restart', 100);
    // Same group resumes from its committed offsets: exactly the new messages.
    const resumed = await consume('g-main', 100);
    expectPerKeyOrder(resumed, 100);
    for (const m of resumed) expect(m.phase).to.equal('after-restart');
    // A new group sees everything ever produced, nothing lost, in per-key order.
    expectPerKeyOrder(await consume('g-all-1', 200), 200);
  });

  it('survives kill() (SIGKILL) + restart() with nothing lost', async function () {
    if (!broker) throw new Error('broker not started');
    await broker.kill();
    const t0 = Date.now();
    await broker.restart();
    console.log(`      kafka recovered after SIGKILL in ${Date.now() - t0} ms`);
    await produce('after-kill', 100);
    expectPerKeyOrder(await consume('g-all-2', 300), 300);
  });
});

describe('harness: Redis', function () {
  this.timeout(60_000);
  let redis: RedisServer | undefined;

  before(async function () {
    redis = await startRedis();
  });

  after(async function () {
    await redis?.stop();
  });

  it('serves SET/GET via ioredis and comes back after restart()', async function () {
    if (!redis) throw new Error('redis not started');
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 3 });
    await client.connect();
    try {
      expect(await client.set('nodewarden:harness', 'ok')).to.equal('OK');
      expect(await client.get('nodewarden:harness')).to.equal('ok');
    } finally {
      client.disconnect();
    }

    await redis.restart();
    const again = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 3 });
    await again.connect();
    try {
      expect(await again.ping()).to.equal('PONG');
      // --save '' --appendonly no: nothing survives a restart.
      expect(await again.get('nodewarden:harness')).to.equal(null);
    } finally {
      again.disconnect();
    }
  });
});

describe('harness: Prometheus', function () {
  this.timeout(90_000);
  let server: http.Server | undefined;
  let prom: PrometheusServer | undefined;

  before(async function () {
    const port = await freePort();
    server = http.createServer((req, res) => {
      if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end('# HELP nodewarden_harness_gpu_temp_celsius test metric\n# TYPE nodewarden_harness_gpu_temp_celsius gauge\nnodewarden_harness_gpu_temp_celsius{gpu="0"} 42\n');
      } else {
        res.writeHead(404).end();
      }
    });
    const srv = server;
    await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve));
    prom = await startPrometheus([{ job: 'harness-exporter', url: `http://127.0.0.1:${port}/metrics` }]);
  });

  after(async function () {
    await prom?.stop();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  it('scrapes a tiny HTTP exporter and answers the query', async function () {
    if (!prom) throw new Error('prometheus not started');
    await prom.waitForTarget('harness-exporter', 30_000);
    const deadline = Date.now() + 15_000;
    let samples = await prom.queryVector('nodewarden_harness_gpu_temp_celsius');
    while (samples.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      samples = await prom.queryVector('nodewarden_harness_gpu_temp_celsius');
    }
    expect(samples, 'samples for nodewarden_harness_gpu_temp_celsius').to.have.length(1);
    const [sample] = samples;
    expect(sample?.metric['job']).to.equal('harness-exporter');
    expect(sample?.metric['gpu']).to.equal('0');
    expect(sample?.value[1]).to.equal('42');
    const up = await prom.queryVector('up{job="harness-exporter"}');
    expect(up[0]?.value[1]).to.equal('1');
  });
});
