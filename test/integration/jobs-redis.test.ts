/**
 * The jobs' Redis parts against a real Redis: leases and slot election across
 * two schedulers (two connections, as two replicas), the guard reservation
 * pruner, the trimmers, and expire-toggles over the Redis toggles, audit sink
 * and ledger stream.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { ManualClock, systemClock } from '../../core/clock.js';
import { DEFAULT_CONFIG } from '../../core/config.js';
import type { Decision, LedgerRecord } from '../../core/decision.js';
import { MemoryLogger, silentLogger } from '../../core/logger.js';
import { createRegistry } from '../../adapters/metrics.js';
import { expireTogglesJob, EXPIRY_BY } from '../../jobs/expire-toggles.js';
import { RedisJobState } from '../../jobs/job-state.js';
import type { JobContext } from '../../jobs/job.js';
import { RedisJobLock } from '../../jobs/redis-lock.js';
import { JobScheduler } from '../../jobs/scheduler.js';
import type { CronPort } from '../../jobs/scheduler.js';
import { ledgerTrimmer } from '../../jobs/trim-state.js';
import { createRedisGuard } from '../../remediations/guard/redis-guard.js';
import { guardOptionsFromConfig } from '../../remediations/guard/policy.js';
import { isAudit } from '../../remediations/ledger/entry.js';
import { RedisStreamLedger } from '../../remediations/ledger/redis-stream-ledger.js';
import { createSimulatedCluster, loadClusterFile } from '../../remediations/simulated/index.js';
import { StoreKeys } from '../../adapters/redis/keys.js';
import { RedisStateStore } from '../../rules/store/redis-store.js';
import { RedisRuleToggles } from '../../rules/toggles/redis-toggles.js';
import { toggleKeys } from '../../adapters/redis/keys.js';
import { ToggleService } from '../../rules/toggles/toggle-service.js';
import { CLUSTER_FILE } from './engine-support.js';
import { sharedRedis } from './servers.js';

const noCron: CronPort = { validate: () => null, schedule: () => ({ stop: () => undefined }) };
const ctx = (now: number): JobContext => ({ signal: new AbortController().signal, now, scheduledAt: now, logger: new MemoryLogger() });
let seq = 0;
const uniquePrefix = (tag: string): string => `jobs-${tag}-${process.pid}-${Date.now().toString(36)}-${seq++}:`;

describe('jobs: Redis leases, pruning, trimming and toggle expiry', function () {
  this.timeout(60_000);
  let url: string;
  const conns: Redis[] = [];
  const conn = (): Redis => {
    const r = new Redis(url);
    conns.push(r);
    return r;
  };
  before(async () => {
    url = (await sharedRedis()).url;
  });
  after(async () => {
    await Promise.all(conns.map((c) => c.quit()));
  });

  it('two replicas firing the same slots: each slot runs exactly once, and runs never overlap across replicas', async () => {
    const prefix = uniquePrefix('elect');
    let running = 0;
    let maxConcurrent = 0;
    const ranBy: string[] = [];
    const mk = (who: string) => {
      const s = new JobScheduler({ lock: new RedisJobLock(conn(), prefix, who), cron: noCron, clock: systemClock, logger: silentLogger, registry: createRegistry(who), timezone: 'UTC' });
      s.register({
        job: {
          name: 'trim-state',
          scope: 'cluster',
          run: async () => {
            running++;
            maxConcurrent = Math.max(maxConcurrent, running);
            ranBy.push(who);
            await new Promise((r) => setTimeout(r, 15));
            running--;
            return undefined;
          },
        },
        schedule: '* * * * *',
        timeoutMs: 5000,
      });
      return s;
    };
    const a = mk('replica-a');
    const b = mk('replica-b');
    const slot0 = Date.parse('2026-11-21T09:00:00Z');
    const results: string[] = [];
    for (let i = 0; i < 20; i++) {
      const slot = slot0 + i * 60_000;
      const [ra, rb] = await Promise.all([a.runNow('trim-state', slot), b.runNow('trim-state', slot + 250)]);
      results.push(ra.result, rb.result);
      expect([ra.result, rb.result].filter((r) => r === 'success'), `slot ${i}: ${ra.result}/${rb.result}`).to.have.length(1);
    }
    expect(ranBy).to.have.length(20);
    expect(maxConcurrent).to.equal(1);
    expect(results.filter((r) => r === 'not_elected')).to.have.length(20);
  });

  it('a held lease makes another replica skip its slot as overlap; release only by the holder', async () => {
    const prefix = uniquePrefix('lease');
    const redis = conn();
    const lockA = new RedisJobLock(redis, prefix, 'a');
    const lockB = new RedisJobLock(conn(), prefix, 'b');
    const token = await lockA.tryRun('trim-state', 10_000);
    expect(token).to.be.a('string');
    expect(await lockB.tryRun('trim-state', 10_000)).to.equal(null);
    await lockB.release('trim-state', 'b:not-the-token');
    expect(await redis.get(lockA.keys.running('trim-state'))).to.equal(token);
    const pttl = await redis.pttl(lockA.keys.running('trim-state'));
    expect(pttl).to.be.within(1, 10_000);
    await lockA.release('trim-state', token as string);
    expect(await redis.exists(lockA.keys.running('trim-state'))).to.equal(0);
    expect(await lockB.claimSlot('trim-state', 1000, 5000)).to.equal(true);
    expect(await lockA.claimSlot('trim-state', 1000, 5000)).to.equal(false);
  });

  it('releases expired and orphaned cordon reservations of the Redis guard, keeping one rewritten meanwhile', async () => {
    const prefix = uniquePrefix('res');
    const redis = conn();
    const clock = new ManualClock(Date.parse('2026-11-21T10:00:00Z'));
    const cluster = createSimulatedCluster(await loadClusterFile(CLUSTER_FILE), { clock, logger: silentLogger });
    const nodes = cluster.listNodes().map((n) => n.name);
    const guard = createRedisGuard({ redis, keyPrefix: prefix, view: cluster, options: guardOptionsFromConfig(DEFAULT_CONFIG, { reservationHoldMs: 60_000, targetCooldownMs: 0 }), clock });
    const decision = (node: string): Decision => ({ id: `d-${node}`, at: clock.now(), rule: 'gpu-xid-fatal', action: 'cordon', target: { kind: 'Node', name: node }, reason: 'test' });
    // fleet-100: 3 of 100 nodes already unavailable, budget 5 % = 5: two cordons fit
    for (const n of nodes.slice(0, 2)) expect((await guard.authorize(decision(n))).allowed).to.equal(true);
    expect(await redis.hlen(guard.keys.reservations)).to.equal(2);
    // an orphan: a reservation of a node the cluster does not have
    await redis.hset(guard.keys.reservations, 'gpu-node-gone', JSON.stringify({ id: 'x', scopes: ['fleet'], exp: clock.now() + 60_000 }));
    const n0 = nodes[0] as string;
    const n1 = nodes[1] as string;
    // past the hold: both expired; n1 is re-reserved between the read and the delete
    clock.advance(61_000);
    const fresh = JSON.stringify({ id: 'new', scopes: ['fleet'], exp: clock.now() + 60_000 });
    const released = await guard.pruneReservations((r) => {
      if (r.node === n1) void redis.hset(guard.keys.reservations, n1, fresh);
      return r.exp <= clock.now() || cluster.getNode(r.node) === undefined;
    });
    expect(released).to.equal(2);
    expect(await redis.hgetall(guard.keys.reservations)).to.deep.equal({ [n1]: fresh });
    expect(await redis.hexists(guard.keys.reservations, n0)).to.equal(0);
  });

  it('trims the ledger stream to exactly MAXLEN and by age', async () => {
    const prefix = uniquePrefix('trim');
    const redis = conn();
    const ledger = new RedisStreamLedger({ redis, keyPrefix: prefix });
    const now = Date.now();
    // 300 old entries (ids forced into the past), then 500 recent ones
    for (let i = 0; i < 300; i++) await redis.xadd(ledger.key, `${now - 40 * 86_400_000 + i}-0`, 'rec', '{}');
    const rec: LedgerRecord = { ts: new Date(now).toISOString(), rule: 'r', action: 'page', target: { kind: 'Node', name: 'n' }, outcome: 'executed', reason: 'x', guard: null };
    await ledger.append(Array.from({ length: 500 }, () => rec));
    const byAge = await ledgerTrimmer(ledger, { maxLen: 10_000, maxAgeMs: 30 * 86_400_000 }).trim(now, new AbortController().signal);
    expect(byAge).to.equal(300);
    expect(await redis.xlen(ledger.key)).to.equal(500);
    const byLen = await ledgerTrimmer(ledger, { maxLen: 400, maxAgeMs: 30 * 86_400_000 }).trim(now, new AbortController().signal);
    expect(byLen).to.equal(100);
    expect(await redis.xlen(ledger.key)).to.equal(400);
  });

  it('removes episode-index members whose episode expired, keeping active ones', async () => {
    const prefix = uniquePrefix('ep');
    const redis = conn();
    const store = new RedisStateStore({ client: redis });
    const keys = new StoreKeys(prefix);
    const rule = 'containerd-unresponsive';
    const fire = (scope: string, ttlMs: number) => ({ op: 'episode.fire' as const, key: keys.episode(rule, scope), index: keys.episodeIndex(rule), member: scope, now: Date.now(), by: 'e1', cooldownMs: 0, autoExpireMs: -1, ttlMs });
    await store.exec([fire('n:gpu-1', 150), fire('n:gpu-2', 150), fire('n:gpu-3', 600_000)]);
    await new Promise((r) => setTimeout(r, 300));
    // the index outlives the expired episodes (its TTL is refreshed by the newest one)
    expect(await redis.zcard(keys.episodeIndex(rule))).to.equal(3);
    const removed = await store.trim({ keys, rules: [rule, 'rule-without-index'], signal: new AbortController().signal }, 1);
    expect(removed).to.equal(2);
    expect(await redis.zrange(keys.episodeIndex(rule), '0', '-1')).to.deep.equal(['n:gpu-3']);
  });

  it('expire-toggles: an expired Redis toggle is dropped and its expiry recorded once in the ledger stream', async () => {
    const prefix = uniquePrefix('tog');
    const redis = conn();
    const toggles = new RedisRuleToggles({ redis, keyPrefix: prefix, clock: systemClock, logger: silentLogger, pollMs: 60_000 });
    const audit = new RedisStreamLedger({ redis, keyPrefix: prefix });
    const service = new ToggleService(toggles, audit, systemClock);
    await service.disable({ rule: 'gpu-xid-fatal', reason: 'driver upgrade', by: 'alice', ttlMs: 500 });
    await service.disable({ rule: 'conntrack-dropping', reason: 'noisy', by: 'bob', ttlMs: null });
    const job = expireTogglesJob({ ledger: audit, audit, toggles, state: new RedisJobState(redis, prefix) });
    expect(await job.run(ctx(Date.now()))).to.deep.include({ expired: 0, dropped: 0 });
    await new Promise((r) => setTimeout(r, 700));
    expect(await job.run(ctx(Date.now()))).to.deep.include({ expired: 1, dropped: 1 });
    expect(Object.keys(await redis.hgetall(toggleKeys(prefix).hash))).to.deep.equal(['conntrack-dropping']);
    expect(await job.run(ctx(Date.now() + 60_000))).to.deep.include({ expired: 0 });
    const entries = await audit.query({ limit: 100 });
    const expiries = entries.filter((e) => isAudit(e) && e.by === EXPIRY_BY);
    expect(expiries).to.have.length(1);
    expect(expiries[0]).to.deep.include({ rule: 'gpu-xid-fatal', enabled: null });
    expect(await redis.exists(new RedisJobState(redis, prefix).keys.state('expire-toggles'))).to.equal(1);
    await toggles.close();
  });
});
