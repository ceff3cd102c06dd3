/**
 * The guard's pure half: options, the per-decision plan both adapters execute,
 * and the wording of every denial. Adapters (memory, Redis/Lua) hold state and
 * run the same ordered checks over it:
 *
 *   paused → idempotency → circuit breaker → cooldown → rate limit →
 *   rollback (one per window, never flapping) → maxUnavailable (fleet, groups)
 *
 * The first check that fails names the guard and the reason; nothing is
 * reserved unless every check passes, so a denial leaves no trace in budgets.
 *
 * Idempotency has two states per decision id. `in-flight` is written by
 * authorize with a short lease (`inFlightTtlMs`, 15 s) naming the replica that
 * holds it (its holder token), renewed by that replica until it settles
 * (`renew`, ADR 0026): while it runs, the same decision elsewhere gets the `inFlight` verdict, which is
 * NOT a final outcome — the caller retries later (the batch is redelivered).
 * Once the lease has lapsed (the replica died between authorize and settle),
 * the next authorize of that decision takes its holds over (same reservation:
 * its own cooldown, rate entry, rollback record and budget reservation do not
 * deny it) and acts again; executors are idempotent per decision id. `done`
 * is written by settle, after the decision's ledger record is durable, with
 * the outcome, for `idempotencyTtlMs`: the same decision is then `suppressed`.
 */
import type { ClusterView, NodeInfo } from '../../core/cluster.js';
import { isUnavailable, viewTaintedGpus } from '../../core/cluster.js';
import type { NodewardenConfig } from '../../core/config.js';
import type { ActionKind, Decision, GuardName, Target } from '../../core/decision.js';
import { formatDuration, parseDuration } from '../../core/duration.js';
import { NodewardenError } from '../../core/errors.js';
import type { BreakerStatus, BudgetStatus, GpuNodeStatus, GuardVerdict, RateLimitStatus } from '../ports.js';
import { gpuCapFor, nodeWeight } from './gpu-budget.js';

export interface GuardOptions {
  /** `5%` or an absolute count, over the whole fleet. */
  maxUnavailable: string;
  /** `20%` or an absolute count, over each group (pool, zone). */
  maxUnavailablePerGroup: string;
  /** Sliding-window limit per action kind; kinds without an entry are unlimited. */
  rateLimits: Record<string, { count: number; windowMs: number }>;
  /** Cordon/uncordon/rollback of one target at most once per this (duplicates are suppressed). */
  targetCooldownMs: number;
  rollbackWindowMs: number;
  breaker: { failures: number; windowMs: number; openForMs: number };
  /** Decision `group` key → node label name (e.g. pool → nodewarden.io/pool). */
  groupLabels: Record<string, string>;
  /** How long a settled (`done`) decision id is remembered: replays are suppressed. */
  idempotencyTtlMs: number;
  /**
   * Lease of an `in-flight` decision (authorized, not yet settled): while it
   * runs, replays are retried later; after it, a replay takes the decision over.
   * The remediator renews it every third of it until the settle and fences the
   * ledger write on it (ADR 0026), so it only has to outlast a few missed renewals.
   */
  inFlightTtlMs: number;
  /**
   * How long a cordon reservation counts against the budget: the lease of an
   * in-flight action (a crashed replica's reservation expires), and after a
   * successful cordon the time for the cluster view to show the node.
   */
  reservationHoldMs: number;
  /** Lease of the single half-open trial action of a breaker. */
  trialTtlMs: number;
  /** Per-node cap of tainted GPUs: `50%` of its GPUs or a count (gpu-budget.ts gpuCapFor). */
  maxTaintedGpusPerNode: string;
}

export const DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
/** Bound on one executor call and on one ledger write (the remediator enforces it). */
export const DEFAULT_ACTION_TIMEOUT_MS = 30_000;
/**
 * The in-flight lease (config `guard.inFlightLease`): renewed every third of it
 * while the decision is held (ADR 0026), so a dead replica's decision is taken
 * over after at most this long.
 */
