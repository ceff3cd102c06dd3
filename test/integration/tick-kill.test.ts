/**
 * A TICK-fired decision in flight during a SIGKILL, on real servers (issue 10,
 * item 1): two `nodewarden engine` replicas (one consumer group, real Kafka,
 * real Redis) act on the REAL kube-apiserver, each through its own
 * fault-injecting proxy, so the test sees which replica sent the node PATCH.
 *
 * A test rule (containerd unreachable sustained for 3 s → cordon + page) gets
 * two `unreachable` events for a fresh Node, then silence: only a tick can
 * fire it (ticks are not redelivered; the tick outbox is what saves it). Both
 * proxies hold every node PATCH (never forwarded), so the replica whose tick
 * fired is caught between the guard's authorize and settle; it is SIGKILLed
 * there. The survivor takes the decision over when the victim's in-flight lease
 * lapses (15 s after its last renewal, ADR 0026; the outbox re-derives it) and
 * its PATCH goes through: kill → cordon must stay under {@link KILL_TO_CORDON_MAX_MS}
 * (it took 61–62 s with the old 60 s lease without renewal).
 *
 * Asserted from the ledger (cordons folded by idempotency key, as every ledger
 * consumer does) and from the Node object: one executed cordon, carried on the
 * Node as its decision-id annotation; the rule's page executed once and every
 * incident send once (pages counted unfolded: the outbox re-derives the firing
 * every 15 s and each re-derivation of the page, routed to its open incident,
 * writes a `suppressed` record under the SAME ledger key as the executed one —
 * folded, the executed page would read `suppressed`; printed as
 * `page_rerecords`, an open defect, see RELIABILITY.md); the victim's
 * PATCH never reached the apiserver, the survivor's exactly once. Kill → cordon
 * on the Node is printed as a FAULT-FIGURE line.
 */
import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeCluster } from '../harness/kube.js';
import { startFaultProxy } from '../harness/fault-proxy.js';
import type { FaultProxy } from '../harness/fault-proxy.js';
import { NW } from '../../core/cluster.js';
import type { LedgerRecord } from '../../core/decision.js';
import { ledgerKey } from '../../remediations/ledger/record.js';
import { sharedKafka, sharedKube, sharedRedis } from './servers.js';
import { produce, sleep, TopicFollower, uniqueTopics, waitFor } from './engine-support.js';
import { spawnEngine } from '../../bench/lib/kafka-bench.js';
import type { EngineChild } from '../../bench/lib/kafka-bench.js';

const RULE = 'containerd-unhealthy-3s';
/** The 15 s lease + the outbox's 15 s re-check: well under the old 60 s lease alone. */
const KILL_TO_CORDON_MAX_MS = 30_000;
const RULES_YAML = `apiVersion: nodewarden.io/v1
kind: RuleSet
rules:
  - id: ${RULE}
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
        dedupKey: "nodewarden/${RULE}/{{node}}"
`;

const tag = `t${process.pid % 10_000}${Date.now() % 100_000}`;
const NODE = `nwtick-${tag}`;
const PATCH_NODE = new RegExp(`^/api/v1/nodes/${NODE}(\\?|$)`);
let seq = 0;
const unreachable = (ts: number): { key: string; value: Record<string, unknown> } => ({
  key: NODE,
  value: { v: 1, id: `${tag}-${seq++}`, ts: new Date(ts).toISOString(), node: NODE, type: 'runtime.containerd', source: 'cri', labels: { pool: 'h100-train', zone: 'us-west-2a' }, data: { state: 'unreachable', latencyMs: null, runtimeReady: null, networkReady: null } },
});

type LedgerRec = Pick<LedgerRecord, 'rule' | 'action' | 'outcome' | 'guard' | 'decisionId' | 'target'>;

