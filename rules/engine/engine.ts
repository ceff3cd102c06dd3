/**
 * The rule engine: pure evaluation of compiled rules over events and time,
 * with all state behind the StateStore port. The same code runs live (time =
 * the injected clock on tick, event `ts` for events) and in replay (virtual
 * time). A batch costs two store round trips (state updates, then episode
 * changes), one pipeline each on Redis and no promise at all per event on the
 * memory store.
 *
 * Decision ids are derived from rule + scope + the episode's start time +
 * action, so re-processing an event after a crash yields the same ids.
 */
import { createHash } from 'node:crypto';
import { gpuOf } from '../../core/gpu.js';
import type { Clock } from '../../core/clock.js';
import type { ClusterView, WorkloadRef } from '../../core/cluster.js';
import type { ActionKind, Decision, DecisionOf, Target } from '../../core/decision.js';
import type { EventEnvelope, EventType } from '../../core/envelope.js';
import type { HeldFault, RuleScope } from '../../core/held-fault.js';
import { MAX_HELD_FAULTS_PER_BATCH } from '../../core/held-fault.js';
import { formatDuration } from '../../core/duration.js';
import type { Logger } from '../../core/logger.js';
import type { RuleToggles } from '../toggles/port.js';
import { matches } from '../language/types.js';
import type { CompiledAction, CompiledRule, Condition, LeafCondition, RuleSet } from '../language/types.js';
import type { TemplateContext } from '../language/template.js';
import type { StateStore, StoreOp, StoreResult } from '../store/state-store.js';
import { StoreKeys } from '../../adapters/redis/keys.js';
import type { LeafKind } from '../../adapters/redis/keys.js';
import { decodeScope, nodeOfScope, scopeKey, scopeLabel } from './scope.js';

/** What one batch of events yields: decisions, and the held faults of isolating rules (ADR 0034). */
export interface EngineOutput {
  decisions: Decision[];
  /**
   * Fault events of isolating rules (cordon / taint, node scope) whose
   * condition held but which did not fire: the rule's episode is active or
   * cooling down. For the repair ladder's quiet period (core/held-fault.ts).
   */
  heldFaults: HeldFault[];
}

export interface RuleEngine {
  /** Evaluates already-validated events in order; returns the decisions they trigger. */
  process(events: readonly EventEnvelope[]): Promise<Decision[]>;
  /** `process`, with the held faults of the batch too (absent in engines that have none: stand-ins, fakes). */
  /** `times`: each event's `Date.parse(ts)` when the caller has it (the batch processor's validation parsed it), else parsed here. */
  evaluate?(events: readonly EventEnvelope[], times?: readonly number[]): Promise<EngineOutput>;
  /** Advances time-driven logic (absent, sustained, clear after / sustained) to `now`. */
  tick(now: number): Promise<Decision[]>;
  /** Ends rule episodes and their cooldowns (core/held-fault.ts `RuleEpisodes`; absent in stand-ins and fakes). */
  release?(episodes: readonly RuleScope[]): Promise<number>;
  /**
   * The owner's side of a routed release (ADR 0049): ends these episodes in
   * this engine's store, never routing again — only node-scoped rules' episodes
   * on `node` (a record names no more than a release of that node could).
   */
  applyRelease?(node: string, episodes: readonly RuleScope[]): Promise<number>;
}

/** The part of the configuration the engine reads (a NodewardenConfig is one). */
export interface RuleEngineSettings {
  redis: { keyPrefix: string };
  engine: { watchedWorkloads: readonly WorkloadRef[] };
  labels: { group: string; zone: string };
  guard: { autoUncordon: boolean };
}

/** Where the engine reports what it decided (rules/service/engine-metrics.ts: Prometheus). */
export interface RuleEngineMetrics {
  decided(rule: string, action: string): void;
}

export interface RuleEngineOptions {
  rules: RuleSet;
  store: StateStore;
  cluster: ClusterView;
  toggles: RuleToggles;
  clock: Clock;
  logger: Logger;
  metrics?: RuleEngineMetrics;
  config: RuleEngineSettings;
  /** Key prefix for state (default: config.redis.keyPrefix). */
  keyPrefix?: string;
  /**
   * Record tick firings in the shared outbox and re-derive the ones a dead
   * replica left (see OUTBOX_MS). For the live engine, whose decisions go
   * through the guard's idempotency; off in replay and embedded use, where a
   * re-derived decision would count twice.
   */
  tickOutbox?: boolean;
  /**
   * Partition-local state (ADR 0045, ADR 0049): the state of a node-scoped rule
   * lives with the owner of the node's partition, so `release` of such an
   * episode is routed there (an internal record on the node's partition of the
   * events topic) instead of run on this replica's store. Resolves once routed;
   * the owner applies it with `applyRelease`. Unset: every release runs here.
   */
  routeRelease?: (node: string, episodes: RuleScope[]) => Promise<void>;
}

/** Extra lifetime of state beyond the longest window that reads it. */
const TTL_SLACK = 10 * 60_000;
const EPISODE_TTL = 7 * 24 * 3_600_000;
const GROUP_SEEN_WINDOW = 24 * 3_600_000;

interface RulePlan {
  rule: CompiledRule;
  index: number;
  /** Leaves whose matcher listens to each event type. */
  leavesByType: Map<EventType, LeafCondition[]>;
  leafKeyKinds: Array<LeafKind | null>;
  ttl: number;
  /** Top-level condition is a single leaf (fast path) or a combinator. */
  combinator: boolean;
  clearTypes: ReadonlySet<EventType>;
  needsMembers: boolean;
  episodeIndex: string;
  /** First distinctNodes leaf (group cordon contributors, {{nodes}}). */
  distinctLeaf: LeafCondition | null;
  /** Index keys per slot (sustained deadlines, absent seen-sets). */
  sustainedIndex: string[];
  seenIndex: string[];
  /** Scope → its state keys, so the hot path builds no key strings (bounded; cleared when large). */
  cache: Map<string, ScopeKeys>;
  /** Cordons or taints on a node scope: a match held back by its episode or cooldown is a held fault (ADR 0034). */
  isolating: boolean;
}

