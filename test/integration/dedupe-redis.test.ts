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
    expect(await redis.pttl('dd1:dedupe2:id:e1')).to.be.within(50_000, 60_000);
    expect(await a.states(['e1', 'e2', 'e3', 'nope'])).to.deep.equal(['done', 'done', 'pending', 'none']);
    await b.release(['e3']);
    expect(await a.claim(['e3'])).to.deep.equal(['claimed']);
    expect(await a.claim([])).to.deep.equal([]);
  });

  it('one write per event: a claim and its confirm cost one key per id plus one claim key (ADR 0048)', async () => {
    const d = new RedisDeduper(redis, 'dd4:', { claimTtlMs: 5_000, windowMs: 60_000 });
    const ids = Array.from({ length: 200 }, (_, i) => `w${i}`);
    expect(new Set(await d.claim(ids))).to.deep.equal(new Set(['claimed']));
    await d.confirm(ids);
    expect(await redis.keys('dd4:*')).to.have.length(201);
    expect(new Set(await d.states(ids))).to.deep.equal(new Set(['done']));
    expect(new Set(await new RedisDeduper(redis, 'dd4:', { claimTtlMs: 5_000, windowMs: 60_000 }).claim(ids))).to.deep.equal(new Set(['duplicate']));
  });

  it('confirms or releases part of a claim without touching the rest of it', async () => {
    const a = new RedisDeduper(redis, 'dd5:', { claimTtlMs: 5_000, windowMs: 60_000 });
    const b = new RedisDeduper(redis, 'dd5:', { claimTtlMs: 5_000, windowMs: 60_000 });
    expect(await a.claim(['p1', 'p2', 'p3'])).to.deep.equal(['claimed', 'claimed', 'claimed']);
    await a.confirm(['p1']);
    expect(await a.states(['p1', 'p2', 'p3'])).to.deep.equal(['done', 'pending', 'pending']);
    await a.release(['p2']);
    expect(await b.claim(['p1', 'p2', 'p3'])).to.deep.equal(['duplicate', 'claimed', 'pending']);
    await a.confirm(['p3']);
    await b.confirm(['p2']);
    expect(await a.states(['p1', 'p2', 'p3'])).to.deep.equal(['done', 'done', 'done']);
    // confirming ids never claimed here marks them done too (as before)
    await a.confirm(['q1']);
    expect(await b.claim(['q1'])).to.deep.equal(['duplicate']);
  });

  it('a whole released claim frees all its ids with one key; a claim taken over after its lapse is not undone by the slow first claimer', async () => {
    const a = new RedisDeduper(redis, 'dd6:', { claimTtlMs: 150, windowMs: 60_000 });
    const b = new RedisDeduper(redis, 'dd6:', { claimTtlMs: 5_000, windowMs: 60_000 });
    expect(await a.claim(['r1', 'r2'])).to.deep.equal(['claimed', 'claimed']);
    await a.release(['r1', 'r2']);
    expect(await b.claim(['r1'])).to.deep.equal(['claimed']);
    await b.release(['r1']);
    expect(await a.claim(['s1'])).to.deep.equal(['claimed']);
    await new Promise((r) => setTimeout(r, 300)); // a's claim lapses (a stalled replica)
    expect(await b.claim(['s1'])).to.deep.equal(['claimed']);
    await a.release(['s1']); // the stalled replica gives up: b's claim stays
    expect(await a.states(['s1'])).to.deep.equal(['pending']);
    expect(await a.claim(['s1'])).to.deep.equal(['pending']);
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
