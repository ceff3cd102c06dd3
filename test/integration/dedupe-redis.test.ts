/** The Redis event-id deduper against a real redis-server: claim / pending / done / release / lapse. */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { releaseAfterEach } from '../harness/cleanup.js';
import { RedisDeduper } from '../../rules/service/dedupe.js';
import { sharedRedis } from './servers.js';

describe('RedisDeduper (real Redis)', () => {
  let redis: Redis;
  before(async () => {
    redis = new Redis((await sharedRedis()).url);
  });
  after(() => redis.disconnect());

  it('claims new ids once, reports other claims as pending and confirmed ones as duplicates', async () => {
    const a = new RedisDeduper(redis, 'dd1:', { claimTtlMs: 5_000, windowMs: 60_000 });
    const b = new RedisDeduper(redis, 'dd1:', { claimTtlMs: 5_000, windowMs: 60_000 });
    expect(await a.claim(['e1', 'e2', 'e1'])).to.deep.equal(['claimed', 'claimed', 'pending']);
    expect(await b.claim(['e1', 'e3'])).to.deep.equal(['pending', 'claimed']);
    await a.confirm(['e1', 'e2']);
    expect(await b.claim(['e1', 'e2'])).to.deep.equal(['duplicate', 'duplicate']);
    expect(await redis.pttl('dd1:dedupe:e1')).to.be.within(50_000, 60_000);
    await b.release(['e3']);
    expect(await a.claim(['e3'])).to.deep.equal(['claimed']);
    expect(await a.claim([])).to.deep.equal([]);
  });

  it('an unconfirmed claim lapses by itself (a dead replica frees its events)', async () => {
    const d = new RedisDeduper(redis, 'dd2:', { claimTtlMs: 150, windowMs: 60_000 });
    expect(await d.claim(['x'])).to.deep.equal(['claimed']);
    await new Promise((r) => setTimeout(r, 300));
    expect(await d.claim(['x'])).to.deep.equal(['claimed']);
  });

  const release = releaseAfterEach();

  it('reports Redis trouble as a retriable error', async () => {
    const broken = release.track(new Redis({ port: 1, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false }), (r) => r.disconnect());
    const d = new RedisDeduper(broken, 'dd3:', { claimTtlMs: 1000, windowMs: 1000 });
    let err: unknown;
    try {
      await d.claim(['y']);
    } catch (e) {
      err = e;
    }
    expect(err).to.have.property('retriable', true);
  });
});
