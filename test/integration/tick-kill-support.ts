/**
 * What the tick-kill tests share: a test rule only a tick fires (containerd
 * unreachable sustained for 3 s → cordon + page), its events, a kubeconfig
 * through a fault proxy, and the Node's state as the apiserver has it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FaultProxy } from '../harness/fault-proxy.js';
import type { KubeCluster } from '../harness/kube.js';
import { NW } from '../../core/cluster.js';
import type { LedgerRecord } from '../../core/decision.js';
import { uniqueTopics } from './engine-support.js';
import { sharedKafka, sharedKube, sharedRedis } from './servers.js';

export const TICK_RULE = 'containerd-unhealthy-3s';
const TICK_RULES_YAML = `apiVersion: nodewarden.io/v1
kind: RuleSet
rules:
  - id: ${TICK_RULE}
    description: containerd unreachable for 3s (tick-kill test)
    severity: critical
    match:
      type: runtime.containerd
    scope: node
    condition:
      sustained:
        for: 3s
        while:
          data.state: { in: [unreachable, timeout] }
    cooldown: 10m
    summary: "containerd on {{node}} unreachable for {{window}}"
    actions:
      - type: cordon
      - type: page
        severity: critical
        dedupKey: "nodewarden/${TICK_RULE}/{{node}}"
`;

export type LedgerRec = Pick<LedgerRecord, 'rule' | 'action' | 'outcome' | 'guard' | 'decisionId' | 'target' | 'details'>;

/** `containerd unreachable` events of one node, ids `<tag>-<n>`. */
export function unreachableEvents(node: string, tag: string): (ts: number) => { key: string; value: Record<string, unknown> } {
  let seq = 0;
  return (ts) => ({
    key: node,
    value: { v: 1, id: `${tag}-${seq++}`, ts: new Date(ts).toISOString(), node, type: 'runtime.containerd', source: 'cri', labels: { pool: 'h100-train', zone: 'us-west-2a' }, data: { state: 'unreachable', latencyMs: null, runtimeReady: null, networkReady: null } },
  });
}

export function kubeconfigVia(dir: string, name: string, proxy: FaultProxy, token: string): string {
  const path = join(dir, `${name}.kubeconfig`);
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      // Plain HTTP to the proxy; the client library wants the skip flag to allow it.
      clusters: [{ name, cluster: { server: proxy.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'admin', user: { token } }],
      contexts: [{ name, context: { cluster: name, user: 'admin' } }],
      'current-context': name,
    }),
  );
  return path;
}

/** A fresh test Node in the rule's pool (no kubelet: NotReady, so the tests open the budget). */
async function createTestNode(kube: KubeCluster, node: string): Promise<void> {
  const res = await kube.kubectl(['apply', '-f', '-'], { input: `apiVersion: v1\nkind: Node\nmetadata:\n  name: ${node}\n  labels:\n    nodewarden.io/pool: h100-train\n    topology.kubernetes.io/zone: us-west-2a\n` });
  if (res.code !== 0) throw new Error(`creating node: ${res.stderr}`);
}

/** Whether the Node is cordoned, and the decision id nodewarden annotated it with. */
export async function nodeState(kube: KubeCluster, node: string): Promise<{ unschedulable: boolean; decision: string | undefined }> {
  const got = await kube.kubectl(['get', 'node', node, '-o', 'json']);
  if (got.code !== 0) throw new Error(got.stderr);
  const n = JSON.parse(got.stdout) as { metadata: { annotations?: Record<string, string> }; spec: { unschedulable?: boolean } };
  return { unschedulable: n.spec.unschedulable === true, decision: n.metadata.annotations?.[NW.annDecision] };
}

/** The guard (open budget, high rate limits) the tick-kill engines run with: the budget is not what they test. */
export const TICK_KILL_GUARD = { maxUnavailable: '100%', maxUnavailablePerGroup: '100%', rateLimits: { cordon: { count: 1000, per: '10m' }, page: { count: 10_000, per: '1m' } } };

/** The names one tick-kill test run uses: its Node, topics, consumer group and Redis key prefix. */
export function tickKillNames(short: string) {
  const tag = `${short}${process.pid % 10_000}${Date.now() % 100_000}`;
  const node = `nw${short}-${tag}`;
  const topics = uniqueTopics(short);
  return {
    node,
    /** A PATCH of the test Node (cordon, annotations). */
    patchNode: new RegExp(`^/api/v1/nodes/${node}(\\?|$)`),
    unreachable: unreachableEvents(node, tag),
    topics,
    groupId: `engine-${topics.signals}`,
    keyPrefix: `nw${short}${process.pid}:`,
  };
}

/**
 * The real servers of a tick-kill test, its topics created, the test Node
 * registered and the test rule written to a fresh directory.
 */
export async function tickKillServers(
  node: string,
  topics: { signals: string; deadLetter: string; ledger: string },
  dirPrefix: string,
): Promise<{ brokers: string[]; redis: { url: string; port: number }; kube: KubeCluster; dir: string; rulesPath: string }> {
  const [kafka, r, kube] = await Promise.all([sharedKafka(), sharedRedis(), sharedKube()]);
  await kafka.createTopics([topics.signals, topics.deadLetter, topics.ledger], 4);
  await createTestNode(kube, node);
  const dir = mkdtempSync(join(tmpdir(), dirPrefix));
  const rulesPath = join(dir, 'rules.yaml');
  writeFileSync(rulesPath, TICK_RULES_YAML);
  return { brokers: kafka.brokers, redis: { url: r.url, port: r.port }, kube, dir, rulesPath };
}
