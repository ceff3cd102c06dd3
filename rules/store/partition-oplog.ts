/**
 * The op log of partition-local state (ADR 0047, amending ADR 0045): what one
 * flush of one partition appends to the partition's log in Redis, as ONE string.
 *
 * Only ops that change the partition's memory are logged (reads are not), plus
 * `drop` — a key the memory store's sweep removed — so that replaying the log
 * in order through a MemoryStateStore (with its own sweep off) rebuilds
 * exactly the memory the writer had after the flush.
 *
 * Encoding, version 2 (ADR 0051, amending ADR 0047's version 1):
 *
 *   [2, base, s0, k0, [string, ...], [head, tail, ...], code, field, ..., code, field, ...]
 *
 * `2` the format version; `base` a time all times of the entry are relative
 * to (times are milliseconds, so deltas are small integers). Keys, indexes and
 * scope members are named by position in a KEY TABLE that the partition's
 * entries build together, from the last snapshot on ({@link OpLogKeys}): an
 * entry carries only the strings and keys new to the table (`s0` and `k0` are
 * the table's sizes before it, checked on replay, so an entry replayed out of
 * order or after a missing one is refused, never misread). Key i = string
 * head_i + string tail_i (tail -1 = none); a key is split before its node scope
 * `n:<node>`, so a rule's key prefix and a node name are each written once.
 * Event ids (members of windows and counters, `by`) travel inline. JSON, so
 * any string round-trips. An op that cannot be written exactly (a non-finite
 * number, a time whose delta is not exact) makes `encodeOpLog` return null and
 * leave the table as it was: the flush is then a snapshot instead
 * (partition-local-store.ts), which starts a new table.
 *
 * Version 1 (`[1, base, strings, pairs, ...]`: a key table of its own per
 * entry) is still read, so a log written before version 2 replays. Measured:
 * encoding a bench flush costs ~0.65 µs per op in version 1, most of it
 * rebuilding the key table (docs/performance.md §1).
 */
import { OpCode } from './op-codes.js';
import type { StoreOp } from './state-store.js';

/** A key the memory store's sweep removed (TTL by op time, or the cap's sweep by wall time). */
export interface DropOp {
  op: 'drop';
  key: string;
}
export type LoggedOp = StoreOp | DropOp;

/** Splits a key at its node scope (`…:n:<node>`): rule part and scope are each written once. */
const SCOPE = ':n:';

/** Written; version 1 entries are still read. */
const VERSION = 2;

/**
 * The key table of one partition's op log since its last snapshot: what the
 * entries written (or replayed) so far defined, by position. The writer keeps
 * one per partition and starts a new one with each snapshot; a restore builds
 * it by replaying the log, and the writer goes on from there.
 */
export class OpLogKeys {
  readonly strs: string[] = [];
  readonly keys: string[] = [];
  private readonly strPos = new Map<string, number>();
  private readonly keyPos = new Map<string, number>();
  /** The key's position, defining it (and its strings) when new; `pairs` receives the new key's [head, tail]. */
  key(key: string, newStrs: string[], pairs: number[]): number {
    let i = this.keyPos.get(key);
    if (i === undefined) {
      i = this.keys.length;
      const at = key.indexOf(SCOPE);
      if (at < 0) pairs.push(this.str(key, newStrs), -1);
      else pairs.push(this.str(key.slice(0, at + 1), newStrs), this.str(key.slice(at + 1), newStrs));
      this.keys.push(key);
      this.keyPos.set(key, i);
    }
    return i;
  }
  private str(x: string, newStrs: string[]): number {
    let i = this.strPos.get(x);
    if (i === undefined) {
      i = this.strs.length;
      this.strs.push(x);
      newStrs.push(x);
      this.strPos.set(x, i);
    }
    return i;
  }
  /** Forgets what was defined after the table had `strs` strings and `keys` keys (an entry that was not written, or not read). */
  truncate(strs: number, keys: number): void {
    for (const x of this.strs.splice(strs)) this.strPos.delete(x);
    for (const k of this.keys.splice(keys)) this.keyPos.delete(k);
  }
  /** Defines the strings and keys of a read entry; false (nothing defined) when they are not a table's. */
  define(strs: readonly unknown[], pairs: readonly unknown[]): boolean {
    if (!strs.every((x) => typeof x === 'string') || pairs.length % 2 !== 0) return false;
    const s0 = this.strs.length;
    for (const x of strs as string[]) {
      this.strPos.set(x, this.strs.length);
      this.strs.push(x);
    }
    const keys: string[] = [];
    for (let i = 0; i < pairs.length; i += 2) {
      const head = this.at(pairs[i], false);
      const tail = this.at(pairs[i + 1], true);
      if (head === null || tail === null) {
        this.truncate(s0, this.keys.length);
        return false;
      }
      keys.push(head + tail);
    }
    for (const k of keys) {
      this.keyPos.set(k, this.keys.length);
      this.keys.push(k);
    }
    return true;
  }
  private at(x: unknown, orNone: boolean): string | null {
    if (typeof x !== 'number' || !Number.isInteger(x) || x >= this.strs.length || x < (orNone ? -1 : 0)) return null;
    return x < 0 ? '' : (this.strs[x] as string);
  }
}


