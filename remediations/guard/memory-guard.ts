/**
 * In-memory guard (demo, replay, unit tests): the same checks in the same
 * order as the Redis scripts, over plain maps. One process, synchronous state
 * changes between awaits, so every operation is atomic here too.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import type { ClusterView } from '../../core/cluster.js';
import type { Decision, GuardName } from '../../core/decision.js';
import type { ControllableGuard, ExecutionResult, GuardStatus, GuardVerdict, LeaseState, ReservationEntry } from '../ports.js';
import type { AuthorizePlan, GuardOptions, RawStatus, RawVerdict, SettlePlan } from './policy.js';
import { cordonCost, fitsBudget, nodeWeight, taintCost } from './gpu-budget.js';
import { composeBreakers, composeBudgets, composeRates, deniedOutcome, IN_FLIGHT_GUARD, leaseTtl, peekVerdict, planAuthorization, planSettle, planShared, precheck, replacesLapsed, roundBudget, settleRefusedError, STATUS_ACTIONS, toVerdict } from './policy.js';

interface Breaker {
  openUntil: number | null;
  trial: string | null;
  trialExpires: number;
  failures: Array<{ t: number; id: string }>;
}

interface Reservation {
  id: string;
  scopes: string[];
  exp: number;
}

interface GpuTaints {
  gpus: number | null;
  scopes: string[];
  devices: Map<string, { id: string; exp: number }>;
}

/** The whole guard state; the Redis adapter keeps exactly these things under adapters/redis/keys.ts `guardKeys`. */
export class MemoryGuardState {
  paused: { reason: string; by: string; at: number } | null = null;
  /**
   * Decision id → `in-flight` (until = lease end, extra = reservation, holder =
   * the replica holding the lease) or `done` (until = end of suppression,
   * extra = outcome, holder ''); `keep` = when the entry is forgotten (the
   * Redis key's TTL).
   */
  readonly decisions = new Map<string, { state: 'in-flight' | 'done'; until: number; extra: string; holder: string; keep: number }>();
  readonly breakers = new Map<string, Breaker>();
  readonly cooldowns = new Map<string, { until: number; res: string }>();
  readonly rates = new Map<string, Array<{ t: number; res: string }>>();
  readonly rollbacks = new Map<string, { at: number; from: number | null; to: number | null; res: string; exp: number }>();
  readonly rolledAway = new Map<string, Map<number, number>>();
  readonly reservations = new Map<string, Reservation>();
  /** Node → its GPUs tainted or being tainted by nodewarden; device exp -1 = held until untaint. */
  readonly gpuTaints = new Map<string, GpuTaints>();

  breaker(action: string): Breaker {
    let b = this.breakers.get(action);
    if (!b) {
      b = { openUntil: null, trial: null, trialExpires: 0, failures: [] };
      this.breakers.set(action, b);
    }
    return b;
  }

  private ops = 0;
  /** Drops expired entries now and then, so a long-running demo stays bounded. */
  maybePrune(now: number, opts: GuardOptions): void {
    if (++this.ops % 1024 !== 0) return;
    for (const [k, d] of this.decisions) if (d.keep <= now) this.decisions.delete(k);
    for (const [k, c] of this.cooldowns) if (c.until <= now) this.cooldowns.delete(k);
    for (const [k, r] of this.rollbacks) if (r.exp <= now) this.rollbacks.delete(k);
    for (const [k, away] of this.rolledAway) {
      for (const [rev, at] of away) if (at <= now - opts.rollbackWindowMs) away.delete(rev);
      if (away.size === 0) this.rolledAway.delete(k);
    }
    for (const [k, entries] of this.rates) {
      const w = opts.rateLimits[k]?.windowMs ?? 0;
      const kept = entries.filter((e) => e.t > now - w);
      if (kept.length === 0) this.rates.delete(k);
      else this.rates.set(k, kept);
    }
    this.liveReservations(now);
    this.liveGpuTaints(now);
  }

  liveReservations(now: number): Map<string, Reservation> {
    for (const [node, r] of this.reservations) if (r.exp <= now) this.reservations.delete(node);
    return this.reservations;
  }

  liveGpuTaints(now: number): Map<string, GpuTaints> {
    for (const [node, t] of this.gpuTaints) {
      for (const [gpu, d] of t.devices) if (d.exp !== -1 && d.exp <= now) t.devices.delete(gpu);
      if (t.devices.size === 0) this.gpuTaints.delete(node);
    }
    return this.gpuTaints;
  }
}

