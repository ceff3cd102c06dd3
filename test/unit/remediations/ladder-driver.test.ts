/**
 * The repair ladder end to end over the replay remediator and the simulated
 * cluster: every step passes the guard and is a ledger record; the node is
 * returned to service only after a passed validation and the quiet period;
 * state lives in the DocStore (a second driver over the same store carries
 * on where the first stopped: a replica failover).
 */
import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { NodewardenConfig } from '../../../core/config.js';
import type { Decision, LedgerRecord } from '../../../core/decision.js';
import { silentLogger } from '../../../core/logger.js';
import { createReplayRemediation } from '../../../remediations/index.js';
import { LadderDriver } from '../../../remediations/ladder/driver.js';
import { createRepairJobWatch } from '../../../remediations/ladder/job-executor.js';
import { ladderPolicyFromConfig, ladderView } from '../../../remediations/ladder/wire.js';
import type { KubeObject } from '../../../remediations/kube/wire.js';
import { createSimulatedCluster } from '../../../remediations/simulated/index.js';
import { SimulatedRepairJobs } from '../../../remediations/simulated/simulated-jobs.js';
import { loadRules, defaultRulesPath } from '../../../rules/language/load.js';
import { Registry } from 'prom-client';
import type { EventEnvelope } from '../../../core/envelope.js';
import { replay } from '../../../rules/replay/replay.js';
import { MemoryStateStore } from '../../../rules/store/memory-store.js';
import type { Remediator } from '../../../remediations/ports.js';
import type { HeldFault } from '../../../core/held-fault.js';
import type { DocStore } from '../../../remediations/incidents/doc-store.js';
import { createOutcomeMetrics } from '../../../remediations/ladder/metrics.js';

const M = 60_000;
const JOB = { apiVersion: 'batch/v1', kind: 'Job', spec: { template: { spec: { containers: [{ name: 'x', image: 'nvcr.io/nvidia/cuda:12', command: ['nvidia-smi', '--gpu-reset', '-i', '{{gpu}}'] }] } } } } as const;
const REBOOT = { apiVersion: 'batch/v1', kind: 'Job', spec: { template: { spec: { hostPID: true, containers: [{ name: 'reboot', image: 'busybox', command: ['nsenter', '-t', '1', '-m', '--', 'systemctl', 'reboot'] }] } } } } as const;
const VALIDATE = { apiVersion: 'batch/v1', kind: 'Job', spec: { template: { spec: { containers: [{ name: 'dcgm', image: 'nvcr.io/nvidia/cloud-native/dcgm:4', command: ['dcgmi', 'diag', '-r', '2'] }] } } } } as const;

function config(over: Partial<NodewardenConfig['repair']> = {}): NodewardenConfig {
  return {
    ...DEFAULT_CONFIG,
    guard: { ...DEFAULT_CONFIG.guard, targetCooldown: '0s' },
    repair: { ...DEFAULT_CONFIG.repair, enabled: true, reset: { template: JOB, timeout: '10m' }, reboot: { ...DEFAULT_CONFIG.repair.reboot, template: REBOOT }, validate: { template: VALIDATE, timeout: '30m' }, ...over },
  };
}

function nodes(n: number): KubeObject[] {
  return Array.from({ length: n }, (_, i) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: `gpu-${i}`, uid: `u${i}`, resourceVersion: '1', labels: { 'nodewarden.io/pool': 'p' } },
    spec: {},
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  }));
}

function xidCordon(node: string, code: number, at: number, message = `Xid ${code}`): Decision {
  return {
    id: `d-${node}-${at}`,
    at,
    rule: 'gpu-xid-fatal',
    action: 'cordon',
    target: { kind: 'Node', name: node },
    reason: `GPU fault on ${node}: Xid ${code}`,
    severity: 'critical',
    evidence: { eventTs: new Date(at - 3000).toISOString(), xid: { code, message, gpu: 'GPU-5f1c0a2b-0000-1111-2222-333344445555' } },
  };
}