export const DEFAULT_IN_FLIGHT_TTL_MS = 15_000;
/** Renewal interval of a held in-flight lease: two renewals can be missed before it lapses. */
export const LEASE_RENEWALS_PER_TTL = 3;
/** Guard name of the verdict for a decision in flight elsewhere: retry later, not an outcome. */
export const IN_FLIGHT_GUARD = 'inFlight' satisfies GuardName;
export const DEFAULT_RESERVATION_HOLD_MS = 5 * 60_000;
export const DEFAULT_TRIAL_TTL_MS = 5 * 60_000;

/** Guard options from the validated config (durations parsed once here). */
export function guardOptionsFromConfig(cfg: NodewardenConfig, extra: Partial<GuardOptions> = {}): GuardOptions {
  const g = cfg.guard;
  const rateLimits: GuardOptions['rateLimits'] = {};
  for (const [k, v] of Object.entries(g.rateLimits)) rateLimits[k] = { count: v.count, windowMs: parseDuration(v.per) };
  return {
    maxUnavailable: g.maxUnavailable,
    maxUnavailablePerGroup: g.maxUnavailablePerGroup,
    rateLimits,
    targetCooldownMs: parseDuration(g.targetCooldown),
    rollbackWindowMs: parseDuration(g.rollbackWindow),
    breaker: {
      failures: g.circuitBreaker.failures,
      windowMs: parseDuration(g.circuitBreaker.window),
      openForMs: parseDuration(g.circuitBreaker.openFor),
    },
    groupLabels: { pool: cfg.labels.group, zone: cfg.labels.zone },
    idempotencyTtlMs: DEFAULT_IDEMPOTENCY_TTL_MS,
    inFlightTtlMs: parseDuration(g.inFlightLease),
    reservationHoldMs: DEFAULT_RESERVATION_HOLD_MS,
    trialTtlMs: DEFAULT_TRIAL_TTL_MS,
    maxTaintedGpusPerNode: g.maxTaintedGpusPerNode,
    ...extra,
  };
}

/**
 * Actions the kill switch stops. Pages and resolves keep flowing: humans must
 * still hear; so does the ladder's hand-over (`replace`, a page).
 */
const PAUSABLE: ReadonlySet<ActionKind> = new Set(['cordon', 'uncordon', 'rollback', 'taint', 'untaint', 'reset', 'reboot', 'validate']);
/**
 * Actions that give capacity back: never blocked by the circuit breaker (the
 * budget only ever counts cordons and taints). An uncordon/untaint is still
 * paused by the kill switch, rate-limited and owned-only (precheck).
 */
const RECOVERY: ReadonlySet<ActionKind> = new Set(['uncordon', 'untaint']);
/** Actions with a per-target cooldown (pages dedupe by dedup key instead). */
const COOLED: ReadonlySet<ActionKind> = new Set(['cordon', 'uncordon', 'rollback', 'taint', 'untaint']);

export function targetKey(t: Target): string {
  // a PCI bus id is unique only within its node
  if (t.kind === 'Device') return `Device/${t.node ?? '-'}/${t.name}`;
  return t.namespace ? `${t.kind}/${t.namespace}/${t.name}` : `${t.kind}/${t.name}`;
}

export interface BudgetScope {
  /** `fleet` or `<dim>=<value>`, e.g. `pool=h100-train`. */
  scope: string;
  limit: number;
  total: number;
  /** Names of nodes in the scope that are unavailable in the view right now. */
  unavailable: string[];
  /** Available nodes of the scope with GPUs tainted in the view: they count tainted/gpus of a node. */
  partial: PartialNode[];
}

/** A node that is schedulable but has tainted GPUs (gpu-budget.ts). */
export interface PartialNode {
  node: string;
  gpus: number | null;
  tainted: string[];
}

