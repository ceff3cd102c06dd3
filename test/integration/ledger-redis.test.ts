/** The Redis stream ledger against a real Redis: XADD with MAXLEN ~, read back by the control API's reader. */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import type { LedgerRecord } from '../../core/decision.js';
import { RedisStreamLedger } from '../../remediations/ledger/redis-stream-ledger.js';
import { RedisLedgerReader } from '../../control/redis-ledger-reader.js';
import { sharedRedis } from './servers.js';

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
    const ledger = new RedisStreamLedger({ redis, keyPrefix: 'ledgertest1:' });
    const reader = new RedisLedgerReader(redis, 'ledgertest1:', 16);
    const all = Array.from({ length: 200 }, (_, i) => rec(i, i % 10 === 0 ? { rule: 'containerd-down' } : {}));
    await ledger.write(all.slice(0, 120));
    await ledger.write(all.slice(120));
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
    for (let b = 0; b < 10; b++) await ledger.write(Array.from({ length: 100 }, (_, i) => rec(b * 100 + i)));
    const len = await redis.xlen(ledger.key);
    expect(len).to.be.at.least(100);
    expect(len).to.be.below(300); // approximate trimming: whole macro nodes
    const newest = await new RedisLedgerReader(redis, 'ledgertest2:').query({ limit: 1 });
    expect(newest[0]!.reason).to.equal('r999');
  });

  it('is idempotent per decision attempt: a redelivered or retried write appends nothing new (one decision, one record)', async () => {
    const ledger = new RedisStreamLedger({ redis, keyPrefix: 'ledgertest3:' });
    const d1 = rec(1, { decisionId: 'd1', outcome: 'failed', guard: null });
    const d1retry = rec(2, { decisionId: 'd1', outcome: 'executed', guard: null, details: { attempt: 2 } });
    const d2 = rec(3, { decisionId: 'd2' });
    const noId = rec(4);
    await ledger.write([d1, d2]);
    await ledger.write([d1, d2]); // a batch redelivered after its commit was lost
    await ledger.write([d1, d1retry, d2, noId]);
    await ledger.write([d1retry, noId]);
    const all = (await new RedisLedgerReader(redis, 'ledgertest3:').query({ limit: 100 })) as LedgerRecord[];
    expect(all.map((r) => `${r.decisionId ?? '-'}:${r.outcome}`).sort()).to.deep.equal(['-:executed', '-:executed', 'd1:executed', 'd1:failed', 'd2:denied']);
    expect(await redis.xlen(ledger.key)).to.equal(5);
  });
});
