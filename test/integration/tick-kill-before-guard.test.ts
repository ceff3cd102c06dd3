/**
 * A TICK-fired decision whose replica is SIGKILLed after the tick's store
 * write and BEFORE the guard's authorize, on real servers (issue 10, item 1;
 * the tick outbox, ADR 0021): two `nodewarden engine` replicas (one consumer
 * group, real Kafka) share one real Redis, each through its own command-aware
 * proxy (test/harness/redis-fault-proxy.ts), and act on the real
 * kube-apiserver, each through a pass-through HTTP proxy that counts its
 * PATCHes.
 *
 * The test rule (containerd unreachable sustained for 3 s → cordon + page)
 * gets two events, then silence: only a tick fires it. The tick's store batch
 * (episode opened, due entry popped, outbox entry added: one Lua call) goes
 * through; each Redis proxy holds the guard's authorize script of the test
 * Node's cordon (EVALSHA/EVAL of guard authorize.lua with the Node's cooldown
 * key), so the replica whose tick fired stops exactly between the store write
 * and the guard; it is SIGKILLed there. Its decisions never reached the guard:
 * without the outbox they were lost for good. The survivor's outbox
 * re-derivation (same episode, same decision ids) carries them out.
 *
 * Asserted from the ledger (folded by key and unfolded) and the Node: the
 * Node cordoned once, by the survivor (its PATCH 1, the victim's 0), carrying
 * the decision id of the one `executed` cordon, which is the id the victim's
 * held authorize named; the rule's page executed once, one record per key.
 * Kill → cordon printed as a FAULT-FIGURE line.
 */
import { expect } from 'chai';
import type { RedisCommand, RedisFaultProxy } from '../harness/redis-fault-proxy.js';
import { redisScript } from '../../adapters/redis/scripts.js';
import { guardKeys } from '../../adapters/redis/keys.js';
import { sleep, produce, waitFor } from './engine-support.js';
import type { EngineChild } from '../../bench/lib/kafka-bench.js';
import { caughtReplica, killVictim, nodeState, patchesForwarded, ruleLedger, TICK_RULE, tickKillNames, useKillPair } from './tick-kill-support.js';

const names = tickKillNames('tkg');
const { node: NODE, patchNode: PATCH_NODE, unreachable, topics, keyPrefix } = names;

describe('tick-fired decision, its replica SIGKILLed between the store write and the guard, real servers', function () {
  this.timeout(240_000);
  // the guard's authorize of the test Node's cordon, however the client sends it (EVALSHA, or EVAL after NOSCRIPT)
  const authorize = redisScript('guard.authorize');
  const cooldownKey = guardKeys(keyPrefix).cooldown('cordon', `Node/${NODE}`);
  const decisionKeyPrefix = guardKeys(keyPrefix).decision('');
  const isCordonAuthorize = (cmd: RedisCommand): boolean =>
    ((cmd[0] === 'EVALSHA' && cmd[1] === authorize.sha) || (cmd[0] === 'EVAL' && cmd[1] === authorize.source)) && cmd.includes(cooldownKey);
  const pair = useKillPair({ names, dirPrefix: 'nw-tick-kill-guard-', redisHold: isCordonAuthorize });

  it('the survivor carries the decision out once from the outbox (same decision id), nothing recorded twice', async () => {
    const t0 = Date.now();
    await produce(pair.brokers, topics.signals, [unreachable(t0), unreachable(t0 + 1000)]);
    // Events stop here: the rule is due 3 s after the first one, and only a tick fires it.
    const redisProxies = pair.redisProxies;
    const victimIdx = await caughtReplica('a replica stopped at the guard (its cordon authorize held at its Redis proxy)', () => redisProxies.findIndex((p) => p.held.length > 0));
    const killedAt = await killVictim(pair.engines[victimIdx] as EngineChild);
    const survivorIdx = 1 - victimIdx;
    const survivor = pair.engines[survivorIdx] as EngineChild;
    // the decision id the victim's authorize named (its decision key), never written: the kill came first
    const heldCmd = (redisProxies[victimIdx] as RedisFaultProxy).held[0] ?? [];
    const heldDecision = heldCmd.find((a) => a.startsWith(decisionKeyPrefix))?.slice(decisionKeyPrefix.length);
    expect(heldDecision, `decision key in ${JSON.stringify(heldCmd.slice(0, 14))}`).to.be.a('string');
    expect((redisProxies[survivorIdx] as RedisFaultProxy).held, 'the survivor was not held').to.have.length(0);
    (redisProxies[survivorIdx] as RedisFaultProxy).setHold(null);

    await waitFor('the Node cordoned by the survivor', async () => (await nodeState(pair.kube, NODE)).unschedulable || undefined, 120_000, 100);
    const killToCordonMs = Date.now() - killedAt;
    const { raw, folded } = ruleLedger(pair.ledger, TICK_RULE);
    await waitFor('the executed cordon and page in the ledger', () => (raw().some((r) => r.action === 'cordon' && r.outcome === 'executed') && raw().some((r) => r.action === 'page' && r.outcome === 'executed')) || undefined, 30_000, 100);
    await sleep(20_000); // outbox re-derivations (every 15 s): a late duplicate would land now

    const { recs, all } = folded();
    expect(raw().length, `one record per ledger key: ${all}`).to.equal(recs.length);
    const cordons = recs.filter((r) => r.action === 'cordon');
    expect(cordons.map((r) => `${r.target.name} ${r.outcome} ${r.decisionId ?? '?'}`), all).to.deep.equal([`${NODE} executed ${heldDecision}`]);
    expect(await nodeState(pair.kube, NODE)).to.deep.equal({ unschedulable: true, decision: heldDecision });
    const rulePages = recs.filter((r) => r.action === 'page' && !(r.decisionId ?? '').startsWith('incident:'));
    expect(rulePages.map((r) => r.outcome), `rule pages of ${all}`).to.deep.equal(['executed']);
    expect(patchesForwarded(pair, victimIdx, PATCH_NODE), 'PATCHes that reached the apiserver [victim, survivor]').to.deep.equal([0, 1]);

    console.log(
      `      FAULT-FIGURE tick_kill_before_guard fired_after_first_event_ms=${killedAt - t0} kill_to_cordon_ms=${killToCordonMs} ` +
        `ledger=${JSON.stringify(recs.map((r) => `${r.action}/${r.outcome}`))} records=${raw().length} victim_patches_forwarded=0 survivor_patches_forwarded=1`,
    );
    expect((await fetch(`${survivor.url}/readyz`)).status).to.equal(200);
  });
});
