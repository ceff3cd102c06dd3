/**
 * Redis guard (production): the state of every engine replica in one Redis,
 * each read-modify-write one Lua script (lua/*.lua), so concurrent replicas
 * can never together exceed a budget or act twice on one decision. Times come
 * from the injected clock and are passed to the scripts.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Clock } from '../../core/clock.js';
import type { ClusterView } from '../../core/cluster.js';
import { isGuardName, type Decision } from '../../core/decision.js';
import { errorMessage, NodewardenError } from '../../core/errors.js';
import { isRecord } from '../../core/records.js';
import type { ControllableGuard, ExecutionResult, GuardStatus, GuardVerdict, LeaseState, ReservationEntry } from '../ports.js';
import type { GuardKeys } from '../../adapters/redis/keys.js';
import { guardKeys } from '../../adapters/redis/keys.js';
import type { LuaScript } from '../../adapters/redis/lua-script.js';
import { redisScript } from '../../adapters/redis/scripts.js';
import type { AuthorizePlan, GuardOptions, RawStatus, RawVerdict } from './policy.js';
import { composeBreakers, composeBudgets, composeRates, deniedOutcome, leaseTtl, parseDecisionRecord, peekVerdict, planAuthorization, planSettle, planShared, precheck, replacesLapsed, settleRefusedError, STATUS_ACTIONS, targetKey } from './policy.js';
import { toVerdict } from './policy.js';

export interface RedisGuardOptions {
  redis: Redis;
  /** Config `redis.keyPrefix`. */
  keyPrefix: string;
  view: ClusterView;
  options: GuardOptions;
  clock: Clock;
  /** Close the Redis connection in close() (only when the guard owns it). */
  ownsConnection?: boolean;
  /** Lease-holder token of this replica (default: random). */
  holder?: string;
}

function loadScripts(): { authorize: LuaScript; settle: LuaScript; settleDenial: LuaScript; renew: LuaScript; status: LuaScript; release: LuaScript } {
  return {
    authorize: redisScript('guard.authorize'),
    settle: redisScript('guard.settle'),
    settleDenial: redisScript('guard.settle-denial'),
    renew: redisScript('guard.renew'),
    status: redisScript('guard.status'),
    release: redisScript('guard.hdel-if-equal'),
  };
}

/** Parses one field of the reservations hash (`{id, scopes, exp}`); null when malformed. */
export function parseReservation(node: string, json: string): ReservationEntry | null {
  try {
    const v = JSON.parse(json) as { exp?: unknown };
    const exp = typeof v.exp === 'number' ? v.exp : typeof v.exp === 'string' ? Number(v.exp) : NaN;
    return Number.isFinite(exp) ? { node, exp } : null;
  } catch {
    return null;
  }
}

function unavailable(op: string, err: unknown): NodewardenError {
  return new NodewardenError('UNAVAILABLE', `guard ${op}: redis: ${errorMessage(err)}`, { retriable: true, cause: err });
}

function parseRaw(reply: unknown): RawVerdict {
  if (!Array.isArray(reply)) throw new NodewardenError('INTERNAL', `guard authorize: unexpected reply ${JSON.stringify(reply)}`);
  const r = reply.map((x) => (typeof x === 'string' ? x : String(x)));
  if (r[0] === 'allow') return r[1] ? { allowed: true, reservation: r[1] } : { allowed: true };
  const guard = r[1] ?? '';
  if (!isGuardName(guard)) throw new NodewardenError('INTERNAL', `guard authorize: unknown guard ${JSON.stringify(guard)} in the reply`);
  return { allowed: false, guard, outcome: r[2] === 'suppressed' ? 'suppressed' : 'denied', a: r[3] ?? '', b: r[4] ?? '', c: r[5] ?? '' };
}

interface StatusReply {
  paused: { reason: string; by: string; at: number } | false;
  reservations: Array<[string, string[]]> | Record<string, never>;
  rate: Record<string, number> | never[];
  breakers: Record<string, { openUntil: number | false; failures: number }>;
}