/** Everything one authorize call needs; serialised as-is into the Lua script's ARGV. */
export interface AuthorizePlan {
  now: number;
  decisionId: string;
  action: ActionKind;
  target: string;
  reservation: string;
  /** The replica's lease-holder token, written into the in-flight record (ADR 0026). */
  holder: string;
  pausable: boolean;
  /** Gives capacity back (uncordon): the circuit breaker does not apply. */
  recovery: boolean;
  idempotencyTtlMs: number;
  inFlightTtlMs: number;
  breaker: { failures: number; windowMs: number; openForMs: number; trialTtlMs: number };
  /** 0 = no cooldown for this action. */
  cooldownMs: number;
  rate: { limit: number; windowMs: number } | null;
  rollback: { workload: string; windowMs: number; from: number | null; to: number | null } | null;
  budget: {
    node: string;
    holdMs: number;
    scopes: BudgetScope[];
    /** The node's GPU count (null: unknown) and the GPUs the view shows tainted. */
    gpus: number | null;
    viewTainted: string[];
    /** Taint: the GPU and the node's cap of tainted GPUs; null for a cordon. */
    gpu: { id: string; cap: number } | null;
    /**
     * A DeviceTaintRule of someone else's the view cannot place (its name, the
     * reason, how many such rules): the action is denied (`unplacedDeviceTaint`)
     * unless it costs nothing (node already reserved). Null when there is none.
     */
    unplaced: { rule: string; reason: string; count: number } | null;
  } | null;
}

/** What settle needs; derived from the decision alone so any replica can settle. */
export interface SettlePlan {
  now: number;
  decisionId: string;
  action: ActionKind;
  target: string;
  reservation: string;
  /** The settling replica's holder token: a settle of a decision another replica holds (or settled) is refused. */
  holder: string;
  ok: boolean;
  /** Recorded in the `done` state: `executed` or `dry-run`. */
  outcome: 'executed' | 'dry-run';
  idempotencyTtlMs: number;
  breaker: { failures: number; windowMs: number; openForMs: number };
  holdMs: number;
  /** Cordon: the node whose reservation is confirmed (ok) or released (failed). */
  cordonNode: string | null;
  /** Uncordon: the node whose reservation is dropped on success. */
  uncordonNode: string | null;
  /** Taint: the GPU whose reservation is confirmed (ok: until untaint; dry-run: holdMs) or released (failed). */
  taintGpu: { node: string; gpu: string } | null;
  /** Untaint: the GPU whose record is dropped on success. */
  untaintGpu: { node: string; gpu: string } | null;
  rollback: { workload: string; to: number | null } | null;
}

/**
 * Raw result of the state check, identical from both adapters:
 * `allow` or `deny` + guard + outcome + up to three guard-specific values.
 */
export type RawVerdict =
  /** `reservation`: the holds' id when a lapsed in-flight decision was taken over. */
  | { allowed: true; reservation?: string }
  | { allowed: false; guard: GuardName; outcome: 'denied' | 'suppressed'; a: string; b: string; c: string };

function workloadKey(t: Target): string {
  return `${t.kind}/${t.namespace ?? 'default'}/${t.name}`;
}

/** Group scopes of a cordon: the decision's group labels, else the node's own pool/zone labels. */
export function groupsOf(decision: Decision, node: NodeInfo | undefined, opts: GuardOptions): Array<{ dim: string; value: string; label: string }> {
  const out: Array<{ dim: string; value: string; label: string }> = [];
  if (decision.group && Object.keys(decision.group).length > 0) {
    for (const [dim, value] of Object.entries(decision.group)) out.push({ dim, value, label: opts.groupLabels[dim] ?? dim });
  } else if (node) {
    for (const [dim, label] of Object.entries(opts.groupLabels)) {
      const value = node.labels[label];
      if (value !== undefined) out.push({ dim, value, label });
    }
  }
  return out.sort((x, y) => x.dim.localeCompare(y.dim));
}

/** Stateless predicates that need only the view (run before the state check). */
export function precheck(decision: Decision, view: ClusterView): RawVerdict | null {
  if (decision.action === 'uncordon' && decision.target.kind === 'Node') {
    const node = view.getNode(decision.target.name);
    // Never undo a cordon a human made: only nodes nodewarden cordoned are released.
    if (node && node.unschedulable && !node.cordonedByNodewarden)
      return { allowed: false, guard: 'notOwned', outcome: 'suppressed', a: '', b: '', c: '' };
  }
  return null;
}

