/**
 * A replica SIGKILLed BETWEEN ITS STATE WRITE AND ITS OFFSET COMMIT, on real
 * servers (issue 13, item 1): two `nodewarden engine` replicas (one consumer
 * group, real Kafka) share one real Redis, each through its own command-aware
 * proxy (test/harness/redis-fault-proxy.ts), and act on the real
 * kube-apiserver through pass-through proxies that count PATCHes of the test
 * Node.
 *
 * The test rule counts application Xids per node (3 within 10 m → cordon +
 * page). Two Xids go in. The replica that owns the node's partition evaluates
 * them and writes the rule's state (the window with 2 events); each Redis
 * proxy holds the batch's dedupe confirm (the step after the state write and
 * before the offset commit), so that replica stops exactly there and is
 * SIGKILLed: its state is durable, its offsets and its claimed ids are not.
 * The survivor takes the partition over, re-reads the two Xids from the
 * committed offset and evaluates them again against the state the victim
 * wrote.
 *
 * Asserted: the replay counted nothing twice — the Node is NOT cordoned after
 * the survivor confirmed the two replayed ids (a store that counted them again
 * would hold 4 ≥ 3 and cordon now); the third Xid then cordons it once, by the
 * survivor (its PATCH 1, the victim's 0), one executed cordon and one executed
 * page in the ledger, one record per ledger key; the group's committed offset
 * covers all three events (nothing lost). Kill → replayed and third Xid →
 * cordon printed as a FAULT-FIGURE line.
 *
 * `stateCommitKillSuite` takes the engine's extra arguments, so a state mode
 * (e.g. partition-local state) can run the same test.
 */
import { expect } from 'chai';
import { Kafka, logLevel } from 'kafkajs';
import { Redis } from 'ioredis';
import type { RedisCommand, RedisFaultProxy } from '../harness/redis-fault-proxy.js';
import { redisScript } from '../../adapters/redis/scripts.js';
import { dedupeClaimPrefix, dedupeKey } from '../../adapters/redis/keys.js';
import { RedisDeduper } from '../../rules/service/dedupe.js';
import { produce, sleep, waitFor, xid } from './engine-support.js';
import type { EngineChild } from '../../bench/lib/kafka-bench.js';
import { appXidRuleYaml, caughtReplica, killVictim, nodeState, patchesForwarded, ruleLedger, tickKillNames, useKillPair } from './tick-kill-support.js';

const RULE = 'app-xid-count-3';
const RULES_YAML = appXidRuleYaml(RULE, '3 application Xids on one node within 10m (state-commit-kill test)', 3, '{{count}} application Xids on {{node}} within {{window}}');

/** Whether a command is one of the scripts (EVALSHA, or EVAL after NOSCRIPT). */
const isScript = (cmd: RedisCommand, name: Parameters<typeof redisScript>[0]): boolean => {
  const s = redisScript(name);
  return (cmd[0] === 'EVALSHA' && cmd[1] === s.sha) || (cmd[0] === 'EVAL' && cmd[1] === s.source);
};

