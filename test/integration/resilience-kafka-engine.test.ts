/**
 * Zero lost events and zero duplicate actions across a broker restart and an
 * engine SIGKILL (brief §7), on a REAL Kafka broker (restarted mid-stream)
 * and a REAL Redis, with two `nodewarden engine` replicas in one consumer
 * group running the default rule pack against a simulated cluster.
 *
 * The stream: background conntrack/containerd samples of a 100-node fleet
 * plus one hardware Xid 79 on each of K + M distinct nodes, and a few exact
 * redeliveries (same event id produced again). The fleet budget is set so
 * exactly K cordons fit (3 nodes are already cordoned by people); the M
 * others must be denied by maxUnavailable. Mid-stream the broker restarts,
 * then the replica that is busy is SIGKILLed and the survivor takes over.
 *
 * Asserted at the end: every produced event id was evaluated and confirmed
 * (dedupe marks it done), the group committed everything, the dead-letter
 * topic is empty; on the ledger topic every fault node has exactly one cordon
 * decision that executed or was denied by the budget, exactly K executed,
 * no decision id and no node executed twice, and the fleet budget was never
 * exceeded.
 *
 * The ledger is read by offset (partition@offset → record): a test consumer
 * that re-reads messages after the broker restart (its own offset commit lost)
 * must not look like a second ledger record. Records the engine wrote twice
 * under the same idempotency key (record.ts `ledgerKey`: a replica killed after
 * its ledger write but before the guard's settle; the survivor takes the lapsed
 * lease over and writes the same decision attempt again) are folded by key, as
 * every ledger consumer does (the topic is keyed and compacted,
 * docs/operations.md); their number is printed. Two keys for one node still
 * count as two decisions.
 */
import { RedisDeduper } from '../../rules/service/dedupe.js';
import { expect } from 'chai';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import kafkajs from 'kafkajs';
import type { Consumer } from 'kafkajs';
import { startKafka } from '../harness/kafka.js';
import type { KafkaBroker } from '../harness/kafka.js';
import { sharedRedis } from './servers.js';
import { produce, sleep, TopicFollower, uniqueTopics, waitFor } from './engine-support.js';
import { admin, committed, ROOT, spawnEngine, topicEnd } from '../../bench/lib/kafka-bench.js';
import type { EngineChild } from '../../bench/lib/kafka-bench.js';
import type { LedgerRecord } from '../../core/decision.js';
import { ledgerKey } from '../../remediations/ledger/record.js';
import { stoppableConsumer } from '../harness/stoppable-consumer.js';

const CLUSTER_FILE = join(ROOT, 'test', 'fixtures', 'cluster', 'fleet-100.yaml');
const HUMAN_CORDONED = new Set([7, 52, 91]);
const K = 30;
const M = 8;
const POOL = (i: number): string => (i <= 47 ? 'h100-train' : i <= 79 ? 'a100-infer' : 'h100-research');
const ZONE = (i: number): string => ['us-west-2a', 'us-west-2b', 'us-west-2c'][i % 3] as string;
const nodeName = (i: number): string => `gpu-node-${String(i).padStart(3, '0')}`;

interface Ev {
  key: string;
  value: Record<string, unknown>;
}

let seq = 0;
function envelope(i: number, type: string, data: Record<string, unknown>, tag: string): Ev {
  const node = nodeName(i);
  return { key: node, value: { v: 1, id: `res-${tag}-${seq++}`, ts: new Date().toISOString(), node, type, source: 'test', labels: { pool: POOL(i), zone: ZONE(i) }, data } };
}

/** `n` background samples round-robin over the fleet: conntrack far from full, containerd serving. */
function background(n: number, tag: string): Ev[] {
  const out: Ev[] = [];
  for (let k = 0; k < n; k++) {
    const i = k % 100;
    out.push(
      k % 3 === 2
        ? envelope(i, 'runtime.containerd', { state: 'serving', latencyMs: 3, runtimeReady: true, networkReady: true }, tag)
        : envelope(i, 'net.conntrack', { count: 20_000 + k, max: 262_144, counters: { found: 1000 + k, invalid: 3, insert: 1000 + k, insert_failed: 0, drop: 0, early_drop: 0, search_restart: 0 } }, tag),
    );
  }
  return out;
}

