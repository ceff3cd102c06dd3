/**
 * What the tick-kill tests share: a test rule only a tick fires (containerd
 * unreachable sustained for 3 s → cordon + page), its events, a kubeconfig
 * through a fault proxy, and the Node's state as the apiserver has it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFaultProxy } from '../harness/fault-proxy.js';
import type { FaultProxy, FaultRule } from '../harness/fault-proxy.js';
import type { KubeCluster } from '../harness/kube.js';
import { startRedisFaultProxy } from '../harness/redis-fault-proxy.js';
import type { RedisCommand, RedisFaultProxy } from '../harness/redis-fault-proxy.js';
import { NW } from '../../core/cluster.js';
import type { LedgerRecord } from '../../core/decision.js';
import { ledgerKey } from '../../remediations/ledger/record.js';
import { spawnEngine } from '../../bench/lib/kafka-bench.js';
import type { EngineChild } from '../../bench/lib/kafka-bench.js';
import { TopicFollower, uniqueTopics, waitFor } from './engine-support.js';
import { sharedKafka, sharedKube, sharedRedis } from './servers.js';

export const TICK_RULE = 'containerd-unhealthy-3s';
/**
 * A rule pack of one node-scoped rule on application Xids (13, 31, 43): `count` of them within
 * 10m cordon the node and page, with a 1h cooldown (the kill and release tests).
 */
export function appXidRuleYaml(id: string, description: string, count: number, summary: string): string {
  return `apiVersion: nodewarden.io/v1
kind: RuleSet
rules:
  - id: ${id}
    description: ${description}
    severity: critical
    match:
      type: gpu.xid
      where:
        data.code: { in: [13, 31, 43] }
    scope: node
    condition:
      count: { gte: ${count}, within: 10m }
    cooldown: 1h
    summary: "${summary}"
    actions:
      - type: cordon
      - type: page
        severity: critical
        dedupKey: "nodewarden/${id}/{{node}}"
`;
}

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
 * registered and the test rules (default: the tick rule) written to a fresh directory.
 */
export async function tickKillServers(
  node: string,
  topics: { signals: string; deadLetter: string; ledger: string },
  dirPrefix: string,
  rulesYaml: string = TICK_RULES_YAML,
): Promise<{ brokers: string[]; redis: { url: string; port: number }; kube: KubeCluster; dir: string; rulesPath: string }> {
  const [kafka, r, kube] = await Promise.all([sharedKafka(), sharedRedis(), sharedKube()]);
  await kafka.createTopics([topics.signals, topics.deadLetter, topics.ledger], 4);
  await createTestNode(kube, node);
  const dir = mkdtempSync(join(tmpdir(), dirPrefix));
  const rulesPath = join(dir, 'rules.yaml');
  writeFileSync(rulesPath, rulesYaml);
  return { brokers: kafka.brokers, redis: { url: r.url, port: r.port }, kube, dir, rulesPath };
}

/** Two engine replicas of one consumer group, each behind its own proxies, and a follower of the ledger topic. */
export interface KillPair {
  brokers: string[];
  kube: KubeCluster;
  /** The real Redis (not through a proxy). */
  redis: { url: string; port: number };
  engines: EngineChild[];
  /** Per replica: a pass-through apiserver proxy that counts (and may hold) its requests. */
  kubeProxies: FaultProxy[];
  /** Per replica, when `redisHold` is given: a command-aware Redis proxy. */
  redisProxies: RedisFaultProxy[];
  ledger: TopicFollower;
}

export interface KillPairOptions {
  names: ReturnType<typeof tickKillNames>;
  dirPrefix: string;
  /** Default: the tick rule. */
  rulesYaml?: string;
  /** Apiserver faults each replica's proxy starts with (e.g. hold the Node's PATCH). */
  kubeRules?: FaultRule[];
  /** Each replica talks to Redis through a command-aware proxy holding what this picks. */
  redisHold?: (cmd: RedisCommand) => boolean;
  /** ... and recording the forwarded commands this picks. */
  redisWatch?: (cmd: RedisCommand) => boolean;
  engineArgs?: readonly string[];
  /** Merged over the open tick-kill guard (e.g. a shorter `targetCooldown`). */
  guard?: Record<string, unknown>;
}