/** State keys of one rule on one scope: `k[slot]` per leaf/clear slot, `k[slots]` = episode. */
interface ScopeKeys {
  scope: string;
  k: string[];
}
const SCOPE_CACHE_MAX = 100_000;

/** Per-event evaluation waiting for phase-1 results. */
interface Pending {
  plan: RulePlan;
  e: EventEnvelope | null;
  t: number;
  scope: string;
  /** The episode key of this rule on this scope (cached with the scope's keys). */
  ek: string;
  /** The batch's result-index array and this evaluation's base offset in it (one per slot, -1 = not fetched). */
  ri: number[];
  rb: number;
  groupSeenIdx: number;
  clearIdx: number;
  anyLeafMatched: boolean;
  absentMatched: boolean;
}

interface Firing {
  plan: RulePlan;
  e: EventEnvelope | null;
  t: number;
  scope: string;
  kind: 'fire' | 'clear';
  opIdx: number;
  membersIdx: number;
  count: number | null;
  value: number | null;
}

/**
 * Tick outbox. A tick pops due scopes and opens their episodes in one store
 * batch, then hands the decisions to the guard: a replica killed between the
 * two lost them for good (the due entry is gone, the episode is active, no
 * event will come to re-derive them). So the same store batch also records
 * each firing in the outbox, and every tick re-derives the decisions of
 * firings older than {@link OUTBOX_GRACE_MS} whose episode is still the one
 * they opened (same start: same decision ids). The guard makes that exactly
 * once: a decision already done comes back `suppressed` (not written again),
 * one in flight on a live replica is retried later, one that never reached the
 * guard, or whose in-flight lease lapsed, is carried out now. Each replica
 * re-checks a firing at most every {@link OUTBOX_RECHECK_MS}; firings leave
 * the outbox after {@link OUTBOX_MS} (longer than the in-flight lease).
 */
const OUTBOX_MS = 10 * 60_000;
const OUTBOX_GRACE_MS = 5_000;
const OUTBOX_RECHECK_MS = 15_000;

const hash = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 24);

