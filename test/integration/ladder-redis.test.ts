/**
 * The repair ladder's state on a REAL Redis (the paging DocStore, as the
 * engine runs it): an episode started by one replica is carried on by
 * another, and two replicas ticking the same node at once ask for the next
 * step exactly once (compare-and-set), so a replica's death loses nothing
 * and no step runs twice.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { ManualClock } from '../../core/clock.js';
import type { Decision, LedgerRecord } from '../../core/decision.js';
import { silentLogger } from '../../core/logger.js';
import { RedisDocStore } from '../../remediations/incidents/redis-doc-store.js';
import { LadderDriver } from '../../remediations/ladder/driver.js';
import type { LadderPolicy } from '../../remediations/ladder/ladder.js';
import { loadRules, defaultRulesPath } from '../../rules/language/load.js';
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

  it('a second replica carries the episode on, and concurrent ticks ask for the next step once', async () => {
    const url = (await sharedRedis()).url;
    const prefix = `nw-ladder-${randomBytes(3).toString('hex')}:`;
    const clock = new ManualClock(Date.parse('2026-12-01T10:00:00Z'));
    const catalogue = loadRules(defaultRulesPath()).xidCatalogue;
    const submitted: Decision[] = [];
    // the remediator's part, shared: every step is executed and names its Job
    const submit = (ds: readonly Decision[]): Promise<LedgerRecord[]> => {
      submitted.push(...ds);
      return Promise.resolve(ds.map((d) => ({ ts: new Date(clock.now()).toISOString(), rule: d.rule, action: d.action, target: d.target, outcome: 'executed' as const, reason: d.reason, guard: null, decisionId: d.id, details: { job: `nodewarden/${d.action}-${d.id.length}` } })));
    };
    const replica = (): LadderDriver => {
      const c = new Redis(url, { maxRetriesPerRequest: 2 });
      conns.push(c);
      return new LadderDriver({ store: new RedisDocStore(c, prefix), policy: POLICY, submit, view: { listNodes: () => [NODE], getNode: () => NODE, workloadRevisions: () => [] }, jobs: { status: () => Promise.resolve({ state: 'succeeded' }) }, clock, logger: silentLogger, catalogue, ledger: [], tickEveryMs: 0 });
    };
    const a = replica();
    const b = replica();
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
});