function setup(cfg = config(), fails: (step: string, node: string) => boolean = () => false, deviceTaints = false) {
  const clock = new ManualClock(Date.parse('2026-12-01T10:00:00Z'));
  const cluster = createSimulatedCluster(nodes(40), { clock });
  const jobs = new SimulatedRepairJobs(clock, 2 * M, fails);
  const catalogue = loadRules(defaultRulesPath()).xidCatalogue;
  const registry = new Registry();
  const r = createReplayRemediation({ cluster, config: cfg, clock, catalogue, repairJobs: jobs, outcomeMetrics: createOutcomeMetrics(registry), deviceTaints });
  /** Advances the clock in ticks of 1 minute, ticking the ladder. */
  const run = async (minutes: number): Promise<void> => {
    for (let i = 0; i < minutes; i++) {
      clock.advance(M);
      await r.remediator.submit([]);
    }
  };
  const steps = (): LedgerRecord[] => r.ledger.records.filter((x) => x.decisionId?.startsWith('ladder:') === true);
  return { clock, cluster, jobs, r, run, steps, catalogue, registry };
}

describe('repair ladder driver (replay remediator, simulated cluster)', () => {
  it('Xid 95 (RESET_GPU): reset Job pinned to the node → validation Job → 30 m quiet → uncordoned; every step a ledger record', async () => {
    const { clock, cluster, jobs, r, run, steps } = setup();
    await r.remediator.submit([xidCordon('gpu-3', 95, clock.now())]);
    expect(cluster.getNode('gpu-3')?.unschedulable).to.equal(true);
    const reset = [...jobs.jobs.values()][0]?.job as { spec: { template: { spec: { nodeName: string; tolerations: Array<{ key: string }>; containers: Array<{ command: string[] }> } } } };
    expect(reset.spec.template.spec.nodeName).to.equal('gpu-3');
    expect(reset.spec.template.spec.tolerations.map((t) => t.key)).to.include('nodewarden.io/unhealthy');
    expect(reset.spec.template.spec.containers[0]?.command).to.deep.equal(['nvidia-smi', '--gpu-reset', '-i', 'GPU-5f1c0a2b-0000-1111-2222-333344445555']);
    await run(3);
    expect(jobs.jobs.size).to.equal(2); // the validation Job
    await run(20);
    expect(cluster.getNode('gpu-3')?.unschedulable, 'still quiet').to.equal(true);
    await run(15);
    expect(cluster.getNode('gpu-3')?.unschedulable).to.equal(false);
    expect(steps().map((x) => `${x.action}:${x.outcome}`)).to.deep.equal(['reset:executed', 'validate:executed', 'uncordon:executed']);
    const un = steps()[2];
    expect(un?.details?.episode).to.include({ rule: 'gpu-xid-fatal', repaired: true });
    expect(await r.ladder.episodes()).to.have.length(0);
  });

  it('a GPU taint carried out as the cordon of its node (no DeviceTaintRule API) starts the ladder at the reset, as a cordon does', async () => {
    const { clock, cluster, jobs, r, run, steps } = setup();
    const c = xidCordon('gpu-5', 95, clock.now());
    const taint: Decision = { ...c, action: 'taint', target: { kind: 'Device', name: 'GPU-5f1c0a2b-0000-1111-2222-333344445555', node: 'gpu-5' } };
    const recs = (await r.remediator.submit([taint])).records;
    expect(recs.find((x) => x.action === 'cordon')?.decisionId).to.equal(`${taint.id}-node`);
    expect(cluster.getNode('gpu-5')?.unschedulable).to.equal(true);
    expect(jobs.jobs.size, 'the reset Job').to.equal(1);
    await run(40);
    expect(steps().map((x) => `${x.action}:${x.outcome}`)).to.deep.equal(['reset:executed', 'validate:executed', 'uncordon:executed']);
    expect(cluster.getNode('gpu-5')?.unschedulable).to.equal(false);
  });

  it('Xid 79 (RESTART_BM) starts at reboot; a failing reboot hands over with a critical page carrying the history', async () => {
    const { clock, r, run, steps } = setup(config(), (step) => step === 'reboot');
    await r.remediator.submit([xidCordon('gpu-4', 79, clock.now(), 'GPU has fallen off the bus.')]);
    await run(4);
    expect(steps().map((x) => `${x.action}:${x.outcome}`)).to.deep.equal(['reboot:executed', 'replace:executed']);
    const page = r.pager.sent.find((p) => p.severity === 'critical' && p.dedupKey === 'nodewarden/repair/gpu-4');
    expect(page, 'hand-over page').to.not.equal(undefined);
    expect(JSON.stringify(page?.details)).to.match(/reboot Job failed/);
  });

  it('no validation template: the repaired node stays cordoned for a person; their uncordon is recorded as resolved by a person', async () => {
    const { clock, cluster, r, run, steps } = setup(config({ validate: { template: null, timeout: '30m' } }));
    await r.remediator.submit([xidCordon('gpu-5', 95, clock.now())]);
    await run(60);
    expect(cluster.getNode('gpu-5')?.unschedulable).to.equal(true);
    expect(steps().map((x) => x.action)).to.deep.equal(['reset', 'page']);
    await cluster.api.patchNode('gpu-5', { spec: { unschedulable: null, taints: [] }, metadata: { annotations: { 'nodewarden.io/cordoned-by': null } } });
    await run(1);
    const closed = r.ledger.records.find((x) => x.guard === 'resolvedByPerson');
    expect(closed).to.include({ action: 'uncordon', outcome: 'suppressed' });
    expect(closed?.details?.episode).to.include({ end: 'resolved-by-person', repaired: true });
  });

  it('the kill switch holds the steps (denied, retried), and nothing is counted until it is lifted', async () => {
    const { clock, r, run, steps } = setup();
    await r.guard.pause('maintenance', 'alice');
    await r.remediator.submit([xidCordon('gpu-6', 95, clock.now())]);
    // the cordon itself is paused: nothing starts
    expect(steps()).to.have.length(0);
    await r.guard.resume();
    await r.remediator.submit([xidCordon('gpu-6', 95, clock.now() + 1)]);
    await r.guard.pause('maintenance', 'alice');
    await run(3);
    await r.guard.resume();
    await run(3);
    const s = steps().map((x) => `${x.action}:${x.outcome}`);
    expect(s[0]).to.equal('reset:executed');
    expect(s).to.include('validate:denied');
    expect(s).to.include('validate:executed');
  });

  it('ladder off: nothing is repaired, and a cordon a person undoes counts as undone without repair; MTTR and detect/isolate are observed per rule', async () => {
    const { clock, cluster, r, run, steps, registry } = setup({ ...config(), repair: { ...config().repair, enabled: false } });
    await r.remediator.submit([xidCordon('gpu-8', 95, clock.now())]);
    await run(5);
    expect(steps()).to.have.length(0);
    await cluster.api.patchNode('gpu-8', { spec: { unschedulable: null, taints: [] }, metadata: { annotations: { 'nodewarden.io/cordoned-by': null } } });
    await run(1);
    const text = await registry.metrics();
    expect(text).to.match(/nodewarden_cordons_undone_by_person_total\{rule="gpu-xid-fatal"\} 1/);
    expect(text).to.match(/nodewarden_time_to_isolate_seconds_count\{rule="gpu-xid-fatal"\} 1/);
    expect(text).to.match(/nodewarden_time_to_detect_seconds_sum\{rule="gpu-xid-fatal"\} 3/);
    expect(text).to.match(/nodewarden_time_to_return_seconds_count\{rule="gpu-xid-fatal",by="person"\} 1/);
  });

  it('state survives a replica: a second driver over the same store finishes the episode', async () => {
    const { clock, cluster, r, jobs } = setup();
    await r.remediator.submit([xidCordon('gpu-7', 95, clock.now())]);
    const cfg = config();
    const records: LedgerRecord[] = [];
    const second = new LadderDriver({
      store: r.store,
      policy: ladderPolicyFromConfig(cfg),
      submit: async (ds) => {
        const out = ladderView(await r.remediator.submit(ds));
        records.push(...out);
        return out;
      },
      view: cluster,
      jobs: createRepairJobWatch(jobs),
      clock,
      logger: silentLogger,
      ledger: [],
    });
    for (let i = 0; i < 40; i++) {
      clock.advance(M);
      await second.tick(true);
    }
    expect(cluster.getNode('gpu-7')?.unschedulable).to.equal(false);
    expect(records.map((x) => x.action)).to.include('uncordon');
  });
});

