/**
 * The shipped driver-rollout rule (rules/pack, `gpu-driver-rollout-regression`:
 * hardware Xids on 3 distinct nodes of a pool within 15 min after the driver
 * DaemonSet changed) in two REAL engine processes on Kafka + Redis, with the
 * pool's Xids on partitions owned by DIFFERENT replicas. Its window is
 * group-scoped state in Redis, fed by both replicas; it must fire exactly
 * once — also when one replica handles its part later than the other (a
 * newer Xid evaluated before an older one: consumer lag, an agent's spool),
 * which once left the rule silent (each replica counted only the nodes whose
 * Xid was not newer than its own event). The rollout page joins the storm's
 * one incident (ADR 0020).
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { EngineProc } from './engine-support.js';
import { ROOT, produce, replicaPairSuite, waitFor } from './engine-support.js';
import { join } from 'node:path';

const RULE = 'gpu-driver-rollout-regression';
const incidentOf = (pool: string): string => `nodewarden/incident/gpu-xid-fatal/pool=${pool}`;

function xidAt(node: string, pool: string, at: number, code = 79): Record<string, unknown> {
  return {
    v: 1,
    id: randomUUID(),
    ts: new Date(at).toISOString(),
    node,
    type: 'gpu.xid',
    source: 'kmsg',
    labels: { pool, zone: 'us-west-2a' },
    data: { code, pci: '0000:3b:00', message: code === 79 ? 'GPU has fallen off the bus.' : 'Xid' },
  };
}

describe('driver-rollout rule across two engine replicas (Kafka + Redis, shipped pack)', function () {
  this.timeout(240_000);
  const rp = replicaPairSuite('rol', { engine: () => ({ extraArgs: ['--rules', join(ROOT, 'rules', 'pack')] }) });
  /** Node names by the replica (index) that owns their partition. */
  const owned: string[][] = [[], []];

  const processed = async (): Promise<number[]> => Promise.all(rp.engines.map((e: EngineProc) => e.metric('nodewarden_engine_events_processed_total')));

  /** The replicas' processed counts once nothing moved for 600 ms (the warm-up's events are all in). */
  async function quiet(): Promise<number[]> {
    let last = await processed();
    return waitFor('the replicas to be idle', async () => {
      await new Promise((r) => setTimeout(r, 600));
      const now = await processed();
      const same = now.every((n, i) => n === last[i]);
      last = now;
      return same ? now : undefined;
    }, 30_000, 0);
  }

  /** Produces one event and waits until a replica processed it; returns that replica's index. */
  async function send(key: string, value: Record<string, unknown>): Promise<number> {
    const before = await quiet();
    await produce(rp.brokers, rp.topics.signals, [{ key, value }]);
    const i = await waitFor(`${key}'s event processed`, async () => {
      const now = await processed();
      const j = now.findIndex((n, k) => n > (before[k] ?? 0));
      return j >= 0 ? j : undefined;
    }, 30_000);
    const after = await quiet();
    expect(after.map((n, k) => n - (before[k] ?? 0)), `events processed per replica for ${key}'s one event`).to.deep.equal(i === 0 ? [1, 0] : [0, 1]);
    return i;
  }

  const rolloutOf = (pool: string, action: string): Array<Record<string, unknown>> =>
    rp.ledger.records.filter((r) => r.rule === RULE && r.action === action && JSON.stringify(r).includes(pool));

  before(async () => {
    // the driver DaemonSet got a new revision a minute ago (what the live cluster view reports as workload.revision)
    await send('gpu-operator/nvidia-driver-daemonset', {
      v: 1,
      id: randomUUID(),
      ts: new Date(Date.now() - 60_000).toISOString(),
      node: 'control-plane',
      type: 'workload.revision',
      source: 'test',
      labels: {},
      data: { kind: 'DaemonSet', namespace: 'gpu-operator', name: 'nvidia-driver-daemonset', revision: 4 },
    });
    // which replica owns which node's partition: one informational Xid each (an info page, never a cordon)
    for (let i = 0; i < 40 && (owned[0]!.length < 4 || owned[1]!.length < 2); i++) {
      const n = `gpu-node-0${40 + i}`;
      owned[await send(n, xidAt(n, 'probe', Date.now(), 63))]!.push(n);
    }
    expect(owned[0]!.length, `nodes per replica: ${JSON.stringify(owned)}`).to.be.at.least(4);
    expect(owned[1]!.length, `nodes per replica: ${JSON.stringify(owned)}`).to.be.at.least(2);
  });

  it('fires exactly once when the pool’s Xids are split across the replicas (in order)', async () => {
    const pool = 'h100-train';
    const [a1, a2] = owned[0] as [string, string];
    const [b1] = owned[1] as [string];
    const t = Date.now();
    expect(await send(a1, xidAt(a1, pool, t - 20_000))).to.equal(0);
    expect(await send(b1, xidAt(b1, pool, t - 10_000))).to.equal(1);
    expect(await send(a2, xidAt(a2, pool, t))).to.equal(0);
    await waitFor('the rollout page', () => rolloutOf(pool, 'page').length > 0, 30_000);
    await new Promise((r) => setTimeout(r, 3000)); // a second firing would be recorded by now
    expect(rolloutOf(pool, 'rollback').map((r) => r.outcome), 'one rollback decision, waiting for approval').to.deep.equal(['pending-approval']);
    const page = rolloutOf(pool, 'page');
    expect(page, JSON.stringify(page)).to.have.length(1);
    expect(String(page[0]?.reason)).to.include('3 nodes');
    // one incident for the storm: the node pages (Xid 79: gpu-xid-node-fatal, which joins gpu-xid-fatal's incident)
    // and the rollout page share one dedupKey, one trigger
    const storm = rp.ledger.records.filter((r) => r.action === 'page' && (r.rule === 'gpu-xid-fatal' || r.rule === 'gpu-xid-node-fatal' || r.rule === RULE) && JSON.stringify(r).includes(pool));
    expect(new Set(storm.map((r) => r.dedupKey))).to.deep.equal(new Set([incidentOf(pool)]));
    expect(storm.filter((r) => (r.details as { incident?: { event?: string } } | undefined)?.incident?.event === 'trigger')).to.have.length(1);
  });

  it('fires exactly once when the older Xid of one replica is evaluated after the newer one of the other', async () => {
    const pool = 'a100-infer';
    const [, , a3, a4] = owned[0] as [string, string, string, string];
    const [, b2] = owned[1] as [string, string];
    const t = Date.now();
    expect(await send(a3, xidAt(a3, pool, t - 20_000))).to.equal(0);
    expect(await send(b2, xidAt(b2, pool, t))).to.equal(1);
    // replica 0 lagged: its Xid, 10 s older than replica 1's, comes last
    expect(await send(a4, xidAt(a4, pool, t - 10_000))).to.equal(0);
    await waitFor('the rollout page', () => rolloutOf(pool, 'page').length > 0, 30_000);
    await new Promise((r) => setTimeout(r, 3000));
    expect(rolloutOf(pool, 'rollback').map((r) => r.outcome)).to.deep.equal(['pending-approval']);
    const page = rolloutOf(pool, 'page');
    expect(page, JSON.stringify(page)).to.have.length(1);
    expect(String(page[0]?.reason)).to.include('3 nodes');
    for (const n of [a3, b2, a4]) expect(String(page[0]?.reason)).to.include(n);
  });
});
