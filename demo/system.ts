/**
 * The whole of nodewarden in one process, on embedded defaults, in virtual
 * time: the simulated fleet as a simulated cluster, an in-memory bus into the
 * engine's real batch processor (validation, dedupe, dead letters), the real
 * rule engine on the shipped pack with an in-memory state store and toggles,
 * and the real remediator with the memory guard, the simulated cluster's
 * executors and recording pagers.
 *
 * Nothing here reads the wall clock: `advance(to)` moves virtual time in
 * fixed steps, so a seed reproduces the same run however fast the host is.
 * The CLI (`cli/commands/demo.ts`) maps wall time to virtual time and adds
 * the HTTP endpoint, the local host's conntrack collector and the terminal.
 */
import { eventTimeBounds } from '../core/event-time.js';
import { ManualClock } from '../core/clock.js';
import type { Clock } from '../core/clock.js';
import { MemoryEventBus } from './memory-bus.js';
import { isUnavailable } from '../core/cluster.js';
import type { NodewardenConfig } from '../core/config.js';
import type { ActionKind, LedgerRecord, Outcome } from '../core/decision.js';
import { ACTIONS, OUTCOMES } from '../core/decision.js';
import { parseDuration } from '../core/duration.js';
import type { EventEnvelope } from '../core/envelope.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Registry } from '../adapters/metrics.js';
import { Counter, Gauge } from 'prom-client';
import type { RuleSet } from '../rules/language/types.js';
import { createRuleEngine } from '../rules/engine/engine.js';
import { MemoryStateStore } from '../rules/store/memory-store.js';
import { BatchProcessor } from '../rules/service/batch-processor.js';
import { MemoryDeadLetterSink } from '../rules/service/dead-letter.js';
import { MemoryDeduper } from '../rules/service/dedupe.js';
import { engineServiceMetrics } from '../rules/service/metrics.js';
import { ruleEngineMetrics } from '../rules/service/engine-metrics.js';
import type { RawMessage } from '../rules/service/ports.js';
import { MemoryRuleToggles } from '../rules/toggles/memory-toggles.js';
import { ToggleService } from '../rules/toggles/toggle-service.js';
import { createOutcomeMetrics } from '../remediations/ladder/metrics.js';
import { createReplayRemediation } from '../remediations/index.js';
import type { Pager, PageRequest, ReplayRemediation } from '../remediations/index.js';
import type { GuardStatus } from '../remediations/ports.js';
import { budgetFor } from '../remediations/guard/policy.js';
import { createSimulatedCluster, parseClusterYaml } from '../remediations/simulated/index.js';
import type { SimulatedCluster } from '../remediations/simulated/index.js';
import type { PodTemplate, WireDaemonSet, WireNode } from '../remediations/kube/wire.js';
import { createControlBackend } from '../control/backend.js';
import type { ControlBackend } from '../control/api.js';
import type { LedgerEntry } from '../remediations/ledger/entry.js';
import { isAudit } from '../remediations/ledger/entry.js';
import { FaultInjector, LLAMA3_CAUSES } from './faults.js';
import type { CauseSignal } from './faults.js';
import { buildFleet, DEFAULT_FLEET, driverVersion, fleetObjects, rng } from './fleet.js';
import type { FleetNode } from './fleet.js';

export const DRIVER_DS = { kind: 'DaemonSet' as const, namespace: 'gpu-operator', name: 'nvidia-driver-daemonset' };
/** The simulated on-call answers an approval request (Slack Approve button) after this much virtual time. */
const ONCALL_APPROVES_AFTER_MS = 2 * 60_000;
/** Revisions the fleet's driver DaemonSet has at start; the storyline rolls out the next one. */
const INITIAL_DRIVER_REVISIONS = 3;