/**
 * What the plans of one batch made at one instant of one view share (ADR 0044): the
 * node list, each budget scope (counts and node lists, O(fleet) to build) and the
 * unplaced device taints. Built lazily, one per batch, never kept: the next batch
 * sees the view as it is then.
 */
export interface PlanShared {
  nodes?: readonly NodeInfo[];
  readonly scopes: Map<string, BudgetScope>;
  unplaced?: { rule: string; reason: string; count: number } | null;
}

export function planShared(): PlanShared {
  return { scopes: new Map() };
}

export function planAuthorization(decision: Decision, view: ClusterView, opts: GuardOptions, now: number, reservation: string, holder: string, shared: PlanShared = planShared()): AuthorizePlan {
  const action = decision.action;
  const rl = opts.rateLimits[action];
  let rollback: AuthorizePlan['rollback'] = null;
  if (action === 'rollback' && (decision.target.kind === 'DaemonSet' || decision.target.kind === 'Deployment')) {
    const revs = view.workloadRevisions({ kind: decision.target.kind, namespace: decision.target.namespace ?? 'default', name: decision.target.name });
    const current = revs[revs.length - 1]?.revision ?? null;
    const previous = revs[revs.length - 2]?.revision ?? null;
    rollback = {
      workload: workloadKey(decision.target),
      windowMs: opts.rollbackWindowMs,
      from: decision.params?.fromRevision ?? current,
      to: decision.params?.toRevision ?? previous,
    };
  }
  let budget: AuthorizePlan['budget'] = null;
  const budgeted = budgetNodeOf(decision);
  if (budgeted !== null) {
    const nodes = (shared.nodes ??= view.listNodes());
    const target = view.getNode(budgeted);
    const scopeOf = (key: string, make: () => BudgetScope): BudgetScope => {
      let sc = shared.scopes.get(key);
      if (!sc) shared.scopes.set(key, (sc = make()));
      return sc;
    };
    const scopes: BudgetScope[] = [
      scopeOf('fleet', () => ({
        scope: 'fleet',
        limit: budgetFor(opts.maxUnavailable, nodes.length),
        total: nodes.length,
        unavailable: nodes.filter(isUnavailable).map((n) => n.name),
        partial: partialNodes(nodes),
      })),
    ];
    for (const g of groupsOf(decision, target, opts)) {
      scopes.push(
        scopeOf(`${g.dim}=${g.value}\u0000${g.label}`, () => {
          const members = nodes.filter((n) => n.labels[g.label] === g.value);
          return {
            scope: `${g.dim}=${g.value}`,
            limit: budgetFor(opts.maxUnavailablePerGroup, members.length),
            total: members.length,
            unavailable: members.filter(isUnavailable).map((n) => n.name),
            partial: partialNodes(members),
          };
        }),
      );
    }
    const gpus = target?.gpus ?? null;
    budget = {
      node: budgeted,
      holdMs: opts.reservationHoldMs,
      scopes,
      gpus,
      viewTainted: target ? viewTaintedGpus(target) : [],
      gpu: action === 'taint' ? { id: decision.target.name, cap: gpuCapFor(opts.maxTaintedGpusPerNode, gpus) } : null,
      unplaced: shared.unplaced === undefined ? (shared.unplaced = unplacedOf(view)) : shared.unplaced,
    };
  }
  return {
    now,
    decisionId: decision.id,
    action,
    target: targetKey(decision.target),
    reservation,
    holder,
    pausable: PAUSABLE.has(action),
    recovery: RECOVERY.has(action),
    idempotencyTtlMs: opts.idempotencyTtlMs,
    inFlightTtlMs: opts.inFlightTtlMs,
    breaker: { ...opts.breaker, trialTtlMs: opts.trialTtlMs },
    cooldownMs: COOLED.has(action) ? opts.targetCooldownMs : 0,
    rate: rl ? { limit: rl.count, windowMs: rl.windowMs } : null,
    rollback,
    budget,
  };
}