export function createRuleEngine(opts: RuleEngineOptions): Required<RuleEngine> {
  const { store, cluster, toggles, clock, config } = opts;
  const keys = new StoreKeys(opts.keyPrefix ?? config.redis.keyPrefix);
  const log = opts.logger.child({ component: 'rules-engine' });
  const watched: readonly WorkloadRef[] = config.engine.watchedWorkloads;

  const metrics = opts.metrics;

  const plans: RulePlan[] = opts.rules.rules.map((rule, index) => {
    const leavesByType = new Map<EventType, LeafCondition[]>();
    let maxWindow = 0;
    for (const leaf of rule.leaves) {
      const types = new Set<EventType>();
      if (leaf.kind === 'sequence') for (const s of leaf.steps) for (const t of s.byType.keys()) types.add(t);
      else if (leaf.kind === 'changedWithin') {
        if (leaf.match) for (const t of leaf.match.byType.keys()) types.add(t);
      } else for (const t of leaf.match.byType.keys()) types.add(t);
      for (const t of types) {
        const l = leavesByType.get(t) ?? [];
        l.push(leaf);
        leavesByType.set(t, l);
      }
      const w = 'within' in leaf ? leaf.within : leaf.forMs;
      if (w > maxWindow) maxWindow = w;
    }
    const clearTypes = rule.clear.kind === 'sustained' ? new Set(rule.clear.match.byType.keys()) : new Set<EventType>();
    if (rule.clear.kind === 'sustained' && rule.clear.forMs > maxWindow) maxWindow = rule.clear.forMs;
    const leafKeyKinds = rule.leaves.map((l) => kindOf(l));
    const distinctLeaf = rule.leaves.find((l) => l.kind === 'distinctNodes') ?? null;
    return {
      rule,
      index,
      leavesByType,
      leafKeyKinds,
      ttl: maxWindow + TTL_SLACK,
      combinator: rule.condition.kind === 'allOf' || rule.condition.kind === 'anyOf',
      clearTypes,
      needsMembers: distinctLeaf !== null && (rule.scope.kind !== 'node' || rule.actions.some((a) => a.type === 'cordon')),
      episodeIndex: keys.episodeIndex(rule.id),
      distinctLeaf,
      sustainedIndex: Array.from({ length: slotsOf(rule) }, (_, i) => keys.sustainedIndex(rule.id, i)),
      seenIndex: Array.from({ length: slotsOf(rule) }, (_, i) => keys.seenIndex(rule.id, i)),
      cache: new Map(),
      isolating: rule.scope.kind === 'node' && rule.actions.some((a) => a.type === 'cordon' || a.type === 'taint'),
    };
  });
  const slotCount = Math.max(1, ...plans.map((p) => p.rule.leaves.length + 1));
  const byType = new Map<EventType, RulePlan[]>();
  for (const p of plans) {
    const types = new Set<EventType>([...p.leavesByType.keys(), ...p.clearTypes]);
    for (const t of types) {
      const l = byType.get(t) ?? [];
      l.push(p);
      byType.set(t, l);
    }
  }
  const hasChangedWithin = plans.some((p) => p.rule.leaves.some((l) => l.kind === 'changedWithin'));
  const workloadTtl = Math.max(0, ...plans.flatMap((p) => p.rule.leaves.map((l) => (l.kind === 'changedWithin' ? l.within : 0)))) + TTL_SLACK;

  const nodeCache = new Map<string, Array<ScopeKeys | undefined>>();
  // Scratch reused by the synchronous part of a batch only (safe with concurrent batches).
  const scratch: LeafCondition[] = [];

  // Group sizes are read from the cluster view at most once per batch.
  let groupSizes: Map<string, number> | null = null;
  function groupSize(label: string, value: string): number {
    if (!groupSizes) groupSizes = new Map();
    const k = `${label}=${value}`;
    let n = groupSizes.get(k);
    if (n === undefined) {
      const nodeLabel = label === 'pool' ? config.labels.group : label === 'zone' ? config.labels.zone : label;
      n = 0;
      for (const node of cluster.listNodes()) if (node.labels[nodeLabel] === value || node.labels[label] === value) n++;
      groupSizes.set(k, n);
    }
    return n;
  }

  function enabledMask(now: number): boolean[] {
    return plans.map((p) => toggles.isEnabled(p.rule.id, p.rule.enabled, now));
  }

  function leafKey(p: RulePlan, leaf: LeafCondition, scope: string): string {
    return keys.leaf(p.leafKeyKinds[leaf.slot] ?? 'w', p.rule.id, leaf.slot, scope);
  }

  function buildKeys(p: RulePlan, scope: string): ScopeKeys {
    const n = slotsOf(p.rule);
    const k = new Array<string>(n + 1);
    for (let i = 0; i < n; i++) k[i] = keys.leaf(p.leafKeyKinds[i] ?? 's', p.rule.id, i, scope);
    k[n] = keys.episode(p.rule.id, scope);
    return { scope, k };
  }

  // The node row of the event being evaluated (reset per event by process()).
  let eventRow: Array<ScopeKeys | undefined> | undefined;

  /** The scope of an event for a rule, with its keys (cached), or null when the event has no such scope. */
  function scoped(p: RulePlan, e: EventEnvelope): ScopeKeys | null {
    const spec = p.rule.scope;
    if (spec.kind === 'node' && spec.by.length === 0) {
      // one lookup per event, shared by every node-scoped rule the event feeds
      let row = eventRow ?? nodeCache.get(e.node);
      if (!row) {
        row = new Array<ScopeKeys | undefined>(plans.length);
        if (nodeCache.size >= SCOPE_CACHE_MAX) nodeCache.clear();
        nodeCache.set(e.node, row);
      }
      eventRow = row;
      let sk = row[p.index];
      if (!sk) {
        sk = buildKeys(p, `n:${e.node}`);
        row[p.index] = sk;
      }
      return sk;
    }
    const ck = scopeKey(spec, e);
    if (ck === null) return null;
    let sk = p.cache.get(ck);
    if (!sk) {
      sk = buildKeys(p, ck);
      if (p.cache.size >= SCOPE_CACHE_MAX) p.cache.clear();
      p.cache.set(ck, sk);
    }
    return sk;
  }

  /** Phase-1 op for a leaf the event matched. */
  function updateOp(p: RulePlan, leaf: LeafCondition, e: EventEnvelope, t: number, sk: ScopeKeys): StoreOp | null {
    switch (leaf.kind) {
      case 'count':
        return { op: 'window.add', key: sk.k[leaf.slot] as string, member: e.id, ts: t, windowMs: leaf.within, ttlMs: p.ttl };
      case 'distinctNodes':
        return { op: 'distinct.add', key: sk.k[leaf.slot] as string, member: e.node, ts: t, windowMs: leaf.within, ttlMs: p.ttl };
      case 'increase':
      case 'rate': {
        const v = leaf.counter(e);
        if (typeof v !== 'number' || !Number.isFinite(v)) return queryOp(p, leaf, t, sk);
        return { op: 'counter.add', key: sk.k[leaf.slot] as string, member: e.id, ts: t, value: v, windowMs: leaf.within, ttlMs: p.ttl };
      }
      case 'sustained':
        return { op: 'sustained.observe', key: sk.k[leaf.slot] as string, index: p.sustainedIndex[leaf.slot] as string, member: sk.scope, ts: t, holds: leaf.holds(e), ttlMs: p.ttl };
      case 'absent':
        return { op: 'seen.touch', index: p.seenIndex[leaf.slot] as string, member: sk.scope, ts: t, ttlMs: leaf.forMs + EPISODE_TTL };
      default:
        return queryOp(p, leaf, t, sk);
    }
  }

  /** Phase-1 op that reads a leaf's state without changing it. */
  function queryOp(_p: RulePlan, leaf: LeafCondition, t: number, sk: ScopeKeys): StoreOp | null {
    switch (leaf.kind) {
      case 'count':
        return { op: 'window.count', key: sk.k[leaf.slot] as string, now: t, windowMs: leaf.within };
      case 'distinctNodes':
        return { op: 'distinct.count', key: sk.k[leaf.slot] as string, now: t, windowMs: leaf.within };
      case 'increase':
      case 'rate':
        return { op: 'counter.increase', key: sk.k[leaf.slot] as string, now: t, windowMs: leaf.within };
      case 'sustained':
        return { op: 'sustained.get', key: sk.k[leaf.slot] as string };
      default:
        return null;
    }
  }

  function changedAt(leaf: Extract<LeafCondition, { kind: 'changedWithin' }>, t: number, res: StoreResult | undefined): boolean {
    const refs = leaf.workloads ?? watched;
    let latest = typeof res === 'number' ? res : -Infinity;
    for (const ref of refs) {
      const revs = cluster.workloadRevisions(ref);
      for (const r of revs) if (r.createdAt <= t && r.createdAt > latest) latest = r.createdAt;
    }
    return latest >= t - leaf.within && latest <= t;
  }

  /** Evaluates the condition tree from phase-1 results. Records the first leaf value for templates. */
  function evaluate(p: RulePlan, c: Condition, pend: Pending, results: StoreResult[], out: { count: number | null; value: number | null }): boolean {
    if (c.kind === 'allOf') {
      for (const sub of c.of) if (!evaluate(p, sub, pend, results, out)) return false;
      return true;
    }
    if (c.kind === 'anyOf') {
      let any = false;
      for (const sub of c.of) if (evaluate(p, sub, pend, results, out)) any = true;
      return any;
    }
    return evaluateLeaf(c as LeafCondition, pend, results, out);
  }

  function evaluateLeaf(c: LeafCondition, pend: Pending, results: StoreResult[], out: { count: number | null; value: number | null }): boolean {
    const idx = pend.ri[pend.rb + c.slot] as number;
    const r = idx >= 0 ? results[idx] : undefined;
    switch (c.kind) {
      case 'count': {
        const n = typeof r === 'number' ? r : 0;
        if (out.count === null) out.count = n;
        return n >= c.min;
      }
      case 'distinctNodes': {
        const n = typeof r === 'number' ? r : 0;
        if (out.count === null) out.count = n;
        if (c.min !== null) return n >= c.min;
        const d = decodeScope(pend.scope);
        let size: number;
        if (d.group !== null && d.groupLabel !== null) size = groupSize(d.groupLabel, d.group);
        else if (d.node === null) size = cluster.listNodes().length;
        else size = 1;
        if (size === 0 && pend.groupSeenIdx >= 0) size = (results[pend.groupSeenIdx] as number | undefined) ?? 0;
        return size > 0 && n * 100 >= (c.minPercent ?? 100) * size;
      }
      case 'increase':
      case 'rate': {
        const inc = typeof r === 'number' ? r : 0;
        const v = c.kind === 'rate' ? inc / (c.within / 1000) : inc;
        if (out.value === null) out.value = v;
        return v >= c.min;
      }
      case 'sustained':
        return typeof r === 'number' && pend.t - r >= c.forMs;
      case 'sequence':
        return r === true;
      case 'changedWithin':
        return changedAt(c, pend.t, r);
      default:
        // absent fires on tick only
        return false;
    }
  }

  function ctxFor(f: { plan: RulePlan; e: EventEnvelope | null; scope: string; count: number | null; value: number | null }, nodes: string[]): TemplateContext {
    const d = decodeScope(f.scope);
    const w = f.plan.rule.leaves[0];
    const window = w ? formatDuration('within' in w ? w.within : w.forMs) : '';
    return {
      rule: f.plan.rule.id,
      scope: scopeLabel(f.scope),
      node: d.node ?? f.e?.node ?? '',
      group: d.group ?? '',
      count: f.count,
      value: f.value,
      window,
      nodes: nodes.join(', '),
      event: f.e,
    };
  }

  function groupOf(e: EventEnvelope | null, scope: string): Record<string, string> | undefined {
    const g: Record<string, string> = {};
    if (e) {
      if (e.labels.pool) g.pool = e.labels.pool;
      if (e.labels.zone) g.zone = e.labels.zone;
    } else {
      const d = decodeScope(scope);
      if (d.group !== null && d.groupLabel) g[d.groupLabel] = d.group;
      if (d.node) {
        const n = cluster.getNode(d.node);
        const pool = n?.labels[config.labels.group];
        const zone = n?.labels[config.labels.zone];
        if (pool) g.pool = pool;
        if (zone) g.zone = zone;
      }
    }
    return Object.keys(g).length ? g : undefined;
  }

  function rollbackTarget(p: RulePlan, a: Extract<CompiledAction, { type: 'rollback' }>): { ref: WorkloadRef | null; to: number | null; from: number | null } {
    let ref = a.workload;
    if (!ref) {
      const leaf = p.rule.leaves.find((l) => l.kind === 'changedWithin');
      ref = (leaf?.kind === 'changedWithin' ? leaf.workloads?.[0] : undefined) ?? watched[0] ?? null;
    }
    if (!ref) return { ref: null, to: null, from: null };
    const revs = cluster.workloadRevisions(ref);
    const sorted = [...revs].sort((x, y) => x.revision - y.revision);
    const cur = sorted[sorted.length - 1];
    const prev = sorted[sorted.length - 2];
    return { ref, to: prev?.revision ?? null, from: cur?.revision ?? null };
  }

  function decisionsFor(f: Firing, firedAt: number, members: string[]): Decision[] {
    const p = f.plan;
    const rule = p.rule;
    const ctx = ctxFor(f, members);
    const out: Decision[] = [];
    const d = decodeScope(f.scope);
    const group = groupOf(f.e, f.scope);
    const evidence: Record<string, unknown> = { scope: ctx.scope, episodeStart: new Date(firedAt).toISOString() };
    // the episode's own scope key: what the repair ladder releases when it returns what this isolated (ADR 0034)
    if (p.isolating) evidence.ruleScope = f.scope;
    if (f.count !== null) evidence.count = f.count;
    if (f.value !== null) evidence.value = f.value;
    if (f.e) {
      evidence.eventId = f.e.id;
      // when the fault happened (time to detect / isolate) and, for an Xid, what the repair ladder starts from
      evidence.eventTs = f.e.ts;
      const x = xidEvidence(f.e);
      if (x) evidence.xid = x;
    }
    if (members.length) evidence.nodes = members;
    const base = <A extends ActionKind>(action: A, idx: number, target: Target, reason: string): DecisionOf<A> => {
      const dec: DecisionOf<A> = {
        id: `d-${hash(`${rule.id}|${f.scope}|${firedAt}|${f.kind}|${idx}|${action}|${target.kind}/${target.namespace ?? ''}/${target.name}`)}`,
        at: f.t,
        rule: rule.id,
        action,
        target,
        reason,
        severity: rule.severity,
        evidence,
      };
      if (group) dec.group = group;
      if (rule.incident) dec.incident = rule.incident;
      return dec;
    };
    const nodeTargets = (): string[] => (d.node !== null ? [d.node] : members);
    rule.actions.forEach((a, idx) => {
      const reason = (a.summary ?? rule.summary)(ctx);
      if (f.kind === 'clear') {
        if (a.type === 'page') {
          const dec = base('resolve', idx, scopeTarget(d, ctx.scope), `resolved: ${reason}`);
          dec.dedupKey = a.dedupKey(ctx);
          dec.severity = a.severity;
          out.push(dec);
        } else if (a.type === 'cordon' && a.uncordonOnClear && config.guard.autoUncordon && d.node !== null) {
          const dec = base('uncordon', idx, { kind: 'Node', name: d.node }, `recovered: ${reason}`);
          dec.params = { onlyIfCordonedByNodewarden: true };
          out.push(dec);
        }
        return;
      }
      switch (a.type) {
        case 'cordon':
        case 'uncordon':
          for (const n of nodeTargets()) {
            const dec = base(a.type, idx, { kind: 'Node', name: n }, reason);
            if (a.type === 'uncordon') dec.params = { onlyIfCordonedByNodewarden: true };
            if (a.approval) dec.params = { ...dec.params, approval: a.approval };
            out.push(dec);
          }
          break;
        case 'taint': {
          // the GPU of the event that fired; without one (or outside a node scope) the node is cordoned
          const gpu = gpuOf(f.e?.data);
          for (const n of nodeTargets()) {
            const dec = gpu !== null && d.node !== null ? base('taint', idx, { kind: 'Device', name: gpu, node: n }, reason) : base('cordon', idx, { kind: 'Node', name: n }, reason);
            if (a.approval) dec.params = { ...dec.params, approval: a.approval };
            out.push(dec);
          }
          break;
        }
        case 'rollback': {
          const rt = rollbackTarget(p, a);
          if (!rt.ref) {
            log.warn({ rule: rule.id }, 'rollback action has no workload (none in the rule, none watched): skipped');
            break;
          }
          const dec = base('rollback', idx, { kind: rt.ref.kind, name: rt.ref.name, namespace: rt.ref.namespace }, reason);
          dec.params = { ...(rt.to !== null ? { toRevision: rt.to } : {}), ...(rt.from !== null ? { fromRevision: rt.from } : {}), ...(a.approval ? { approval: a.approval } : {}) };
          out.push(dec);
          break;
        }
        case 'page': {
          const dec = base('page', idx, scopeTarget(d, ctx.scope), reason);
          dec.severity = a.severity;
          dec.dedupKey = a.dedupKey(ctx);
          if (rule.runbook) dec.params = { runbook: rule.runbook };
          out.push(dec);
          break;
        }
        case 'resolve': {
          const dec = base('resolve', idx, scopeTarget(d, ctx.scope), reason);
          dec.dedupKey = a.dedupKey(ctx);
          out.push(dec);
          break;
        }
      }
    });
    if (metrics) for (const dec of out) metrics.decided(dec.rule, dec.action);
    return out;
  }

  async function run(ops: StoreOp[]): Promise<StoreResult[]> {
    if (ops.length === 0) return [];
    return store.execSync ? store.execSync(ops) : store.exec(ops);
  }
  /** The last store call of a batch, tick or release: a write-behind store makes its memory durable with it (ADR 0045). */
  const execFinal = store.execFinal?.bind(store);
  async function runFinal(ops: StoreOp[]): Promise<StoreResult[]> {
    return execFinal ? execFinal(ops) : run(ops);
  }

  /** `by`: the firing event's id, '' for a tick (a redelivery of it re-derives the episode's decisions). */
  function fireOp(p: RulePlan, scope: string, t: number, by: string, key = keys.episode(p.rule.id, scope)): StoreOp {
    return {
      op: 'episode.fire',
      key,
      index: p.episodeIndex,
      member: scope,
      now: t,
      by,
      cooldownMs: p.rule.cooldownMs,
      autoExpireMs: p.rule.clear.kind === 'none' ? p.rule.cooldownMs : -1,
      ttlMs: EPISODE_TTL + p.rule.cooldownMs,
    };
  }
  function clearOp(p: RulePlan, scope: string, t: number, quietBefore: number | null, key = keys.episode(p.rule.id, scope)): StoreOp {
    return { op: 'episode.clear', key, index: p.episodeIndex, member: scope, now: t, quietBefore };
  }
  function membersOp(p: RulePlan, scope: string, t: number): StoreOp | null {
    const l = p.distinctLeaf;
    if (!l || l.kind !== 'distinctNodes') return null;
    return { op: 'distinct.members', key: leafKey(p, l, scope), now: t, windowMs: l.within };
  }

  /** Phase 2: runs fire/clear ops and turns successes into decisions. */
  const outbox = opts.tickOutbox === true;
  const planById = new Map(plans.map((p) => [p.rule.id, p]));
  /** Outbox member → when this replica last re-derived it (wall clock). Bounded by the outbox. */
  const outboxChecked = new Map<string, number>();

  /** Decisions of tick firings another replica may have lost (see OUTBOX_MS). */
  async function recoverOutbox(members: readonly string[], now: number, enabled: readonly boolean[]): Promise<Decision[]> {
    const live = new Set(members);
    for (const m of outboxChecked.keys()) if (!live.has(m)) outboxChecked.delete(m);
    const wall = clock.now();
    const due: Array<{ member: string; plan: RulePlan; scope: string; t: number }> = [];
    for (const member of members) {
      if ((outboxChecked.get(member) ?? -Infinity) + OUTBOX_RECHECK_MS > wall) continue;
      let v: unknown;
      try {
        v = JSON.parse(member);
      } catch {
        continue;
      }
      if (!Array.isArray(v) || typeof v[0] !== 'string' || typeof v[1] !== 'string' || typeof v[2] !== 'number') continue;
      const plan = planById.get(v[0]);
      if (!plan || !enabled[plan.index] || now - v[2] < OUTBOX_GRACE_MS) continue;
      due.push({ member, plan, scope: v[1], t: v[2] });
    }
    if (due.length === 0) return [];
    const starts = await run(due.map((d) => ({ op: 'episode.get', key: keys.episode(d.plan.rule.id, d.scope) })));
    const out: Decision[] = [];
    due.forEach((d, i) => {
      outboxChecked.set(d.member, wall);
      // Only the episode that firing opened: a cleared or later episode has decisions of its own.
      if (starts[i] !== d.t) return;
      out.push(...decisionsFor({ plan: d.plan, e: null, t: d.t, scope: d.scope, kind: 'fire', opIdx: -1, membersIdx: -1, count: null, value: null }, d.t, []));
    });
    if (out.length > 0) log.debug({ decisions: out.map((d) => d.id) }, 'tick outbox: decisions re-derived for the guard');
    return out;
  }

  /** A fault event of an isolating rule that fired already (its episode active, or cooling down). */
  function heldFault(f: Firing, e: EventEnvelope): HeldFault {
    const x = xidEvidence(e);
    return {
      rule: f.plan.rule.id,
      node: e.node,
      gpu: gpuOf(e.data),
      eventId: e.id,
      at: f.t,
      reason: x ? `${e.type} Xid ${x.code ?? '?'}` : e.type,
      xid: x,
    };
  }

  /**
   * `held`: where the fires an episode or cooldown held back go (event batches
   * only; the first of each rule and scope in the batch, the ladder needs no more).
   */
  async function settle(ops: StoreOp[], firings: Firing[], held: HeldFault[] | null = null): Promise<Decision[]> {
    const results = await runFinal(ops);
    const out: Decision[] = [];
    let heldScopes: Array<Set<string> | undefined> | null = null;
    for (const f of firings) {
      const r = results[f.opIdx];
      if (typeof r !== 'number') {
        if (held && f.kind === 'fire' && f.plan.isolating && f.e && held.length < MAX_HELD_FAULTS_PER_BATCH) {
          heldScopes ??= new Array<Set<string> | undefined>(plans.length);
          const seen = (heldScopes[f.plan.index] ??= new Set());
          if (!seen.has(f.scope)) {
            seen.add(f.scope);
            held.push(heldFault(f, f.e));
          }
        }
        continue;
      }
      const members = f.membersIdx >= 0 ? ((results[f.membersIdx] as string[] | undefined) ?? []) : [];
      out.push(...decisionsFor(f, r, members));
    }
    return out;
  }

  /** Ends episodes in this engine's store: one final call (a write-behind store makes it durable with it). */
  async function releaseHere(episodes: readonly RuleScope[]): Promise<number> {
    const ops: StoreOp[] = [];
    for (const r of episodes) {
      const p = planById.get(r.rule);
      if (p) ops.push({ op: 'episode.release', key: keys.episode(p.rule.id, r.scope), index: p.episodeIndex, member: r.scope });
    }
    const results = await runFinal(ops);
    const n = results.filter((x) => typeof x === 'number').length;
    if (n > 0) log.info({ episodes: episodes.map((r) => `${r.rule} ${r.scope}`) }, 'rule episodes released: what they isolated is back in service');
    return n;
  }

  const engine: Required<RuleEngine> = {
    async process(events: readonly EventEnvelope[]): Promise<Decision[]> {
      return (await engine.evaluate(events)).decisions;
    },

    async release(episodes: readonly RuleScope[]): Promise<number> {
      const route = opts.routeRelease;
      const here: RuleScope[] = [];
      const routed = new Map<string, RuleScope[]>();
      for (const r of episodes) {
        const p = planById.get(r.rule);
        if (!p) continue;
        const node = route && p.rule.scope.kind === 'node' ? nodeOfScope(r.scope) : null;
        if (node === null) here.push(r);
        else {
          const list = routed.get(node) ?? [];
          if (list.length === 0) routed.set(node, list);
          list.push({ rule: r.rule, scope: r.scope });
        }
      }
      // routed first: a failure to route is the caller's error (logged by the ladder), as a failed store call is
      for (const [node, list] of routed) await (route as NonNullable<typeof route>)(node, list);
      if (routed.size > 0) log.info({ episodes: [...routed.values()].flat().map((r) => `${r.rule} ${r.scope}`) }, 'rule episodes to release routed to the owner of their node\'s partition');
      let n = 0;
      for (const list of routed.values()) n += list.length;
      return n + (here.length > 0 ? await releaseHere(here) : 0);
    },

    async applyRelease(node: string, episodes: readonly RuleScope[]): Promise<number> {
      return releaseHere(episodes.filter((r) => planById.get(r.rule)?.rule.scope.kind === 'node' && nodeOfScope(r.scope) === node));
    },

    async evaluate(events: readonly EventEnvelope[], times?: readonly number[]): Promise<EngineOutput> {
      const none: EngineOutput = { decisions: [], heldFaults: [] };
      if (events.length === 0) return none;
      groupSizes = null;
      const enabled = enabledMask(clock.now());
      const ops: StoreOp[] = [];
      const pend: Pending[] = [];
      // One array per batch (not shared): concurrent process() calls may interleave at the store await.
      const resIdx: number[] = [];
      for (let ei = 0; ei < events.length; ei++) {
        const e = events[ei] as EventEnvelope;
        const list = byType.get(e.type);
        const wl = hasChangedWithin && e.type === 'workload.revision';
        if (!list && !wl) continue;
        const t = times?.[ei] ?? Date.parse(e.ts);
        if (wl) {
          const d = e.data as { kind?: unknown; namespace?: unknown; name?: unknown };
          if (typeof d.name === 'string' && typeof d.namespace === 'string' && (d.kind === 'DaemonSet' || d.kind === 'Deployment'))
            ops.push({ op: 'max.set', key: keys.workloadChange({ kind: d.kind, namespace: d.namespace, name: d.name }), value: t, ttlMs: workloadTtl });
        }
        if (!list) continue;
        eventRow = undefined;
        for (const p of list) {
          if (!enabled[p.index]) continue;
          const leaves = p.leavesByType.get(e.type);
          const matchedLeaves = scratch;
          matchedLeaves.length = 0;
          let seqSteps: number[] | null = null;
          if (leaves) {
            for (const leaf of leaves) {
              if (leaf.kind === 'sequence') {
                for (let s = leaf.steps.length - 1; s >= 0; s--) if (matches(leaf.steps[s]!, e)) (seqSteps ??= []).push(s);
                if (seqSteps) matchedLeaves.push(leaf);
              } else if (leaf.kind === 'changedWithin') {
                if (leaf.match && matches(leaf.match, e)) matchedLeaves.push(leaf);
              } else if (matches(leaf.match, e)) matchedLeaves.push(leaf);
            }
          }
          const clear = p.rule.clear;
          const clearMatched = clear.kind === 'sustained' && matches(clear.match, e);
          if (matchedLeaves.length === 0 && !clearMatched) continue;
          const sk = scoped(p, e);
          if (sk === null) continue;
          const scope = sk.scope;
          const rb = resIdx.length;
          for (let i = 0; i < slotCount; i++) resIdx.push(-1);
          const pe: Pending = { plan: p, e, t, scope, ek: sk.k[sk.k.length - 1] as string, ri: resIdx, rb, groupSeenIdx: -1, clearIdx: -1, anyLeafMatched: matchedLeaves.length > 0, absentMatched: false };
          if (matchedLeaves.length > 0) {
            for (const leaf of matchedLeaves) {
              if (leaf.kind === 'sequence') {
                const key = sk.k[leaf.slot] as string;
                for (const s of seqSteps ?? []) {
                  resIdx[rb + leaf.slot] = ops.length;
                  ops.push({ op: 'sequence.step', key, step: s, steps: leaf.steps.length, ts: t, windowMs: leaf.within, ttlMs: p.ttl });
                }
                continue;
              }
              if (leaf.kind === 'absent') pe.absentMatched = true;
              const op = updateOp(p, leaf, e, t, sk);
              if (op) {
                resIdx[rb + leaf.slot] = ops.length;
                ops.push(op);
              }
            }
            // Combinators need the other leaves' current state too.
            for (const leaf of p.rule.leaves) {
              if (resIdx[rb + leaf.slot] !== -1) continue;
              if (leaf.kind === 'changedWithin') {
                const refs = leaf.workloads ?? watched;
                const ref = refs[0];
                if (ref && refs.length === 1) {
                  resIdx[rb + leaf.slot] = ops.length;
                  ops.push({ op: 'max.get', key: keys.workloadChange(ref) });
                }
                continue;
              }
              const q = queryOp(p, leaf, t, sk);
              if (q) {
                resIdx[rb + leaf.slot] = ops.length;
                ops.push(q);
              }
            }
            const dl = p.distinctLeaf;
            if (dl?.kind === 'distinctNodes' && dl.minPercent !== null && p.rule.scope.kind === 'group') {
              const lbl = p.rule.scope.label;
              pe.groupSeenIdx = ops.length;
              ops.push({ op: 'distinct.add', key: keys.groupSeen(lbl, e.labels[lbl] ?? ''), member: e.node, ts: t, windowMs: GROUP_SEEN_WINDOW, ttlMs: GROUP_SEEN_WINDOW + TTL_SLACK });
            }
          }
          if (clearMatched && clear.kind === 'sustained') {
            pe.clearIdx = ops.length;
            ops.push({ op: 'sustained.observe', key: sk.k[clear.slot] as string, index: p.sustainedIndex[clear.slot] as string, member: scope, ts: t, holds: clear.holds(e), ttlMs: p.ttl });
          }
          pend.push(pe);
        }
      }
      if (ops.length === 0) return none;
      const results = await run(ops);
      const ops2: StoreOp[] = [];
      const firings: Firing[] = [];
      const vals = { count: null as number | null, value: null as number | null };
      for (const pe of pend) {
        const p = pe.plan;
        const { t, scope } = pe;
        if (pe.anyLeafMatched) {
          if (p.rule.clear.kind === 'after') ops2.push({ op: 'episode.touch', key: pe.ek, index: p.episodeIndex, member: scope, now: t });
          if (pe.absentMatched && p.rule.clear.kind === 'onMatch') {
            firings.push({ plan: p, e: pe.e, t, scope, kind: 'clear', opIdx: ops2.length, membersIdx: -1, count: null, value: null });
            ops2.push(clearOp(p, scope, t, null, pe.ek));
          }
          vals.count = null;
          vals.value = null;
          if (evaluate(p, p.rule.condition, pe, results, vals)) {
            const f: Firing = { plan: p, e: pe.e, t, scope, kind: 'fire', opIdx: ops2.length, membersIdx: -1, count: vals.count, value: vals.value };
            ops2.push(fireOp(p, scope, t, pe.e?.id ?? '', pe.ek));
            if (p.needsMembers) {
              const m = membersOp(p, scope, t);
              if (m) {
                f.membersIdx = ops2.length;
                ops2.push(m);
              }
            }
            firings.push(f);
          }
        }
        const clear = p.rule.clear;
        if (pe.clearIdx >= 0 && clear.kind === 'sustained') {
          const since = results[pe.clearIdx];
          if (typeof since === 'number' && t - since >= clear.forMs) {
            firings.push({ plan: p, e: pe.e, t, scope, kind: 'clear', opIdx: ops2.length, membersIdx: -1, count: null, value: null });
            ops2.push(clearOp(p, scope, t, null, pe.ek));
          }
        }
      }
      if (ops2.length === 0) {
        if (execFinal) await execFinal([]);
        return none;
      }
      const heldFaults: HeldFault[] = [];
      const decisions = await settle(ops2, firings, heldFaults);
      return { decisions, heldFaults };
    },

    async tick(now: number): Promise<Decision[]> {
      groupSizes = null;
      const enabled = enabledMask(clock.now());
      type Probe = { plan: RulePlan; kind: 'fire' | 'clear-quiet' | 'clear' ; idx: number };
      const ops: StoreOp[] = outbox ? [{ op: 'distinct.members', key: keys.tickOutbox(), now, windowMs: OUTBOX_MS }] : [];
      const probes: Probe[] = [];
      for (const p of plans) {
        if (!enabled[p.index]) continue;
        const c = p.rule.condition;
        if (c.kind === 'sustained') {
          probes.push({ plan: p, kind: 'fire', idx: ops.length });
          ops.push({ op: 'due.pop', index: keys.sustainedIndex(p.rule.id, c.slot), before: now - c.forMs });
        } else if (c.kind === 'absent') {
          probes.push({ plan: p, kind: 'fire', idx: ops.length });
          ops.push({ op: 'due.pop', index: keys.seenIndex(p.rule.id, c.slot), before: now - c.forMs });
        }
        const cl = p.rule.clear;
        if (cl.kind === 'after') {
          probes.push({ plan: p, kind: 'clear-quiet', idx: ops.length });
          ops.push({ op: 'episode.quiet', index: p.episodeIndex, before: now - cl.ms });
        } else if (cl.kind === 'sustained') {
          probes.push({ plan: p, kind: 'clear', idx: ops.length });
          ops.push({ op: 'due.pop', index: keys.sustainedIndex(p.rule.id, cl.slot), before: now - cl.forMs });
        }
      }
      const results = await run(ops);
      const recovered = outbox ? await recoverOutbox((results[0] as string[] | undefined) ?? [], now, enabled) : [];
      const ops2: StoreOp[] = [];
      const firings: Firing[] = [];
      for (const pr of probes) {
        const members = (results[pr.idx] as string[] | undefined) ?? [];
        const p = pr.plan;
        for (const scope of members) {
          const f: Firing = { plan: p, e: null, t: now, scope, kind: pr.kind === 'fire' ? 'fire' : 'clear', opIdx: ops2.length, membersIdx: -1, count: null, value: null };
          if (pr.kind === 'fire') {
            ops2.push(fireOp(p, scope, now, ''));
            if (outbox) {
              const member = JSON.stringify([p.rule.id, scope, now]);
              outboxChecked.set(member, clock.now());
              ops2.push({ op: 'distinct.add', key: keys.tickOutbox(), member, ts: now, windowMs: OUTBOX_MS, ttlMs: OUTBOX_MS });
            }
          } else {
            const cl = p.rule.clear;
            ops2.push(clearOp(p, scope, now, pr.kind === 'clear-quiet' && cl.kind === 'after' ? now - cl.ms : null));
          }
          firings.push(f);
        }
      }
      if (ops2.length === 0) {
        if (execFinal) await execFinal([]);
        return recovered;
      }
      return [...recovered, ...(await settle(ops2, firings))];
    },
  };
  return engine;
}