const GPU = 'GPU-5f1c0a2b-0000-1111-2222-333344445555';

/** The same Xid, isolated as one GPU (a DRA device taint) instead of the node. */
function xidTaint(node: string, code: number, at: number): Decision {
  const c = xidCordon(node, code, at);
  return { ...c, id: `t-${node}-${at}`, action: 'taint', target: { kind: 'Device', name: GPU, node } };
}

describe('repair ladder driver: GPU (device-taint) episodes', () => {
  it('a tainted GPU is reset, validated, and returned by untaint of that GPU (never an uncordon); the node is never cordoned', async () => {
    const { clock, cluster, r, run, steps } = setup(config(), () => false, true);
    const [rec] = (await r.remediator.submit([xidTaint('gpu-3', 95, clock.now())])).records;
    expect(rec).to.include({ action: 'taint', outcome: 'executed' });
    expect(cluster.getNode('gpu-3')?.taintedGpus).to.deep.equal([GPU]);
    expect(cluster.getNode('gpu-3')?.unschedulable).to.equal(false);
    await run(40);
    expect(steps().map((x) => `${x.action}:${x.outcome}`)).to.deep.equal(['reset:executed', 'validate:executed', 'untaint:executed']);
    const back = steps()[2];
    expect(back?.target).to.deep.equal({ kind: 'Device', name: GPU, node: 'gpu-3' });
    expect(back?.details?.episode).to.include({ scope: 'device', repaired: true });
    expect(cluster.getNode('gpu-3')?.taintedGpus).to.deep.equal([]);
    expect(cluster.getNode('gpu-3')?.unschedulable).to.equal(false);
    expect(await r.ladder.episodes()).to.have.length(0);
  });

  it("a person removing the GPU's taint is 'resolved by a person' (an untaint record), not a failure or an uncordon", async () => {
    const { clock, cluster, r, run, steps } = setup(config({ validate: { template: null, timeout: '30m' } }), () => false, true);
    await r.remediator.submit([xidTaint('gpu-5', 95, clock.now())]);
    await run(10);
    expect(steps().map((x) => x.action)).to.deep.equal(['reset', 'page']);
    expect(await r.ladder.episodes()).to.have.length(1);
    // the node's cordon state says nothing about the GPU: the episode stays open
    await run(5);
    expect(await r.ladder.episodes()).to.have.length(1);
    await cluster.deviceExecutor.execute({ ...xidTaint('gpu-5', 95, clock.now()), id: 'by-hand', action: 'untaint' });
    await run(1);
    const closed = r.ledger.records.find((x) => x.guard === 'resolvedByPerson');
    expect(closed).to.include({ action: 'untaint', outcome: 'suppressed' });
    expect(closed?.target).to.deep.equal({ kind: 'Device', name: GPU, node: 'gpu-5' });
    expect(closed?.details?.episode).to.include({ end: 'resolved-by-person', scope: 'device' });
    expect(await r.ladder.episodes()).to.have.length(0);
  });

  it("an uncordon of the node does not end a GPU's episode; an untaint of that GPU by a rule's clear does", async () => {
    const { clock, r, run } = setup(config({ validate: { template: null, timeout: '30m' } }), () => false, true);
    await r.remediator.submit([xidTaint('gpu-6', 95, clock.now())]);
    await run(5);
    await r.remediator.submit([{ ...xidCordon('gpu-6', 95, clock.now()), id: 'u1', action: 'uncordon' }]);
    expect(await r.ladder.episodes()).to.have.length(1);
    await r.remediator.submit([{ ...xidTaint('gpu-6', 95, clock.now()), id: 'u2', action: 'untaint', reason: 'cleared' }]);
    expect(await r.ladder.episodes()).to.have.length(0);
  });

  it('replay without device taints: a GPU taint still cordons the node, and an untaint executes (no missing executor)', async () => {
    const { clock, cluster, r } = setup();
    const [t] = (await r.remediator.submit([xidTaint('gpu-9', 95, clock.now())])).records;
    expect(t).to.include({ action: 'cordon', outcome: 'executed' });
    expect(cluster.getNode('gpu-9')?.unschedulable).to.equal(true);
    const [u] = (await r.remediator.submit([{ ...xidTaint('gpu-9', 95, clock.now()), id: 'u9', action: 'untaint' }])).records;
    expect(u).to.include({ action: 'untaint', outcome: 'executed' });
  });
});