/** Per-call scratch: `res` is the reservation written (a taken-over one when `own`). */
interface Ctx {
  trial: boolean;
  res: string;
  own: boolean;
}

type Check = (s: MemoryGuardState, p: AuthorizePlan, ctx: Ctx) => RawVerdict | null;

const deny = (guard: GuardName, a: unknown = '', b: unknown = '', c: unknown = '', outcome: 'denied' | 'suppressed' = 'denied'): RawVerdict => ({
  allowed: false,
  guard,
  outcome,
  a: String(a),
  b: String(b),
  c: String(c),
});

/** Ordered predicates: the first denial wins. Mirrors lua/authorize.lua step by step. */
const CHECKS: readonly Check[] = [
  function paused(s, p) {
    return p.pausable && s.paused ? deny('paused', s.paused.reason, s.paused.by, s.paused.at) : null;
  },
  function idempotency(s, p, ctx) {
    const d = s.decisions.get(p.decisionId);
    if (!d || d.keep <= p.now) return null;
    if (d.state === 'done') return d.until > p.now ? deny('idempotency', d.extra, '', '', 'suppressed') : null;
    // in flight elsewhere: not an outcome, the caller retries once the lease lapses
    if (d.until > p.now) return deny(IN_FLIGHT_GUARD, d.until, '', '', 'suppressed');
    // the lease lapsed (its replica died before settling): take its holds over
    if (d.extra !== '') {
      ctx.res = d.extra;
      ctx.own = true;
    }
    return null;
  },
  function circuit(s, p, ctx) {
    if (p.recovery) return null; // returning capacity is never blocked by the breaker
    const b = s.breakers.get(p.action);
    if (!b || b.openUntil === null) return null;
    if (p.now < b.openUntil) return deny('circuitOpen', 'open', b.openUntil);
    if (b.trial !== null && b.trial !== p.decisionId && b.trialExpires > p.now) return deny('circuitOpen', 'half-open', b.openUntil);
    ctx.trial = true;
    return null;
  },
  function cooldown(s, p, ctx) {
    if (p.cooldownMs <= 0) return null;
    const c = s.cooldowns.get(`${p.action}:${p.target}`);
    if (ctx.own && c?.res === ctx.res) return null;
    return c && c.until > p.now ? deny('cooldown', c.until, '', '', 'suppressed') : null;
  },
  function rateLimit(s, p, ctx) {
    if (!p.rate) return null;
    const entries = (s.rates.get(p.action) ?? []).filter((e) => e.t > p.now - (p.rate?.windowMs ?? 0));
    s.rates.set(p.action, entries);
    if (ctx.own && entries.some((e) => e.res === ctx.res)) return null;
    return entries.length >= p.rate.limit ? deny('rateLimit', entries.length, p.rate.limit) : null;
  },
  function rollback(s, p, ctx) {
    if (!p.rollback) return null;
    if (ctx.own && s.rollbacks.get(p.rollback.workload)?.res === ctx.res) return null;
    const since = p.now - p.rollback.windowMs;
    // the more specific reason first: going back to a revision just left is a flap
    const awayAt = p.rollback.to === null ? undefined : s.rolledAway.get(p.rollback.workload)?.get(p.rollback.to);
    if (awayAt !== undefined && awayAt > since) return deny('rollbackFlapping', p.rollback.to, awayAt);
    const last = s.rollbacks.get(p.rollback.workload);
    if (last && last.at > since) return deny('rollbackWindow', last.at);
    return null;
  },
  function maxUnavailable(s, p) {
    const b = p.budget;
    if (!b) return null;
    const res = s.liveReservations(p.now);
    if (res.has(b.node)) return null; // already counted as a whole node
    // someone else's DeviceTaintRule the view cannot place: the budget is unknown, take nothing more out
    if (b.unplaced !== null) return deny('unplacedDeviceTaint', b.unplaced.rule, b.unplaced.reason, b.unplaced.count);
    const recs = s.liveGpuTaints(p.now);
    const taintedOf = (node: string, view: readonly string[]): Set<string> => new Set([...view, ...(recs.get(node)?.devices.keys() ?? [])]);
    const target = taintedOf(b.node, b.viewTainted);
    const already = b.gpu !== null && target.has(b.gpu.id);
    if (b.gpu !== null && !already && target.size + 1 > b.gpu.cap) return deny('maxTaintedGpusPerNode', b.node, target.size, b.gpu.cap);
    for (const scope of b.scopes) {
      const counted = new Set(scope.unavailable);
      if (counted.has(b.node)) continue; // already unavailable: cordoning it or tainting its GPUs costs nothing
      for (const [node, r] of res) if (r.scopes.includes(scope.scope)) counted.add(node);
      // schedulable nodes with tainted GPUs: the view's, and the guard's own records of this scope
      const partial = new Map<string, { gpus: number | null; tainted: Set<string> }>();
      for (const pn of scope.partial) if (!counted.has(pn.node)) partial.set(pn.node, { gpus: pn.gpus, tainted: taintedOf(pn.node, pn.tainted) });
      for (const [node, t] of recs) if (!counted.has(node) && !partial.has(node) && t.scopes.includes(scope.scope)) partial.set(node, { gpus: t.gpus, tainted: taintedOf(node, []) });
      let used = counted.size;
      for (const [node, pn] of partial) if (node !== b.node) used += nodeWeight({ unavailable: false, gpus: pn.gpus, tainted: pn.tainted.size });
      const now = { unavailable: false, gpus: b.gpus, tainted: target.size };
      used += nodeWeight(now);
      const cost = b.gpu === null ? cordonCost(now) : taintCost(now, already);
      if (!fitsBudget(used, cost, scope.limit)) return deny(scope.scope === 'fleet' ? 'maxUnavailable' : 'maxUnavailablePerGroup', scope.scope, roundBudget(used), scope.limit);
    }
    return null;
  },
];

