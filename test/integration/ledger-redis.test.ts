/** The Redis stream ledger against a real Redis: XADD with MAXLEN ~, read back by its query (the control API's). */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import type { LedgerRecord } from '../../core/decision.js';
import type { LedgerEntry } from '../../remediations/ledger/entry.js';
import { RedisStreamLedger } from '../../remediations/ledger/redis-stream-ledger.js';
import { ledgerStoreContract } from '../contract/ledger-store.js';
import { sharedRedis } from './servers.js';

describe('ledger: Redis stream as a ledger store', function () {
  this.timeout(60_000);
  let redis: Redis | undefined;
  let n = 0;
  after(async () => {
    await redis?.quit();
  });
  ledgerStoreContract(
    'Redis stream',
    async () => {
      redis ??= new Redis((await sharedRedis()).url);
      const r = redis;
      // a small page size: queries page back through the stream
      const store = new RedisStreamLedger({ redis: r, keyPrefix: `ledgercontract-${process.pid}-${++n}:`, pageSize: 7 });
      return {
        writer: store,
        store,
        // what any reader of the stream sees, in append order; the wire format: one field, `rec` for a decision, `audit` for an audit
        readBack: async () =>
          (await r.xrange(store.key, '-', '+')).map(([id, fields]) => {
            const [field, json] = fields;
            const e = JSON.parse(json ?? 'null') as LedgerEntry;
            expect([fields.length, field], `stream entry ${id}`).to.deep.equal([2, 'kind' in e ? 'audit' : 'rec']);
            return e;
          }),
        close: () => Promise.resolve(),
      };
    },
    { queries: true },
  );
});

const at = (s: number): string => new Date(Date.parse('2026-11-21T10:00:00Z') + s * 1000).toISOString();
const rec = (s: number, over: Partial<LedgerRecord> = {}): LedgerRecord => ({
  ts: at(s),
  rule: 'gpu-xid-fatal',
  action: 'cordon',
  target: { kind: 'Node', name: `gpu-${s % 7}` },
  outcome: s % 3 === 0 ? 'denied' : 'executed',
  reason: `r${s}`,
  guard: s % 3 === 0 ? 'maxUnavailable' : null,
  ...over,
});

describe('ledger: Redis stream', function () {
  this.timeout(60_000);
  let redis: Redis;
  before(async () => {
    redis = new Redis((await sharedRedis()).url);
  });
  after(async () => {
    await redis.quit();
  });

  it('appends records and queries them by time, rule, node and outcome, newest first, across pages', async () => {
    const ledger = new RedisStreamLedger({ redis, keyPrefix: 'ledgertest1:', pageSize: 16 });
    const reader = ledger;
    const all = Array.from({ length: 200 }, (_, i) => rec(i, i % 10 === 0 ? { rule: 'containerd-down' } : {}));
    await ledger.append(all.slice(0, 120));
    await ledger.append(all.slice(120));
    expect(await redis.xlen(ledger.key)).to.equal(200);
    const q1 = await reader.query({ node: 'gpu-3', outcome: 'denied', limit: 1000 });
    expect(q1.map((r) => r.reason)).to.deep.equal(all.filter((r) => r.target.name === 'gpu-3' && r.outcome === 'denied').reverse().map((r) => r.reason));
    const q2 = await reader.query({ rule: 'containerd-down', since: Date.parse(at(50)), until: Date.parse(at(151)), limit: 100 });
    expect(q2.map((r) => r.reason)).to.deep.equal(['r150', 'r140', 'r130', 'r120', 'r110', 'r100', 'r90', 'r80', 'r70', 'r60', 'r50']);
    const q3 = await reader.query({ limit: 3 });
    expect(q3.map((r) => r.reason)).to.deep.equal(['r199', 'r198', 'r197']);
    expect(q3[0]).to.deep.equal(all[199]);
  });

  it('bounds the stream with MAXLEN ~', async () => {
    const ledger = new RedisStreamLedger({ redis, keyPrefix: 'ledgertest2:', maxLen: 100 });
    for (let b = 0; b < 10; b++) await ledger.append(Array.from({ length: 100 }, (_, i) => rec(b * 100 + i)));
    const len = await redis.xlen(ledger.key);
    expect(len).to.be.at.least(100);
    expect(len).to.be.below(300); // approximate trimming: whole macro nodes
    const newest = await ledger.query({ limit: 1 });
    expect(newest[0]!.reason).to.equal('r999');
  });

  it('is idempotent per decision attempt: a redelivered or retried write appends nothing new (one decision, one record)', async () => {
    const ledger = new RedisStreamLedger({ redis, keyPrefix: 'ledgertest3:' });
    const d1 = rec(1, { decisionId: 'd1', outcome: 'failed', guard: null });
    const d1retry = rec(2, { decisionId: 'd1', outcome: 'executed', guard: null, details: { attempt: 2 } });
    const d2 = rec(3, { decisionId: 'd2' });
    const noId = rec(4);
    await ledger.append([d1, d2]);
    await ledger.append([d1, d2]); // a batch redelivered after its commit was lost
    await ledger.append([d1, d1retry, d2, noId]);
    await ledger.append([d1retry, noId]);
    const all = (await ledger.query({ limit: 100 })) as LedgerRecord[];
    expect(all.map((r) => `${r.decisionId ?? '-'}:${r.outcome}`).sort()).to.deep.equal(['-:executed', '-:executed', 'd1:executed', 'd1:failed', 'd2:denied']);
    expect(await redis.xlen(ledger.key)).to.equal(5);
  });
});