function xid79(i: number, tag: string): Ev {
  return envelope(i, 'gpu.xid', { code: 79, pci: '0000:3b:00', gpu: `GPU-${String(i).padStart(8, '0')}-0000-0000-0000-000000000000`, pid: null, process: null, message: 'GPU has fallen off the bus.' }, tag);
}

/** Interleaves the fault events evenly into the background. */
function mix(bg: Ev[], faults: Ev[]): Ev[] {
  const out: Ev[] = [];
  const every = Math.max(1, Math.floor(bg.length / (faults.length + 1)));
  let f = 0;
  bg.forEach((e, k) => {
    out.push(e);
    if ((k + 1) % every === 0 && f < faults.length) out.push(faults[f++] as Ev);
  });
  while (f < faults.length) out.push(faults[f++] as Ev);
  return out;
}

/** Follows a topic from the beginning, keeping each record once per partition@offset. */
class OffsetFollower {
  private readonly byOffset = new Map<string, Record<string, unknown>>();
  /** How many messages arrived again at an offset already read (consumer re-reads). */
  rereads = 0;
  private consumer: Consumer | undefined;
  constructor(
    private readonly brokers: string[],
    private readonly topic: string,
  ) {}
  get records(): Array<Record<string, unknown> & { _at: string }> {
    return [...this.byOffset].map(([at, r]) => ({ ...r, _at: at }));
  }
  async start(): Promise<this> {
    const c = stoppableConsumer(new kafkajs.Kafka({ clientId: 'nw-test-ledger', brokers: this.brokers, logLevel: kafkajs.logLevel.NOTHING }), {
      groupId: `follower-${this.topic}-${Date.now()}`,
      sessionTimeout: 6000,
      heartbeatInterval: 500,
    });
    this.consumer = c;
    let joined = false;
    c.on(c.events.GROUP_JOIN, () => (joined = true));
    await c.connect();
    await c.subscribe({ topic: this.topic, fromBeginning: true });
    await c.run({
      eachMessage: ({ partition, message }) => {
        const at = `${partition}@${message.offset}`;
        if (this.byOffset.has(at)) this.rereads++;
        else this.byOffset.set(at, JSON.parse(message.value?.toString('utf8') ?? 'null') as Record<string, unknown>);
        return Promise.resolve();
      },
    });
    await waitFor(`follower of ${this.topic} to join`, () => joined || undefined, 30_000);
    return this;
  }
  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

interface LedgerRec {
  rule: string;
  action: string;
  outcome: string;
  guard: string | null;
  decisionId?: string;
  ts?: string;
  target: { kind: string; name: string };
  _at?: string;
}

describe('resilience: broker restart + engine SIGKILL, two replicas, real Kafka and Redis', function () {
  this.timeout(420_000);
  let kafka: KafkaBroker;
  let redis: Redis;
  const engines: EngineChild[] = [];
  const topics = uniqueTopics('res');
  const keyPrefix = `nwres${process.pid}:`;
  const groupId = `engine-${topics.signals}`;
  let ledger: OffsetFollower | undefined;
  let dlq: TopicFollower | undefined;
  const produced: string[] = [];

  before(async () => {
    // Exclusive broker: this test restarts it.
    const [k, r] = await Promise.all([startKafka({ numPartitions: 4 }), sharedRedis()]);
    kafka = k;
    redis = new Redis(r.url);
    await kafka.createTopics([topics.signals, topics.deadLetter, topics.ledger], 4);
    const common = {
      brokers: kafka.brokers,
      redisUrl: r.url,
      keyPrefix,
      groupId,
      topics,
      clusterFile: CLUSTER_FILE,
      args: ['--session-timeout', '6s'],
      extraConfig: {
        guard: {
          // 3 nodes are cordoned by people: exactly K more fit.
          maxUnavailable: String(3 + K),
          maxUnavailablePerGroup: '100%',
          rateLimits: { cordon: { count: 1000, per: '10m' }, uncordon: { count: 10, per: '10m' }, rollback: { count: 1, per: '1h' }, page: { count: 10_000, per: '1m' } },
        },
      },
    };
    engines.push(await spawnEngine(common), await spawnEngine(common));
    ledger = await new OffsetFollower(kafka.brokers, topics.ledger).start();
    dlq = await new TopicFollower(kafka.brokers, topics.deadLetter).start();
  });

  after(async () => {
    for (const e of engines) await e.kill('SIGTERM');
    await ledger?.stop().catch(() => undefined);
    await dlq?.stop().catch(() => undefined);
    redis?.disconnect();
    await kafka?.stop();
  });

  async function send(evs: Ev[]): Promise<void> {
    for (let i = 0; i < evs.length; i += 500) await produce(kafka.brokers, topics.signals, evs.slice(i, i + 500));
    for (const e of evs) produced.push(String(e.value['id']));
  }

  it('evaluates every event once and executes exactly K cordons, none twice, within the budget', async () => {
    const eligible = Array.from({ length: 100 }, (_, i) => i).filter((i) => !HUMAN_CORDONED.has(i));
    const faultNodes = eligible.filter((_, k) => k % 2 === 0).slice(0, K + M);
    expect(faultNodes).to.have.length(K + M);
    const faults = faultNodes.map((i) => xid79(i, 'f'));
    const a = admin(kafka.brokers);

    // Phase 1: a third of the faults, then the broker restarts under load.
    const p1 = mix(background(1500, 'p1'), faults.slice(0, 13));
    await send(p1);
    await a.connect();
    const endP1 = await topicEnd(a, topics.signals);
    await waitFor('half of phase 1 committed', async () => (await committed(a, groupId, topics.signals)) >= endP1 / 2 || undefined, 60_000, 100);
    await a.disconnect();
    const r0 = Date.now();
    await kafka.restart();
    console.log(`      broker restarted in ${Date.now() - r0} ms`);

    // Phase 2: more faults plus exact redeliveries of phase-1 faults (same ids).
    const p2 = mix(background(3000, 'p2'), [...faults.slice(13, 26), ...faults.slice(0, 4)]);
    const before = await Promise.all(engines.map((e) => e.metric('nodewarden_engine_events_processed_total')));
    const sending = send(p2);
    // SIGKILL whichever replica is busy with phase 2, while it is mid-stream.
    const victimIdx = await waitFor(
      'a replica processing phase 2',
      async () => {
        const now = await Promise.all(engines.map((e) => e.metric('nodewarden_engine_events_processed_total').catch(() => 0)));
        const i = now.findIndex((n, k) => n - (before[k] ?? 0) >= 200);
        return i >= 0 ? i : undefined;
      },
      90_000,
      20,
    );
    const victim = engines[victimIdx] as EngineChild;
    await victim.kill('SIGKILL');
    expect(victim.proc.signalCode).to.equal('SIGKILL');
    await sending;
    const survivor = engines[1 - victimIdx] as EngineChild;

    // Phase 3: the rest, on the survivor alone.
    await send(mix(background(1500, 'p3'), faults.slice(26)));

    const b = admin(kafka.brokers);
    await b.connect();
    try {
      const end = await topicEnd(b, topics.signals);
      await waitFor('the group to commit every offset', async () => (await committed(b, groupId, topics.signals)) >= end || undefined, 120_000, 200);
    } finally {
      await b.disconnect();
    }
    const rawCordons = (): LedgerRec[] => (ledger?.records ?? []).map((r) => r as unknown as LedgerRec).filter((r) => r.rule === 'gpu-xid-node-fatal' && r.action === 'cordon');
    /** Folded by idempotency key as a ledger consumer does (the first record of a key wins). */
    const cordons = (): LedgerRec[] => {
      const byKey = new Map<string, LedgerRec>();
      for (const r of rawCordons()) {
        const k = ledgerKey(r as unknown as Partial<LedgerRecord>) ?? r._at ?? '';
        if (!byKey.has(k)) byKey.set(k, r);
      }
      return [...byKey.values()];
    };
    await waitFor('a cordon decision for every fault node', () => new Set(cordons().map((r) => r.target.name)).size >= K + M || undefined, 60_000, 200);
    await sleep(3000); // late duplicates, if any, would land now

    // Every event id evaluated and confirmed (done), none left pending.
    const ids = [...new Set(produced)];
    const states = await new RedisDeduper(redis, keyPrefix, { claimTtlMs: 1, windowMs: 1 }).states(ids);
    const notDone = ids.filter((_, i) => states[i] !== 'done');
    expect(notDone, `events not confirmed as evaluated (first: ${notDone.slice(0, 5).join(', ')})`).to.deep.equal([]);
    expect(dlq?.records ?? [], 'dead letters').to.deep.equal([]);

    const recs = cordons();
    const byOutcome = new Map<string, number>();
    for (const r of recs) byOutcome.set(`${r.outcome}${r.guard ? `/${r.guard}` : ''}`, (byOutcome.get(`${r.outcome}${r.guard ? `/${r.guard}` : ''}`) ?? 0) + 1);
    console.log(
      `      cordon ledger records: ${JSON.stringify(Object.fromEntries(byOutcome))}; same-key records folded: ${rawCordons().length - recs.length}; ledger messages re-read by the test consumer: ${ledger?.rereads ?? 0}; ` +
        `survivor processed ${await survivor.metric('nodewarden_engine_events_processed_total')}, duplicates skipped ${await survivor.metric('nodewarden_engine_events_duplicate_total')}, ` +
        `batches redelivered ${await survivor.metric('nodewarden_engine_batch_failures_total')}`,
    );

    // Exactly one effective cordon decision (executed, or denied by the budget) per fault node.
    const effective = recs.filter((r) => r.outcome === 'executed' || (r.outcome === 'denied' && r.guard === 'maxUnavailable'));
    const perNode = new Map<string, number>();
    for (const r of effective) perNode.set(r.target.name, (perNode.get(r.target.name) ?? 0) + 1);
    expect([...perNode.keys()].sort()).to.deep.equal(faultNodes.map(nodeName).sort());
    const twice = [...perNode.entries()].filter(([, n]) => n !== 1).map(([name]) => name);
    if (twice.length > 0) {
      // diagnosis: the same decision written twice (a ledger duplicate) or two decisions (a duplicate action)?
      for (const name of twice) {
        const mine = effective.filter((r) => r.target.name === name);
        const ids = new Set(mine.map((r) => r.decisionId));
        console.log(`      ${name}: ${mine.length} effective records, ${ids.size} decision id(s): ${mine.map((r) => `${r.decisionId} ${r.outcome}/${r.guard ?? '-'} at ${r._at ?? '?'} ${r.ts ?? ''}`).join('; ')}`);
      }
      console.log(`      engine logs: ${engines.map((e) => e.logFile).join(' ')}`);
    }
    expect(twice, `nodes with more than one effective cordon decision: ${JSON.stringify(recs.filter((r) => twice.includes(r.target.name)))}`).to.deep.equal([]);

    const executed = recs.filter((r) => r.outcome === 'executed');
    expect(executed, 'executed cordons').to.have.length(K);
    expect(recs.filter((r) => r.outcome === 'denied' && r.guard === 'maxUnavailable'), 'cordons denied by the fleet budget').to.have.length(M);
    expect(recs.filter((r) => r.outcome === 'failed'), 'failed cordons').to.deep.equal([]);
    const execIds = executed.map((r) => r.decisionId ?? '');
    expect(execIds.every((id) => id.length > 0), 'executed records carry their decision id').to.equal(true);
    expect(new Set(execIds).size, 'decision ids executed twice').to.equal(execIds.length);
    expect(new Set(executed.map((r) => r.target.name)).size, 'nodes cordoned twice').to.equal(executed.length);
    // Budget: nothing uncordons here, so the final count is the peak: people's 3 + ours never above the limit.
    expect(3 + executed.length).to.be.at.most(Number(3 + K));
    // The survivor is healthy.
    expect((await fetch(`${survivor.url}/readyz`)).status).to.equal(200);
  });
});
