/** Mocha global teardown for integration runs: stop the shared real servers. */
import { stopSharedServers } from './servers.js';

export async function mochaGlobalTeardown(): Promise<void> {
  await stopSharedServers();
}
