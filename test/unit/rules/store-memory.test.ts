import { expect } from 'chai';
import { MemoryStateStore } from '../../../rules/store/memory-store.js';
import { stateStoreContract } from '../../contract/state-store.js';

stateStoreContract('memory', () => Promise.resolve({ store: new MemoryStateStore() }));

describe('MemoryStateStore', function () {
  it('execSync and exec give the same results', async function () {
    const a = new MemoryStateStore();
    const b = new MemoryStateStore();
    const ops = [
      { op: 'window.add' as const, key: 'k', member: 'e1', ts: 10, windowMs: 100, ttlMs: 1000 },
      { op: 'window.add' as const, key: 'k', member: 'e2', ts: 20, windowMs: 100, ttlMs: 1000 },
    ];
    expect(a.execSync(ops)).to.deep.equal(await b.exec(ops));
  });

  it('expires keys by op time so state of vanished scopes does not grow without bound', function () {
    const s = new MemoryStateStore();
    for (let i = 0; i < 1000; i++) s.execSync([{ op: 'window.add', key: `k${i}`, member: 'e', ts: i, windowMs: 10, ttlMs: 100 }]);
    expect(s.size()).to.equal(1000);
    // a later op moves the horizon past every TTL but its own
    s.execSync([{ op: 'window.add', key: 'live', member: 'e', ts: 10_000, windowMs: 10, ttlMs: 100 }]);
    s.sweep();
    expect(s.size()).to.equal(1);
  });

  it('sweeps by itself after many ops', function () {
    const s = new MemoryStateStore();
    for (let i = 0; i < 70_000; i++) s.execSync([{ op: 'window.add', key: `k${i}`, member: 'e', ts: i * 10, windowMs: 10, ttlMs: 100 }]);
    expect(s.size()).to.be.below(10_000);
  });
});
