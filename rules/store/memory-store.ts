/**
 * In-process StateStore (embedded engine, replay, demo, unit tests). Synchronous
 * underneath (`execSync`) so the engine's memory path allocates no promise per
 * event. Keys expire by op time (virtual in replay): a sweep drops keys whose
 * TTL passed, so state for vanished nodes does not grow without bound.
 */
import type { StateStore, StoreOp, StoreResult } from './state-store.js';

/** A count window: event times (sorted) and ids (duplicate detection). */
interface Series {
  t: 'series';
  exp: number;
  ts: number[];
  ids: string[];
}
/**
 * A cumulative counter's samples, sorted by ts (equal ts in arrival order),
 * with prefix sums of the increase (`ps[i] = ps[i-1] + step(vals[i-1], vals[i])`,
 * `ps[0] = 0` for the first sample ever kept): the increase over samples a..b
 * is `ps[b] - ps[a]`, computed exactly as batch.lua does, so both adapters give
 * bit-identical results (also for fractional values).
 */
interface CounterSeries {
  t: 'counter';
  exp: number;
  ts: number[];
  ids: string[];
  vals: number[];
  ps: number[];
}
interface Distinct {
  t: 'distinct';
  exp: number;
  m: Map<string, number>;
}
interface ZSet {
  t: 'zset';
  exp: number;
  m: Map<string, number>;
}
interface Episode {
  t: 'episode';
  exp: number;
  active: boolean;
  firedAt: number;
  firedBy: string;
  lastMatch: number;
  cooldownUntil: number;
}
interface Sustained {
  t: 'sustained';
  exp: number;
  since: number | null;
  last: number;
}
interface Sequence {
  t: 'sequence';
  exp: number;
  chain: Array<number | null>;
}
interface Max {
  t: 'max';
  exp: number;
  v: number;
}
type Entry = Series | CounterSeries | Distinct | ZSet | Episode | Sustained | Sequence | Max;

const SWEEP_EVERY = 65_536;

