/**
 * Outcome figures per rule from ledger records (remediations/ladder/outcomes.ts),
 * as `ctl outcomes` renders them and the daily digest lists them.
 */
import { expect } from 'chai';
import type { LedgerRecord } from '../../../core/decision.js';
import { renderOutcomes } from '../../../control/render.js';
import { buildDigest, renderDigest } from '../../../jobs/daily-digest.js';
import { outcomeFigures } from '../../../remediations/ladder/outcomes.js';
import { FakeCluster } from './fake-cluster.js';

const T = Date.parse('2026-12-01T10:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();

function cordon(node: string, rule: string, at: number, faultAt: number, decidedAt: number): LedgerRecord {
  return { ts: iso(at), rule, action: 'cordon', target: { kind: 'Node', name: node }, outcome: 'executed', reason: 'x', guard: null, decisionId: `d-${node}`, details: { faultAt: iso(faultAt), decidedAt: iso(decidedAt) } };
}
const episode = (node: string, faultAt: number, repaired: boolean) => ({ id: `${node}:1`, rule: 'gpu-xid-fatal', gpu: null, faultAt: iso(faultAt), detectedAt: iso(faultAt), isolatedAt: iso(faultAt), rung: 'reset', repaired });

const RECORDS: LedgerRecord[] = [
  cordon('a', 'gpu-xid-fatal', T + 4000, T, T + 1000),
  cordon('b', 'gpu-xid-fatal', T + 10_000, T, T + 3000),
  cordon('c', 'containerd-down', T + 70_000, T, T + 61_000),
  { ts: iso(T + 3_600_000), rule: 'gpu-xid-fatal', action: 'uncordon', target: { kind: 'Node', name: 'a' }, outcome: 'executed', reason: 'x', guard: null, decisionId: 'ladder:a:1:3:uncordon', details: { episode: episode('a', T, true) } },
  { ts: iso(T + 600_000), rule: 'gpu-xid-fatal', action: 'uncordon', target: { kind: 'Node', name: 'b' }, outcome: 'suppressed', reason: 'resolved by a person', guard: 'resolvedByPerson', decisionId: 'ladder:b:1:closed', details: { episode: episode('b', T, false) } },
  { ts: iso(T + 700_000), rule: 'gpu-xid-fatal', action: 'replace', target: { kind: 'Node', name: 'd' }, outcome: 'executed', reason: 'x', guard: null, decisionId: 'ladder:d:1:2:replace' },
];

describe('repair ladder: outcome figures from the ledger', () => {
  it('per rule: isolations, median time to detect / isolate, MTTR of validated returns, undone without repair, hand-overs', () => {
    const rows = outcomeFigures(RECORDS, T, T + 86_400_000);
    expect(rows.map((r) => r.rule)).to.deep.equal(['gpu-xid-fatal', 'containerd-down']);
    expect(rows[0]).to.deep.equal({ rule: 'gpu-xid-fatal', isolations: 2, detectMs: 2000, isolateMs: 7000, returned: 1, returnMs: 3_600_000, resolvedByPerson: 1, undoneWithoutRepair: 1, handedOver: 1 });
    expect(rows[1]).to.include({ isolations: 1, detectMs: 61_000, isolateMs: 70_000, returned: 0, returnMs: null });
    expect(outcomeFigures(RECORDS, T + 5000, T + 86_400_000)[0]?.isolations, 'window').to.equal(1);
  });

  it('ctl outcomes renders a table; the daily digest has a section per rule', () => {
    const text = renderOutcomes(outcomeFigures(RECORDS, T, T + 86_400_000), '24h', false);
    expect(text).to.match(/gpu-xid-fatal\s+2\s+2s\s+7s\s+1\s+1h\s+1\s+1\s+1/);
    const d = buildDigest(RECORDS, { from: T, to: T + 86_400_000, timezone: 'UTC', view: FakeCluster.fleet(3) });
    expect(d.outcomes).to.have.length(2);
    const msg = JSON.stringify(renderDigest(d).blocks);
    expect(msg).to.contain('Outcomes per rule');
    expect(msg).to.contain('1 undone without repair');
  });
});
