import { expect } from 'chai';
import { loadConfig } from '../../../adapters/config-file.js';
import type { LedgerRecord } from '../../../core/decision.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../adapters/metrics.js';
import { defaultRulesPath, loadRules } from '../../../rules/language/load.js';
import { createDemoSystem, defaultStoryline, DRIVER_DS } from '../../../demo/system.js';
import type { DemoSystem } from '../../../demo/system.js';
import { summaryJson } from '../../../demo/render.js';

const T0 = Date.parse('2026-03-01T00:00:00Z');
const config = loadConfig({});
const rules = loadRules(defaultRulesPath());

function demo(seed: number, speed: number, records: LedgerRecord[]): DemoSystem {
  return createDemoSystem({
    config,
    rules,
    seed,
    amplification: 400,
    start: T0,
    storyline: defaultStoryline(speed),
    registry: createRegistry('demo-test'),
    logger: silentLogger,
    denialWindowMs: 3 * 60_000,
    onRecord: (r) => records.push(r),
  });
}

describe('demo system (real engine, guard and remediator in virtual time)', function () {
  // virtual hours of a whole fleet on the real engine: 41-58 s measured on a loaded 2-core machine
  this.timeout(180_000);

  it('storyline: cordons up to the budget, denies the rest with one grouped page, rolls the driver back once', async () => {
    const records: LedgerRecord[] = [];
    const sys = demo(7, 60, records);
    await sys.advance(T0 + 40 * 60_000);
    await sys.close();
    const s = sys.stats();

    const cordons = records.filter((r) => r.action === 'cordon');
    expect(cordons.filter((r) => r.outcome === 'executed').length).to.be.greaterThan(0);
    const denied = cordons.filter((r) => r.outcome === 'denied');
    expect(denied.length).to.be.greaterThan(0);
    expect(denied.every((r) => r.guard === 'maxUnavailable')).to.equal(true);

    // the storm's denials: one page for the storm's pool and zone per rule that was denied (denials are grouped by
    // guard, rule and group): Xid 79 cordons through gpu-xid-node-fatal, Xid 119 through gpu-xid-fatal (its GPU taint
    // falls back to the node cordon in the demo's cluster, which serves no DeviceTaintRule)
    const stormGroup = 'pool=h100-train,zone=us-west-2a';
    const denialPages = records.filter((r) => r.action === 'page' && r.target.kind === 'Group' && r.target.name === stormGroup && r.reason.startsWith('guard maxUnavailable stopped'));
    expect(denialPages.map((r) => r.rule).sort()).to.deep.equal(['gpu-xid-fatal', 'gpu-xid-node-fatal']);
    // ... as an update of the storm's ONE incident (brief §8): one trigger, every node's page joins it
    const stormIncident = 'nodewarden/incident/gpu-xid-fatal/pool=h100-train';
    expect(denialPages.map((r) => r.dedupKey)).to.deep.equal([stormIncident, stormIncident]);
    const stormPages = records.filter((r) => r.action === 'page' && (r.rule === 'gpu-xid-fatal' || r.rule === 'gpu-xid-node-fatal') && r.target.name.startsWith('h100-train') && Date.parse(r.ts) < T0 + 28 * 60_000);
    expect(new Set(stormPages.map((r) => r.dedupKey))).to.deep.equal(new Set([stormIncident]));
    expect(stormPages.filter((r) => r.outcome === 'executed' && (r.details?.incident as { event?: string } | undefined)?.event === 'trigger')).to.have.length(1);
    expect(stormPages.filter((r) => r.outcome === 'suppressed' && r.guard === 'incidentOpen').length).to.be.greaterThan(5);
    expect(denialPages.map((r) => r.outcome)).to.deep.equal(['executed', 'executed']);
    // the whole storm is ONE PagerDuty incident (issue 12; ADR 0020): every page that went out from the storm's
    // start to five minutes after its last node — node faults, the rollout rule's page, the denial — has one key
    // (before ADR 0020 the rollout rule opened an incident of its own: 2; before incidents: 26)
    const story = defaultStoryline(60);
    const from = T0 + story.stormAfterMs;
    const to = from + story.stormNodes * story.stormSpacingMs + 5 * 60_000;
    const sent = records.filter((r) => r.action === 'page' && r.outcome === 'executed' && Date.parse(r.ts) >= from && Date.parse(r.ts) <= to);
    expect(sent.length, 'the incident is updated during the storm').to.be.greaterThan(1);
    expect(new Set(sent.map((r) => r.dedupKey)), JSON.stringify(sent.map((r) => [r.rule, r.dedupKey]))).to.deep.equal(new Set([stormIncident]));
    // the rollout rule's page is an immediate update of that incident (the rollback waits for approval)
    const rolloutPages = records.filter((r) => r.action === 'page' && r.rule === 'gpu-driver-rollout-regression');
    expect(rolloutPages.map((r) => [r.outcome, r.dedupKey, (r.details?.incident as { event?: string } | undefined)?.event])).to.deep.equal([['executed', stormIncident, 'update']]);
    const stormDenied = denied.filter((r) => r.target.name.startsWith('h100-train-') && Date.parse(r.ts) < T0 + 28 * 60_000).length;
    const stoppedIn = (r: (typeof denialPages)[number]): number => Number(/stopped (\d+) cordon action\(s\)/.exec(r.reason)?.[1] ?? NaN);
    expect(denialPages.map(stoppedIn).reduce((a, b) => a + b, 0)).to.equal(stormDenied);

    // a rollback waits for approval (the default); the simulated on-call approves it, and it runs once
    const rollbacks = records.filter((r) => r.action === 'rollback');
    expect(rollbacks.map((r) => r.outcome)).to.deep.equal(['pending-approval', 'executed']);
    expect(rollbacks[1]?.decisionId).to.equal(rollbacks[0]?.decisionId);
    expect(rollbacks[1]?.details?.approval).to.deep.equal({ by: 'on-call (simulated)', via: 'demo' });
    rollbacks.shift();
    expect(rollbacks[0]).to.include({ outcome: 'executed', toRevision: 3 });
    expect(rollbacks[0]?.target).to.deep.equal(DRIVER_DS);
    expect(s.rollbacks.executed).to.equal(1);
    expect(s.driverImage).to.equal('nvcr.io/nvidia/driver:550.127.05-ubuntu22.04');

    expect(s.maxCordonedByNodewarden).to.be.at.most(s.fleetLimit);
    expect(s.maxUnavailable).to.be.at.most(s.fleetLimit);
    expect(s.fleetLimit).to.equal(10);
    expect(s.invalid, 'the malformed message was dead-lettered').to.equal(1);
    expect(s.duplicates, 'redelivered storm messages were dropped').to.equal(5);
    expect(s.nodewardenUncordons).to.equal(0);
    const json = JSON.parse(summaryJson(s, { seed: 7, speed: 60, amplify: 400, wallMs: 0, localHost: 'n/a' })) as Record<string, unknown>;
    expect(json).to.include({ kind: 'nodewarden.demo.summary', maxCordonedByNodewarden: s.maxCordonedByNodewarden, fleetLimit: 10 });
  });

  it('is deterministic for a seed', async () => {
    const run = async (): Promise<string[]> => {
      const records: LedgerRecord[] = [];
      const sys = demo(11, 10, records);
      await sys.advance(T0 + 12 * 60_000);
      await sys.close();
      return records.map((r) => `${r.ts} ${r.rule} ${r.action} ${r.target.name} ${r.outcome} ${r.guard ?? ''}`);
    };
    const a = await run();
    expect(a.length).to.be.greaterThan(5);
    expect(await run()).to.deep.equal(a);
  });

  it('over hours: humans uncordon repaired nodes, nodewarden never does, and the budget holds', async () => {
    const records: LedgerRecord[] = [];
    const sys = demo(3, 60, records);
    await sys.advance(T0 + 3 * 3_600_000);
    await sys.close();
    const s = sys.stats();
    expect(s.humanUncordons).to.be.greaterThan(0);
    // nodewarden never uncordons: the only uncordon records say a person did (the repair ladder's observed episodes)
    expect(records.filter((r) => r.action === 'uncordon' && r.guard !== 'resolvedByPerson')).to.have.length(0);
    expect(records.filter((r) => r.guard === 'resolvedByPerson').length).to.be.at.most(s.humanUncordons);
    expect(records.filter((r) => r.guard === 'resolvedByPerson').every((r) => r.outcome === 'suppressed')).to.equal(true);
    expect(s.maxCordonedByNodewarden).to.be.at.most(s.fleetLimit);
    // budget the crew freed was used again: more cordons over the run than nodewarden ever held at once
    expect(records.filter((r) => r.action === 'cordon' && r.outcome === 'executed').length).to.be.greaterThan(s.maxCordonedByNodewarden);
  });
});
