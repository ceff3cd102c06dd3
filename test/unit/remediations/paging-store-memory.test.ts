import { ManualClock } from '../../../core/clock.js';
import { MemoryDocStore } from '../../../remediations/incidents/doc-store.js';
import { pagingStoreContract } from '../../contract/paging-store.js';

pagingStoreContract('memory', () => {
  const clock = new ManualClock(Date.parse('2026-11-21T10:00:00Z'));
  const store = new MemoryDocStore(clock);
  return Promise.resolve({
    store,
    replica: () => store,
    clock,
    pass: (ms: number) => {
      clock.advance(ms);
      return Promise.resolve();
    },
  });
});