/**
 * Registers the before/after hooks of a kill test in the calling `describe`:
 * the servers, two replicas (session timeout 6 s, the open tick-kill guard) and
 * the ledger follower; the returned object is filled in by `before`.
 */
export function useKillPair(o: KillPairOptions): KillPair {
  const pair = { engines: [], kubeProxies: [], redisProxies: [] } as unknown as KillPair;
  before(async () => {
    const { node, topics, keyPrefix, groupId } = o.names;
    const servers = await tickKillServers(node, topics, o.dirPrefix, o.rulesYaml);
    Object.assign(pair, { brokers: servers.brokers, kube: servers.kube, redis: servers.redis });
    for (const name of ['a', 'b']) {
      const kp = await startFaultProxy(servers.kube.server);
      if (o.kubeRules) kp.setRules(o.kubeRules);
      pair.kubeProxies.push(kp);
      let redisUrl = servers.redis.url;
      if (o.redisHold) {
        const rp = await startRedisFaultProxy(servers.redis.port);
        rp.setHold(o.redisHold);
        if (o.redisWatch) rp.setWatch(o.redisWatch);
        pair.redisProxies.push(rp);
        redisUrl = rp.url;
      }
      pair.engines.push(
        await spawnEngine({
          brokers: servers.brokers,
          redisUrl,
          keyPrefix,
          groupId,
          topics,
          rulesPath: servers.rulesPath,
          kubeconfig: kubeconfigVia(servers.dir, name, kp, servers.kube.adminToken),
          args: ['--session-timeout', '6s', ...(o.engineArgs ?? [])],
          extraConfig: { guard: { ...TICK_KILL_GUARD, ...o.guard } },
        }),
      );
    }
    pair.ledger = await new TopicFollower(servers.brokers, topics.ledger).start();
  });
  after(async () => {
    for (const e of pair.engines) await e.kill('SIGTERM');
    await (pair.ledger as TopicFollower | undefined)?.stop().catch(() => undefined);
    for (const p of [...pair.kubeProxies, ...pair.redisProxies]) await p.close().catch(() => undefined);
    await (pair.kube as KubeCluster | undefined)?.kubectl(['delete', 'node', o.names.node, '--wait=false']).catch(() => undefined);
  });
  return pair;
}

/** The index of the first replica whose proxy shows `caught`, once one does (the victim). */
export function caughtReplica(what: string, caught: () => number): Promise<number> {
  return waitFor(what, () => {
    const i = caught();
    return i >= 0 ? i : undefined;
  }, 60_000, 5);
}

/** SIGKILLs the victim; returns the kill time. */
export async function killVictim(victim: EngineChild): Promise<number> {
  await victim.kill('SIGKILL');
  if (victim.proc.signalCode !== 'SIGKILL') throw new Error(`victim ended by ${String(victim.proc.signalCode)}, not SIGKILL`);
  return Date.now();
}

/** The ledger records of one rule, and the same folded by ledger key (as every ledger consumer folds them). */
export function ruleLedger(ledger: TopicFollower, rule: string): { raw: () => LedgerRec[]; folded: () => { recs: LedgerRec[]; all: string } } {
  const raw = (): LedgerRec[] => ledger.records.map((r) => r as unknown as LedgerRecord).filter((r) => r.rule === rule);
  return {
    raw,
    folded: () => ({
      recs: [...new Map(raw().map((r) => [ledgerKey(r) ?? JSON.stringify(r), r] as const)).values()],
      all: JSON.stringify(raw().map((r) => `${r.action} ${r.outcome}/${r.guard ?? '-'} ${r.decisionId ?? '?'}`)),
    }),
  };
}

/** PATCHes of the test Node that reached the apiserver, per replica: [victim, survivor]. */
export function patchesForwarded(pair: KillPair, victimIdx: number, patchNode: RegExp): [number, number] {
  const n = (i: number): number => (pair.kubeProxies[i] as FaultProxy).forwarded('PATCH', patchNode);
  return [n(victimIdx), n(1 - victimIdx)];
}