/** Whether an op can change a memory store's state (only those are logged). */
export function isMutating(op: StoreOp): boolean {
  switch (op.op) {
    case 'window.count':
    case 'distinct.count':
    case 'distinct.members':
    case 'counter.increase':
    case 'sustained.get':
    case 'episode.quiet':
    case 'episode.get':
    case 'max.get':
      return false;
    default:
      return true;
  }
}

class Unloggable extends Error {}


/**
 * One flush's ops as one log entry, or null when one of them cannot be written
 * exactly (`table` is then left as it was). `table`: the partition's key table,
 * which the entry extends (a fresh one makes a self-contained entry).
 */
export function encodeOpLog(ops: readonly LoggedOp[], table: OpLogKeys = new OpLogKeys()): string | null {
  const s0 = table.strs.length;
  const k0 = table.keys.length;
  const newStrs: string[] = [];
  const pairs: number[] = [];
  const k = (key: string): number => table.key(key, newStrs, pairs);
  let base = 0;
  for (const op of ops) {
    const t = 'ts' in op ? op.ts : 'now' in op ? op.now : 'before' in op ? op.before : undefined;
    if (t !== undefined && Number.isSafeInteger(t)) {
      base = t;
      break;
    }
  }
  const tm = (x: number): number => {
    const d = x - base;
    if (!Number.isFinite(d) || d + base !== x) throw new Unloggable();
    return d;
  };
  const n = (x: number): number => {
    if (!Number.isFinite(x)) throw new Unloggable();
    return x;
  };
  const a: Array<string | number | null> = [];
  try {
    for (const op of ops) {
      switch (op.op) {
        case 'drop':
          a.push(OpCode.Drop, k(op.key));
          break;
        case 'window.add':
          a.push(OpCode.WindowAdd, k(op.key), op.member, tm(op.ts), n(op.windowMs), n(op.ttlMs));
          break;
        case 'distinct.add':
          a.push(OpCode.DistinctAdd, k(op.key), k(op.member), tm(op.ts), n(op.windowMs), n(op.ttlMs));
          break;
        case 'counter.add':
          a.push(OpCode.CounterAdd, k(op.key), op.member, tm(op.ts), n(op.value), n(op.windowMs), n(op.ttlMs));
          break;
        case 'sustained.observe':
          a.push(OpCode.SustainedObserve, k(op.key), k(op.index), k(op.member), tm(op.ts), op.holds ? 1 : 0, n(op.ttlMs));
          break;
        case 'due.pop':
          a.push(OpCode.DuePop, k(op.index), tm(op.before));
          break;
        case 'seen.touch':
          a.push(OpCode.SeenTouch, k(op.index), k(op.member), tm(op.ts), n(op.ttlMs));
          break;
        case 'episode.fire':
          a.push(OpCode.EpisodeFire, k(op.key), k(op.index), k(op.member), tm(op.now), op.by, n(op.cooldownMs), n(op.autoExpireMs), n(op.ttlMs));
          break;
        case 'episode.touch':
          a.push(OpCode.EpisodeTouch, k(op.key), k(op.index), k(op.member), tm(op.now));
          break;
        case 'episode.clear':
          a.push(OpCode.EpisodeClear, k(op.key), k(op.index), k(op.member), tm(op.now), op.quietBefore === null ? null : tm(op.quietBefore));
          break;
        case 'episode.release':
          a.push(OpCode.EpisodeRelease, k(op.key), k(op.index), k(op.member));
          break;
        case 'sequence.step':
          a.push(OpCode.SequenceStep, k(op.key), n(op.step), n(op.steps), tm(op.ts), n(op.windowMs), n(op.ttlMs));
          break;
        case 'max.set':
          a.push(OpCode.MaxSet, k(op.key), n(op.value), n(op.ttlMs));
          break;
        default:
          // a read: nothing to replay
          break;
      }
    }
  } catch (err) {
    table.truncate(s0, k0);
    if (err instanceof Unloggable) return null;
    throw err;
  }
  // the flat array follows the header in the same JSON array: one stringify, no nesting of the ops
  const head = JSON.stringify([VERSION, base, s0, k0, newStrs, pairs]);
  const body = JSON.stringify(a);
  return a.length === 0 ? `${head.slice(0, -1)}]` : `${head.slice(0, -1)},${body.slice(1)}`;
}

