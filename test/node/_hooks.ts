/** Mocha global teardown for the node suite: tear the real node down. */
import { stopSharedNode } from './shared.js';

export async function mochaGlobalTeardown(): Promise<void> {
  await stopSharedNode();
}
