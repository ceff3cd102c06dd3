import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { loadConfig } from '../../../adapters/config-file.js';
import type { Decision } from '../../../core/decision.js';
import { silentLogger } from '../../../core/logger.js';
import { createRuleEngine } from '../../../rules/engine/engine.js';
import { defaultRulesPath, loadRules } from '../../../rules/language/load.js';
import { MemoryStateStore } from '../../../rules/store/memory-store.js';
import { fileOnlyToggles } from '../../../rules/toggles/port.js';
import type { WireDaemonSet } from '../../../remediations/kube/wire.js';
import { createSimulatedCluster, parseClusterYaml } from '../../../remediations/simulated/index.js';
import { FaultInjector, LLAMA3_CAUSES, LLAMA3_HOSTS, LLAMA3_TOTAL, LLAMA3_WINDOW_DAYS } from '../../../demo/faults.js';
import { buildFleet, DEFAULT_FLEET, fleetObjects, rng } from '../../../demo/fleet.js';

const T0 = Date.parse('2026-03-01T00:00:00Z');

describe('demo fault injector', () => {
  it('carries the Llama 3 table: 419 interruptions in 54 days on 2,048 hosts', () => {
    expect(LLAMA3_TOTAL).to.equal(419);
    expect(LLAMA3_WINDOW_DAYS).to.equal(54);
    expect(LLAMA3_HOSTS).to.equal(2048);
    const nodes = buildFleet({ ...DEFAULT_FLEET, now: T0 }, 1);
    const inj = new FaultInjector({ nodes, rand: rng(1), amplification: 1 });
    expect(inj.publishedRatePerHour()).to.be.closeTo((419 / (54 * 24 * 2048)) * 200, 1e-12);
  });

  it('injects every cause at its published rate over a long virtual run (fixed seed)', () => {
    // Llama 3's own fleet size and window, rates ×20 so each cause has enough arrivals to check.
    const nodes = buildFleet({ pools: { h100: LLAMA3_HOSTS }, zones: ['z1'], gpusPerNode: 1, now: T0 }, 3);
    const amplification = 20;
    const inj = new FaultInjector({ nodes, rand: rng(12345), amplification, background: false });
    const counts = new Map<string, number>();
    inj.step(T0);
    const hour = 3_600_000;
    for (let t = T0 + hour; t <= T0 + LLAMA3_WINDOW_DAYS * 24 * hour; t += hour) {
      for (const c of inj.step(t).causes) counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    let total = 0;
    for (const c of LLAMA3_CAUSES) {
      const expected = c.count * amplification;
      const got = counts.get(c.cause) ?? 0;
      total += got;
      // Poisson: within 4 standard deviations (+1 for the smallest causes)
      expect(Math.abs(got - expected), `${c.cause}: ${got} vs ${expected}`).to.be.at.most(4 * Math.sqrt(expected) + 1);
    }
    const expectedTotal = LLAMA3_TOTAL * amplification;
    expect(Math.abs(total - expectedTotal) / expectedTotal).to.be.below(0.05);
  });

  it('turns each cause into the signal a node sees, and none for the invisible ones', () => {
    const nodes = buildFleet({ ...DEFAULT_FLEET, now: T0 }, 5);
    const inj = new FaultInjector({ nodes, rand: rng(99), amplification: 5000, background: false });
    inj.step(T0);
    const xidCodes = new Set(LLAMA3_CAUSES.flatMap((c) => (c.signal?.kind === 'xid' ? c.signal.codes : [])));
    let invisible = 0;
    let xids = 0;
    let down = 0;
    for (let t = T0 + 60_000; t <= T0 + 48 * 3_600_000; t += 60_000) {
      const r = inj.step(t);
      invisible += r.causes.filter((c) => LLAMA3_CAUSES.find((x) => x.cause === c)?.signal === null).length;
      down += r.hostsDown.length;
      for (const e of r.events) {
        if (e.type === 'gpu.xid') {
          xids++;
          expect(xidCodes.has((e.data as { code: number }).code)).to.equal(true);
        }
        expect(['gpu.xid', 'gpu.health', 'runtime.containerd']).to.include(e.type);
      }
    }
    expect(invisible, 'switch/NIC/SDC faults happened').to.be.greaterThan(0);
    expect(xids).to.be.greaterThan(0);
    expect(down, 'host-level causes take hosts down').to.be.greaterThan(0);
  });

  it('is reproducible for a seed', () => {
    const run = (): string[] => {
      const nodes = buildFleet({ ...DEFAULT_FLEET, now: T0 }, 7);
      const inj = new FaultInjector({ nodes, rand: rng(7), amplification: 2000 });
      const out: string[] = [];
      for (let t = T0; t <= T0 + 30 * 60_000; t += 1000) for (const e of inj.step(t).events) out.push(`${e.id} ${e.type} ${e.node} ${JSON.stringify(e.data)}`);
      return out;
    };
    const a = run();
    expect(a.length).to.be.greaterThan(1000);
    expect(run()).to.deep.equal(a);
  });

  it('storms hardware Xids that the shipped pack cordons for, and correlates with the driver rollout once', async () => {
    const config = loadConfig({});
    const rules = loadRules(defaultRulesPath());
    const clock = new ManualClock(T0);
    const nodes = buildFleet({ ...DEFAULT_FLEET, now: T0 }, 42);
    const list = fleetObjects(nodes, { now: T0 - 86_400_000, groupLabel: config.labels.group, driverRevisions: 3 });
    const cluster = createSimulatedCluster(parseClusterYaml(JSON.stringify(list)), { clock });
    // a new driver revision, as the DaemonSet controller records it
    const ds = cluster.api.get<WireDaemonSet>('DaemonSet', 'gpu-operator', 'nvidia-driver-daemonset');
    const template = structuredClone(ds.spec?.template ?? {});
    (template.spec as { containers: Array<{ image: string }> }).containers[0]!.image = 'nvcr.io/nvidia/driver:570.86.15-ubuntu22.04';
    await cluster.api.patchDaemonSet('gpu-operator', 'nvidia-driver-daemonset', { spec: { template } });
    expect(cluster.workloadRevisions({ kind: 'DaemonSet', namespace: 'gpu-operator', name: 'nvidia-driver-daemonset' }).map((r) => r.revision)).to.deep.equal([1, 2, 3, 4]);

    const engine = createRuleEngine({ rules, store: new MemoryStateStore(), cluster, toggles: fileOnlyToggles, clock, logger: silentLogger, config });
    const inj = new FaultInjector({ nodes, rand: rng(1), amplification: 1, background: false });
    const at = T0 + 10 * 60_000;
    const storm = inj.storm('h100-train', 24, at, { zone: 'us-west-2a', spacingMs: 5000 });
    expect(storm).to.have.length(24);
    expect(new Set(storm.map((e) => e.node)).size).to.equal(24);
    for (const e of storm) {
      expect(e.labels.pool).to.equal('h100-train');
      expect(e.labels.zone).to.equal('us-west-2a');
      expect([79, 119]).to.include((e.data as { code: number }).code);
    }
    const decisions: Decision[] = [];
    for (const e of storm) {
      clock.set(Date.parse(e.ts));
      decisions.push(...(await engine.process([e])));
    }
    // Xid 79 (RESTART_BM) cordons the node; Xid 119 (RESET_GPU) taints the GPU the event names (docs/gpu-scope.md)
    const isolations = decisions.filter((d) => d.action === 'cordon' || d.action === 'taint');
    expect(isolations.map((d) => (d.target.kind === 'Device' ? d.target.node : d.target.name)).sort()).to.deep.equal(storm.map((e) => e.node).sort());
    for (const e of storm) {
      const d = isolations.find((x) => (x.target.kind === 'Device' ? x.target.node : x.target.name) === e.node);
      const { code, gpu } = e.data as { code: number; gpu: string };
      expect(d && [d.rule, d.action, d.target.name], e.node).to.deep.equal(code === 79 ? ['gpu-xid-node-fatal', 'cordon', e.node] : ['gpu-xid-fatal', 'taint', gpu]);
    }
    expect(isolations.filter((d) => d.action === 'taint').length).to.be.greaterThan(0);
    const rollbacks = decisions.filter((d) => d.action === 'rollback');
    expect(rollbacks).to.have.length(1);
    expect(rollbacks[0]?.target).to.deep.equal({ kind: 'DaemonSet', namespace: 'gpu-operator', name: 'nvidia-driver-daemonset' });
    expect(rollbacks[0]?.params?.toRevision).to.equal(3);
    expect(decisions.filter((d) => d.action === 'page' && d.severity === 'critical').length).to.be.greaterThan(24);
  });
});
