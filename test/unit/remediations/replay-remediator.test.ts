/**
 * createReplayRemediation over the SIMULATED cluster (remediations/simulated):
 * the guard sees its own cordons because the executors change the objects
 * the view reads, and pages are recorded, not sent.
 */
import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import { createReplayRemediation } from '../../../remediations/index.js';
import { createSimulatedCluster } from '../../../remediations/simulated/index.js';
import type { KubeObject } from '../../../remediations/kube/wire.js';
import { cordon } from './fake-cluster.js';

function nodes(count: number, humanCordoned: readonly number[] = []): KubeObject[] {
  return Array.from({ length: count }, (_, i) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: `gpu-${String(i).padStart(3, '0')}`, uid: `uid-${i}`, resourceVersion: '1', labels: { 'nodewarden.io/pool': 'h100-train', 'kubernetes.io/hostname': `gpu-${i}` } },
    spec: humanCordoned.includes(i) ? { unschedulable: true } : {},
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  }));
}

async function xid79Storm(humanCordoned: readonly number[]) {
  const clock = new ManualClock(Date.parse('2026-11-21T10:15:00Z'));
  const cluster = createSimulatedCluster(nodes(100, humanCordoned), { clock });
  const { remediator, pager, ledger } = createReplayRemediation({ cluster, config: DEFAULT_CONFIG, clock });
  for (let i = 10; i < 30; i++) {
    const name = `gpu-${String(i).padStart(3, '0')}`;
    await remediator.submit([cordon(name, { id: `xid79:${name}`, group: { pool: 'h100-train' }, at: clock.now() })]);
    clock.advance(500);
  }
  await remediator.flush();
  return { cluster, pager, ledger };
}

describe('replay remediator over the simulated cluster', () => {
  it('Xid 79 on 20 of 100 nodes: cordons 5 (in the simulated objects) and pages once about the other 15', async () => {
    const { cluster, pager, ledger } = await xid79Storm([]);
    const cordoned = cluster.listNodes().filter((n) => n.unschedulable);
    expect(cordoned).to.have.length(5);
    expect(cordoned.every((n) => n.cordonedByNodewarden)).to.equal(true);
    expect(ledger.records.filter((r) => r.action === 'cordon' && r.outcome === 'executed')).to.have.length(5);
    expect(pager.sent).to.have.length(1);
    expect((pager.sent[0]!.details?.evidence as { denied: unknown[] }).denied).to.have.length(15);
  });

  it('with 3 nodes already cordoned by people it cordons at most 2', async () => {
    const { cluster, pager } = await xid79Storm([90, 91, 92]);
    expect(cluster.listNodes().filter((n) => n.unschedulable && n.cordonedByNodewarden)).to.have.length(2);
    expect(cluster.listNodes().filter((n) => n.unschedulable)).to.have.length(5);
    expect(pager.sent).to.have.length(1);
  });
});
