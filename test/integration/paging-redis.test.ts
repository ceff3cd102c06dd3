/**
 * The paging-state contract against a REAL Redis (cas-write.lua): the same
 * suite as memory, with two store objects on two connections as two engine
 * replicas; plus the Redis specifics (script reload, one hash tag).
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { ManualClock } from '../../core/clock.js';
import { RedisDocStore } from '../../remediations/incidents/redis-doc-store.js';
import { pagingStoreContract } from '../contract/paging-store.js';
import { sharedRedis } from './servers.js';

const conns: Redis[] = [];
let url = '';
let n = 0;

before(async function () {
  this.timeout(60_000);
  url = (await sharedRedis()).url;
});

after(() => {
  for (const c of conns) c.disconnect();
});

function conn(): Redis {
  const c = new Redis(url, { maxRetriesPerRequest: 2 });
  conns.push(c);
  return c;
}

pagingStoreContract('redis', () => {
  const prefix = `paging${++n}:`;
  const clock = new ManualClock(Date.parse('2026-11-21T10:00:00Z'));
  return Promise.resolve({
    store: new RedisDocStore(conn(), prefix),
    replica: () => new RedisDocStore(conn(), prefix),
    clock,
    pass: async (ms: number) => {
      clock.advance(ms);
      await new Promise((r) => setTimeout(r, Math.min(ms, 500)));
    },
  });
});

describe('paging redis specifics', () => {
  it('keeps working after SCRIPT FLUSH, and keeps every key under the {paging} hash tag', async () => {
    const c = conn();
    const prefix = `pagingflush${++n}:`;
    const s = new RedisDocStore(c, prefix);
    expect(await s.write('incident', 'k', { a: 1 }, 0)).to.equal(1);
    await c.script('FLUSH');
    expect(await s.write('incident', 'k', { a: 2 }, 1)).to.equal(2);
    await s.claimOnce('pd-webhook', 'evt', 60_000);
    const keys = await c.keys(`${prefix}*`);
    expect(keys.length).to.equal(3);
    expect(keys.every((k) => k.startsWith(`${prefix}{paging}:`))).to.equal(true);
  });
});