/** An Xid 95 (RESET_GPU) on gpu-3's GPU, as the agent reports it. */
function xidEvent(id: string, at: number, gpu = GPU): EventEnvelope {
  return {
    v: 1,
    id,
    ts: new Date(at).toISOString(),
    node: 'gpu-3',
    type: 'gpu.xid',
    source: 'kmsg',
    labels: { pool: 'p' },
    data: { code: 95, gpu, pci: '0000:3b:00', message: 'Uncontained ECC error' },
  };
}

describe('repair ladder: a fault during the rule cooldown reaches the quiet period (held faults, ADR 0034)', () => {
  const T = Date.parse('2026-12-01T10:00:00Z');

  /** Replay (engine + replay remediator + ladder) of Xid 95 at T and again at T + 10 m, within gpu-xid-fatal's 1 h cooldown. */
  async function run(remediatorOf: (r: Remediator) => Pick<Remediator, 'submit' | 'heldFaults'>) {
    const { clock, cluster, r, steps } = setup();
    clock.set(T - 1000);
    const rules = loadRules(defaultRulesPath());
    const back: number[] = [];
    for await (const rec of replay({ events: [xidEvent('x1', T), xidEvent('x2', T + 10 * M)], rules, cluster, remediator: remediatorOf(r.remediator), config: config(), clock, tickRemediator: true, tickMs: 5000, until: T + 70 * M }))
      if (rec.action === 'uncordon' && rec.outcome === 'executed') back.push(Date.parse(rec.ts) - T);
    return { steps: steps().map((x) => x.action), back, cordoned: cluster.getNode('gpu-3')?.unschedulable };
  }

  it('Xid 95 again 10 m in (the rule cools down 1 h): no return at the end of the first quiet period; reboot, validation, a new quiet period, then the return', async () => {
    const { steps, back, cordoned } = await run((r) => r);
    expect(steps).to.deep.equal(['reset', 'validate', 'reboot', 'validate', 'uncordon']);
    expect(back).to.have.length(1);
    // the reboot started at 10 m, its validation passed at ~14 m: quiet until ~44 m, never at ~34 m
    expect(back[0]).to.be.at.least(44 * M);
    expect(cordoned).to.equal(false);
  });

  it('without the held faults (a remediator that does not take them: the old path) the same fault was swallowed and the node returned at ~34 m', async () => {
    const { steps, back } = await run((r) => ({ submit: (ds, o) => r.submit(ds, o) }));
    expect(steps).to.deep.equal(['reset', 'validate', 'uncordon']);
    expect(back[0]).to.be.below(40 * M);
  });
});