/** The scripted part of the demo, in virtual ms after the start. */
export interface Storyline {
  /** A new revision of the GPU driver DaemonSet is rolled out. */
  rolloutAfterMs: number;
  /** Hardware Xids on `stormNodes` nodes of one pool and zone, `stormSpacingMs` apart. */
  stormAfterMs: number;
  stormPool: string;
  stormZone: string;
  stormNodes: number;
  stormSpacingMs: number;
  /** A malformed message arrives (an old agent's), to show dead-lettering; omit for none. */
  malformedAfterMs?: number;
}

/** The storyline at a given speed: rollout ~15 s of wall time in, storm ~25 s in (never more than 30 virtual min apart). */
export function defaultStoryline(speed: number): Storyline {
  const rollout = Math.round(15_000 * speed);
  const storm = Math.min(Math.round(25_000 * speed), rollout + 30 * 60_000);
  return {
    rolloutAfterMs: rollout,
    stormAfterMs: storm,
    stormPool: 'h100-train',
    stormZone: 'us-west-2a',
    stormNodes: 24,
    stormSpacingMs: 5_000,
    malformedAfterMs: Math.round(20_000 * speed),
  };
}

export interface DemoSystemOptions {
  config: NodewardenConfig;
  rules: RuleSet;
  seed: number;
  /** Multiplier of the published fault rates. */
  amplification: number;
  /** Virtual start time (ms since epoch). */
  start: number;
  /** `false`: background faults only. */
  storyline: Storyline | false;
  registry: Registry;
  logger: Logger;
  /** Real pagers besides the recording one (opt-in). */
  pagers?: readonly Pager[];
  dryRun?: boolean;
  /** Virtual step (default 1 s): injection, delivery and engine ticks happen at this cadence. */
  stepMs?: number;
  /** Denial grouping window in virtual time (default 3 min). */
  denialWindowMs?: number;
  /** Called for every ledger record, in order. */
  onRecord?: (r: LedgerRecord) => void;
  /** Called for every storyline / repair crew / host note. */
  onNote?: (n: DemoNote) => void;
}

export interface DemoNote {
  /** virtual ms */
  at: number;
  kind: 'storyline' | 'crew' | 'host' | 'info';
  text: string;
}

/** What the summary shows; everything counts since the start. */
export interface DemoStats {
  start: number;
  now: number;
  events: number;
  invalid: number;
  /** Reason of the latest dead letter. */
  lastDeadLetter: string | null;
  duplicates: number;
  decisions: Record<ActionKind, Record<Outcome, number>>;
  deniedBy: Record<string, number>;
  ledgerTail: LedgerRecord[];
  causes: Array<{ cause: string; count: number; signal: CauseSignal['kind'] | null }>;
  faults: number;
  pages: { triggers: number; resolves: number; open: number };
  /** Executed rollbacks of the watched driver DaemonSet, and every rollback decision. */
  rollbacks: { executed: number; decided: number; toRevision: number | null };
  driverRevision: number | null;
  /** Image the driver DaemonSet's template runs now. */
  driverImage: string | null;
  cordonedByNodewarden: number;
  maxCordonedByNodewarden: number;
  unavailable: number;
  maxUnavailable: number;
  fleetLimit: number;
  nodes: number;
  humanUncordons: number;
  hostsDown: number;
  nodewardenUncordons: number;
  notes: DemoNote[];
}