/** Pure state transition of authorize; exported for the contract tests. */
export function authorizeState(s: MemoryGuardState, p: AuthorizePlan): RawVerdict {
  const ctx: Ctx = { trial: false, res: p.reservation, own: false };
  for (const check of CHECKS) {
    const v = check(s, p, ctx);
    if (v) return v;
  }
  const res = ctx.res;
  s.decisions.set(p.decisionId, { state: 'in-flight', until: p.now + p.inFlightTtlMs, extra: res, holder: p.holder, keep: p.now + Math.max(p.idempotencyTtlMs, p.inFlightTtlMs) });
  if (ctx.trial) {
    const b = s.breaker(p.action);
    b.trial = p.decisionId;
    b.trialExpires = p.now + p.breaker.trialTtlMs;
  }
  if (p.cooldownMs > 0) s.cooldowns.set(`${p.action}:${p.target}`, { until: p.now + p.cooldownMs, res });
  if (p.rate) s.rates.set(p.action, [...(s.rates.get(p.action) ?? []).filter((e) => e.res !== res), { t: p.now, res }]);
  if (p.rollback) {
    s.rollbacks.set(p.rollback.workload, { at: p.now, from: p.rollback.from, to: p.rollback.to, res, exp: p.now + p.rollback.windowMs });
    if (p.rollback.from !== null) {
      const away = s.rolledAway.get(p.rollback.workload) ?? new Map<number, number>();
      away.set(p.rollback.from, p.now);
      s.rolledAway.set(p.rollback.workload, away);
    }
  }
  if (p.budget && p.budget.gpu === null && !s.reservations.has(p.budget.node))
    s.reservations.set(p.budget.node, { id: res, scopes: p.budget.scopes.map((x) => x.scope), exp: p.now + p.budget.holdMs });
  if (p.budget && p.budget.gpu !== null) {
    const t: GpuTaints = s.gpuTaints.get(p.budget.node) ?? { gpus: p.budget.gpus, scopes: [], devices: new Map<string, { id: string; exp: number }>() };
    t.gpus = p.budget.gpus;
    t.scopes = p.budget.scopes.map((x) => x.scope);
    const d = t.devices.get(p.budget.gpu.id);
    // a GPU already held until its untaint keeps that hold
    if (!d || d.exp !== -1) t.devices.set(p.budget.gpu.id, { id: res, exp: p.now + p.budget.holdMs });
    s.gpuTaints.set(p.budget.node, t);
  }
  return ctx.own ? { allowed: true, reservation: res } : { allowed: true };
}

/**
 * A settled denial: the same decision replayed is suppressed, not decided again. Mirrors lua/settle-denial.lua:
 * a record another replica holds is kept; a lapsed in-flight one is replaced only when `overLapsed`.
 */
export function recordDenialState(s: MemoryGuardState, decisionId: string, outcome: 'denied' | 'suppressed', now: number, ttlMs: number, overLapsed = false): void {
  const d = s.decisions.get(decisionId);
  if (d && d.keep > now && !(overLapsed && d.state === 'in-flight' && d.until <= now)) return;
  s.decisions.set(decisionId, { state: 'done', until: now + ttlMs, extra: outcome, holder: '', keep: now + ttlMs });
}

