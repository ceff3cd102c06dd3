/**
 * The Redis adapter's batch encoding (pure; the script itself runs against a
 * real redis-server in test/integration/store-contract-redis.test.ts).
 */
import { expect } from 'chai';
import { encodeBatch, idHash } from '../../../rules/store/redis-store.js';
import type { StoreOp } from '../../../rules/store/state-store.js';

describe('Redis state store batch encoding', function () {
  it('sends each key once and names it by its KEYS position; verbatim values as decimal strings', function () {
    const ops: StoreOp[] = [
      { op: 'window.add', key: 'w', member: 'e1', ts: 1500, windowMs: 1000, ttlMs: 60_000.5 },
      { op: 'sustained.observe', key: 's', index: 'si', member: 'n:a', ts: 1500, holds: true, ttlMs: 60_000 },
      { op: 'window.count', key: 'w', now: 2000, windowMs: 1000 },
      { op: 'seen.touch', index: 'si', member: 'n:a', ts: 7, ttlMs: 10 },
    ];
    const { keys, args } = encodeBatch(ops);
    expect(keys).to.deep.equal(['w', 's', 'si']);
    expect(args).to.deep.equal([
      1, 1, 'e1', '1500', '500', '(500', '60001',
      7, 2, 3, 'n:a', '1500', 1, '60000', 15_000,
      2, 1, '(1000', '2000',
      10, 3, 'n:a', '7', '10',
    ]);
  });

  it('encodes a slice of a batch on its own (one script call per slice)', function () {
    const ops: StoreOp[] = [
      { op: 'max.get', key: 'a' },
      { op: 'max.get', key: 'b' },
      { op: 'max.get', key: 'a' },
    ];
    expect(encodeBatch(ops, 1, 3)).to.deep.equal({ keys: ['b', 'a'], args: [18, 1, 18, 2] });
  });

  it('hashes event ids to stable, distinct integers that a double holds exactly', function () {
    const ids = Array.from({ length: 20_000 }, (_, i) => `01JD${i.toString(36).padStart(8, '0')}`);
    const hs = ids.map(idHash);
    for (const h of hs) expect(Number.isSafeInteger(h) && h >= 0).to.equal(true);
    expect(new Set(hs).size).to.equal(ids.length);
    expect(idHash('01JDABC')).to.equal(idHash('01JDABC'));
    expect(idHash('')).to.not.equal(idHash('a'));
  });
});
