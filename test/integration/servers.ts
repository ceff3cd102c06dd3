/**
 * Real servers shared by every integration test of one mocha run: each is
 * started on first use and stopped by the global teardown in `_hooks.ts`.
 * Tests that need exclusive control of a server (stop/kill/restart) start
 * their own through the harness instead.
 */
import { startKafka } from '../harness/kafka.js';
import type { KafkaBroker } from '../harness/kafka.js';
import { startRedis } from '../harness/redis.js';
import type { RedisServer } from '../harness/redis.js';
import { startKube } from '../harness/kube.js';
import type { KubeCluster } from '../harness/kube.js';

let kafka: Promise<KafkaBroker> | undefined;
let redis: Promise<RedisServer> | undefined;
let kube: Promise<KubeCluster> | undefined;

export function sharedKafka(): Promise<KafkaBroker> {
  kafka ??= startKafka();
  return kafka;
}

export function sharedRedis(): Promise<RedisServer> {
  redis ??= startRedis();
  return redis;
}

export function sharedKube(): Promise<KubeCluster> {
  kube ??= startKube();
  return kube;
}

/** Stops whatever was started; failures to start were already reported by the tests. */
export async function stopSharedServers(): Promise<void> {
  const all = [kafka, redis, kube].filter((p): p is Promise<KafkaBroker> | Promise<RedisServer> | Promise<KubeCluster> => p !== undefined);
  kafka = redis = kube = undefined;
  await Promise.all(
    all.map(async (p) => {
      try {
        await (await p).stop();
      } catch {
        // a server that never started has nothing to stop
      }
    }),
  );
}