/**
 * Which state keys belong to NODE-scoped rules (by the rule's declared scope):
 * their leaf and episode keys on a node scope (`n:…`) and their indexes. The
 * partition-local store keeps those in the owning partition's memory and the
 * rest shared (ADR 0045).
 */
export function nodeScopedKeyTest(rules: RuleSet, keyPrefix: string): (key: string) => boolean {
  const keys = new StoreKeys(keyPrefix);
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const rule of rules.rules) {
    if (rule.scope.kind !== 'node') continue;
    exact.add(keys.episodeIndex(rule.id));
    prefixes.push(keys.episode(rule.id, ''));
    for (let i = 0; i < slotsOf(rule); i++) {
      exact.add(keys.sustainedIndex(rule.id, i));
      exact.add(keys.seenIndex(rule.id, i));
      const leaf = rule.leaves[i];
      prefixes.push(keys.leaf((leaf ? kindOf(leaf) : 's') ?? 's', rule.id, i, ''));
    }
  }
  return (key) => {
    if (exact.has(key)) return true;
    for (const p of prefixes) if (key.startsWith(p) && key.startsWith('n:', p.length)) return true;
    return false;
  };
}

/** Slots of a rule: its leaves plus the clear condition's slot, if any. */
function slotsOf(rule: CompiledRule): number {
  return rule.leaves.length + (rule.clear.kind === 'sustained' ? 1 : 0);
}