/**
 * Ops of one log entry, or null when the text is not an entry this module
 * wrote (never throws). `table`: the partition's key table as the entries
 * before this one left it (a version 2 entry extends it; one that does not
 * follow on from it is refused).
 */
export function decodeOpLog(text: string, table: OpLogKeys = new OpLogKeys()): LoggedOp[] | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (!Array.isArray(v) || typeof v[1] !== 'number') return null;
  const base = v[1];
  let keys: readonly string[];
  let p: number;
  if (v[0] === 1) {
    // version 1: a key table of its own
    if (!Array.isArray(v[2]) || !Array.isArray(v[3])) return null;
    const own = new OpLogKeys();
    if (!own.define(v[2] as unknown[], v[3] as unknown[])) return null;
    keys = own.keys;
    p = 4;
  } else if (v[0] === VERSION) {
    if (v[2] !== table.strs.length || v[3] !== table.keys.length || !Array.isArray(v[4]) || !Array.isArray(v[5])) return null;
    // the entry's keys stay defined even if one of its ops is refused below: the entries after it still name them
    if (!table.define(v[4] as unknown[], v[5] as unknown[])) return null;
    keys = table.keys;
    p = 6;
  } else return null;
  const a = v as unknown[];
  const bad = (): never => {
    throw new Unloggable();
  };
  const num = (): number => {
    const x = a[p++];
    return typeof x === 'number' ? x : bad();
  };
  const time = (): number => num() + base;
  const str = (): string => {
    const x = a[p++];
    return typeof x === 'string' ? x : bad();
  };
  const key = (): string => {
    const x = a[p++];
    return typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < keys.length ? (keys[x] as string) : bad();
  };
  const out: LoggedOp[] = [];
  try {
    while (p < a.length) {
      const code = num() as OpCode;
      switch (code) {
        case OpCode.Drop:
          out.push({ op: 'drop', key: key() });
          break;
        case OpCode.WindowAdd:
          out.push({ op: 'window.add', key: key(), member: str(), ts: time(), windowMs: num(), ttlMs: num() });
          break;
        case OpCode.DistinctAdd:
          out.push({ op: 'distinct.add', key: key(), member: key(), ts: time(), windowMs: num(), ttlMs: num() });
          break;
        case OpCode.CounterAdd:
          out.push({ op: 'counter.add', key: key(), member: str(), ts: time(), value: num(), windowMs: num(), ttlMs: num() });
          break;
        case OpCode.SustainedObserve:
          out.push({ op: 'sustained.observe', key: key(), index: key(), member: key(), ts: time(), holds: num() === 1, ttlMs: num() });
          break;
        case OpCode.DuePop:
          out.push({ op: 'due.pop', index: key(), before: time() });
          break;
        case OpCode.SeenTouch:
          out.push({ op: 'seen.touch', index: key(), member: key(), ts: time(), ttlMs: num() });
          break;
        case OpCode.EpisodeFire:
          out.push({ op: 'episode.fire', key: key(), index: key(), member: key(), now: time(), by: str(), cooldownMs: num(), autoExpireMs: num(), ttlMs: num() });
          break;
        case OpCode.EpisodeTouch:
          out.push({ op: 'episode.touch', key: key(), index: key(), member: key(), now: time() });
          break;
        case OpCode.EpisodeClear: {
          const op = { op: 'episode.clear' as const, key: key(), index: key(), member: key(), now: time() };
          let quietBefore: number | null = null;
          if (a[p] === null) p++;
          else quietBefore = time();
          out.push({ ...op, quietBefore });
          break;
        }
        case OpCode.EpisodeRelease:
          out.push({ op: 'episode.release', key: key(), index: key(), member: key() });
          break;
        case OpCode.SequenceStep: {
          const op = { op: 'sequence.step' as const, key: key(), step: num(), steps: num(), ts: time(), windowMs: num(), ttlMs: num() };
          // the memory store indexes a chain of `steps` by `step`: anything else is not an op the engine made
          if (!Number.isInteger(op.step) || !Number.isInteger(op.steps) || op.step < 0 || op.steps < 1 || op.steps > 10_000 || op.step >= op.steps) return null;
          out.push(op);
          break;
        }
        case OpCode.MaxSet:
          out.push({ op: 'max.set', key: key(), value: num(), ttlMs: num() });
          break;
        default:
          return null;
      }
    }
  } catch (err) {
    if (err instanceof Unloggable) return null;
    throw err;
  }
  return out;
}