/**
 * Pure state transition of renew; mirrors lua/renew.lua: extends the lease of
 * each decision still in flight under `holder` (lapsed or not), else `lost`.
 */
export function renewState(s: MemoryGuardState, decisionIds: readonly string[], holder: string, now: number, ttlMs: number): Map<string, LeaseState> {
  const out = new Map<string, LeaseState>();
  for (const id of decisionIds) {
    const d = s.decisions.get(id);
    if (!d || d.keep <= now || d.state !== 'in-flight' || d.holder !== holder) {
      out.set(id, 'lost');
      continue;
    }
    d.until = now + ttlMs;
    d.keep = Math.max(d.keep, d.until);
    out.set(id, 'held');
  }
  return out;
}

/**
 * A settle by a replica that does not hold the decision: another one took it
 * over (in flight under another holder, or settled by it). A record without a
 * holder (written before ADR 0026) or none at all does not refuse.
 */
function settleRefused(s: MemoryGuardState, p: SettlePlan): boolean {
  const d = s.decisions.get(p.decisionId);
  if (!d || d.keep <= p.now) return false;
  return d.state === 'done' || (d.holder !== '' && d.holder !== p.holder);
}

/** Pure state transition of settle; mirrors lua/settle.lua. False: refused, nothing changed. */
export function settleState(s: MemoryGuardState, p: SettlePlan): boolean {
  if (settleRefused(s, p)) return false;
  const b = s.breakers.get(p.action);
  if (p.ok) {
    s.decisions.set(p.decisionId, { state: 'done', until: p.now + p.idempotencyTtlMs, extra: p.outcome, holder: '', keep: p.now + p.idempotencyTtlMs });
    if (b && b.trial === p.decisionId) s.breakers.delete(p.action); // trial succeeded: close
    if (p.cordonNode) {
      const r = s.reservations.get(p.cordonNode);
      if (r && r.id === p.reservation) r.exp = p.now + p.holdMs;
    }
    if (p.uncordonNode) s.reservations.delete(p.uncordonNode);
    if (p.taintGpu) {
      const d = s.gpuTaints.get(p.taintGpu.node)?.devices.get(p.taintGpu.gpu);
      // executed: counted until the untaint; dry-run: nothing changed, held like a cordon reservation
      if (d && d.id === p.reservation) d.exp = p.outcome === 'executed' ? -1 : p.now + p.holdMs;
    }
    if (p.untaintGpu) {
      const t = s.gpuTaints.get(p.untaintGpu.node);
      t?.devices.delete(p.untaintGpu.gpu);
      if (t && t.devices.size === 0) s.gpuTaints.delete(p.untaintGpu.node);
    }
    if (p.rollback && p.rollback.to !== null) {
      const r = s.rollbacks.get(p.rollback.workload);
      if (r && r.res === p.reservation) r.to = p.rollback.to;
    }
    return true;
  }
  s.decisions.delete(p.decisionId);
  const ck = `${p.action}:${p.target}`;
  if (s.cooldowns.get(ck)?.res === p.reservation) s.cooldowns.delete(ck);
  if (p.cordonNode && s.reservations.get(p.cordonNode)?.id === p.reservation) s.reservations.delete(p.cordonNode);
  if (p.taintGpu) {
    const t = s.gpuTaints.get(p.taintGpu.node);
    if (t?.devices.get(p.taintGpu.gpu)?.id === p.reservation) t.devices.delete(p.taintGpu.gpu);
    if (t && t.devices.size === 0) s.gpuTaints.delete(p.taintGpu.node);
  }
  if (p.rollback) {
    const r = s.rollbacks.get(p.rollback.workload);
    if (r && r.res === p.reservation) {
      s.rollbacks.delete(p.rollback.workload);
      if (r.from !== null) s.rolledAway.get(p.rollback.workload)?.delete(r.from);
    }
  }
  const br = s.breaker(p.action);
  br.failures = br.failures.filter((f) => f.t > p.now - p.breaker.windowMs);
  br.failures.push({ t: p.now, id: p.decisionId });
  if (br.trial === p.decisionId) {
    br.openUntil = p.now + p.breaker.openForMs; // the trial failed: open again
    br.trial = null;
  } else if (br.openUntil === null && br.failures.length >= p.breaker.failures) {
    br.openUntil = p.now + p.breaker.openForMs;
  }
  return true;
}