function stateCommitKillSuite(label: string, engineArgs: readonly string[]): void {
  const names = tickKillNames(`sck${label.slice(0, 3)}`);
  const { node: NODE, patchNode: PATCH_NODE, topics, groupId, keyPrefix } = names;
  const idOf = (n: number): string => `${NODE}-x${n}`;
  const event = (n: number): { key: string; value: Record<string, unknown> } => ({ key: NODE, value: xid(NODE, 13, idOf(n)) });

  describe(`a replica SIGKILLed between its state write and its offset commit (${label}), real servers`, function () {
    this.timeout(240_000);
    const firstKey = dedupeKey(keyPrefix, idOf(0));
    // the dedupe confirm of the batch with the first Xid: after the state write, before the offset commit.
    // A confirm names the claim (ADR 0048): remember the tokens of the claims that carried the first id.
    const firstClaims = new Set<string>();
    const isFirstConfirm = (cmd: RedisCommand): boolean => {
      if (isScript(cmd, 'dedupe.claim') && cmd.includes(firstKey)) {
        const token = cmd[cmd.length - 2]; // ARGV: claim TTL, window, token, claim-key prefix
        if (token !== undefined) firstClaims.add(dedupeClaimPrefix(keyPrefix) + token);
        return false;
      }
      return isScript(cmd, 'dedupe.confirm') && cmd.some((a) => a === firstKey || firstClaims.has(a));
    };
    // a forwarded state write for the test Node (whatever the store's command shape): a key that names the rule and
    // the node, or a state-store script call that carries the node's events (a partition's op-log entry names keys
    // its partition's log defined earlier by position, ADR 0051, but carries the event ids, which name the node)
    const isStateWrite = (cmd: RedisCommand): boolean =>
      !isScript(cmd, 'dedupe.claim') && !isScript(cmd, 'dedupe.confirm') && cmd.some((a) => a.includes(NODE) && (a.includes(RULE) || isScript(cmd, 'rules.batch')));
    const pair = useKillPair({ names, dirPrefix: 'nw-state-commit-kill-', rulesYaml: RULES_YAML, redisHold: isFirstConfirm, redisWatch: isStateWrite, engineArgs });
    let redis: Redis | undefined;
    before(async () => {
      redis = new Redis(pair.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await redis.connect();
    });
    after(() => redis?.disconnect());
    // reads where the event ids stand (ADR 0048: an id names its claim, the claim says pending or done)
    const deduper = (): RedisDeduper => {
      if (!redis) throw new Error('no Redis client');
      return new RedisDeduper(redis, keyPrefix, { claimTtlMs: 1, windowMs: 1 });
    };

    it('the survivor replays the two Xids against the written state without counting them twice; the third cordons once, nothing lost', async () => {
      const t0 = Date.now();
      await produce(pair.brokers, topics.signals, [event(0), event(1)]);
      const redisProxies = pair.redisProxies;
      const victimIdx = await caughtReplica('a replica stopped after its state write, at its dedupe confirm', () => redisProxies.findIndex((p) => p.held.length > 0));
      const victimProxy = redisProxies[victimIdx] as RedisFaultProxy;
      // the kill point: the state of the two Xids was forwarded to Redis before the held confirm
      expect(victimProxy.watched.length, 'the victim wrote the rule state of the test Node before its confirm').to.be.greaterThan(0);
      const killedAt = await killVictim(pair.engines[victimIdx] as EngineChild);
      // claimed (or the claim already lapsed on a slow machine), never confirmed
      expect((await deduper().states([idOf(0)]))[0], 'the victim never confirmed the first id').to.not.equal('done');

      const survivorIdx = 1 - victimIdx;
      const survivor = pair.engines[survivorIdx] as EngineChild;
      const survivorProxy = redisProxies[survivorIdx] as RedisFaultProxy;
      expect(survivorProxy.held, 'the survivor was not held').to.have.length(0);
      survivorProxy.setHold(null);

      // the survivor takes the partition, waits out the victim's claims, evaluates both Xids again and confirms them
      await waitFor('the survivor confirmed the replayed Xids', async () => (await deduper().states([idOf(0), idOf(1)])).every((v) => v === 'done') || undefined, 120_000, 100);
      const replayedAt = Date.now();
      expect(survivorProxy.watched.length, 'the survivor evaluated the replayed Xids against the store').to.be.greaterThan(0);
      await sleep(1500); // a cordon fired by a double count would be under way now
      const { raw, folded } = ruleLedger(pair.ledger, RULE);
      expect((await nodeState(pair.kube, NODE)).unschedulable, 'cordoned by the replay: the two Xids were counted twice').to.equal(false);
      expect(raw().map((r) => `${r.action}/${r.outcome}`), 'no decision from the replay').to.deep.equal([]);

      await produce(pair.brokers, topics.signals, [event(2)]);
      const thirdAt = Date.now();
      await waitFor('the Node cordoned by the third Xid', async () => (await nodeState(pair.kube, NODE)).unschedulable || undefined, 60_000, 100);
      const thirdToCordonMs = Date.now() - thirdAt;
      await waitFor('the executed cordon and page in the ledger', () => (raw().some((r) => r.action === 'cordon' && r.outcome === 'executed') && raw().some((r) => r.action === 'page' && r.outcome === 'executed')) || undefined, 30_000, 100);
      await sleep(3000); // a late duplicate would land now

      const { recs, all } = folded();
      expect(raw().length, `one record per ledger key: ${all}`).to.equal(recs.length);
      expect(recs.filter((r) => r.action === 'cordon').map((r) => `${r.target.name} ${r.outcome}`), all).to.deep.equal([`${NODE} executed`]);
      expect(recs.filter((r) => r.action === 'page' && !(r.decisionId ?? '').startsWith('incident:')).map((r) => r.outcome), all).to.deep.equal(['executed']);
      expect(patchesForwarded(pair, victimIdx, PATCH_NODE), 'PATCHes that reached the apiserver [victim, survivor]').to.deep.equal([0, 1]);

      // nothing lost: the group's committed offsets cover the three events
      const admin = new Kafka({ clientId: 'nw-test-offsets', brokers: pair.brokers, logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      try {
        const committed = await waitFor(
          'the three events committed',
          async () => {
            const [t] = await admin.fetchOffsets({ groupId, topics: [topics.signals] });
            const sum = (t?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
            return sum >= 3 ? sum : undefined;
          },
          30_000,
          200,
        );
        expect(committed, 'committed offsets over all partitions').to.equal(3);
      } finally {
        await admin.disconnect();
      }

      console.log(
        `      FAULT-FIGURE state_commit_kill mode=${label} kill_after_first_event_ms=${killedAt - t0} kill_to_replay_confirmed_ms=${replayedAt - killedAt} ` +
          `third_xid_to_cordon_ms=${thirdToCordonMs} ledger=${JSON.stringify(recs.map((r) => `${r.action}/${r.outcome}`))} victim_state_writes=${victimProxy.watched.length} survivor_patches_forwarded=1`,
      );
      expect((await fetch(`${survivor.url}/readyz`)).status).to.equal(200);
    });
  });
}

stateCommitKillSuite('shared state', []);
stateCommitKillSuite('partition-local state', ['--state', 'partition-local']);