export function createRedisGuard(o: RedisGuardOptions): ControllableGuard & { readonly keys: GuardKeys } {
  const k = guardKeys(o.keyPrefix);
  const lua = loadScripts();
  const holder = o.holder ?? randomUUID();
  /** authorize.lua's 10 keys of one decision (see its header). */
  const authorizeKeys = (d: Decision, plan: AuthorizePlan): string[] => {
    const a = d.action;
    const wl = plan.rollback?.workload ?? '-';
    return [k.paused, k.decision(d.id), k.breaker(a), k.breakerFailures(a), k.cooldown(a, plan.target), k.rate(a), k.rollback(wl), k.rollbackAway(wl), k.reservations, k.gpuTaints];
  };

  return {
    keys: k,
    holder,
    async authorize(decision: Decision): Promise<GuardVerdict> {
      const pre = precheck(decision, o.view);
      if (pre) return toVerdict(pre, decision, null);
      const plan = planAuthorization(decision, o.view, o.options, o.clock.now(), randomUUID(), holder);
      let reply: unknown;
      try {
        reply = await lua.authorize.run(o.redis, authorizeKeys(decision, plan), [JSON.stringify(plan)]);
      } catch (err) {
        throw unavailable('authorize', err);
      }
      return toVerdict(parseRaw(reply), decision, plan);
    },

    /** One script call for the batch (lua/authorize.lua with `plans`): the plans one after the other, atomically. */
    async authorizeBatch(decisions: readonly Decision[]): Promise<GuardVerdict[]> {
      const now = o.clock.now();
      const out = new Array<GuardVerdict | undefined>(decisions.length);
      const asked: Array<{ i: number; d: Decision; plan: AuthorizePlan }> = [];
      // one instant of the view for the whole batch: its scopes are counted once
      const shared = planShared();
      decisions.forEach((d, i) => {
        const pre = precheck(d, o.view);
        if (pre) out[i] = toVerdict(pre, d, null);
        else asked.push({ i, d, plan: planAuthorization(d, o.view, o.options, now, randomUUID(), holder, shared) });
      });
      if (asked.length > 0) {
        let reply: unknown;
        try {
          reply = await lua.authorize.run(o.redis, asked.flatMap((x) => authorizeKeys(x.d, x.plan)), [JSON.stringify({ now, plans: asked.map((x) => x.plan) })]);
        } catch (err) {
          throw unavailable('authorize', err);
        }
        if (!Array.isArray(reply) || reply.length !== asked.length) throw new NodewardenError('INTERNAL', `guard authorize: unexpected batch reply ${JSON.stringify(reply)}`);
        const replies: unknown[] = reply;
        asked.forEach((x, j) => (out[x.i] = toVerdict(parseRaw(replies[j]), x.d, x.plan)));
      }
      return out.map((v) => v ?? { allowed: false, guard: 'guardUnavailable', outcome: 'denied', reason: 'guard unavailable: no verdict' });
    },

    /** One MGET of the decision records: reads only (the Lua's idempotency step, without its writes). */
    async peek(decisions: readonly Decision[]): Promise<Array<GuardVerdict | null>> {
      if (decisions.length === 0) return [];
      let texts: Array<string | null>;
      try {
        texts = await o.redis.mget(decisions.map((d) => k.decision(d.id)));
      } catch (err) {
        throw unavailable('peek', err);
      }
      const now = o.clock.now();
      return decisions.map((d, i) => {
        const t = texts[i];
        return typeof t === 'string' ? peekVerdict(parseDecisionRecord(t), d, now) : null;
      });
    },

    async settle(decision: Decision, verdict: GuardVerdict, result: ExecutionResult): Promise<void> {
      if (!verdict.allowed) {
        // A settled denial: the same decision replayed is suppressed. Never overwrites
        // a record another replica holds (in flight, or done): lua/settle-denial.lua.
        const outcome = deniedOutcome(verdict);
        if (!outcome) return;
        const now = o.clock.now();
        const ttl = Math.max(1, Math.floor(o.options.idempotencyTtlMs));
        try {
          await lua.settleDenial.run(o.redis, [k.decision(decision.id)], [JSON.stringify({ now, outcome, ttlMs: ttl, overLapsed: replacesLapsed(verdict) })]);
        } catch (err) {
          throw unavailable('settle', err);
        }
        return;
      }
      const plan = planSettle(decision, o.options, o.clock.now(), verdict.reservation ?? '', holder, result.ok, result.toRevision, result.dryRun === true);
      const a = decision.action;
      const wl = plan.rollback?.workload ?? '-';
      const keys = [k.decision(decision.id), k.breaker(a), k.breakerFailures(a), k.cooldown(a, targetKey(decision.target)), k.reservations, k.rollback(wl), k.rollbackAway(wl), k.gpuTaints];
      let reply: unknown;
      try {
        reply = await lua.settle.run(o.redis, keys, [JSON.stringify(plan)]);
      } catch (err) {
        throw unavailable('settle', err);
      }
      if (reply === 'refused') throw settleRefusedError(decision.id);
    },

    async renew(decisionIds: readonly string[], by: string, ttlMs: number): Promise<Map<string, LeaseState>> {
      const ttl = leaseTtl(ttlMs);
      const out = new Map<string, LeaseState>();
      if (decisionIds.length === 0) return out;
      let reply: unknown;
      try {
        reply = await lua.renew.run(o.redis, decisionIds.map((id) => k.decision(id)), [JSON.stringify({ now: o.clock.now(), holder: by, ttlMs: ttl })]);
      } catch (err) {
        throw unavailable('renew', err);
      }
      if (!Array.isArray(reply) || reply.length !== decisionIds.length) throw new NodewardenError('INTERNAL', `guard renew: unexpected reply ${JSON.stringify(reply)}`);
      const states: unknown[] = reply;
      decisionIds.forEach((id, i) => out.set(id, states[i] === 'held' ? 'held' : 'lost'));
      return out;
    },

    async pause(reason: string, by: string): Promise<void> {
      await o.redis.hset(k.paused, { reason, by, at: String(o.clock.now()) });
    },

    async resume(): Promise<void> {
      await o.redis.del(k.paused);
    },

    /** Compare-and-delete (lua/hdel-if-equal.lua): a reservation rewritten since the read is kept. */
    async pruneReservations(isStale: (r: ReservationEntry) => boolean): Promise<number> {
      try {
        const all = await o.redis.hgetall(k.reservations);
        const args: string[] = [];
        for (const [node, json] of Object.entries(all)) {
          const r = parseReservation(node, json);
          // a malformed entry never counts for anything useful: release it too
          if (r === null || isStale(r)) args.push(node, json);
        }
        if (args.length === 0) return 0;
        return Number(await lua.release.run(o.redis, [k.reservations], args));
      } catch (err) {
        throw unavailable('reservations', err);
      }
    },

    async status(): Promise<GuardStatus> {
      const now = o.clock.now();
      const actions = STATUS_ACTIONS.map((action) => ({ action, rateWindowMs: o.options.rateLimits[action]?.windowMs ?? 0, breakerWindowMs: o.options.breaker.windowMs }));
      const keys = [k.paused, k.reservations, ...actions.flatMap((x) => [k.rate(x.action), k.breaker(x.action), k.breakerFailures(x.action)])];
      let text: unknown;
      try {
        text = await lua.status.run(o.redis, keys, [JSON.stringify({ now, actions })]);
      } catch (err) {
        throw unavailable('status', err);
      }
      const s = JSON.parse(String(text)) as StatusReply;
      // the guard's own GPU taint records (authorize.lua: node -> {g, s, d {gpu -> {id, exp}}}); exp -1 = held until untaint
      const own = ownGpuTaints(await o.redis.hgetall(k.gpuTaints).catch((err: unknown) => Promise.reject(unavailable('status', err))), now);
      // cjson encodes an empty table as {}; normalise to arrays/records
      const reservations = Array.isArray(s.reservations) ? s.reservations.map(([node, scopes]) => ({ node, scopes: Array.isArray(scopes) ? scopes : [] })) : [];
      const rateUsed: Record<string, number> = Array.isArray(s.rate) ? {} : s.rate;
      const breakers: RawStatus['breakers'] = {};
      for (const [action, b] of Object.entries(s.breakers)) breakers[action] = { openUntil: b.openUntil === false ? null : b.openUntil, failures: b.failures };
      return {
        at: now,
        paused: s.paused === false ? null : s.paused,
        ...composeBudgets(o.view, o.options, reservations, own),
        rateLimits: composeRates(o.options, rateUsed),
        breakers: composeBreakers(now, breakers),
      };
    },

    async close(): Promise<void> {
      if (o.ownsConnection && o.redis.status !== 'end') await o.redis.quit().catch(() => undefined);
    },
  };
}

/** Node → GPUs of the gpuTaints hash still held at `now` (a malformed entry is skipped). */
function ownGpuTaints(hash: Record<string, string>, now: number): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [node, raw] of Object.entries(hash)) {
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      continue;
    }
    const d = isRecord(v) && isRecord(v.d) ? v.d : {};
    const live = Object.entries(d)
      .filter(([, e]) => isRecord(e) && typeof e.exp === 'number' && (e.exp === -1 || e.exp > now))
      .map(([gpu]) => gpu);
    if (live.length > 0) out[node] = live;
  }
  return out;
}