describe('repair ladder driver: held faults across replicas (ADR 0034)', () => {
  it("a replica that did not open the episode sees it on its tick and applies a held fault to it; held faults of nodes without an episode cost no store read", async () => {
    const { clock, cluster, r, jobs, run, steps } = setup();
    const reads: string[] = [];
    const store: DocStore = {
      read: (ns, id) => {
        reads.push(id);
        return r.store.read(ns, id);
      },
      write: (ns, id, doc, expected, ttl) => r.store.write(ns, id, doc, expected, ttl),
      remove: (ns, id, expected) => r.store.remove(ns, id, expected),
      ids: (ns) => r.store.ids(ns),
      claimOnce: (ns, id, ttl) => r.store.claimOnce(ns, id, ttl),
    };
    const b = new LadderDriver({ store, policy: ladderPolicyFromConfig(config()), submit: async (ds) => ladderView(await r.remediator.submit(ds)), view: cluster, jobs: createRepairJobWatch(jobs), clock, logger: silentLogger, catalogue: loadRules(defaultRulesPath()).xidCatalogue, ledger: [], tickEveryMs: 0 });
    const fault = (node: string): HeldFault => ({ rule: 'gpu-xid-fatal', node, gpu: 'GPU-5f1c0a2b-0000-1111-2222-333344445555', eventId: `e-${node}`, at: clock.now(), reason: 'gpu.xid Xid 95', xid: { code: 95, message: 'Xid 95', gpu: 'GPU-5f1c0a2b-0000-1111-2222-333344445555' } });
    await b.tick(true); // b's set: no open episode
    // replica a (the replay remediation's own driver) opens and runs the episode into its quiet period
    await r.remediator.submit([xidCordon('gpu-2', 95, clock.now())]);
    await run(6);
    expect((await r.ladder.episodes())[0]?.phase).to.equal('quiet');
    reads.length = 0;
    expect(await b.held([fault('gpu-2')]), 'not in b\'s set yet: dropped').to.deep.equal([]);
    expect(reads).to.deep.equal([]);
    await Promise.all([b.tick(true), b.tick(true)]); // overlapping ticks of one driver (each keeps its own bookkeeping)
    reads.length = 0;
    expect(await b.held([fault('gpu-9')])).to.deep.equal([]);
    expect(reads, 'a node without an episode: no read').to.deep.equal([]);
    const recs = await b.held([fault('gpu-2'), fault('gpu-2')]);
    expect(recs.map((x) => `${x.action}:${x.outcome}`)).to.deep.equal(['reboot:executed']);
    expect(reads, "one read for the two faults of one GPU, one for the reboot's record").to.deep.equal(['gpu-2', 'gpu-2']);
    expect(steps().map((x) => x.action)).to.deep.equal(['reset', 'validate', 'reboot']);
    // a driver that never ticked drops nothing
    const c = new LadderDriver({ store, policy: ladderPolicyFromConfig(config()), submit: async (ds) => ladderView(await r.remediator.submit(ds)), view: cluster, jobs: createRepairJobWatch(jobs), clock, logger: silentLogger, ledger: [] });
    reads.length = 0;
    expect(await c.held([fault('gpu-9')])).to.deep.equal([]);
    expect(reads).to.deep.equal(['gpu-9']);
  });
});