/** The node whose budget a decision spends: a cordoned node, or the node of a tainted GPU; null otherwise. */
export function budgetNodeOf(decision: Decision): string | null {
  if (decision.action === 'cordon' && decision.target.kind === 'Node') return decision.target.name;
  if (decision.action === 'taint' && decision.target.kind === 'Device' && decision.target.node) return decision.target.node;
  return null;
}

/** Schedulable nodes with GPUs tainted in the view (own and others'). */
function partialNodes(nodes: readonly NodeInfo[]): PartialNode[] {
  const out: PartialNode[] = [];
  for (const n of nodes) {
    if (isUnavailable(n)) continue;
    const tainted = viewTaintedGpus(n);
    if (tainted.length > 0) out.push({ node: n.name, gpus: n.gpus ?? null, tainted });
  }
  return out;
}

/** The first unplaced foreign DeviceTaintRule of the view, with the count; null when none (or the view does not watch them). */
function unplacedOf(view: ClusterView): { rule: string; reason: string; count: number } | null {
  const u = view.unplacedDeviceTaints?.();
  const first = u?.rules[0];
  return u && u.count > 0 && first ? { rule: first.rule.slice(0, 253), reason: first.reason.slice(0, 512), count: u.count } : null;
}

function deviceOf(decision: Decision, action: ActionKind): { node: string; gpu: string } | null {
  const t = decision.target;
  return decision.action === action && t.kind === 'Device' && t.node ? { node: t.node, gpu: t.name } : null;
}

export function planSettle(decision: Decision, opts: GuardOptions, now: number, reservation: string, holder: string, ok: boolean, toRevision?: number, dryRun = false): SettlePlan {
  const isNode = decision.target.kind === 'Node';
  return {
    now,
    decisionId: decision.id,
    action: decision.action,
    target: targetKey(decision.target),
    reservation,
    holder,
    ok,
    outcome: dryRun ? 'dry-run' : 'executed',
    idempotencyTtlMs: opts.idempotencyTtlMs,
    breaker: opts.breaker,
    holdMs: opts.reservationHoldMs,
    cordonNode: decision.action === 'cordon' && isNode ? decision.target.name : null,
    uncordonNode: decision.action === 'uncordon' && isNode ? decision.target.name : null,
    taintGpu: deviceOf(decision, 'taint'),
    untaintGpu: deviceOf(decision, 'untaint'),
    rollback: decision.action === 'rollback' ? { workload: workloadKey(decision.target), to: toRevision ?? null } : null,
  };
}

/** Budget figures are sums of fractions: shown with at most 2 decimals. */
export function roundBudget(n: number): string {
  return String(Math.round(n * 100) / 100);
}

function iso(ms: string | number): string {
  const n = Number(ms);
  return Number.isFinite(n) ? new Date(n).toISOString() : String(ms);
}