function kindOf(l: LeafCondition): LeafKind | null {
  switch (l.kind) {
    case 'count':
      return 'w';
    case 'distinctNodes':
      return 'd';
    case 'increase':
    case 'rate':
      return 'cs';
    case 'sustained':
      return 's';
    case 'sequence':
      return 'q';
    default:
      return null;
  }
}

/**
 * The target of a page/resolve: the node itself for node scopes (a sub-scope
 * such as one GPU stays in the dedup key and the evidence — a ledger `Node`
 * target always names a real node), else the group or the fleet.
 */
function scopeTarget(d: ReturnType<typeof decodeScope>, scope: string): Target {
  if (d.node !== null) return { kind: 'Node', name: d.node };
  if (d.group !== null) return { kind: 'Group', name: scope };
  return { kind: 'Fleet', name: scope };
}

/** The Xid an event carries (gpu.xid, or a DCGM XID gauge), bounded, for the repair ladder (remediations/ladder). */
function xidEvidence(e: EventEnvelope): { code: number | null; message: string; gpu: string | null } | null {
  const d = e.data;
  if (e.type !== 'gpu.xid' && !(e.type === 'gpu.health' && d.kind === 'xid')) return null;
  const code = typeof d.code === 'number' && Number.isInteger(d.code) ? d.code : null;
  const message = typeof d.message === 'string' ? d.message.slice(0, 512) : '';
  const gpu = typeof d.gpu === 'string' && d.gpu !== '' ? d.gpu : typeof d.pci === 'string' && d.pci !== '' ? d.pci : null;
  return { code, message, gpu: gpu === null ? null : gpu.slice(0, 96) };
}