function kubeconfigVia(dir: string, name: string, proxy: FaultProxy, token: string): string {
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

describe('tick-fired decision, its replica SIGKILLed between authorize and settle, real servers', function () {
  this.timeout(240_000);
  const topics = uniqueTopics('tkk');
  const groupId = `engine-${topics.signals}`;
  const keyPrefix = `nwtkk${process.pid}:`;
  const engines: EngineChild[] = [];
  const proxies: FaultProxy[] = [];
  let brokers: string[] = [];
  let kube: KubeCluster;
  let ledger: TopicFollower | undefined;

  before(async () => {
    const [kafka, r, k] = await Promise.all([sharedKafka(), sharedRedis(), sharedKube()]);
    kube = k;
    brokers = kafka.brokers;
    await kafka.createTopics([topics.signals, topics.deadLetter, topics.ledger], 4);
    const res = await kube.kubectl(['apply', '-f', '-'], { input: `apiVersion: v1\nkind: Node\nmetadata:\n  name: ${NODE}\n  labels:\n    nodewarden.io/pool: h100-train\n    topology.kubernetes.io/zone: us-west-2a\n` });
    if (res.code !== 0) throw new Error(`creating node: ${res.stderr}`);
    const dir = mkdtempSync(join(tmpdir(), 'nw-tick-kill-'));
    const rulesPath = join(dir, 'rules.yaml');
    writeFileSync(rulesPath, RULES_YAML);
    // Nodes without a kubelet are NotReady: the fleet budget is not what this test is about.
    const guard = { maxUnavailable: '100%', maxUnavailablePerGroup: '100%', rateLimits: { cordon: { count: 1000, per: '10m' }, page: { count: 10_000, per: '1m' } } };
    for (const name of ['a', 'b']) {
      const proxy = await startFaultProxy(kube.server);
      proxies.push(proxy);
      // Every node PATCH is held (never forwarded) until the kill: the firing replica stops inside its action.
      proxy.setRules([{ method: 'PATCH', path: PATCH_NODE, fault: { kind: 'hang' } }]);
      engines.push(
        await spawnEngine({ brokers, redisUrl: r.url, keyPrefix, groupId, topics, rulesPath, kubeconfig: kubeconfigVia(dir, name, proxy, kube.adminToken), args: ['--session-timeout', '6s'], extraConfig: { guard } }),
      );
    }
    ledger = await new TopicFollower(brokers, topics.ledger).start();
  });

  after(async () => {
    for (const e of engines) await e.kill('SIGTERM');
    await ledger?.stop().catch(() => undefined);
    for (const p of proxies) await p.close().catch(() => undefined);
    await kube?.kubectl(['delete', 'node', NODE, '--wait=false']).catch(() => undefined);
  });

  it('the survivor cordons the Node once (its decision on the Node), the page is decided once', async () => {
    const t0 = Date.now();
    await produce(brokers, topics.signals, [unreachable(t0), unreachable(t0 + 1000)]);
    // Events stop here: the rule is due 3 s after the first one, and only a tick fires it.
    const patching = (): number | undefined => {
      const i = proxies.findIndex((p) => p.log.some((l) => l.method === 'PATCH' && PATCH_NODE.test(l.path)));
      return i >= 0 ? i : undefined;
    };
    const victimIdx = await waitFor('a replica inside its cordon (PATCH held at its proxy)', patching, 60_000, 10);
    const victim = engines[victimIdx] as EngineChild;
    const survivorIdx = 1 - victimIdx;
    const survivor = engines[survivorIdx] as EngineChild;
    await victim.kill('SIGKILL');
    expect(victim.proc.signalCode).to.equal('SIGKILL');
    const killedAt = Date.now();
    const firedAfterMs = killedAt - t0;
    // The survivor's writes go through from now on.
    (proxies[survivorIdx] as FaultProxy).setRules([]);

    const node = async (): Promise<{ unschedulable: boolean; decision: string | undefined }> => {
      const got = await kube.kubectl(['get', 'node', NODE, '-o', 'json']);
      if (got.code !== 0) throw new Error(got.stderr);
      const n = JSON.parse(got.stdout) as { metadata: { annotations?: Record<string, string> }; spec: { unschedulable?: boolean } };
      return { unschedulable: n.spec.unschedulable === true, decision: n.metadata.annotations?.[NW.annDecision] };
    };
    // Taken over once the in-flight lease lapses (ADR 0012, 0026) and the outbox re-derives the firing.
    await waitFor('the Node cordoned by the survivor', async () => (await node()).unschedulable || undefined, 180_000, 100);
    const killToCordonMs = Date.now() - killedAt;
    expect(killToCordonMs, 'kill → Node cordoned by the survivor (ms)').to.be.below(KILL_TO_CORDON_MAX_MS);
    const raw = (): LedgerRec[] => (ledger?.records ?? []).map((r) => r as unknown as LedgerRecord).filter((r) => r.rule === RULE);
    await waitFor('the executed cordon in the ledger', () => raw().some((r) => r.action === 'cordon' && r.outcome === 'executed') || undefined, 30_000, 100);
    await sleep(5000); // a late duplicate (a second firing, a second take-over) would land now

    const all = JSON.stringify(raw().map((r) => `${r.action} ${r.outcome}/${r.guard ?? '-'} ${r.decisionId ?? '?'}`));
    const recs = [...new Map(raw().map((r) => [ledgerKey(r) ?? JSON.stringify(r), r] as const)).values()];
    const cordons = recs.filter((r) => r.action === 'cordon' && r.outcome === 'executed');
    expect(cordons.map((r) => r.target.name), `executed cordons of ${all}`).to.deep.equal([NODE]);
    expect(await node()).to.deep.equal({ unschedulable: true, decision: cordons[0]?.decisionId });
    // The page: the rule's page decision executed once (wherever it was when the victim died); the incident's
    // own trigger/updates (`incident:<dedupKey>:<seq>`) each sent once. Counted unfolded: see the note below.
    const pageRecs = raw().filter((r) => r.action === 'page');
    const rulePages = pageRecs.filter((r) => !(r.decisionId ?? '').startsWith('incident:'));
    expect(new Set(rulePages.map((r) => r.decisionId)).size, `page decisions of ${all}`).to.equal(1);
    expect(rulePages.filter((r) => r.outcome === 'executed').length, `executed rule pages of ${all}`).to.equal(1);
    const incidentSends = pageRecs.filter((r) => (r.decisionId ?? '').startsWith('incident:') && r.outcome === 'executed').map((r) => r.decisionId);
    expect(new Set(incidentSends).size, `incident sends of ${all}`).to.equal(incidentSends.length);
    // Every record of a decision, folded or not, names the same one decision per action.
    expect(new Set(raw().filter((r) => r.action === 'cordon').map((r) => r.decisionId)).size, 'cordon decision ids').to.equal(1);
    expect((proxies[victimIdx] as FaultProxy).forwarded('PATCH', PATCH_NODE), 'victim PATCHes that reached the apiserver').to.equal(0);
    expect((proxies[survivorIdx] as FaultProxy).forwarded('PATCH', PATCH_NODE), 'survivor PATCHes that reached the apiserver').to.equal(1);

    const byOutcome: Record<string, number> = {};
    for (const r of recs) {
      const k = `${r.action}/${r.outcome}${r.guard ? `/${r.guard}` : ''}`;
      byOutcome[k] = (byOutcome[k] ?? 0) + 1;
    }
    console.log(
      `      FAULT-FIGURE tick_kill_between_authorize_and_settle fired_after_first_event_ms=${firedAfterMs} kill_to_cordon_ms=${killToCordonMs} ` +
        `ledger=${JSON.stringify(byOutcome)} same_key_records_folded=${raw().length - recs.length} page_rerecords=${rulePages.length - 1} victim_patches_forwarded=0 survivor_patches_forwarded=1`,
    );
    expect((await fetch(`${survivor.url}/readyz`)).status).to.equal(200);
  });
});