/** Binary search over ts sorted ascending: the first index with ts[i] > t (`orEqual` false) or ts[i] >= t (true). */
function firstAbove(ts: number[], t: number, orEqual: boolean): number {
  let lo = 0;
  let hi = ts.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const v = ts[mid] as number;
    if (v < t || (v === t && !orEqual)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
/** First index with ts[i] > t (ts sorted ascending). */
const upper = (ts: number[], t: number): number => firstAbove(ts, t, false);
/** First index with ts[i] >= t. */
const lower = (ts: number[], t: number): number => firstAbove(ts, t, true);

/** Members of an index due at or before `before`, sorted. */
function dueMembers(z: ZSet, before: number): string[] {
  const out: string[] = [];
  for (const [m, t] of z.m) if (t <= before) out.push(m);
  return out.sort();
}

/** Increase from sample `prev` to `v`: a lower value is a reset (the counter restarted from zero). */
function step(prev: number, v: number): number {
  return v >= prev ? v - prev : v;
}

/** Increase over the samples with ts in [from, to], from the prefix sums. */
function counterIncrease(c: CounterSeries, from: number, to: number): number {
  const a = lower(c.ts, from);
  const b = upper(c.ts, to) - 1;
  return b <= a ? 0 : (c.ps[b] as number) - (c.ps[a] as number);
}

/**
 * One map of entries, each carrying its own expiry (op time): one lookup per op.
 * A member is always added with the same ts (it is an event id), so duplicate
 * detection only looks at entries with an equal ts.
 */
export interface MemoryStateStoreOptions {
  /** Told of every key the sweep drops (partition-local state writes its deletion behind, ADR 0045). */
  onSweep?: (key: string) => void;
  /**
   * Told of every key that comes to be held and every key that goes (by any
   * op, sweep or drop): partition-local state keeps one map of which
   * partition holds a key from them (ADR 0051).
   */
  onKeys?: { added(key: string): void; removed(key: string): void };
}

export class MemoryStateStore implements StateStore {
  private readonly entries = new Map<string, Entry>();
  private opsSinceSweep = 0;
  private horizon = 0;

  constructor(private readonly opts: MemoryStateStoreOptions = {}) {}

  exec(ops: readonly StoreOp[]): Promise<StoreResult[]> {
    try {
      return Promise.resolve(this.execSync(ops));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  execSync(ops: readonly StoreOp[]): StoreResult[] {
    const out: StoreResult[] = new Array<StoreResult>(ops.length);
    for (let i = 0; i < ops.length; i++) out[i] = this.one(ops[i] as StoreOp);
    this.opsSinceSweep += ops.length;
    if (this.opsSinceSweep >= SWEEP_EVERY) this.sweep();
    return out;
  }

  /**
   * One op, as `execSync` runs it, without the sweep: the caller runs
   * {@link sweepIfDue} after its ops (partition-local state runs each op as it
   * routes it, then sweeps once per call).
   */
  execOne(op: StoreOp): StoreResult {
    this.opsSinceSweep++;
    return this.one(op);
  }

  /** The sweep `execSync` runs after its ops, when enough ops ran since the last one. */
  sweepIfDue(): void {
    if (this.opsSinceSweep >= SWEEP_EVERY) this.sweep();
  }

  async close(): Promise<void> {}

  /** Sweeps expired keys (the memory store has no separate indexes to trim). */
  trim(): Promise<number> {
    const before = this.entries.size;
    this.sweep();
    return Promise.resolve(before - this.entries.size);
  }

  /** Number of keys held (tests of bounded memory). */
  size(): number {
    return this.entries.size;
  }

  /** Drops every key whose TTL (in op time, or by `at` when later) has passed. */
  sweep(at = this.horizon): void {
    this.opsSinceSweep = 0;
    const told = this.opts.onSweep;
    const until = Math.max(at, this.horizon);
    for (const [k, e] of this.entries)
      if (e.exp <= until) {
        this.remove(k);
        told?.(k);
      }
  }

  /** Whether the store holds `key` (partition-local routing, ADR 0045). */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  /**
   * One entry as text (its write-behind form), or null when the store does not
   * hold it. A sorted set (a rule's index: one member per scope) is only its
   * header here; its members travel one by one (`exportMember`), so a batch
   * writes the members it changed, not the whole index.
   */
  exportEntry(key: string): string | null {
    const e = this.entries.get(key);
    if (e === undefined) return null;
    switch (e.t) {
      case 'zset':
        return `{"t":"zset","exp":${JSON.stringify(e.exp)}}`;
      case 'distinct':
        return JSON.stringify({ t: e.t, exp: e.exp, m: [...e.m] });
      case 'sustained':
        return JSON.stringify({ t: e.t, exp: e.exp, since: e.since, last: Number.isFinite(e.last) ? e.last : null });
      default:
        return JSON.stringify(e);
    }
  }

  /**
   * Runs one op as `execSync` does, but never sweeps: replaying a partition's
   * op log (ADR 0047), where the writer's sweeps are logged ops of their own
   * (`drop`), so the replay removes exactly what the writer's sweep removed.
   */
  replayOne(op: StoreOp): StoreResult {
    return this.one(op);
  }

  /** Keys held (tests of what a restore rebuilt). */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  /** A sorted set's members and scores, sorted by member (tests). */
  members(key: string): Array<[string, number]> {
    return [...(this.get(key, 'zset')?.m ?? [])].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  }

  /** Removes a key (a restore dropping an index whose header is gone; a replayed sweep). */
  drop(key: string): void {
    this.remove(key);
  }

  /** A sorted set member's score, or null (no such set or member). */
  exportMember(key: string, member: string): number | null {
    return this.get(key, 'zset')?.m.get(member) ?? null;
  }

  /** Loads one sorted set member (before or after its header). */
  importMember(key: string, member: string, score: number): void {
    if (Number.isFinite(score)) this.zset(key).m.set(member, score);
  }

  /** Loads an entry written by `exportEntry`; false (nothing loaded) when the text is not one. */
  importEntry(key: string, text: string): boolean {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      return false;
    }
    if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (o.t === 'zset' && typeof o.exp === 'number') {
        // members may have been loaded first
        this.zset(key).exp = o.exp;
        return true;
      }
      if (o.t === 'distinct') {
        // [member, time] pairs only: anything else is not an entry this store wrote
        if (!Array.isArray(o.m) || !o.m.every((x) => Array.isArray(x) && x.length === 2 && typeof x[0] === 'string' && typeof x[1] === 'number')) return false;
        o.m = new Map(o.m as Array<[string, number]>);
      }
      if (o.t === 'sustained' && o.last === null) o.last = -Infinity;
    }
    if (!isEntry(v)) return false;
    this.put(key, v);
    return true;
  }

  private put(key: string, e: Entry): void {
    const had = this.opts.onKeys !== undefined && this.entries.has(key);
    this.entries.set(key, e);
    if (!had) this.opts.onKeys?.added(key);
  }

  private remove(key: string): void {
    if (this.entries.delete(key)) this.opts.onKeys?.removed(key);
  }

  private touch(e: Entry, now: number, ttlMs: number): void {
    if (now > this.horizon) this.horizon = now;
    const exp = now + ttlMs;
    if (exp > e.exp) e.exp = exp;
  }

  private get<T extends Entry['t']>(key: string, t: T): Extract<Entry, { t: T }> | undefined {
    const e = this.entries.get(key);
    return e !== undefined && e.t === t ? (e as Extract<Entry, { t: T }>) : undefined;
  }

  private series(key: string): Series {
    let s = this.get(key, 'series');
    if (!s) {
      s = { t: 'series', exp: 0, ts: [], ids: [] };
      this.put(key, s);
    }
    return s;
  }

  private zset(key: string): ZSet {
    let z = this.get(key, 'zset');
    if (!z) {
      z = { t: 'zset', exp: 0, m: new Map() };
      this.put(key, z);
    }
    return z;
  }

  private add(s: Series, member: string, ts: number, keepFrom: number): void {
    const n = s.ts.length;
    let at = n;
    if (n > 0 && (s.ts[n - 1] as number) >= ts) {
      // a duplicate has the same ts: look only at that run
      at = upper(s.ts, ts);
      let dup = false;
      for (let i = at - 1; i >= 0 && s.ts[i] === ts; i--)
        if (s.ids[i] === member) {
          dup = true;
          break;
        }
      if (dup) at = -1;
    }
    if (at === n) {
      s.ts.push(ts);
      s.ids.push(member);
    } else if (at >= 0) {
      s.ts.splice(at, 0, ts);
      s.ids.splice(at, 0, member);
    }
    // Trim what no window ending at or after `keepFrom` can see again.
    if (s.ts.length > 0 && (s.ts[0] as number) < keepFrom) {
      const drop = lower(s.ts, keepFrom);
      s.ts.splice(0, drop);
      s.ids.splice(0, drop);
    }
  }

  private counterAdd(c: CounterSeries, member: string, ts: number, value: number, keepFrom: number): void {
    const n = c.ts.length;
    let at = n;
    let dup = false;
    if (n > 0 && (c.ts[n - 1] as number) >= ts) {
      if ((c.ts[n - 1] as number) > ts) at = upper(c.ts, ts);
      for (let i = at - 1; i >= 0 && c.ts[i] === ts; i--)
        if (c.ids[i] === member) {
          dup = true;
          break;
        }
    }
    if (!dup) {
      const p = at > 0 ? (c.ps[at - 1] as number) + step(c.vals[at - 1] as number, value) : 0;
      if (at === n) {
        c.ts.push(ts);
        c.ids.push(member);
        c.vals.push(value);
        c.ps.push(p);
      } else {
        c.ts.splice(at, 0, ts);
        c.ids.splice(at, 0, member);
        c.vals.splice(at, 0, value);
        c.ps.splice(at, 0, p);
        // a late sample: the prefixes after it change
        for (let j = at + 1; j <= n; j++) c.ps[j] = (c.ps[j - 1] as number) + step(c.vals[j - 1] as number, c.vals[j] as number);
      }
    }
    if ((c.ts[0] as number) < keepFrom) {
      const drop = lower(c.ts, keepFrom);
      c.ts.splice(0, drop);
      c.ids.splice(0, drop);
      c.vals.splice(0, drop);
      c.ps.splice(0, drop);
    }
  }

  private one(op: StoreOp): StoreResult {
    switch (op.op) {
      case 'window.add': {
        const s = this.series(op.key);
        // keep (ts - window, ...]: an element at exactly ts - window is out
        this.add(s, op.member, op.ts, op.ts - op.windowMs + 1);
        this.touch(s, op.ts, op.ttlMs);
        const n = s.ts.length;
        if ((s.ts[n - 1] as number) <= op.ts) return n - upper(s.ts, op.ts - op.windowMs);
        return upper(s.ts, op.ts) - upper(s.ts, op.ts - op.windowMs);
      }
      case 'window.count': {
        const s = this.get(op.key, 'series');
        return s ? upper(s.ts, op.now) - upper(s.ts, op.now - op.windowMs) : 0;
      }
      case 'distinct.add': {
        let d = this.get(op.key, 'distinct');
        if (!d) {
          d = { t: 'distinct', exp: 0, m: new Map() };
          this.put(op.key, d);
        }
        const prev = d.m.get(op.member);
        if (prev === undefined || op.ts > prev) d.m.set(op.member, op.ts);
        this.touch(d, op.ts, op.ttlMs);
        distinctCount(d.m, op.ts, op.windowMs, true);
        return distinctBest(d.m, op.ts, op.windowMs).count;
      }
      case 'distinct.count': {
        const d = this.get(op.key, 'distinct');
        return d ? distinctCount(d.m, op.now, op.windowMs, false) : 0;
      }
      case 'distinct.members': {
        const d = this.get(op.key, 'distinct');
        if (!d) return [];
        const end = distinctBest(d.m, op.now, op.windowMs).end;
        const from = end - op.windowMs;
        const out: string[] = [];
        for (const [m, t] of d.m) if (t > from && t <= end) out.push(m);
        return out.sort();
      }
      case 'counter.add': {
        let c = this.get(op.key, 'counter');
        if (!c) {
          c = { t: 'counter', exp: 0, ts: [], ids: [], vals: [], ps: [] };
          this.put(op.key, c);
        }
        this.counterAdd(c, op.member, op.ts, op.value, op.ts - op.windowMs);
        this.touch(c, op.ts, op.ttlMs);
        return counterIncrease(c, op.ts - op.windowMs, op.ts);
      }
      case 'counter.increase': {
        const c = this.get(op.key, 'counter');
        return c ? counterIncrease(c, op.now - op.windowMs, op.now) : 0;
      }
      case 'sustained.observe': {
        let st = this.get(op.key, 'sustained');
        if (!st) {
          st = { t: 'sustained', exp: 0, since: null, last: -Infinity };
          this.put(op.key, st);
        }
        this.touch(st, op.ts, op.ttlMs);
        if (op.ts < st.last) return st.since;
        st.last = op.ts;
        if (op.holds) {
          if (st.since === null) {
            st.since = op.ts;
            const z = this.zset(op.index);
            z.m.set(op.member, op.ts);
            this.touch(z, op.ts, op.ttlMs);
          }
        } else if (st.since !== null) {
          st.since = null;
          this.get(op.index, 'zset')?.m.delete(op.member);
        }
        return st.since;
      }
      case 'sustained.get':
        return this.get(op.key, 'sustained')?.since ?? null;
      case 'due.pop': {
        const z = this.get(op.index, 'zset');
        if (!z) return [];
        const out = dueMembers(z, op.before);
        for (const m of out) z.m.delete(m);
        return out;
      }
      case 'seen.touch': {
        const z = this.zset(op.index);
        const prev = z.m.get(op.member);
        if (prev === undefined || op.ts > prev) z.m.set(op.member, op.ts);
        this.touch(z, op.ts, op.ttlMs);
        return prev ?? null;
      }
      case 'episode.fire': {
        let e = this.get(op.key, 'episode');
        // Re-fired by the event that fired it (a redelivery): the same episode, hence the same decision ids.
        if (e?.active && e.firedAt === op.now && e.firedBy === op.by) return op.now;
        if (e?.active && !(op.autoExpireMs >= 0 && op.now >= e.firedAt + op.autoExpireMs)) return null;
        if (e && op.now < e.cooldownUntil) return null;
        if (!e) {
          e = { t: 'episode', exp: 0, active: true, firedAt: op.now, firedBy: op.by, lastMatch: op.now, cooldownUntil: op.now + op.cooldownMs };
          this.put(op.key, e);
        } else {
          e.active = true;
          e.firedAt = op.now;
          e.firedBy = op.by;
          e.lastMatch = op.now;
          e.cooldownUntil = op.now + op.cooldownMs;
        }
        if (op.autoExpireMs < 0) {
          const z = this.zset(op.index);
          z.m.set(op.member, op.now);
          this.touch(z, op.now, op.ttlMs);
        }
        this.touch(e, op.now, op.ttlMs);
        return op.now;
      }
      case 'episode.touch': {
        const e = this.get(op.key, 'episode');
        if (e?.active && op.now > e.lastMatch) {
          e.lastMatch = op.now;
          const z = this.get(op.index, 'zset');
          if (z?.m.has(op.member)) z.m.set(op.member, op.now);
        }
        return null;
      }
      case 'episode.clear': {
        const e = this.get(op.key, 'episode');
        if (!e?.active) return null;
        if (op.quietBefore !== null && e.lastMatch > op.quietBefore) return null;
        e.active = false;
        this.get(op.index, 'zset')?.m.delete(op.member);
        return e.firedAt;
      }
      case 'episode.release': {
        const e = this.get(op.key, 'episode');
        this.get(op.index, 'zset')?.m.delete(op.member);
        if (!e) return null;
        this.remove(op.key);
        return e.firedAt;
      }
      case 'episode.quiet': {
        const z = this.get(op.index, 'zset');
        if (!z) return [];
        return dueMembers(z, op.before);
      }
      case 'episode.get': {
        const e = this.get(op.key, 'episode');
        return e?.active ? e.firedAt : null;
      }
      case 'sequence.step': {
        let sq = this.get(op.key, 'sequence');
        if (!sq) {
          sq = { t: 'sequence', exp: 0, chain: new Array<number | null>(op.steps).fill(null) };
          this.put(op.key, sq);
        }
        const chain = sq.chain;
        this.touch(sq, op.ts, op.ttlMs);
        if (op.step === 0) {
          const cur = chain[0];
          if (cur === null || cur === undefined || op.ts > cur) chain[0] = op.ts;
          return false;
        }
        const start = chain[op.step - 1];
        if (start === null || start === undefined || op.ts < start || op.ts - start > op.windowMs) return false;
        if (op.step === op.steps - 1) {
          chain.fill(null);
          return true;
        }
        const cur = chain[op.step];
        if (cur === null || cur === undefined || start > cur) chain[op.step] = start;
        return false;
      }
      case 'max.set': {
        let m = this.get(op.key, 'max');
        if (!m) {
          m = { t: 'max', exp: 0, v: op.value };
          this.put(op.key, m);
        } else if (op.value > m.v) m.v = op.value;
        this.touch(m, op.value, op.ttlMs);
        return m.v;
      }
      case 'max.get':
        return this.get(op.key, 'max')?.v ?? null;
    }
  }
}

/**
 * The window a (possibly late) distinctNodes event counts in: of the windows
 * of length windowMs that hold `now` — ending at it, or at a newer member
 * before now + windowMs — the one with the most members, the earliest on a
 * tie (in order: the window ending at now). Replicas add to one group's set
 * from different partitions, so a newer member can be there first; see
 * distinctBest in lua/batch.lua, which this mirrors (at most MAX_LATER tried).
 */
function distinctBest(d: Map<string, number>, now: number, windowMs: number): { count: number; end: number } {
  let best = { count: distinctCount(d, now, windowMs, false), end: now };
  const later = [...d.values()].filter((t) => t > now && t < now + windowMs).sort((x, y) => x - y).slice(0, MAX_LATER);
  for (const end of later) {
    const count = distinctCount(d, end, windowMs, false);
    if (count > best.count) best = { count, end };
  }
  return best;
}
const MAX_LATER = 1024;

function distinctCount(d: Map<string, number>, now: number, windowMs: number, trim: boolean): number {
  const from = now - windowMs;
  let n = 0;
  for (const [m, t] of d) {
    if (t <= from) {
      if (trim) d.delete(m);
    } else if (t <= now) n++;
  }
  return n;
}

const ENTRY_TYPES = new Set(['series', 'counter', 'distinct', 'episode', 'sustained', 'sequence', 'max']);
function isEntry(v: unknown): v is Entry {
  if (v === null || typeof v !== 'object') return false;
  const o = v as Record<string, unknown>;
  if (typeof o.t !== 'string' || !ENTRY_TYPES.has(o.t) || typeof o.exp !== 'number') return false;
  switch (o.t) {
    case 'series':
      return Array.isArray(o.ts) && Array.isArray(o.ids);
    case 'counter':
      return Array.isArray(o.ts) && Array.isArray(o.ids) && Array.isArray(o.vals) && Array.isArray(o.ps);
    case 'distinct':
      return o.m instanceof Map;
    case 'episode':
      return typeof o.active === 'boolean' && typeof o.firedAt === 'number' && typeof o.firedBy === 'string' && typeof o.lastMatch === 'number' && typeof o.cooldownUntil === 'number';
    case 'sustained':
      return (o.since === null || typeof o.since === 'number') && typeof o.last === 'number';
    case 'sequence':
      return Array.isArray(o.chain);
    default:
      return typeof o.v === 'number';
  }
}