export interface DemoSystem {
  readonly clock: Clock;
  readonly cluster: SimulatedCluster;
  readonly nodes: readonly FleetNode[];
  readonly remediation: ReplayRemediation;
  readonly control: ControlBackend;
  readonly bus: MemoryEventBus;
  /** Hands events (e.g. the local host's conntrack samples) to the bus at their `ts`. */
  publish(events: readonly EventEnvelope[]): void;
  /** Hands a raw message to the engine as Kafka would (the demo's malformed-message example). */
  publishRaw(value: string, key: string | null): void;
  /** Runs virtual time forward to `to` (whole steps). */
  advance(to: number): Promise<void>;
  stats(): DemoStats;
  guardStatus(): Promise<GuardStatus>;
  /** Sends denial pages still held in their grouping window. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

interface Scheduled {
  at: number;
  run: () => void;
}

/** The first container's image of a pod template (templates are raw JSON). */
export function driverImage(template: PodTemplate | undefined): string | null {
  const cs = template?.spec?.containers;
  const c: unknown = Array.isArray(cs) ? cs[0] : undefined;
  return typeof c === 'object' && c !== null && typeof (c as { image?: unknown }).image === 'string' ? (c as { image: string }).image : null;
}

function setDriverImage(template: PodTemplate, image: string): void {
  const cs = template.spec?.containers;
  const c: unknown = Array.isArray(cs) ? cs[0] : undefined;
  if (typeof c === 'object' && c !== null) (c as { image?: string }).image = image;
}

function emptyDecisions(): Record<ActionKind, Record<Outcome, number>> {
  const out = {} as Record<ActionKind, Record<Outcome, number>>;
  for (const a of ACTIONS) {
    const row = {} as Record<Outcome, number>;
    for (const o of OUTCOMES) row[o] = 0;
    out[a] = row;
  }
  return out;
}

export function createDemoSystem(o: DemoSystemOptions): DemoSystem {
  const clock = new ManualClock(o.start);
  const stepMs = o.stepMs ?? 1000;
  const rand = rng(o.seed);
  const nodes = buildFleet({ ...DEFAULT_FLEET, now: o.start }, o.seed);
  const list = fleetObjects(nodes, { now: o.start, groupLabel: o.config.labels.group, driverRevisions: INITIAL_DRIVER_REVISIONS });
  // The same loader replay uses for `kubectl get ... -o yaml` dumps (JSON is YAML).
  const cluster = createSimulatedCluster(parseClusterYaml(JSON.stringify(list), 'demo fleet'), { clock, logger: o.logger });
  const injector = new FaultInjector({ nodes, rand, amplification: o.amplification });
  const fleetLimit = budgetFor(o.config.guard.maxUnavailable, nodes.length);

  // ---- metrics of the demo itself (the engine's own are registered by its parts)
  const faultsTotal = new Counter({ name: 'nodewarden_demo_faults_injected_total', help: 'Faults injected, by Llama 3 root cause and what a node can see of it.', labelNames: ['cause', 'signal'] as const, registers: [o.registry] });
  const virtualTime = new Gauge({ name: 'nodewarden_demo_virtual_time_seconds', help: 'Virtual time of the demo (Unix seconds).', registers: [o.registry] });
  const cordonedGauge = new Gauge({ name: 'nodewarden_demo_cordoned_by_nodewarden', help: 'Nodes currently cordoned by nodewarden in the simulated cluster.', registers: [o.registry] });

  // ---- stats
  const decisions = emptyDecisions();
  const deniedBy: Record<string, number> = {};
  const ledgerTail: LedgerRecord[] = [];
  const causeCounts = new Map<string, number>();
  const notes: DemoNote[] = [];
  const openPages = new Set<string>();
  let events = 0;
  let triggers = 0;
  let resolves = 0;
  let rollbacksExecuted = 0;
  let rollbacksDecided = 0;
  let rolledBackTo: number | null = null;
  let maxCordoned = 0;
  let maxUnavailable = 0;
  let humanUncordons = 0;
  let hostsDown = 0;
  let nodewardenUncordons = 0;
  let faults = 0;
  let duplicates = 0;

  const note = (kind: DemoNote['kind'], text: string, at = clock.now()): void => {
    const n = { at, kind, text };
    notes.push(n);
    if (notes.length > 200) notes.splice(0, notes.length - 200);
    o.onNote?.(n);
  };

  // ---- human side: the repair crew and the hosts that come back
  const agenda: Scheduled[] = [];
  const schedule = (at: number, run: () => void): void => {
    agenda.push({ at, run });
    agenda.sort((a, b) => a.at - b.at);
  };
  const hoursFromNow = (min: number, max: number): number => clock.now() + Math.round((min + rand() * (max - min)) * 3_600_000);

  function humanUncordon(name: string, why: string): void {
    const n = cluster.getNode(name);
    if (!n || !n.unschedulable) return;
    // What the runbook tells a person to do: `kubectl uncordon` and remove nodewarden's taint.
    cluster.updateNode(name, (w: WireNode) => {
      if (w.spec) {
        delete w.spec.unschedulable;
        w.spec.taints = (w.spec.taints ?? []).filter((t) => t.key !== 'nodewarden.io/unhealthy');
      }
    });
    humanUncordons++;
    note('crew', `repair crew: ${name} ${why}; a human ran kubectl uncordon`);
  }

  function setReady(name: string, ready: boolean, reason: string, message: string): void {
    cluster.updateNode(name, (w: WireNode) => {
      const status = (w.status ??= {});
      const conds = (status.conditions ??= []);
      const c = conds.find((x) => x.type === 'Ready');
      const next = { type: 'Ready', status: ready ? 'True' : 'Unknown', reason, message, lastTransitionTime: new Date(clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z') };
      if (c) Object.assign(c, next);
      else conds.push(next);
    });
  }

  // Capacity a real fleet is already missing when the demo starts: it counts against the budget.
  function preexisting(): void {
    const down = nodes.find((n) => n.pool === 'h100-infer');
    const cordoned = nodes.find((n) => n.pool === 'a100-train');
    if (down) {
      setReady(down.name, false, 'NodeStatusUnknown', 'Kubelet stopped posting node status.');
      injector.silence(down.name, o.start + 3 * 3_600_000);
      schedule(o.start + 3 * 3_600_000, () => {
        setReady(down.name, true, 'KubeletReady', 'kubelet is posting ready status');
        note('host', `${down.name} is back from BMC firmware maintenance (Ready)`);
      });
    }
    if (cordoned) {
      cluster.updateNode(cordoned.name, (w: WireNode) => {
        (w.spec ??= {}).unschedulable = true;
        w.metadata = { ...w.metadata, annotations: { ...(w.metadata?.annotations ?? {}), 'ops.example.com/ticket': 'RMA-4471: GPU swap' } };
      });
      schedule(o.start + 4 * 3_600_000, () => humanUncordon(cordoned.name, 'is back from its GPU swap (RMA-4471)'));
    }
    const names = [down ? `${down.name} NotReady (host maintenance)` : '', cordoned ? `${cordoned.name} cordoned by a human (GPU swap)` : ''].filter(Boolean);
    if (names.length) note('info', `already out of service at start, counted against the budget: ${names.join('; ')}`);
  }

  // ---- the engine side: real parts, memory adapters
  const remediation = createReplayRemediation({
    cluster,
    config: o.config,
    clock,
    logger: o.logger,
    registry: o.registry,
    ...(o.dryRun === undefined ? {} : { dryRun: o.dryRun }),
    denialWindowMs: o.denialWindowMs ?? 3 * 60_000,
    ...(o.pagers ? { pagers: o.pagers } : {}),
    ledger: [{ name: 'demo', append: (rs) => onRecords(rs) }],
    ledgerMaxEntries: 50_000,
    catalogue: o.rules.xidCatalogue,
    outcomeMetrics: createOutcomeMetrics(o.registry),
  });
  const store = new MemoryStateStore();
  const toggles = new MemoryRuleToggles(clock);
  const engine = createRuleEngine({ rules: o.rules, store, cluster, toggles, clock, logger: o.logger, metrics: ruleEngineMetrics(o.registry), config: o.config });
  const deadLetters = new MemoryDeadLetterSink();
  const metrics = engineServiceMetrics(o.registry);
  const processor = new BatchProcessor({
    engine,
    remediator: remediation.remediator,
    deduper: new MemoryDeduper(clock, { windowMs: parseDuration(o.config.engine.dedupeWindow), claimTtlMs: 30_000 }),
    deadLetters,
    metrics,
    clock,
    eventTime: eventTimeBounds(o.config),
    logger: o.logger,
  });
  // one ledger: the remediation's memory store holds the decisions, the operators' audits and answers the control API
  const control = createControlBackend({
    rules: o.rules.rules,
    toggles,
    toggleService: new ToggleService(toggles, remediation.ledger, clock),
    audit: remediation.ledger,
    guard: remediation.guard,
    ledger: remediation.ledger,
    clock,
    cluster,
    groupLabel: o.config.labels.group,
    dryRun: o.dryRun ?? o.config.guard.dryRun,
  });

  /** The demo's figures and ledger tail, fed by the remediator's records. */
  function onRecords(rs: readonly LedgerEntry[]): Promise<void> {
    for (const r of rs) {
      if (isAudit(r)) continue;
      const row = decisions[r.action];
      row[r.outcome]++;
      if (r.outcome === 'denied' && r.guard) deniedBy[r.guard] = (deniedBy[r.guard] ?? 0) + 1;
      ledgerTail.push(r);
      if (ledgerTail.length > 50) ledgerTail.splice(0, ledgerTail.length - 50);
      if (r.action === 'rollback' && r.target.name === DRIVER_DS.name && r.target.namespace === DRIVER_DS.namespace) {
        rollbacksDecided++;
        if (r.outcome === 'executed') {
          rollbacksExecuted++;
          rolledBackTo = r.toRevision ?? rolledBackTo;
        }
      }
      if (r.action === 'uncordon' && r.outcome === 'executed') nodewardenUncordons++;
      if (r.action === 'cordon' && r.outcome === 'executed' && r.target.kind === 'Node') {
        const name = r.target.name;
        // The crew gets to a nodewarden-cordoned node some hours later; until then it holds budget.
        schedule(hoursFromNow(1, 2), () => {
          if (cluster.getNode(name)?.cordonedByNodewarden) humanUncordon(name, 'repaired (GPU reseated / replaced, burn-in passed)');
        });
      }
      o.onRecord?.(r);
    }
    return Promise.resolve();
  }

  // Pages: counted from what the pagers were asked to send (recording pager).
  let pagesSeen = 0;
  function countPages(): void {
    const sent: PageRequest[] = remediation.pager.sent;
    for (; pagesSeen < sent.length; pagesSeen++) {
      const p = sent[pagesSeen];
      if (!p) continue;
      if (p.event === 'trigger') {
        triggers++;
        openPages.add(p.dedupKey);
      } else {
        resolves++;
        openPages.delete(p.dedupKey);
      }
    }
    // keep the recorder bounded in a long run
    if (sent.length > 10_000) {
      sent.splice(0, sent.length);
      pagesSeen = 0;
    }
  }

  // ---- the bus: producers → (held until their ts) → the engine's batch processor
  const bus = new MemoryEventBus();
  let pending: Array<{ t: number; e: EventEnvelope | null; raw?: string; key?: string | null }> = [];
  let sorted = true;
  let offset = 0;
  bus.subscribe(async (batch) => {
    const msgs: RawMessage[] = batch.map((e) => ({ topic: o.config.kafka.topics.signals, partition: 0, offset: String(offset++), key: e.node, value: JSON.stringify(e) }));
    await deliver(msgs);
  });
  async function deliver(msgs: RawMessage[]): Promise<void> {
    if (msgs.length === 0) return;
    events += msgs.length;
    const r = await processor.process(msgs);
    duplicates += r.duplicates;
  }
  const hold = (e: EventEnvelope): void => {
    const t = Date.parse(e.ts);
    if (pending.length > 0 && t < (pending[pending.length - 1]?.t ?? 0)) sorted = false;
    pending.push({ t, e });
  };

  // ---- storyline
  const story = o.storyline;
  let rolledOut = false;
  let stormed = false;
  let malformed = false;
  async function storyStep(t: number): Promise<void> {
    if (!story) return;
    if (!malformed && story.malformedAfterMs !== undefined && t >= o.start + story.malformedAfterMs) {
      malformed = true;
      // an agent from before envelope v1: no version, no id, a numeric node name
      pending.push({ t, e: null, raw: JSON.stringify({ ts: new Date(t).toISOString(), node: 4711, type: 'gpu.xid', data: { code: '79' } }), key: 'gpu-legacy-17' });
      sorted = false;
      note('storyline', 'a malformed message (an agent older than envelope v1) reaches the engine: it goes to the dead letters, nothing stops');
    }
    if (!rolledOut && t >= o.start + story.rolloutAfterMs) {
      rolledOut = true;
      const next = INITIAL_DRIVER_REVISIONS + 1;
      const ds = cluster.api.get<WireDaemonSet>('DaemonSet', DRIVER_DS.namespace, DRIVER_DS.name);
      const template = structuredClone(ds.spec?.template ?? {});
      setDriverImage(template, `nvcr.io/nvidia/driver:${driverVersion(next)}-ubuntu22.04`);
      // What `kubectl apply` of a new driver version does: the DaemonSet controller records a new ControllerRevision.
      await cluster.api.patchDaemonSet(DRIVER_DS.namespace, DRIVER_DS.name, { spec: { template } });
      note('storyline', `rollout: ${DRIVER_DS.namespace}/${DRIVER_DS.name} revision ${next} (driver ${driverVersion(next)}) applied; nodes pick it up as they restart`);
    }
    if (!stormed && t >= o.start + story.stormAfterMs) {
      stormed = true;
      const exclude = new Set(cluster.listNodes().filter(isUnavailable).map((n) => n.name));
      const xs = injector.storm(story.stormPool, story.stormNodes, t, { zone: story.stormZone, spacingMs: story.stormSpacingMs, exclude });
      for (const e of xs) hold(e);
      // Kafka delivers at least once: after a consumer rebalance the first messages of the storm come again.
      const again = xs.slice(0, 5);
      const redeliverAt = t + xs.length * story.stormSpacingMs + 60_000;
      schedule(redeliverAt, () => {
        for (const e of again) pending.push({ t: redeliverAt, e });
        sorted = false;
        note('storyline', `${again.length} storm messages delivered a second time (consumer rebalance): dedupe drops them, nothing acts twice`);
      });
      note(
        'storyline',
        `storm: the new driver hits ${xs.length} nodes of pool ${story.stormPool} in ${story.stormZone} with Xid 79/119 within ${Math.round((xs.length * story.stormSpacingMs) / 60_000)} min — budget ${fleetLimit} of ${nodes.length} nodes`,
      );
    }
  }

  function inject(t: number): void {
    const r = injector.step(t);
    for (const c of r.causes) {
      faults++;
      causeCounts.set(c, (causeCounts.get(c) ?? 0) + 1);
      const sig = LLAMA3_CAUSES.find((x) => x.cause === c)?.signal?.kind ?? 'none';
      faultsTotal.inc({ cause: c, signal: sig });
    }
    for (const h of r.hostsDown) {
      if (!cluster.getNode(h.node)) continue;
      hostsDown++;
      setReady(h.node, false, 'NodeStatusUnknown', 'Kubelet stopped posting node status.');
      note('host', `${h.node} went down (${h.cause}): NotReady, its agent is silent`, h.at);
      schedule(h.until, () => {
        setReady(h.node, true, 'KubeletReady', 'kubelet is posting ready status');
        note('host', `${h.node} is back (Ready)`);
      });
    }
    for (const e of r.events) hold(e);
  }

  let lastCordonScan = -1;
  function track(): void {
    if (lastCordonScan === cluster.api.version) return;
    lastCordonScan = cluster.api.version;
    const ns = cluster.listNodes();
    const cordoned = ns.filter((n) => n.cordonedByNodewarden).length;
    const unavailable = ns.filter(isUnavailable).length;
    if (cordoned > maxCordoned) maxCordoned = cordoned;
    if (unavailable > maxUnavailable) maxUnavailable = unavailable;
    cordonedGauge.set(cordoned);
  }

  async function step(t: number): Promise<void> {
    clock.set(t);
    while (agenda.length > 0 && (agenda[0]?.at ?? Infinity) <= t) {
      const job = agenda.shift();
      try {
        job?.run();
      } catch (err) {
        o.logger.warn({ err: errorMessage(err) }, 'demo: scheduled human action failed');
      }
    }
    await storyStep(t);
    inject(t);
    if (!sorted) {
      pending.sort((a, b) => a.t - b.t);
      sorted = true;
    }
    let n = 0;
    while (n < pending.length && (pending[n]?.t ?? Infinity) <= t) n++;
    if (n > 0) {
      const due = pending.slice(0, n);
      pending = pending.slice(n);
      const envs = due.filter((d) => d.e !== null).map((d) => d.e as EventEnvelope);
      if (envs.length) await bus.publish(envs);
      const raws = due.filter((d) => d.e === null);
      if (raws.length) await deliver(raws.map((d) => ({ topic: o.config.kafka.topics.signals, partition: 0, offset: String(offset++), key: d.key ?? null, value: d.raw ?? null })));
    }
    await processor.tick(t);
    // the simulated on-call approves what waits for approval (the driver rollback) after a while
    for (const a of await remediation.approvals.list('pending'))
      if (t - a.requestedAt >= ONCALL_APPROVES_AFTER_MS && (await remediation.approvals.decide(a.id, 'approved', 'on-call (simulated)', 'demo')).changed)
        note('crew', `the on-call approves the ${a.decision.action} of ${a.decision.target.name} (it waited for approval ${Math.round((t - a.requestedAt) / 60_000)} min)`);
    // sends grouped denial pages whose window has passed, runs approved actions (virtual time: no timers)
    await remediation.remediator.submit([]);
    countPages();
    track();
    virtualTime.set(t / 1000);
  }

  preexisting();
  track();

  let now = o.start;
  let closed = false;
  return {
    clock,
    cluster,
    nodes,
    remediation,
    control,
    bus,
    publish(es) {
      for (const e of es) hold(e);
    },
    publishRaw(value, key) {
      pending.push({ t: clock.now(), e: null, raw: value, key });
      sorted = false;
    },
    async advance(to: number): Promise<void> {
      while (!closed && now + stepMs <= to) {
        now += stepMs;
        await step(now);
      }
    },
    stats(): DemoStats {
      const ns = cluster.listNodes();
      const revs = cluster.workloadRevisions(DRIVER_DS);
      const ds = cluster.api.get<WireDaemonSet>('DaemonSet', DRIVER_DS.namespace, DRIVER_DS.name);
      // the revision whose template the DaemonSet runs now is the highest-numbered one (a rollback renumbers the old one)
      const current = revs[revs.length - 1]?.revision ?? null;
      return {
        start: o.start,
        now,
        events,
        invalid: deadLetters.records.length,
        lastDeadLetter: deadLetters.records[deadLetters.records.length - 1]?.reason ?? null,
        duplicates,
        decisions: structuredClone(decisions),
        deniedBy: { ...deniedBy },
        ledgerTail: ledgerTail.slice(-10),
        causes: LLAMA3_CAUSES.map((c) => ({ cause: c.cause, count: causeCounts.get(c.cause) ?? 0, signal: c.signal?.kind ?? null })),
        faults,
        pages: { triggers, resolves, open: openPages.size },
        rollbacks: { executed: rollbacksExecuted, decided: rollbacksDecided, toRevision: rolledBackTo },
        driverRevision: current,
        driverImage: driverImage(ds.spec?.template),
        cordonedByNodewarden: ns.filter((n) => n.cordonedByNodewarden).length,
        maxCordonedByNodewarden: maxCordoned,
        unavailable: ns.filter(isUnavailable).length,
        maxUnavailable,
        fleetLimit,
        nodes: ns.length,
        humanUncordons,
        hostsDown,
        nodewardenUncordons,
        notes: notes.slice(-20),
      };
    },
    guardStatus: () => remediation.guard.status(),
    async flush(): Promise<void> {
      await remediation.remediator.flush();
      countPages();
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await remediation.remediator.close();
      countPages();
      await toggles.close();
      await store.close();
    },
  };
}
