/**
 * Runtime toggles on a REAL Redis: a change made through one replica's
 * toggles is honoured by another within one second, and a toggle with a TTL
 * expires by itself (gone from every cache and from Redis).
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { systemClock } from '../../core/clock.js';
import { silentLogger } from '../../core/logger.js';
import { RedisRuleToggles } from '../../rules/toggles/redis-toggles.js';
import { toggleKeys } from '../../adapters/redis/keys.js';
import { sharedRedis } from './servers.js';

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now() - t0;
}

describe('toggles: Redis adapter across replicas (real Redis)', function () {
  this.timeout(60_000);
  const prefix = `nwtest:${process.pid}:toggles:`;
  let a: RedisRuleToggles;
  let b: RedisRuleToggles;
  let ra: Redis;
  let rb: Redis;

  before(async () => {
    const server = await sharedRedis();
    ra = new Redis(server.url);
    rb = new Redis(server.url);
    a = new RedisRuleToggles({ redis: ra, keyPrefix: prefix, clock: systemClock, logger: silentLogger });
    b = new RedisRuleToggles({ redis: rb, keyPrefix: prefix, clock: systemClock, logger: silentLogger });
    await a.start();
    await b.start();
  });

  after(async () => {
    await a?.close();
    await b?.close();
    ra?.disconnect();
    rb?.disconnect();
  });

  it('a disable on one replica is honoured by the other within one second', async () => {
    expect(b.isEnabled('gpu-xid-fatal', true, Date.now())).to.equal(true);
    const now = Date.now();
    await a.set({ rule: 'gpu-xid-fatal', enabled: false, reason: 'fw rollout', by: 'alice', at: now, expiresAt: null });
    expect(a.isEnabled('gpu-xid-fatal', true, Date.now())).to.equal(false);
    const ms = await waitFor(() => !b.isEnabled('gpu-xid-fatal', true, Date.now()), 1000);
    console.log(`      replica B saw the change after ${ms} ms`);
    expect(b.list(Date.now())).to.have.length(1);
    expect(b.list(Date.now())[0]).to.deep.include({ rule: 'gpu-xid-fatal', enabled: false, reason: 'fw rollout', by: 'alice' });
    await a.clear('gpu-xid-fatal');
    await waitFor(() => b.isEnabled('gpu-xid-fatal', true, Date.now()), 1000);
  });

  it('the poll catches a change written without a pub/sub message (safety net)', async () => {
    // Written straight into the hash, as if the message had been lost across a reconnect.
    const t = { rule: 'conntrack-full', enabled: false, reason: 'x', by: 'bob', at: Date.now(), expiresAt: null };
    await ra.hset(toggleKeys(prefix).hash, t.rule, JSON.stringify(t));
    const ms = await waitFor(() => !b.isEnabled('conntrack-full', true, Date.now()), 1000);
    console.log(`      poll picked the change up after ${ms} ms`);
    await a.clear('conntrack-full');
  });

  it('a toggle with a TTL expires by itself on every replica and dropExpired (the expire-toggles job) removes it from Redis, once', async () => {
    const now = Date.now();
    await a.set({ rule: 'kubeproxy-restarts', enabled: false, reason: 'upgrade', by: 'alice', at: now, expiresAt: now + 1500 });
    await waitFor(() => !b.isEnabled('kubeproxy-restarts', true, Date.now()), 1000);
    await waitFor(() => a.isEnabled('kubeproxy-restarts', true, Date.now()) && b.isEnabled('kubeproxy-restarts', true, Date.now()), 3000);
    expect(Date.now()).to.be.at.least(now + 1500);
    expect(b.list(Date.now())).to.deep.equal([]);
    expect(await ra.hlen(toggleKeys(prefix).hash), 'only the job prunes').to.equal(1);
    expect(await b.dropExpired(now + 1499), 'not yet expired at that time').to.equal(0);
    expect(await b.dropExpired(Date.now())).to.equal(1);
    expect(await ra.hlen(toggleKeys(prefix).hash)).to.equal(0);
    expect(await a.dropExpired(Date.now())).to.equal(0);
  });
});
