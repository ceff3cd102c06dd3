/**
 * Issue 13 at CI size: 2,000 KWOK Nodes (GPU labels, pools) kept Ready on a
 * real kube-apiserver + etcd with the node lifecycle controller on; the real
 * engine (`nodewarden engine`, live API as its ServiceAccount, real Kafka and
 * Redis). Checks start-up with the full node informer, a 500-node Xid storm
 * (exactly maxUnavailable cordoned, counted from the cluster and the ledger,
 * the rest denied and grouped into incidents; no LIST per decision, from the
 * apiserver's apiserver_request_total and its audit log of the engine's user)
 * and bounded memory over a short soak with node churn. The 10,000-node run
 * is bench/kwok-fleet.ts. NODEWARDEN_KWOK_NODES overrides the size.
 */
import { expect } from 'chai';
import {
  formatCounts,
  rssMiB,
  runSoak,
  runStorm,
  startFleetEngine,
  startKwokCluster,
  sumWhere,
  type FleetEngine,
  type KwokCluster,
  type StormResult,
} from '../../bench/lib/kwok-fleet.js';
import type { KafkaBroker } from '../harness/kafka.js';
import { sharedKafka, sharedRedis } from './servers.js';

const NODES = Number(process.env['NODEWARDEN_KWOK_NODES'] ?? 2000);
const STORM = Math.min(500, Math.floor(NODES / 4));
const MAX_UNAVAILABLE = Math.max(5, Math.floor(NODES / 100));

describe(`KWOK fleet: ${NODES} Nodes on a real apiserver, the real engine through Kafka and Redis`, function () {
  this.timeout(600_000);
  let cluster: KwokCluster | undefined;
  let kafka: KafkaBroker;
  let fe: FleetEngine | undefined;
  let storm: StormResult;

  before(async function () {
    this.timeout(900_000);
    const [k, redis] = await Promise.all([sharedKafka(), sharedRedis()]);
    kafka = k;
    cluster = await startKwokCluster(NODES, (s) => console.log(`      ${s}`));
    fe = await startFleetEngine({ cluster, kafka, redisUrl: redis.url, maxUnavailable: MAX_UNAVAILABLE, tag: 'kwok' });
    console.log(`      engine ready in ${fe.startMs} ms, RSS ${rssMiB(fe.engine.pid).toFixed(0)} MiB`);
  });

  after(async () => {
    await fe?.stop();
    await cluster?.stop();
  });

  it('gets ready with the full node informer: every Node in its view, within 60 s, RSS under 400 MiB', async () => {
    const f = fe as FleetEngine;
    expect(f.startMs).to.be.below(60_000);
    expect(rssMiB(f.engine.pid)).to.be.below(400);
    // the engine's view holds every Node (the guard's fleet budget is computed from it)
    const r = await fetch(`${f.engine.url}/api/v1/guard`, { headers: { Authorization: `Bearer ${f.controlToken}` } });
    expect(r.status).to.equal(200);
    const guard = (await r.json()) as { fleet?: { total?: number; limit?: number; unavailable?: number } };
    expect(guard.fleet).to.deep.include({ total: NODES, limit: MAX_UNAVAILABLE, unavailable: 0 });
  });

  it(`cordons exactly maxUnavailable (${MAX_UNAVAILABLE}) of a ${STORM}-node Xid storm, denies and groups the rest, and never LISTs per decision`, async () => {
    const c = cluster as KwokCluster;
    storm = await runStorm(c, fe as FleetEngine, kafka, STORM, MAX_UNAVAILABLE);
    console.log(`      executed ${storm.executed}, denied ${storm.denied} (${JSON.stringify(storm.deniedBy)}); cluster: ${storm.unschedulable} unschedulable, ${storm.tainted} tainted`);
    console.log(`      cordon latency p50 ${storm.p50} ms, p99 ${storm.p99} ms; all decisions in ${storm.drainSeconds.toFixed(1)} s`);
    console.log(`      engine requests (audit): ${formatCounts(storm.engineRequests)} = ${storm.engineRequestsPerDecision.toFixed(3)} per decision`);
    console.log(`      all clients (apiserver_request_total): ${formatCounts(storm.allRequests)}`);
    console.log(`      incidents: ${storm.incidents.length}`);
    expect(storm.executed, 'executed cordons in the ledger').to.equal(MAX_UNAVAILABLE);
    expect(storm.unschedulable, 'unschedulable nodes in the cluster').to.equal(MAX_UNAVAILABLE);
    expect(storm.tainted, 'nodes with the nodewarden taint').to.equal(MAX_UNAVAILABLE);
    expect(storm.denied).to.equal(STORM - MAX_UNAVAILABLE);
    expect(Object.keys(storm.deniedBy)).to.deep.equal(['maxUnavailable']);
    expect(storm.latencyMs.every(Number.isFinite), 'every executed cordon seen on its Node').to.equal(true);
    // no LIST at all during the storm, from the engine or anyone (the engine's view is watch-fed)
    expect(storm.engineListsDuringStorm).to.equal(0);
    expect(sumWhere(storm.allRequests, (k) => k === 'LIST nodes')).to.equal(0);
    // per executed cordon one PATCH of the Node with the view's resourceVersion and one Event (queued, ADR 0041); a GET only
    // after a 409 (the view was behind), which costs one failed PATCH more; nothing for a denied one
    const gets = sumWhere(storm.engineRequests, (k) => k === 'GET nodes');
    const patches = sumWhere(storm.engineRequests, (k) => k === 'PATCH nodes');
    console.log(`      node requests per executed cordon: ${((gets + patches) / MAX_UNAVAILABLE).toFixed(2)} (${gets} GET after a 409)`);
    expect(patches - gets, 'one successful PATCH per executed cordon').to.equal(MAX_UNAVAILABLE);
    expect(gets, 'a GET only after a conflict (before ADR 0041: one per cordon)').to.be.below(MAX_UNAVAILABLE / 2);
    expect(storm.engineRequestsPerDecision).to.be.below(1);
    // the denied ones are grouped into incidents (rule x pool), not one each
    expect(storm.incidents.length).to.be.within(1, 10);
  });

  it('keeps memory bounded over a soak with heartbeats and node churn', async () => {
    const soak = await runSoak(cluster as KwokCluster, fe as FleetEngine, kafka, Number(process.env['NODEWARDEN_KWOK_SOAK_S'] ?? 60), 400);
    console.log(`      soak ${soak.seconds.toFixed(0)} s: ${soak.events} events, ${soak.churnedNodes} nodes churned; heap floors by quarter ${soak.heapFloorsMiB.map((h) => h.toFixed(1)).join(' ')} MiB (growth ${soak.heapFloorGrowthMiB.toFixed(1)} MiB), after a forced full GC every 10 s ${soak.afterFullGcMiB.map(([, h]) => h.toFixed(1)).join(' ')} MiB; view ${soak.viewNodesAtEnd} nodes; RSS ${soak.rssFirstMiB.toFixed(0)} → ${soak.rssLastMiB.toFixed(0)} MiB`);
    expect(soak.samples.length).to.be.at.least(20);
    // what the engine retains after a full GC does not grow once warm, and churned Nodes leave the view
    expect(soak.afterFullGcMiB.length).to.be.at.least(5);
    expect(soak.retainedGrowthMiB).to.be.below(8);
    expect(soak.viewNodesAtEnd).to.equal(NODES);
  });
});
