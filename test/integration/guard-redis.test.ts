/**
 * The guard contract against a REAL Redis (the Lua scripts), plus what only
 * Redis has: script reload after a restart-flushed script cache, key TTLs.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { ManualClock } from '../../core/clock.js';
import { DEFAULT_CONFIG } from '../../core/config.js';
import { createRedisGuard } from '../../remediations/guard/redis-guard.js';
import { guardOptionsFromConfig } from '../../remediations/guard/policy.js';
import { releaseAfterEach } from '../harness/cleanup.js';
import { guardStoreContract } from '../contract/guard-store.js';
import { cordon, FakeCluster } from '../unit/remediations/fake-cluster.js';
import { sharedRedis } from './servers.js';

let redis: Redis | undefined;
let n = 0;

before(async function () {
  this.timeout(60_000);
  const server = await sharedRedis();
  redis = new Redis(server.url, { maxRetriesPerRequest: 2 });
});

after(async () => {
  await redis?.quit();
});

function conn(): Redis {
  if (!redis) throw new Error('redis not started');
  return redis;
}

guardStoreContract('redis', (view, options, clock) => {
  const keyPrefix = `contract${++n}:`;
  const make = () => createRedisGuard({ redis: conn(), keyPrefix, view, options, clock });
  return Promise.resolve({ guard: make(), replica: make });
});

describe('guard redis specifics', () => {
  const release = releaseAfterEach();

  it('keeps working after SCRIPT FLUSH (EVALSHA falls back to EVAL)', async () => {
    const view = FakeCluster.fleet(100, ['a']);
    const clock = new ManualClock(Date.parse('2026-11-21T10:00:00Z'));
    const guard = createRedisGuard({ redis: conn(), keyPrefix: `flush${++n}:`, view, options: guardOptionsFromConfig(DEFAULT_CONFIG), clock });
    expect((await guard.authorize(cordon('gpu-000'))).allowed).to.equal(true);
    await conn().script('FLUSH');
    expect((await guard.authorize(cordon('gpu-001'))).allowed).to.equal(true);
  });

  it('puts TTLs on idempotency, cooldown and rate keys, all under one hash tag', async () => {
    const view = FakeCluster.fleet(100, ['a']);
    const clock = new ManualClock(Date.parse('2026-11-21T10:00:00Z'));
    const keyPrefix = `ttl${++n}:`;
    const guard = createRedisGuard({ redis: conn(), keyPrefix, view, options: guardOptionsFromConfig(DEFAULT_CONFIG), clock });
    const d = cordon('gpu-000', { id: 'ttl-1' });
    const v = await guard.authorize(d);
    await guard.settle(d, v, { ok: true });
    const keys = await conn().keys(`${keyPrefix}*`);
    expect(keys.every((k) => k.startsWith(`${keyPrefix}{guard}:`))).to.equal(true);
    const ttl = async (k: string): Promise<number> => conn().pttl(k);
    expect(await ttl(guard.keys.decision('ttl-1'))).to.be.within(23 * 3_600_000, 24 * 3_600_000);
    expect(await ttl(guard.keys.cooldown('cordon', 'Node/gpu-000'))).to.be.within(9 * 60_000, 10 * 60_000);
    expect(await ttl(guard.keys.rate('cordon'))).to.be.within(9 * 60_000, 10 * 60_000);
    expect(await ttl(guard.keys.reservations)).to.be.within(4 * 60_000, 5 * 60_000);
  });

  it('fails closed with a retriable UNAVAILABLE error when Redis is unreachable', async () => {
    const view = FakeCluster.fleet(10, ['a']);
    const dead = release.track(new Redis('redis://127.0.0.1:1', { maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null }), (r) => r.disconnect());
    dead.on('error', () => undefined);
    const guard = createRedisGuard({ redis: dead, keyPrefix: 'dead:', view, options: guardOptionsFromConfig(DEFAULT_CONFIG), clock: new ManualClock(0) });
    let err: unknown;
    try {
      await guard.authorize(cordon('gpu-000'));
    } catch (e) {
      err = e;
    }
    expect(err).to.include({ code: 'UNAVAILABLE', retriable: true });
  });
});
