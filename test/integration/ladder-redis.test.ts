/**
 * The repair ladder's state on a REAL Redis (the paging DocStore, as the
 * engine runs it): an episode started by one replica is carried on by
 * another, and two replicas ticking the same node at once ask for the next
 * step exactly once (compare-and-set), so a replica's death loses nothing
 * and no step runs twice. A held fault (ADR 0034: the rule matched again
 * while cooling down) taken by the replica that did not open the episode
 * reaches it through Redis and stops the return. A return by one replica
 * ends the isolating rule episode in the shared rule state, so the other
 * replica's engine fires on the next fault (ADR 0034).
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { ManualClock } from '../../core/clock.js';
import type { Decision, LedgerRecord } from '../../core/decision.js';
import type { HeldFault } from '../../core/held-fault.js';
import { silentLogger } from '../../core/logger.js';
import { RedisDocStore } from '../../remediations/incidents/redis-doc-store.js';
import { LadderDriver } from '../../remediations/ladder/driver.js';
import type { LadderPolicy } from '../../remediations/ladder/ladder.js';
import { loadRules, defaultRulesPath } from '../../rules/language/load.js';
import type { EventEnvelope } from '../../core/envelope.js';
import { DEFAULT_CONFIG } from '../../core/config.js';
import { createRuleEngine } from '../../rules/engine/engine.js';
import { createStaticCluster } from '../../rules/replay/standin.js';
import { RedisStateStore } from '../../rules/store/redis-store.js';
import { fileOnlyToggles } from '../../rules/toggles/port.js';
import { sharedRedis } from './servers.js';

const M = 60_000;
const POLICY: LadderPolicy = { act: true, maxAttemptsPerNode: 3, maxAttemptsPerGpu: 2, windowMs: 24 * 60 * M, timeoutMs: { reset: 10 * M, reboot: 30 * M, validate: 30 * M }, quietMs: 30 * M, retryMs: M, validation: true };
const NODE = { name: 'gpu-1', labels: {}, unschedulable: true, ready: true, cordonedByNodewarden: true };

describe('repair ladder state on a real Redis (two replicas)', function () {
  this.timeout(60_000);
  const conns: Redis[] = [];
  after(() => {
    for (const c of conns) c.disconnect();
  });

  /** Two ladder drivers over one Redis (own connections), sharing the remediator's part: every step is executed and names its Job. */
  async function twoReplicas() {
    const url = (await sharedRedis()).url;
    const prefix = `nw-ladder-${randomBytes(3).toString('hex')}:`;
    const clock = new ManualClock(Date.parse('2026-12-01T10:00:00Z'));
    const catalogue = loadRules(defaultRulesPath()).xidCatalogue;
    const submitted: Decision[] = [];
    const submit = (ds: readonly Decision[]): Promise<LedgerRecord[]> => {
      submitted.push(...ds);
      return Promise.resolve(ds.map((d) => ({ ts: new Date(clock.now()).toISOString(), rule: d.rule, action: d.action, target: d.target, outcome: 'executed' as const, reason: d.reason, guard: null, decisionId: d.id, details: { job: `nodewarden/${d.action}-${d.id.length}` } })));
    };
    const replica = (): LadderDriver => {
      const c = new Redis(url, { maxRetriesPerRequest: 2 });
      conns.push(c);
      return new LadderDriver({ store: new RedisDocStore(c, prefix), policy: POLICY, submit, view: { listNodes: () => [NODE], getNode: () => NODE, workloadRevisions: () => [] }, jobs: { status: () => Promise.resolve({ state: 'succeeded' }) }, clock, logger: silentLogger, catalogue, ledger: [], tickEveryMs: 0 });
    };
    return { clock, submitted, a: replica(), b: replica() };
  }

  it('a second replica carries the episode on, and concurrent ticks ask for the next step once', async () => {
    const { clock, submitted, a, b } = await twoReplicas();
    const cordon: Decision = { id: 'd-1', at: clock.now(), rule: 'gpu-xid-fatal', action: 'cordon', target: { kind: 'Node', name: 'gpu-1' }, reason: 'Xid 95', evidence: { xid: { code: 95, message: 'Uncontained', gpu: 'GPU-5f1c0a2b-0000-1111-2222-333344445555' } } };
    await a.observe([cordon], [{ ts: new Date(clock.now()).toISOString(), rule: 'gpu-xid-fatal', action: 'cordon', target: cordon.target, outcome: 'executed', reason: 'Xid 95', guard: null, decisionId: 'd-1' }]);
    expect(submitted.map((d) => d.action)).to.deep.equal(['reset']);
    // replica a dies; b sees the episode in Redis
    expect((await b.episodes()).map((e) => e.phase)).to.deep.equal(['repair']);
    clock.advance(2 * M);
    // both tick at once (a came back): the reset Job succeeded, validation is asked for exactly once
    await Promise.all([a.tick(true), b.tick(true), a.tick(true), b.tick(true)]);
    expect(submitted.map((d) => d.action)).to.deep.equal(['reset', 'validate']);
    clock.advance(2 * M);
    await Promise.all([a.tick(true), b.tick(true)]);
    clock.advance(31 * M);
    await Promise.all([a.tick(true), b.tick(true)]);
    expect(submitted.map((d) => d.action)).to.deep.equal(['reset', 'validate', 'uncordon']);
    expect(await a.episodes()).to.have.length(0);
  });

  it('a held fault during the quiet period, taken by the other replica (and by both at once), escalates once and the node is not returned', async () => {
    const { clock, submitted, a, b } = await twoReplicas();
    await b.tick(true); // b has loaded its (empty) set of open episodes
    const gpu = 'GPU-5f1c0a2b-0000-1111-2222-333344445555';
    const cordon: Decision = { id: 'd-1', at: clock.now(), rule: 'gpu-xid-fatal', action: 'cordon', target: { kind: 'Node', name: 'gpu-1' }, reason: 'Xid 95', evidence: { xid: { code: 95, message: 'Uncontained', gpu } } };
    await a.observe([cordon], [{ ts: new Date(clock.now()).toISOString(), rule: 'gpu-xid-fatal', action: 'cordon', target: cordon.target, outcome: 'executed', reason: 'Xid 95', guard: null, decisionId: 'd-1' }]);
    clock.advance(2 * M);
    await a.tick(true); // reset done → validation
    clock.advance(2 * M);
    await a.tick(true); // validation passed → quiet
    expect((await b.episodes()).map((e) => e.phase)).to.deep.equal(['quiet']);
    await b.tick(true); // b's tick sees the open episode in Redis
    clock.advance(10 * M);
    const fault: HeldFault = { rule: 'gpu-xid-fatal', node: 'gpu-1', gpu, eventId: 'e-2', at: clock.now(), reason: 'gpu.xid Xid 95', xid: { code: 95, message: 'Uncontained', gpu } };
    // the fault's event reaches both replicas' engines (a rebalance): one escalation
    await Promise.all([b.held([fault]), a.held([fault])]);
    expect(submitted.map((d) => d.action)).to.deep.equal(['reset', 'validate', 'reboot']);
    // past the first quiet period's end: nothing is returned; the reboot's own validation and quiet period follow
    clock.advance(25 * M);
    await Promise.all([a.tick(true), b.tick(true)]);
    clock.advance(M);
    await Promise.all([a.tick(true), b.tick(true)]);
    expect(submitted.map((d) => d.action)).to.not.include('uncordon');
    clock.advance(31 * M);
    await Promise.all([a.tick(true), b.tick(true)]);
    expect(submitted.map((d) => d.action)).to.deep.equal(['reset', 'validate', 'reboot', 'validate', 'uncordon']);
  });

  it('back in service ends the isolating rule episode in the shared rule state: the other replica\'s engine fires on the next fault within the cooldown, and a new episode starts', async () => {
    const { clock, submitted, a, b } = await twoReplicas();
    const url = (await sharedRedis()).url;
    const keyPrefix = `nw-rules-${randomBytes(3).toString('hex')}:`;
    const rules = loadRules(defaultRulesPath());
    const engine = (): ReturnType<typeof createRuleEngine> => {
      const c = new Redis(url, { maxRetriesPerRequest: 2 });
      conns.push(c);
      return createRuleEngine({ rules, store: new RedisStateStore({ client: c }), keyPrefix, cluster: createStaticCluster([], []), toggles: fileOnlyToggles, clock, logger: silentLogger, config: DEFAULT_CONFIG });
    };
    const [ea, eb] = [engine(), engine()];
    a.bindRuleEpisodes(ea);
    b.bindRuleEpisodes(eb);
    const gpu = 'GPU-5f1c0a2b-0000-1111-2222-333344445555';
    const xid = (id: string): EventEnvelope => ({ v: 1, id, ts: new Date(clock.now()).toISOString(), node: 'gpu-1', type: 'gpu.xid', source: 'kmsg', labels: {}, data: { code: 95, gpu, message: 'Uncontained ECC error' } });
    const executed = (ds: readonly Decision[]): LedgerRecord[] => ds.map((d) => ({ ts: new Date(clock.now()).toISOString(), rule: d.rule, action: d.action, target: d.target, outcome: 'executed', reason: d.reason, guard: null, decisionId: d.id }));
    const first = await ea.process([xid('x1')]);
    expect(first.map((d) => d.action)).to.deep.equal(['taint', 'page']);
    await a.observe(first, executed(first));
    expect(submitted.map((d) => d.action)).to.deep.equal(['reset']);
    // replica b carries the episode to its return: reset done, validation passed, quiet period over
    for (const m of [2, 2, 31]) {
      clock.advance(m * M);
      await b.tick(true);
    }
    expect(submitted.map((d) => d.action)).to.deep.equal(['reset', 'validate', 'untaint']);
    expect(await a.episodes()).to.have.length(0);
    // 40 m after the first fault, the rule (cooldown 1 h) would still hold it back; replica a's engine fires instead
    clock.advance(M);
    const again = await ea.process([xid('x2')]);
    expect(again.map((d) => d.action)).to.deep.equal(['taint', 'page']);
    await a.observe(again, executed(again));
    const [ep] = await b.episodes();
    expect(ep?.id).to.not.equal(undefined);
    expect(ep?.id).to.not.equal(submitted[0]?.params?.episode);
    expect(submitted.map((d) => d.action)).to.deep.equal(['reset', 'validate', 'untaint', 'reset']);
  });
});
