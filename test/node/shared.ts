/**
 * One real node cluster (test/harness/node-cluster.ts) shared by every test
 * of a `npm run test:node` run, started on first use and stopped by the
 * global teardown in `_hooks.ts`: starting a node costs ~1 minute.
 */
import { startNodeCluster, type NodeCluster } from '../harness/node-cluster.js';

let node: Promise<NodeCluster> | undefined;

export const POOL = 'gpu-test';

export function sharedNode(): Promise<NodeCluster> {
  node ??= startNodeCluster({ nodeLabels: { 'nodewarden.io/pool': POOL } });
  return node;
}

export async function stopSharedNode(): Promise<void> {
  const p = node;
  node = undefined;
  if (p === undefined) return;
  try {
    await (await p).stop();
  } catch {
    // a cluster that never started has nothing to stop
  }
}
