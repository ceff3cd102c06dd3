import { expect } from 'chai';
import { ManualClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import type { EventEnvelope } from '../../../core/envelope.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../adapters/metrics.js';
import { createRuleEngine } from '../../../rules/engine/engine.js';
import type { RuleEngineOptions } from '../../../rules/engine/engine.js';
import { defaultRulesPath, loadRules } from '../../../rules/language/load.js';
import { createStaticCluster } from '../../../rules/replay/standin.js';
import { MemoryStateStore } from '../../../rules/store/memory-store.js';
import type { RuleToggles } from '../../../rules/toggles/port.js';
import type { StateStore } from '../../../rules/store/state-store.js';
import { fileOnlyToggles } from '../../../rules/toggles/port.js';
import { ruleEngineMetrics } from '../../../rules/service/engine-metrics.js';

const T0 = Date.parse('2026-11-21T10:00:00.000Z');
const xid = (id: string, node: string, dt: number, code = 79): EventEnvelope => ({
  v: 1,
  id,
  ts: new Date(T0 + dt).toISOString(),
  node,
  type: 'gpu.xid',
  source: 'kmsg',
  labels: { pool: 'h100' },
  data: { code, pci: '0000:3b:00', message: 'GPU has fallen off the bus.' },
});
const containerd = (id: string, node: string, dt: number, state: string): EventEnvelope => ({
  v: 1,
  id,
  ts: new Date(T0 + dt).toISOString(),
  node,
  type: 'runtime.containerd',
  source: 'grpc',
  labels: {},
  data: { state },
});

function make(over: Partial<RuleEngineOptions> = {}) {
  const opts: RuleEngineOptions = {
    rules: loadRules(defaultRulesPath()),
    store: new MemoryStateStore(),
    cluster: createStaticCluster([], []),
    toggles: fileOnlyToggles,
    clock: new ManualClock(T0),
    logger: silentLogger,
    config: DEFAULT_CONFIG,
    ...over,
  };
  return { engine: createRuleEngine(opts), opts };
}

describe('rules engine', function () {
  it('decision ids are stable: re-processing after a crash (state lost) yields the same ids', async function () {
    const a = await make().engine.process([xid('e1', 'n1', 0)]);
    const b = await make().engine.process([xid('e1', 'n1', 0)]);
    expect(a.map((d) => d.action)).to.deep.equal(['cordon', 'page']);
    expect(b.map((d) => d.id)).to.deep.equal(a.map((d) => d.id));
    expect(new Set(a.map((d) => d.id)).size).to.equal(2);
  });

  it('re-processing an event whose firing was recorded re-derives the same decisions (the guard then refuses a second action); another event at the same time decides nothing', async function () {
    const store = new MemoryStateStore();
    const first = await make({ store }).engine.process([xid('e1', 'n1', 0)]);
    expect(first).to.have.length(2);
    // a new replica, same shared store, same event redelivered: same episode, same decision ids
    expect(await make({ store }).engine.process([xid('e1', 'n1', 0)])).to.deep.equal(first);
    expect(await make({ store }).engine.process([xid('e2', 'n1', 0)])).to.deep.equal([]);
  });

  it('duplicate deliveries of one event never count twice toward a window', async function () {
    const e = (id: string, dt: number): EventEnvelope => ({ ...xid(id, 'n1', dt, 13), data: { code: 13, pci: '0000:3b:00', message: 'app' } });
    const { engine } = make();
    expect(await engine.process([e('a', 0), e('a', 0), e('b', 1000), e('b', 1000)])).to.deep.equal([]);
    const d = await engine.process([e('c', 2000)]);
    expect(d.map((x) => x.rule)).to.deep.equal(['gpu-xid-application-repeated']);
  });

  it('runtime toggles win over the file: disabled → silent, and no state is kept meanwhile', async function () {
    let off = true;
    const toggles: RuleToggles = { ...fileOnlyToggles, isEnabled: (rule, fileEnabled) => (rule === 'gpu-xid-node-fatal' ? !off : fileEnabled) };
    const { engine } = make({ toggles });
    expect(await engine.process([xid('e1', 'n1', 0)])).to.deep.equal([]);
    off = false;
    expect((await engine.process([xid('e2', 'n1', 1000)])).map((d) => d.action)).to.deep.equal(['cordon', 'page']);
  });

  it('live ticks fire sustained rules on the injected clock and decisions carry evidence', async function () {
    const clock = new ManualClock(T0);
    const registry = createRegistry('engine-test');
    const { engine } = make({ clock, metrics: ruleEngineMetrics(registry) });
    expect(await engine.process([containerd('c1', 'n7', 0, 'unreachable')])).to.deep.equal([]);
    clock.set(T0 + 59_000);
    expect(await engine.tick(clock.now())).to.deep.equal([]);
    clock.set(T0 + 60_000);
    const d = await engine.tick(clock.now());
    expect(d.map((x) => `${x.rule}/${x.action}/${x.target.name}`)).to.deep.equal(['containerd-unresponsive/cordon/n7', 'containerd-unresponsive/page/n7']);
    expect(d[0]!.at).to.equal(T0 + 60_000);
    expect(d[1]!.dedupKey).to.equal('nodewarden/containerd-unresponsive/n7');
    expect(d[1]!.params).to.deep.equal({ runbook: 'docs/runbooks/containerd-unresponsive.md' });
    expect(d[0]!.evidence).to.include({ scope: 'n7' });
    const text = await registry.metrics();
    expect(text).to.match(/nodewarden_rules_decisions_total\{rule="containerd-unresponsive",action="cordon",component="engine-test"\} 1/);
    // a second engine on the same registry reuses the metric
    make({ metrics: ruleEngineMetrics(registry) });
  });

  it('group decisions carry the group labels; rollback targets the watched DaemonSet and its previous revision', async function () {
    const cluster = createStaticCluster(
      [],
      [
        { kind: 'DaemonSet', namespace: 'gpu-operator', name: 'nvidia-driver-daemonset', revision: 3, createdAt: T0 - 86_400_000 },
        { kind: 'DaemonSet', namespace: 'gpu-operator', name: 'nvidia-driver-daemonset', revision: 4, createdAt: T0 - 600_000 },
      ],
    );
    const { engine } = make({ cluster, toggles: { ...fileOnlyToggles, isEnabled: (r) => r === 'gpu-driver-rollout-regression' } });
    const d = await engine.process([xid('1', 'a', 0), xid('2', 'b', 1000), xid('3', 'c', 2000)]);
    const rb = d.find((x) => x.action === 'rollback')!;
    expect(rb.target).to.deep.equal({ kind: 'DaemonSet', name: 'nvidia-driver-daemonset', namespace: 'gpu-operator' });
    expect(rb.params).to.deep.equal({ toRevision: 3, fromRevision: 4 });
    expect(rb.group).to.deep.equal({ pool: 'h100' });
    expect(rb.evidence).to.include({ count: 3 });
    expect(rb.evidence!.nodes).to.deep.equal(['a', 'b', 'c']);
  });

  it('concurrent batches on an asynchronous store do not mix their state', async function () {
    const mem = new MemoryStateStore();
    // an async-only store (like Redis): no execSync, results arrive later
    const slow: StateStore = {
      exec: (ops) => new Promise((r) => setTimeout(() => r(mem.execSync(ops)), 5)),
      trim: () => mem.trim(),
      close: () => Promise.resolve(),
    };
    const { engine } = make({ store: slow });
    const [a, b] = await Promise.all([
      engine.process([containerd('c1', 'n1', 0, 'serving'), xid('x1', 'n1', 0)]),
      engine.process([xid('x2', 'n2', 0), { ...xid('x3', 'n3', 0, 13), data: { code: 13, pci: null, message: 'app' } }]),
    ]);
    expect(a.map((d) => `${d.action}/${d.target.name}`)).to.deep.equal(['cordon/n1', 'page/n1']);
    expect(b.map((d) => `${d.rule}/${d.action}/${d.target.name}`)).to.deep.equal(['gpu-xid-node-fatal/cordon/n2', 'gpu-xid-node-fatal/page/n2']);
  });

  it('held faults (ADR 0034): an isolating rule matched again during its cooldown hands the event on, with its GPU and Xid; a page-only rule never does', async function () {
    const { engine } = make();
    const gpuXid = (id: string, dt: number, gpu: string, code = 95): EventEnvelope => ({ ...xid(id, 'n1', dt, code), data: { code, gpu, pci: '0000:3b:00', message: 'Uncontained ECC error' } });
    const first = await engine.evaluate([gpuXid('e1', 0, 'GPU-aa01')]);
    expect(first.decisions.map((d) => d.action)).to.deep.equal(['taint', 'page']);
    expect(first.heldFaults, 'the firing itself is no held fault').to.deep.equal([]);
    // 20 minutes later, the same GPU: the rule cools down (1 h); the other GPU fires its own scope
    const again = await engine.evaluate([gpuXid('e2', 20 * 60_000, 'GPU-aa01'), gpuXid('e3', 20 * 60_000 + 1, 'GPU-bb02')]);
    expect(again.decisions.filter((d) => d.action === 'taint').map((d) => d.target.name)).to.deep.equal(['GPU-bb02']);
    expect(again.heldFaults).to.deep.equal([
      { rule: 'gpu-xid-fatal', node: 'n1', gpu: 'GPU-aa01', eventId: 'e2', at: T0 + 20 * 60_000, reason: 'gpu.xid Xid 95', xid: { code: 95, message: 'Uncontained ECC error', gpu: 'GPU-aa01' } },
    ]);
    // process() is evaluate() without them
    expect(await engine.process([gpuXid('e4', 21 * 60_000, 'GPU-aa01')])).to.deep.equal([]);
    // an informational Xid (page-only rule) in its cooldown: no held fault
    const info = (id: string, dt: number): EventEnvelope => ({ ...xid(id, 'n1', dt, 63), data: { code: 63, pci: '0000:3b:00', message: 'row remapping' } });
    expect((await engine.evaluate([info('i1', 22 * 60_000)])).decisions.map((d) => `${d.rule}:${d.action}`)).to.deep.equal(['gpu-xid-informational:page']);
    expect((await engine.evaluate([info('i2', 23 * 60_000)])).heldFaults).to.deep.equal([]);
  });
});
