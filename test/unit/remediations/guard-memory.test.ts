import { createMemoryGuard, MemoryGuardState } from '../../../remediations/guard/memory-guard.js';
import { guardStoreContract } from '../../contract/guard-store.js';

guardStoreContract('memory', (view, options, clock) => {
  const state = new MemoryGuardState();
  return Promise.resolve({
    guard: createMemoryGuard({ view, options, clock, state }),
    replica: () => createMemoryGuard({ view, options, clock, state }),
  });
});
