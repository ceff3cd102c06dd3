/** A ControlBackend over memory toggles and a fake guard, for control API unit tests. */
import type { Clock } from '../../../core/clock.js';
import type { ClusterView, NodeInfo } from '../../../core/cluster.js';
import type { GuardControl, GuardStatus } from '../../../remediations/ports.js';
import { createControlBackend } from '../../../control/backend.js';
import { MemoryLedger } from '../../../remediations/ledger/memory-ledger.js';
import { fanOutLedger } from '../../../remediations/ledger/store.js';
import type { ControlBackend } from '../../../control/api.js';
import { MemoryRuleToggles } from '../../../rules/toggles/memory-toggles.js';
import { ToggleService } from '../../../rules/toggles/toggle-service.js';

export class FakeGuard implements GuardControl {
  paused: { reason: string; by: string; at: number } | null = null;
  constructor(private readonly clock: Clock) {}
  pause(reason: string, by: string): Promise<void> {
    this.paused = { reason, by, at: this.clock.now() };
    return Promise.resolve();
  }
  resume(): Promise<void> {
    this.paused = null;
    return Promise.resolve();
  }
  status(): Promise<GuardStatus> {
    return Promise.resolve({
      at: this.clock.now(),
      paused: this.paused,
      fleet: { scope: 'fleet', total: 100, unavailable: 2, reserved: 1, gpuWeight: 0.25, limit: 5 },
      groups: [{ scope: 'pool=h100-train', total: 40, unavailable: 2, reserved: 0, gpuWeight: 0.25, limit: 8 }],
      gpus: [{ node: 'n1', tainted: ['GPU-a', 'GPU-b'], gpus: 8, weight: 0.25, cap: 4 }],
      rateLimits: [{ action: 'cordon', limit: 10, windowMs: 600_000, used: 3, remaining: 7 }],
      breakers: [{ action: 'cordon', state: 'closed', failures: 0 }],
    });
  }
}

/** Four nodes of two pools: healthy, cordoned by nodewarden, cordoned by a person, NotReady. */
export const FAKE_NODES: NodeInfo[] = [
  { name: 'n1', labels: { 'nodewarden.io/pool': 'h100-train' }, unschedulable: false, ready: true, cordonedByNodewarden: false },
  { name: 'n2', labels: { 'nodewarden.io/pool': 'h100-train' }, unschedulable: true, ready: true, cordonedByNodewarden: true },
  { name: 'n3', labels: { 'nodewarden.io/pool': 'a100-train' }, unschedulable: true, ready: true, cordonedByNodewarden: false },
  { name: 'n4', labels: {}, unschedulable: false, ready: false, cordonedByNodewarden: false },
];

export const fakeCluster: ClusterView = {
  listNodes: () => FAKE_NODES,
  getNode: (name) => FAKE_NODES.find((n) => n.name === name),
  workloadRevisions: () => [],
};

export function fakeBackend(clock: Clock): { backend: ControlBackend; guard: FakeGuard; audit: MemoryLedger; ledger: MemoryLedger; toggles: MemoryRuleToggles } {
  const toggles = new MemoryRuleToggles(clock);
  // a second ledger writer (the Kafka topic's place): what the operators' changes appended
  const audit = new MemoryLedger(100_000, { name: 'audit' });
  const guard = new FakeGuard(clock);
  const ledger = new MemoryLedger();
  const backend = createControlBackend({
    rules: [
      { id: 'gpu-xid-fatal', description: 'Hardware Xid', severity: 'critical', enabled: true, source: 'pack/gpu.yaml' },
      { id: 'conntrack-full', description: 'conntrack near full', severity: 'warning', enabled: false, source: 'pack/net.yaml' },
    ],
    toggles,
    toggleService: new ToggleService(toggles, fanOutLedger([audit, ledger]), clock),
    audit: fanOutLedger([audit, ledger]),
    guard,
    ledger,
    clock,
    cluster: fakeCluster,
    groupLabel: 'nodewarden.io/pool',
  });
  return { backend, guard, audit, ledger, toggles };
}
