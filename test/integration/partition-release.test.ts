/**
 * ADR 0049 on REAL servers: two engine replicas in partition-local mode
 * (ADR 0045) in one consumer group on a real Kafka broker, their state on a
 * real Redis (op log, epochs, dedupe). The replica that does NOT own the
 * node's partition returns the node (its repair ladder calls the bound
 * `release`, as in ADR 0034): the release is routed as a record on the
 * node's partition of the events topic, the owner applies it in order, and
 * the next Xid of that GPU fires a new decision on the owner (a new episode),
 * within the rule's 1 h cooldown. Before the release the same Xid is held.
 *
 * Then the same through the CLI wiring: two `nodewarden engine --state
 * partition-local` processes on the real servers and the real apiserver; an
 * Xid cordons the test Node (a repair-ladder episode is opened and observed),
 * a person uncordons it, the ladder of whichever replica sees it first closes
 * the episode "resolved by a person" and releases the isolating episode
 * (routed by the engine's own producer), and the next Xid within the cooldown
 * cordons the Node again.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import * as kafkajs from 'kafkajs';
import { systemClock } from '../../core/clock.js';
import { DEFAULT_CONFIG } from '../../core/config.js';
import type { RuleScope } from '../../core/held-fault.js';
import { silentLogger } from '../../core/logger.js';
import { createRegistry } from '../../adapters/metrics.js';
import { createRuleEngine, nodeScopedKeyTest } from '../../rules/engine/engine.js';
import { defaultRulesPath, loadRules } from '../../rules/language/load.js';
import { createStaticCluster } from '../../rules/replay/standin.js';
import { BatchProcessor } from '../../rules/service/batch-processor.js';
import { MemoryDeadLetterSink } from '../../rules/service/dead-letter.js';
import { RedisDeduper } from '../../rules/service/dedupe.js';
import { EngineService } from '../../rules/service/engine-service.js';
import { kafkaReleasePublisher, newReleaseRecord } from '../../rules/service/episode-release.js';
import { engineServiceMetrics } from '../../rules/service/metrics.js';
import { PartitionLocalStore } from '../../rules/store/partition-local-store.js';
import { RedisPartitionState } from '../../rules/store/partition-state-redis.js';
import { RedisStateStore } from '../../rules/store/redis-store.js';
import { fileOnlyToggles } from '../../rules/toggles/port.js';
import { produce, uniqueTopics, waitFor, xid as appXid } from './engine-support.js';
import { sharedKafka, sharedRedis } from './servers.js';
import { recordingRemediator } from '../contract/partition-local.js';
import { appXidRuleYaml, nodeState, patchesForwarded, ruleLedger, tickKillNames, useKillPair } from './tick-kill-support.js';

const RULE = 'gpu-xid-fatal';
const GPU = 'GPU-5f1c0a2b-0000-1111-2222-333344445555';

describe('partition-local state: a ladder release on the replica that does not own the node\'s partition (ADR 0049)', function () {
  this.timeout(180_000);
  const closers: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  });

  it('is routed to the owner on the node\'s partition; the owner\'s episode ends and the next Xid fires a new decision', async () => {
    const broker = await sharedKafka();
    const url = (await sharedRedis()).url;
    const topics = uniqueTopics('plrel');
    await broker.createTopics([topics.signals], 4);
    const prefix = `nw-plrel-${randomBytes(3).toString('hex')}:`;
    const groupId = `plrel-${randomBytes(3).toString('hex')}`;
    const rules = loadRules(defaultRulesPath());
    const clock = systemClock;

    const replica = async (name: string) => {
      const redis = new Redis(url, { maxRetriesPerRequest: 2 });
      closers.push(() => Promise.resolve(redis.disconnect()));
      const kafka = new kafkajs.Kafka({ clientId: `plrel-${name}`, brokers: broker.brokers, logLevel: kafkajs.logLevel.NOTHING });
      const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      closers.push(() => producer.disconnect());
      const store = new PartitionLocalStore({
        backend: new RedisPartitionState({ client: redis, shared: new RedisStateStore({ client: redis }), keyPrefix: prefix, groupId, topic: topics.signals }),
        isLocal: nodeScopedKeyTest(rules, prefix),
      });
      const publish = kafkaReleasePublisher(producer, topics.signals);
      const engine = createRuleEngine({
        rules,
        store,
        keyPrefix: prefix,
        cluster: createStaticCluster([], []),
        toggles: fileOnlyToggles,
        clock,
        logger: silentLogger,
        config: DEFAULT_CONFIG,
        tickOutbox: true,
        routeRelease: (node: string, episodes: RuleScope[]) => publish(newReleaseRecord(node, episodes, clock.now())),
      });
      const { remediator, submitted, ladderRelease } = recordingRemediator();
      const held: string[] = [];
      remediator.heldFaults = (fs) => {
        held.push(...fs.map((h) => h.eventId));
        return Promise.resolve({ records: [], retryLater: [] });
      };
      const deadLetters = new MemoryDeadLetterSink();
      const metrics = engineServiceMetrics(createRegistry(`plrel-${name}`));
      const deduper = new RedisDeduper(redis, prefix, { windowMs: 3_600_000, claimTtlMs: 3000 });
      const processor = new BatchProcessor({ engine, remediator, deduper, deadLetters, metrics, clock, logger: silentLogger, partitions: store });
      const assigned: number[] = [];
      const ownership = {
        assign: (ps: readonly number[]) => {
          assigned.splice(0, assigned.length, ...ps);
          store.assign(ps);
        },
      };
      const service = new EngineService({ kafka, groupId, topic: topics.signals, processor, metrics, clock, logger: silentLogger, tickMs: 1000, sessionTimeoutMs: 6000, partitions: ownership });
      await service.start();
      closers.push(() => service.stop());
      return { name, store, service, assigned, submitted, held, deadLetters, ladderRelease };
    };
    const replicas = [await replica('a'), await replica('b')];
    await waitFor('both replicas in the group, the 4 partitions split between them', () => replicas.every((r) => r.service.ready && r.assigned.length > 0) && new Set(replicas.flatMap((r) => r.assigned)).size === 4 && replicas[0]!.assigned.length + replicas[1]!.assigned.length === 4, 60_000, 100);

    // a node whose partition each replica may own: the first fatal Xid tells which one does
    const node = `gpu-plrel-${randomBytes(2).toString('hex')}`;
    const xid = (id: string) => ({ v: 1, id: `${id}-${randomBytes(4).toString('hex')}`, ts: new Date().toISOString(), node, type: 'gpu.xid', source: 'kmsg', labels: { pool: 'h100' }, data: { code: 95, gpu: GPU, message: 'Uncontained ECC error' } });
    const x1 = xid('x1');
    await produce(broker.brokers, topics.signals, [{ key: node, value: x1 }]);
    const ownerIdx = await waitFor('the first Xid isolates the GPU on the partition\'s owner', () => {
      const i = replicas.findIndex((r) => r.submitted.some((d) => d.action === 'taint'));
      return i >= 0 ? i : undefined;
    }, 60_000, 50);
    const owner = replicas[ownerIdx]!;
    const other = replicas[1 - ownerIdx]!;
    const first = owner.submitted.find((d) => d.action === 'taint')!;
    const scope = String(first.evidence?.ruleScope);
    expect(scope).to.equal(`n:${node}|${GPU}`);

    // within the 1 h cooldown the same fault is held (ADR 0034), nothing fires
    const x2 = xid('x2');
    await produce(broker.brokers, topics.signals, [{ key: node, value: x2 }]);
    await waitFor('the second Xid held back by the cooldown', () => owner.held.includes(x2.id), 30_000, 50);

    // the repair ladder returns the node on the replica that does NOT own its partition
    const t0 = Date.now();
    expect(await other.ladderRelease([{ rule: RULE, scope }])).to.equal(1);
    // its own memory holds nothing of the node (without routing, the release was answered from an empty store)
    for (const p of other.store.partitions()) expect(other.store.memoryOf(p)?.keys().some((k) => k.includes(node)) ?? false).to.equal(false);

    // the next fault, produced after the release record on the same partition: a new isolation on the owner
    const x3 = xid('x3');
    await produce(broker.brokers, topics.signals, [{ key: node, value: x3 }]);
    const again = await waitFor('the next Xid fires a new decision on the owner', () => owner.submitted.find((d) => d.action === 'taint' && d.evidence?.eventId === x3.id), 60_000, 50);
    console.log(`      release on the non-owner → next Xid fired on the owner in ${Date.now() - t0} ms`);
    expect(again.id).to.not.equal(first.id);
    expect(owner.held).to.not.include(x3.id);
    expect(other.submitted, 'the non-owner decided nothing').to.deep.equal([]);
    expect([...owner.deadLetters.records, ...other.deadLetters.records], 'the release record is not dead-lettered').to.deep.equal([]);
    expect(owner.submitted.filter((d) => d.action === 'taint').map((d) => d.evidence?.eventId)).to.deep.equal([x1.id, x3.id]);
  });
});

const CLI_RULE = 'app-xid-isolate';
const CLI_RULES_YAML = appXidRuleYaml(CLI_RULE, 'one application Xid cordons the node (partition-release test)', 1, 'Xid on {{node}}');

describe('partition-local state through the engine CLI: a person\'s uncordon ends the isolating episode on the owner (ADR 0049)', function () {
  this.timeout(240_000);
  const names = tickKillNames('plr');
  const { node: NODE, patchNode: PATCH_NODE, topics } = names;
  // the guard's own cooldown of the same action on the same target (default 10m) is not what this tests
  const pair = useKillPair({ names, dirPrefix: 'nw-partition-release-', rulesYaml: CLI_RULES_YAML, engineArgs: ['--state', 'partition-local'], guard: { targetCooldown: '0s' } });
  const event = (n: number): { key: string; value: Record<string, unknown> } => ({ key: NODE, value: appXid(NODE, 13, `${NODE}-x${n}`) });

  it('the next Xid within the cooldown cordons the Node again', async () => {
    const { raw } = ruleLedger(pair.ledger, CLI_RULE);
    await produce(pair.brokers, topics.signals, [event(0)]);
    await waitFor('the Node cordoned by the first Xid', async () => (await nodeState(pair.kube, NODE)).unschedulable || undefined, 90_000, 100);
    const ownerIdx = await waitFor('the owner of the Node\'s partition (its PATCH)', () => {
      const [a, b] = patchesForwarded(pair, 0, PATCH_NODE);
      return a > 0 ? 0 : b > 0 ? 1 : undefined;
    }, 10_000, 50);
    // a person returns the Node; a ladder tick closes the observed episode (resolved by a person) and releases the rule's episode
    const un = await pair.kube.kubectl(['uncordon', NODE]);
    expect(un.code, un.stderr).to.equal(0);
    await waitFor('the repair episode closed as resolved by a person', () => raw().some((r) => r.guard === 'resolvedByPerson') || undefined, 60_000, 100);
    const logs = pair.engines.map((e) => e.log());
    const releasedBy = logs.findIndex((l) => l.includes('routed to the owner of their node'));
    expect(releasedBy, 'a replica routed the release').to.be.greaterThanOrEqual(0);
    const t0 = Date.now();
    await produce(pair.brokers, topics.signals, [event(1)]);
    await waitFor('the Node cordoned again by the next Xid (within the 1 h cooldown)', async () => (await nodeState(pair.kube, NODE)).unschedulable || undefined, 60_000, 100).catch((err: unknown) => {
      const lines = pair.engines.map((e, i) => `--- replica ${i}${i === ownerIdx ? ' (owner)' : ''}\n${e.log().split('\n').filter((l) => /releas|episode|dead|held|partition-local|invalid/i.test(l)).slice(-30).join('\n')}`);
      throw new Error(`${String(err)}\nledger: ${JSON.stringify(raw().map((r) => `${r.action}/${r.outcome}/${r.guard ?? '-'}`))}\n${lines.join('\n')}`);
    });
    const ms = Date.now() - t0;
    await waitFor('the owner applied the routed release', () => pair.engines[ownerIdx]!.log().includes('routed episode release applied') || undefined, 10_000, 100);
    const cordons = raw().filter((r) => r.action === 'cordon' && r.outcome === 'executed');
    expect(cordons, JSON.stringify(raw().map((r) => `${r.action}/${r.outcome}/${r.guard ?? '-'}`))).to.have.length(2);
    console.log(`      released by replica ${releasedBy === ownerIdx ? 'owning' : 'NOT owning'} the Node's partition; next Xid → cordon ${ms} ms`);
  });
});