describe('repair ladder: a second faulty GPU on the node gets its own episode (ADR 0034)', () => {
  it('GPU A and GPU B tainted one after the other: A is reset, validated and untainted, then B the same; neither is lost', async () => {
    const GPU_B = 'GPU-5f1c0a2b-0000-1111-2222-bbbbbbbbbbbb';
    const cfg = config();
    const { clock, cluster, r, run, steps } = setup({ ...cfg, guard: { ...cfg.guard, maxTaintedGpusPerNode: '4' } }, () => false, true);
    await r.remediator.submit([xidTaint('gpu-3', 95, clock.now())]);
    clock.advance(20_000);
    const b = xidTaint('gpu-3', 95, clock.now());
    const [rec] = (await r.remediator.submit([{ ...b, id: 't-b', target: { kind: 'Device', name: GPU_B, node: 'gpu-3' }, evidence: { ...b.evidence, xid: { code: 95, message: 'Xid 95', gpu: GPU_B } } }])).records;
    expect(rec).to.include({ action: 'taint', outcome: 'executed' });
    expect(cluster.getNode('gpu-3')?.taintedGpus).to.have.members([GPU, GPU_B]);
    await run(80);
    const s = steps();
    expect(s.map((x) => `${x.action}:${x.target.name}`)).to.deep.equal([`reset:gpu-3`, `validate:gpu-3`, `untaint:${GPU}`, `reset:gpu-3`, `validate:gpu-3`, `untaint:${GPU_B}`]);
    expect(s.filter((x) => x.action === 'reset').map((x) => (x.target as { gpu?: string }).gpu)).to.deep.equal([GPU, GPU_B]);
    expect(cluster.getNode('gpu-3')?.taintedGpus).to.deep.equal([]);
    expect(await r.ladder.episodes()).to.have.length(0);
  });
});

