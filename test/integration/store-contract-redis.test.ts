/**
 * The StateStore contract against a REAL redis-server (test/harness/redis.ts),
 * plus what only Redis has: Lua scripts reloaded after a server restart
 * (NOSCRIPT), and atomic episode firing under concurrent clients (two engine
 * replicas never both fire).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { startRedis } from '../harness/redis.js';
import type { RedisServer } from '../harness/redis.js';
import { RedisStateStore } from '../../rules/store/redis-store.js';
import { StoreKeys } from '../../rules/store/keys.js';
import { stateStoreContract } from '../contract/state-store.js';
import { packageRoot } from '../../core/paths.js';
import { loadRuleTestFile, runRuleTestCase } from '../../rules/testing/run-rule-tests.js';

let server: RedisServer | undefined;
const clients: Redis[] = [];

function client(): Redis {
  if (!server) throw new Error('redis-server not started');
  const c = new Redis(server.url, { lazyConnect: false, maxRetriesPerRequest: 3 });
  clients.push(c);
  return c;
}

describe('Redis state store (real redis-server)', function () {
  this.timeout(60_000);
  before(async function () {
    server = await startRedis();
  });
  after(async function () {
    for (const c of clients) c.disconnect();
    await server?.stop();
  });

  stateStoreContract('redis', () => {
    const c = client();
    return Promise.resolve({
      store: new RedisStateStore({ client: c }),
      ttlOf: async (key: string) => {
        const t = await c.pttl(key);
        return t < 0 ? null : t;
      },
      cleanup: async () => {
        await c.flushdb();
      },
    });
  });

  it('only one of many concurrent replicas fires the same episode', async function () {
    const keys = new StoreKeys('race:');
    const stores = Array.from({ length: 8 }, () => new RedisStateStore({ client: client() }));
    const results = await Promise.all(
      stores.map((s) =>
        s.exec([{ op: 'episode.fire', key: keys.episode('r', 'n:a'), index: keys.episodeIndex('r'), member: 'n:a', now: 1000, cooldownMs: 60_000, autoExpireMs: -1, ttlMs: 60_000 }]),
      ),
    );
    expect(results.filter((r) => r[0] === 1000)).to.have.length(1);
  });

  it('reloads its scripts after a server restart (NOSCRIPT)', async function () {
    const c = client();
    const s = new RedisStateStore({ client: c });
    const key = 'restart:w';
    expect(await s.exec([{ op: 'window.add', key, member: 'a', ts: 1, windowMs: 100, ttlMs: 10_000 }])).to.deep.equal([1]);
    await server!.restart();
    // ioredis reconnects; the script cache is empty on the new server
    await new Promise((r) => setTimeout(r, 300));
    expect(await s.exec([{ op: 'window.add', key, member: 'b', ts: 2, windowMs: 100, ttlMs: 10_000 }])).to.deep.equal([1]);
  });
});

describe('engine on the Redis store gives the same ledgers as on the memory store', function () {
  this.timeout(120_000);
  let srv: RedisServer | undefined;
  let c: Redis | undefined;
  before(async function () {
    srv = await startRedis();
    c = new Redis(srv.url);
  });
  after(async function () {
    c?.disconnect();
    await srv?.stop();
  });
  const dir = join(packageRoot(), 'test', 'rules');
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.yaml')).sort()) {
    it(`every case of test/rules/${f}`, async function () {
      for (const tc of loadRuleTestFile(join(dir, f))) {
        await c!.flushdb();
        const mem = await runRuleTestCase(tc);
        const red = await runRuleTestCase(tc, { store: new RedisStateStore({ client: c! }) });
        expect(red.records, tc.name).to.deep.equal(mem.records);
        expect(red.ok, `${tc.name}\n${red.diff.join('\n')}`).to.equal(true);
      }
    });
  }
});
