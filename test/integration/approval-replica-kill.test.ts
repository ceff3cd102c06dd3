/**
 * An approval given after the replica that requested it is SIGKILLed, on a
 * REAL broker and Redis with two engine replicas: the driver-rollout rule asks
 * for a rollback (pending-approval, rollbacks need approval by default), the
 * replica that recorded it is killed, the approval goes to the survivor's
 * control API — and the rollback runs exactly once (one executed ledger
 * record, one rollback applied to the cluster), a second approval is a
 * conflict, and nothing more happens after a further wait.
 *
 * Each replica runs its own simulated cluster (`--cluster`): the rollbacks
 * applied are counted from the clusters' executor ("rollback" log lines with
 * the decision id) of BOTH processes, the killed one's included.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { registerSecret } from '../harness/secrets.js';
import type { EngineProc } from './engine-support.js';
import { engineLog, produce, replicaPairSuite, ROOT, sleep, waitFor } from './engine-support.js';

const ADMIN = registerSecret('control admin token', `itest-admin-${randomBytes(16).toString('hex')}`);
const RULE = 'gpu-driver-rollout-regression';
const NODES = ['gpu-worker-017', 'gpu-worker-042', 'gpu-worker-105'];

/** The pack's driver-rollout rule alone (no cordons or node pages to wait for). */
const RULES = `apiVersion: nodewarden.io/v1
kind: RuleSet
rules:
  - id: ${RULE}
    description: Hardware Xids on 3 nodes of one pool within 15m after the driver DaemonSet changed
    severity: critical
    match:
      type: gpu.xid
      where:
        data.code: { in: [62, 79, 119] }
    scope: { group: pool }
    condition:
      allOf:
        of:
          - distinctNodes: { gte: 3, within: 15m }
          - changedWithin: { within: 2h }
    cooldown: 6h
    summary: "Xids on {{count}} nodes of {{group}}"
    actions:
      - type: rollback
`;

/** Executor log lines of a rollback applied to the (simulated) cluster for this decision. */
function appliedRollbacks(e: EngineProc, decisionId: string): number {
  return engineLog(e)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg?: string; decision?: string })
    .filter((r) => r.msg === 'rollback' && r.decision === decisionId).length;
}

describe('approval after a replica is SIGKILLed (Kafka + Redis, two engines)', function () {
  this.timeout(180_000);
  const engineArgs: { tokensFile?: string; extraArgs?: string[] } = {};
  const pair = replicaPairSuite('apk', {
    setup: () => {
      const dir = mkdtempSync(join(tmpdir(), 'nw-apk-'));
      // The fixture's driver DaemonSet, its newest ControllerRevision made 10 minutes ago (changedWithin 2h).
      const fixture = readFileSync(join(ROOT, 'test', 'fixtures', 'incidents', 'driver-rollout-regression.cluster.yaml'), 'utf8');
      expect(fixture).to.contain('"2026-11-21T09:30:00Z"');
      const clusterFile = join(dir, 'cluster.yaml');
      writeFileSync(clusterFile, fixture.replace('"2026-11-21T09:30:00Z"', JSON.stringify(new Date(Date.now() - 10 * 60_000).toISOString())));
      const rulesFile = join(dir, 'rules.yaml');
      writeFileSync(rulesFile, RULES);
      engineArgs.tokensFile = join(dir, 'tokens');
      writeFileSync(engineArgs.tokensFile, `${ADMIN} admin alice\n`);
      engineArgs.extraArgs = ['--rules', rulesFile, '--cluster', clusterFile];
      return undefined;
    },
    engine: () => engineArgs,
  });

  const approve = (e: EngineProc, id: string): Promise<Response> => fetch(`${e.url}/api/v1/approvals/${id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });

  it('is honoured exactly once by the survivor', async () => {
    const { brokers, topics, engines, ledger } = pair;
    const now = Date.now();
    // One key, so one replica evaluates the three in order: this test is about the approval, not about a
    // group window fed by two replicas at once.
    await produce(
      brokers,
      topics.signals,
      NODES.map((node, i) => ({
        key: 'h100-train',
        value: { v: 1, id: `apk-${process.pid}-${now}-${i}`, ts: new Date(now + i).toISOString(), node, type: 'gpu.xid', source: 'kmsg', labels: { pool: 'h100-train', zone: 'us-west-2c' }, data: { code: [79, 119, 62][i], message: 'Xid' } },
      })),
    );
    const pending = await waitFor('a pending-approval rollback record', () => ledger.records.find((r) => r.rule === RULE && r.action === 'rollback' && r.outcome === 'pending-approval'), 60_000, 100);
    const id = String(pending.decisionId);
    expect(id).to.match(/^d-/);
    // The replica that recorded it logged the decision; kill that one (SIGKILL: no shutdown, no flush).
    const recorder = await waitFor('the replica that recorded the decision', () => {
      const has = engines.map((e) => engineLog(e).includes(id));
      return has.filter(Boolean).length === 1 ? has.indexOf(true) : undefined;
    }, 10_000);
    const victim = engines[recorder]!;
    const survivor = engines[1 - recorder]!;
    await victim.kill('SIGKILL');
    expect(victim.proc.signalCode).to.equal('SIGKILL');

    const t0 = Date.now();
    const res = await approve(survivor, id);
    expect(res.status, await res.clone().text()).to.equal(200);
    const executed = (): Array<Record<string, unknown>> => ledger.records.filter((r) => r.decisionId === id && r.action === 'rollback' && r.outcome === 'executed');
    await waitFor('the approved rollback executed', () => executed().length > 0, 60_000, 50);
    console.log(`      approve -> executed record: ${Date.now() - t0} ms (recorder replica ${recorder} killed)`);

    const again = await approve(survivor, id);
    expect(again.status, 'a second approval of the same decision').to.equal(409);
    expect(await again.text()).to.contain('already');

    // A further wait: ticks of the survivor, the victim's partitions rebalanced to it (session timeout 6 s).
    await sleep(10_000);
    const records = ledger.records.filter((r) => r.decisionId === id);
    expect(executed(), JSON.stringify(records)).to.have.length(1);
    expect((executed()[0]!.details as { approval?: { by?: string } }).approval?.by).to.equal('alice');
    expect(records.map((r) => r.outcome).sort(), 'every record of the decision').to.deep.equal(['executed', 'pending-approval']);
    // Counted from the clusters: one rollback applied, by the survivor; none by the killed replica.
    expect(appliedRollbacks(survivor, id), 'rollbacks applied by the survivor').to.equal(1);
    expect(appliedRollbacks(victim, id), 'rollbacks applied by the killed replica').to.equal(0);
    const ok = await fetch(`${survivor.url}/readyz`);
    expect(ok.status, engineLog(survivor).slice(-2000)).to.equal(200);
  });
});