describe('repair ladder: back in service ends the isolating rule episode, so a later fault isolates again (ADR 0034)', () => {
  const T = Date.parse('2026-12-01T10:00:00Z');
  /** `ladder:<node>:<detectedAt>[:<gpu>]:<seq>:<action>` → the episode id. */
  const episodeOf = (r: LedgerRecord): string => (r.decisionId ?? '').split(':').slice(1, -2).join(':');
  const at = (r: LedgerRecord): number => Date.parse(r.ts) - T;

  it('returned by the ladder at ~34 m, Xid 95 again at 40 m (gpu-xid-fatal still cools down until 60 m): cordoned again at once, a new episode with its own id, repaired and returned again', async () => {
    const { clock, cluster, r, steps } = setup();
    clock.set(T - 1000);
    const rules = loadRules(defaultRulesPath());
    const recs: LedgerRecord[] = [];
    for await (const rec of replay({ events: [xidEvent('x1', T), xidEvent('x2', T + 40 * M)], rules, cluster, remediator: r.remediator, config: config(), clock, tickRemediator: true, tickMs: 5000, until: T + 90 * M })) recs.push(rec);
    const cordons = recs.filter((x) => x.action === 'cordon' && x.outcome === 'executed');
    const back = recs.filter((x) => x.action === 'uncordon' && x.outcome === 'executed');
    expect(cordons.map(at)).to.have.length(2);
    expect(at(cordons[1] as LedgerRecord), 'the second fault isolates the node when it happens, not when the cooldown ends').to.be.within(40 * M, 40 * M + 10_000);
    expect(back).to.have.length(2);
    expect(at(back[0] as LedgerRecord)).to.be.below(40 * M);
    expect(at(back[1] as LedgerRecord)).to.be.above(40 * M);
    const episodes = [...new Set(steps().map(episodeOf))];
    expect(episodes, 'two ladder episodes, each with its own id').to.have.length(2);
    expect(steps().filter((x) => episodeOf(x) === episodes[1]).map((x) => x.action)).to.deep.equal(['reset', 'validate', 'uncordon']);
    expect(cluster.getNode('gpu-3')?.unschedulable).to.equal(false);
    // the fault page of the second fault too: the rule fired through its normal path
    expect(recs.filter((x) => x.rule === 'gpu-xid-fatal' && x.action === 'page' && x.decisionId?.startsWith('ladder:') !== true).length).to.equal(2);
  });

  it("a person's uncordon (resolved by a person) ends it too: Xid 95 again 20 m later, within the cooldown, cordons again and starts a new episode", async () => {
    const { clock, cluster, r, steps } = setup();
    clock.set(T - 1000);
    const rules = loadRules(defaultRulesPath());
    const store = new MemoryStateStore();
    const recs: LedgerRecord[] = [];
    const opts = { rules, cluster, remediator: r.remediator, config: config(), clock, tickRemediator: true, tickMs: 5000, store };
    for await (const rec of replay({ ...opts, events: [xidEvent('x1', T)], until: T + 5 * M })) recs.push(rec);
    expect(cluster.getNode('gpu-3')?.unschedulable).to.equal(true);
    // a person uncordons the node during the reset: a likely false positive
    await cluster.api.patchNode('gpu-3', { spec: { unschedulable: null, taints: [] }, metadata: { annotations: { 'nodewarden.io/cordoned-by': null } } });
    clock.set(T + 6 * M);
    recs.push(...(await r.remediator.submit([])).records); // the ladder's tick sees it
    for await (const rec of replay({ ...opts, events: [xidEvent('x2', T + 20 * M)], until: T + 21 * M })) recs.push(rec);
    expect(recs.find((x) => x.guard === 'resolvedByPerson')?.details?.episode).to.include({ end: 'resolved-by-person' });
    const cordons = recs.filter((x) => x.action === 'cordon' && x.outcome === 'executed');
    expect(cordons.map(at)).to.have.length(2);
    expect(at(cordons[1] as LedgerRecord)).to.be.within(20 * M, 20 * M + 10_000);
    expect(cluster.getNode('gpu-3')?.unschedulable).to.equal(true);
    const episodes = [...new Set(steps().filter((x) => x.guard !== 'resolvedByPerson').map(episodeOf))];
    expect(episodes).to.have.length(2);
    expect((await r.ladder.episodes()).map((e) => e.id)).to.deep.equal([episodes[1]]);
  });
});