export function rawStatusOf(s: MemoryGuardState, opts: GuardOptions, now: number): RawStatus {
  const rateUsed: Record<string, number> = {};
  for (const [action, rl] of Object.entries(opts.rateLimits)) rateUsed[action] = (s.rates.get(action) ?? []).filter((e) => e.t > now - rl.windowMs).length;
  const breakers: RawStatus['breakers'] = {};
  for (const action of STATUS_ACTIONS) {
    const b = s.breakers.get(action);
    breakers[action] = { openUntil: b?.openUntil ?? null, failures: (b?.failures ?? []).filter((f) => f.t > now - opts.breaker.windowMs).length };
  }
  return {
    paused: s.paused ? { ...s.paused } : null,
    reservations: [...s.liveReservations(now)].map(([node, r]) => ({ node, scopes: [...r.scopes] })),
    rateUsed,
    breakers,
  };
}

export interface MemoryGuardOptions {
  view: ClusterView;
  options: GuardOptions;
  clock: Clock;
  /** Share one state between several guard objects (tests of replicas in one process). */
  state?: MemoryGuardState;
  /** Lease-holder token of this replica (default: random). */
  holder?: string;
}

export function createMemoryGuard(o: MemoryGuardOptions): ControllableGuard & { readonly state: MemoryGuardState } {
  const state = o.state ?? new MemoryGuardState();
  const holder = o.holder ?? randomUUID();
  function authorizeOne(decision: Decision, shared = planShared()): GuardVerdict {
    const pre = precheck(decision, o.view);
    if (pre) return toVerdict(pre, decision, null);
    const plan = planAuthorization(decision, o.view, o.options, o.clock.now(), randomUUID(), holder, shared);
    state.maybePrune(plan.now, o.options);
    return toVerdict(authorizeState(state, plan), decision, plan);
  }
  return {
    state,
    holder,
    authorize(decision: Decision): Promise<GuardVerdict> {
      return Promise.resolve(authorizeOne(decision));
    },
    // synchronous throughout: nothing of another caller runs between two decisions of the batch
    authorizeBatch(decisions: readonly Decision[]): Promise<GuardVerdict[]> {
      // one instant of the view for the whole batch: its scopes are counted once
      const shared = planShared();
      return Promise.resolve(decisions.map((d) => authorizeOne(d, shared)));
    },
    peek(decisions: readonly Decision[]): Promise<Array<GuardVerdict | null>> {
      const now = o.clock.now();
      return Promise.resolve(
        decisions.map((d) => {
          const r = state.decisions.get(d.id);
          return r && r.keep > now ? peekVerdict({ state: r.state, until: r.until, extra: r.extra, holder: r.holder }, d, now) : null;
        }),
      );
    },
    settle(decision: Decision, verdict: GuardVerdict, result: ExecutionResult): Promise<void> {
      if (!verdict.allowed) {
        const outcome = deniedOutcome(verdict);
        if (outcome) recordDenialState(state, decision.id, outcome, o.clock.now(), o.options.idempotencyTtlMs, replacesLapsed(verdict));
        return Promise.resolve();
      }
      const plan = planSettle(decision, o.options, o.clock.now(), verdict.reservation ?? '', holder, result.ok, result.toRevision, result.dryRun === true);
      return settleState(state, plan) ? Promise.resolve() : Promise.reject(settleRefusedError(decision.id));
    },
    renew(decisionIds: readonly string[], by: string, ttlMs: number): Promise<Map<string, LeaseState>> {
      return Promise.resolve(renewState(state, decisionIds, by, o.clock.now(), leaseTtl(ttlMs)));
    },
    pause(reason: string, by: string): Promise<void> {
      state.paused = { reason, by, at: o.clock.now() };
      return Promise.resolve();
    },
    resume(): Promise<void> {
      state.paused = null;
      return Promise.resolve();
    },
    pruneReservations(isStale: (r: ReservationEntry) => boolean): Promise<number> {
      let n = 0;
      for (const [node, r] of state.reservations) {
        if (isStale({ node, exp: r.exp })) {
          state.reservations.delete(node);
          n++;
        }
      }
      return Promise.resolve(n);
    },
    status(): Promise<GuardStatus> {
      const now = o.clock.now();
      const raw = rawStatusOf(state, o.options, now);
      const own: Record<string, string[]> = {};
      for (const [node, t] of state.liveGpuTaints(now)) own[node] = [...t.devices.keys()];
      return Promise.resolve({
        at: now,
        paused: raw.paused,
        ...composeBudgets(o.view, o.options, raw.reservations, own),
        rateLimits: composeRates(o.options, raw.rateUsed),
        breakers: composeBreakers(now, raw.breakers),
      });
    },
  };
}
