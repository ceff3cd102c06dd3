/**
 * Mocha root hooks for the node suite: the global teardown tears the real node
 * down, then arms the leaked-handle check (test/harness/leak-check.ts). The
 * suite runs without mocha's `exit: true`, so a handle still open GRACE_MS
 * after the teardown fails the run, named, instead of holding it (ADR 0038).
 */
import { armLeakCheck, mochaHooks as leakHooks } from '../harness/leak-check.js';
import { stopSharedNode } from './shared.js';

export const mochaHooks = { ...leakHooks };

export async function mochaGlobalTeardown(): Promise<void> {
  try {
    await stopSharedNode();
  } finally {
    armLeakCheck();
  }
}