/** The same words from both adapters: the ledger and the grouped page show them. */
export function toVerdict(raw: RawVerdict, decision: Decision, plan: AuthorizePlan | null): GuardVerdict {
  if (raw.allowed) return { allowed: true, guard: null, reservation: raw.reservation ?? plan?.reservation ?? '' };
  const t = targetKey(decision.target);
  const { a, b, c } = raw;
  let reason: string;
  switch (raw.guard) {
    case 'paused':
      reason = `remediation paused by ${b || 'unknown'}: ${a}`;
      break;
    case 'idempotency':
      reason = `decision ${decision.id} already ${a}; not acting twice`;
      break;
    case IN_FLIGHT_GUARD:
      reason = `decision ${decision.id} is in flight elsewhere (lease until ${iso(a)}); retry later`;
      break;
    case 'circuitOpen':
      reason =
        a === 'half-open'
          ? `circuit half-open for ${decision.action}: one trial action is in flight`
          : `circuit open for ${decision.action} after repeated failures, half-opens at ${iso(b)}`;
      break;
    case 'cooldown':
      reason = `${t} had a ${decision.action} within the cooldown of ${formatDuration(plan?.cooldownMs ?? 0)} (until ${iso(a)})`;
      break;
    case 'rateLimit':
      reason = `rate limit: ${a} of ${b} ${decision.action} actions already taken in the last ${formatDuration(plan?.rate?.windowMs ?? 0)}`;
      break;
    case 'rollbackWindow':
      reason = `${t} was already rolled back at ${iso(a)} (at most one rollback per ${formatDuration(plan?.rollback?.windowMs ?? 0)})`;
      break;
    case 'rollbackFlapping':
      reason = `refusing to roll ${t} back to revision ${a}: it was rolled away from at ${iso(b)} (flapping)`;
      break;
    case 'maxUnavailable':
    case 'maxUnavailablePerGroup': {
      const scope = plan?.budget?.scopes.find((s) => s.scope === a);
      const where = `${a === 'fleet' ? 'the fleet' : a} (${scope?.total ?? '?'} nodes, limit ${c}; unavailable or reserved now: ${b}`;
      reason =
        decision.action === 'taint'
          ? `tainting GPU ${decision.target.name} of ${decision.target.node ?? '?'} would take more than ${c} nodes' worth of capacity out of ${where}, tainted GPUs counted as their share of a node)`
          : `cordoning ${decision.target.name} would make ${roundBudget(Number(b) + 1)} nodes unavailable in ${where})`;
      break;
    }
    case 'maxTaintedGpusPerNode':
      reason = `${a} already has ${b} tainted GPU(s), the per-node cap of ${c}: not tainting GPU ${decision.target.name} (a node this sick needs a person or the node-level step)`;
      break;
    case 'unplacedDeviceTaint': {
      const what = decision.action === 'taint' ? `tainting GPU ${decision.target.name} of ${decision.target.node ?? '?'}` : `cordoning ${decision.target.name}`;
      const more = Number(c) > 1 ? ` (and ${Number(c) - 1} more such rule(s))` : '';
      reason = `not ${what}: DeviceTaintRule ${a}, not nodewarden's, cannot be mapped to GPUs (${b})${more}, so the GPU budget is unknown; fix or remove the rule, or tell it by driver/pool/device (docs/gpu-scope.md)`;
      break;
    }
    case 'notOwned':
      reason = `${decision.target.name} was cordoned by someone else; nodewarden only uncordons nodes it cordoned`;
      break;
    default:
      reason = `${raw.guard}: ${[a, b, c].filter(Boolean).join(' ')}`;
  }
  return { allowed: false, guard: raw.guard, outcome: raw.outcome, reason };
}

/** Raw counters of the state, from either adapter; the view supplies the rest. */
export interface RawStatus {
  paused: { reason: string; by: string; at: number } | null;
  /** Reserved node -> its scopes (expired reservations already dropped). */
  reservations: Array<{ node: string; scopes: string[] }>;
  /** Per rate-limited action: entries in the window. */
  rateUsed: Record<string, number>;
  breakers: Record<string, { openUntil: number | null; failures: number }>;
}

/** Action kinds whose breaker and rate limit a status report lists. */
export const STATUS_ACTIONS: readonly ActionKind[] = ['cordon', 'uncordon', 'rollback', 'page', 'resolve', 'taint', 'untaint', 'reset', 'reboot', 'validate', 'replace'];

/**
 * The budgets as a status report shows them. `ownGpuTaints`: node → GPUs the
 * guard itself holds as tainted (its records); with the view's device taints
 * they make the GPU weight of schedulable, unreserved nodes (the same
 * arithmetic as authorize, remediations/guard/gpu-budget.ts).
 */
export function composeBudgets(
  view: ClusterView,
  opts: GuardOptions,
  reservations: RawStatus['reservations'],
  ownGpuTaints: Readonly<Record<string, readonly string[]>> = {},
): { fleet: BudgetStatus; groups: BudgetStatus[]; gpus: GpuNodeStatus[]; unplacedDeviceTaints?: { rules: Array<{ rule: string; reason: string }>; count: number } } {
  const nodes = view.listNodes();
  const reserved = (scope: string, members: ReadonlySet<string>): number =>
    reservations.filter((r) => r.scopes.includes(scope) && !members.has(r.node)).length;
  const reservedNodes = new Set(reservations.map((r) => r.node));
  const gpus: GpuNodeStatus[] = [];
  const weightOf = new Map<string, number>();
  for (const n of nodes) {
    if (isUnavailable(n) || reservedNodes.has(n.name)) continue;
    const tainted = [...new Set([...viewTaintedGpus(n), ...(ownGpuTaints[n.name] ?? [])])].sort();
    if (tainted.length === 0) continue;
    const count = n.gpus ?? null;
    const weight = nodeWeight({ unavailable: false, gpus: count, tainted: tainted.length });
    weightOf.set(n.name, weight);
    gpus.push({ node: n.name, tainted, gpus: count, weight, cap: gpuCapFor(opts.maxTaintedGpusPerNode, count) });
  }
  gpus.sort((a, b) => a.node.localeCompare(b.node));
  const gpuWeight = (members: readonly NodeInfo[]): number => members.reduce((t, n) => t + (weightOf.get(n.name) ?? 0), 0);
  const unavailFleet = new Set(nodes.filter(isUnavailable).map((n) => n.name));
  const fleet: BudgetStatus = {
    scope: 'fleet',
    total: nodes.length,
    unavailable: unavailFleet.size,
    reserved: reserved('fleet', unavailFleet),
    gpuWeight: gpuWeight(nodes),
    limit: budgetFor(opts.maxUnavailable, nodes.length),
  };
  const groups: BudgetStatus[] = [];
  for (const [dim, label] of Object.entries(opts.groupLabels)) {
    const values = [...new Set(nodes.map((n) => n.labels[label]).filter((v): v is string => v !== undefined))].sort();
    for (const value of values) {
      const members = nodes.filter((n) => n.labels[label] === value);
      const un = new Set(members.filter(isUnavailable).map((n) => n.name));
      const scope = `${dim}=${value}`;
      groups.push({ scope, total: members.length, unavailable: un.size, reserved: reserved(scope, un), gpuWeight: gpuWeight(members), limit: budgetFor(opts.maxUnavailablePerGroup, members.length) });
    }
  }
  const unplaced = view.unplacedDeviceTaints?.();
  if (unplaced && unplaced.count > 0) return { fleet, groups, gpus, unplacedDeviceTaints: { rules: unplaced.rules.map((r) => ({ rule: r.rule, reason: r.reason })), count: unplaced.count } };
  return { fleet, groups, gpus };
}

export function composeRates(opts: GuardOptions, used: Record<string, number>): RateLimitStatus[] {
  return Object.entries(opts.rateLimits)
    .map(([action, rl]) => ({ action, limit: rl.count, windowMs: rl.windowMs, used: used[action] ?? 0, remaining: Math.max(0, rl.count - (used[action] ?? 0)) }))
    .sort((x, y) => x.action.localeCompare(y.action));
}

export function composeBreakers(now: number, raw: RawStatus['breakers']): BreakerStatus[] {
  return STATUS_ACTIONS.map((action) => {
    const b = raw[action];
    if (!b || b.openUntil === null) return { action, state: 'closed' as const, failures: b?.failures ?? 0 };
    return { action, state: now < b.openUntil ? ('open' as const) : ('half-open' as const), failures: b.failures, openUntil: b.openUntil };
  });
}

/**
 * The `done` record a settle writes for a verdict that was not allowed, or
 * null when nothing is recorded: an in-flight or already-done decision keeps
 * its record, a guard that could not answer decided nothing, and an open
 * breaker is not final (the remediator retries the decision once it half-opens).
 */
export function deniedOutcome(verdict: GuardVerdict): 'denied' | 'suppressed' | null {
  if (verdict.allowed) return null;
  if (verdict.guard === IN_FLIGHT_GUARD || verdict.guard === 'idempotency' || verdict.guard === 'guardUnavailable' || verdict.guard === 'circuitOpen' || verdict.guard === null) return null;
  return verdict.outcome ?? 'denied';
}

/** A renewal's ttl, bounded: a whole number of ms in [1 s, 1 h]; one clear error otherwise. */
export function leaseTtl(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs < 1000 || ttlMs > 3_600_000) throw new NodewardenError('REQUEST_INVALID', `guard renew: lease ttl ${ttlMs} ms is outside 1 s .. 1 h`);
  return Math.floor(ttlMs);
}

/** The error of a settle by a replica that no longer holds the decision (ADR 0026). */
export function settleRefusedError(decisionId: string): NodewardenError {
  return new NodewardenError('CONFLICT', `guard settle: decision ${decisionId} is held (or was settled) by another replica; not settled`);
}

/**
 * Pages the incident layer suppressed (joined an open incident, a member still
 * firing, silenced) are settled over a lapsed in-flight record of their
 * decision (its replica died between authorize and settle): routed, they never
 * reach authorize to take the lease over, and without a `done` record every
 * redelivery or re-derivation would be routed and recorded again.
 */
const INCIDENT_GUARDS: ReadonlySet<GuardName> = new Set<GuardName>(['incidentOpen', 'incidentFiring', 'silenced']);

export function replacesLapsed(verdict: GuardVerdict): boolean {
  return !verdict.allowed && verdict.guard !== null && INCIDENT_GUARDS.has(verdict.guard);
}

/**
 * A decision record of either adapter: `in-flight|<leaseEnd>|<reservation>|<holder>`
 * or `done|<until>|<outcome>` (holder: ADR 0026; absent in records of older versions).
 */
export interface DecisionRecord {
  state: 'in-flight' | 'done';
  until: number;
  /** in-flight: the reservation of its holds; done: the outcome. */
  extra: string;
  /** in-flight: the lease holder's token ('' when written by an older version); done: ''. */
  holder: string;
}

/** Reads a decision record as both adapters write it (and `executed|<until>` of older versions); null when malformed. Mirrors readDecisionRecord/splitHolder in lua/prelude.lua. */
export function parseDecisionRecord(text: string): DecisionRecord | null {
  const [state, until, ...rest] = text.split('|');
  const u = Number(until);
  if (until === undefined || until === '' || !Number.isFinite(u)) return null;
  const extra = rest.join('|');
  if (state === 'done' || state === 'executed') return { state: 'done', until: u, extra: extra === '' ? state : extra, holder: '' };
  if (state !== 'in-flight') return null;
  const bar = extra.indexOf('|');
  return bar < 0 ? { state: 'in-flight', until: u, extra, holder: '' } : { state: 'in-flight', until: u, extra: extra.slice(0, bar), holder: extra.slice(bar + 1) };
}

/** The verdict `peek` reports for a decision record (the idempotency step of authorize, read-only); null: authorize would go on. */
export function peekVerdict(r: DecisionRecord | null, decision: Decision, now: number): GuardVerdict | null {
  if (r === null || r.until <= now) return null;
  const raw: RawVerdict =
    r.state === 'done'
      ? { allowed: false, guard: 'idempotency', outcome: 'suppressed', a: r.extra, b: '', c: '' }
      : { allowed: false, guard: IN_FLIGHT_GUARD, outcome: 'suppressed', a: String(r.until), b: '', c: '' };
  return toVerdict(raw, decision, null);
}

/** The guard's arithmetic: `5%` of total, or an absolute count; floors, but a non-zero percentage allows at least 1 when total > 0. */
export function budgetFor(spec: string, total: number): number {
  if (spec.endsWith('%')) {
    const pct = Number(spec.slice(0, -1));
    if (total <= 0 || pct <= 0) return 0;
    return Math.max(1, Math.floor((pct / 100) * total));
  }
  return Number(spec);
}
