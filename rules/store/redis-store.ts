/**
 * Redis StateStore (production: shared by every engine replica). A batch of
 * ops is ONE Lua script call (rules/store/lua/batch.lua, an interpreter of the
 * typed ops): the batch runs in order and atomically, so every op is atomic
 * across replicas (two replicas never both fire an episode) and each op sees
 * the effects of the ops before it. One call per batch instead of one EVALSHA
 * per op (3.4 per event on the default pack) cut the engine's own CPU per event
 * about fourfold: ioredis builds one command object, whatever the batch size.
 * Inside the script, counters are lists of packed records with running sums
 * (O(1) per in-order sample, not a read of the whole window), values Redis
 * stores verbatim arrive as strings (no float formatting in Lua), and TTLs are
 * refreshed once per key per batch or per period of sample time, not per op.
 *
 * Keys travel in KEYS (deduped; ops refer to them by position), the ops as one
 * flat JSON array in ARGV[1]. The script runs as every nodewarden script does
 * (adapters/redis/scripts.ts: EVALSHA, EVAL on NOSCRIPT, e.g. after a server restart).
 * Like any Redis script it is isolated but not rolled back: should a command
 * fail mid-batch (e.g. OOM under maxmemory), the ops before it stay applied and
 * the batch fails as retriable (windows and counters are idempotent per event
 * id, so a retry never counts an event twice).
 *
 * Deployment: the engine's state Redis is ONE primary (standalone or
 * Sentinel-managed), not Redis Cluster: a batch touches keys of many rules and
 * scopes, which Cluster would require to share one hash slot.
 */
import type { Redis } from 'ioredis';
import type { LuaScript } from '../../adapters/redis/lua-script.js';
import { redisScript } from '../../adapters/redis/scripts.js';
import { NodewardenError } from '../../core/errors.js';
import { OpCode } from './op-codes.js';
import { StaleEpochError } from './state-store.js';
import type { StateStore, StoreOp, StoreResult, StoreTrimScope } from './state-store.js';

/**
 * Ops per script call. A larger batch is split into several calls sent in one
 * pipeline: each call stays atomic and ordered after the previous one, but
 * Redis is not blocked by one script for longer than a few milliseconds.
 */
export const MAX_OPS_PER_SCRIPT = 20_000;


export interface RedisStateStoreOptions {
  /** An ioredis client; the store does not own it unless `ownsClient`. */
  client: Redis;
  ownsClient?: boolean;
}

function toNum(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : null;
}

/**
 * 53-bit hash of an event id (two FNV-1a variants), exact as a double: a
 * counter series stores it instead of the id, so a record has a fixed size.
 * It is compared only among samples of the same millisecond, so a collision
 * (odds ~2^-53 per pair) is not a practical concern.
 */
export function idHash(id: string): number {
  let h1 = 0x811c9dc5;
  let h2 = 0x5bd1e995;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) ^ (h2 >>> 15);
  }
  return (h2 >>> 11) * 4294967296 + (h1 >>> 0);
}

/** Encodes ops for batch.lua: deduped KEYS and the flat argument array. */
export function encodeBatch(ops: readonly StoreOp[], from = 0, to = ops.length): { keys: string[]; args: Array<string | number | null> } {
  const keys: string[] = [];
  const pos = new Map<string, number>();
  const k = (key: string): number => {
    let i = pos.get(key);
    if (i === undefined) {
      keys.push(key);
      i = keys.length;
      pos.set(key, i);
    }
    return i;
  };
  const a: Array<string | number | null> = [];
  // Values Redis takes verbatim travel as decimal strings (batch.lua header).
  const str = (n: number): string => String(n);
  const ms = (n: number): string => String(Math.max(1, Math.ceil(n)));
  for (let j = from; j < to; j++) {
    const op = ops[j] as StoreOp;
    switch (op.op) {
      case 'window.add':
      case 'distinct.add': {
        const lo = str(op.ts - op.windowMs);
        a.push(op.op === 'window.add' ? OpCode.WindowAdd : OpCode.DistinctAdd, k(op.key), op.member, str(op.ts), lo, `(${lo}`, ms(op.ttlMs));
        break;
      }
      case 'window.count':
      case 'distinct.count':
        a.push(OpCode.ZCount, k(op.key), `(${str(op.now - op.windowMs)}`, str(op.now));
        break;
      case 'distinct.members':
        a.push(OpCode.DistinctMembers, k(op.key), `(${str(op.now - op.windowMs)}`, str(op.now), op.windowMs);
        break;
      case 'counter.add':
        // refresh the TTL at least every (ttl - window) / 2 of sample time: the key outlives its window
        a.push(OpCode.CounterAdd, k(op.key), op.value, idHash(op.member), op.ts, op.ts - op.windowMs, ms(op.ttlMs), Math.max(0, (op.ttlMs - op.windowMs) / 2));
        break;
      case 'counter.increase':
        a.push(OpCode.CounterIncrease, k(op.key), op.now - op.windowMs, op.now);
        break;
      case 'sustained.observe':
        a.push(OpCode.SustainedObserve, k(op.key), k(op.index), op.member, str(op.ts), op.holds ? 1 : 0, ms(op.ttlMs), op.ttlMs / 4);
        break;
      case 'sustained.get':
        a.push(OpCode.SustainedGet, k(op.key));
        break;
      case 'due.pop':
        a.push(OpCode.DuePop, k(op.index), str(op.before));
        break;
      case 'seen.touch':
        a.push(OpCode.SeenTouch, k(op.index), op.member, str(op.ts), ms(op.ttlMs));
        break;
      case 'episode.fire':
        a.push(OpCode.EpisodeFire, k(op.key), k(op.index), op.member, op.now, op.cooldownMs, op.autoExpireMs, op.ttlMs, op.by);
        break;
      case 'episode.touch':
        a.push(OpCode.EpisodeTouch, k(op.key), k(op.index), op.member, op.now);
        break;
      case 'episode.clear':
        a.push(OpCode.EpisodeClear, k(op.key), k(op.index), op.member, op.now, op.quietBefore);
        break;
      case 'episode.release':
        a.push(OpCode.EpisodeRelease, k(op.key), k(op.index), op.member);
        break;
      case 'episode.quiet':
        a.push(OpCode.EpisodeQuiet, k(op.index), str(op.before));
        break;
      case 'episode.get':
        a.push(OpCode.EpisodeGet, k(op.key));
        break;
      case 'sequence.step':
        a.push(OpCode.SequenceStep, k(op.key), op.step, op.steps, op.ts, op.windowMs, op.ttlMs);
        break;
      case 'max.set':
        a.push(OpCode.MaxSet, k(op.key), op.value, op.ttlMs);
        break;
      case 'max.get':
        a.push(OpCode.MaxGet, k(op.key));
        break;
    }
  }
  return { keys, args: a };
}

export class RedisStateStore implements StateStore {
  private readonly client: Redis;
  private readonly ownsClient: boolean;
  private readonly script: LuaScript = redisScript('rules.batch');
  private readonly trimScript: LuaScript = redisScript('rules.trim-episode-index');

  constructor(opts: RedisStateStoreOptions) {
    this.client = opts.client;
    this.ownsClient = opts.ownsClient ?? false;
  }

  /**
   * Episode hashes expire by TTL (or end without a ZREM when auto-expired), but
   * a rule's episode index is refreshed by every new episode: members of ended
   * episodes are removed here, atomically per chunk (lua/trim-episode-index.lua).
   * Keys past their TTL are Redis's own business.
   */
  async trim({ keys, rules, signal }: StoreTrimScope, chunk = 200): Promise<number> {
    let removed = 0;
    for (const rule of rules) {
      const index = keys.episodeIndex(rule);
      const members = await this.client.zrange(index, '0', '-1');
      for (let i = 0; i < members.length; i += chunk) {
        if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
        const part = members.slice(i, i + chunk);
        removed += Number(await this.trimScript.run(this.client, [index, ...part.map((m) => keys.episode(rule, m))], part));
      }
    }
    return removed;
  }

  exec(ops: readonly StoreOp[]): Promise<StoreResult[]> {
    return this.execWith(ops, []);
  }

  /**
   * `exec`, with partition-local writes (ADR 0045, ADR 0047) in the same atomic
   * script call (the last one, when the batch is split): every flush's epoch
   * is checked before any op runs; a stale one fails the call with
   * {@link StaleEpochError}, writing nothing.
   */
  async execWith(ops: readonly StoreOp[], flushes: readonly RedisPartitionFlush[]): Promise<StoreResult[]> {
    if (ops.length === 0 && flushes.length === 0) return [];
    const calls: Array<Promise<unknown>> = [];
    // Sent back to back on one connection: Redis runs them in this order.
    for (let from = 0; from < ops.length || (from === 0 && flushes.length > 0); from += MAX_OPS_PER_SCRIPT) {
      const to = Math.min(ops.length, from + MAX_OPS_PER_SCRIPT);
      const { keys, args } = encodeBatch(ops, from, to);
      const argv = [JSON.stringify(args)];
      if (to === ops.length && flushes.length > 0) {
        // op-log entries travel as ARGV entries of their own (ARGV[3]...), not escaped inside ARGV[2]'s JSON
        const logs: string[] = [];
        argv.push(JSON.stringify(encodeFlushes(flushes, keys, logs)), ...logs);
      }
      calls.push(this.script.run(this.client, keys, argv));
    }
    let replies: unknown[];
    try {
      replies = await Promise.all(calls);
    } catch (err) {
      const stale = /NW_STALE_EPOCH (\d+)/.exec((err as Error).message);
      if (stale) throw new StaleEpochError(Number(stale[1]));
      throw new NodewardenError('UNAVAILABLE', `redis state store: ${(err as Error).message}`, { retriable: true, cause: err });
    }
    const out: StoreResult[] = new Array<StoreResult>(ops.length);
    for (let c = 0; c < replies.length; c++) {
      const reply = replies[c];
      const base = c * MAX_OPS_PER_SCRIPT;
      const n = Math.min(MAX_OPS_PER_SCRIPT, ops.length - base);
      if (!Array.isArray(reply) || reply.length !== n)
        throw new NodewardenError('UNAVAILABLE', `redis state store: batch reply has ${Array.isArray(reply) ? reply.length : typeof reply} results for ${n} ops`, { retriable: true });
      for (let i = 0; i < n; i++) out[base + i] = decode(ops[base + i] as StoreOp, reply[i]);
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.client.quit().catch(() => this.client.disconnect());
  }
}

/** A partition's write as batch.lua takes it (ADR 0045, ADR 0047): a snapshot replacing its hash, or an append to its op log. */
export interface RedisPartitionFlush {
  partition: number;
  epoch: number;
  hashKey: string;
  epochKey: string;
  logKey: string;
  /** Snapshot: the hash's new fields. */
  set: ReadonlyArray<readonly [string, string]>;
  /** One op-log entry to append, or null. */
  log: string | null;
  /** A snapshot: the hash is replaced by `set` and the op log deleted. */
  snapshot: boolean;
}

function encodeFlushes(flushes: readonly RedisPartitionFlush[], keys: string[], logs: string[]): unknown[] {
  return flushes.map((f) => {
    keys.push(f.hashKey, f.epochKey, f.logKey);
    const out: Record<string, unknown> = { h: keys.length - 2, e: keys.length - 1, g: keys.length, ep: String(f.epoch), p: f.partition };
    if (f.snapshot) {
      const set: string[] = [];
      for (const [k, v] of f.set) set.push(k, v);
      out.r = 1;
      out.set = set;
    }
    if (f.log !== null) {
      logs.push(f.log);
      out.l = 2 + logs.length;
    }
    return out;
  });
}

function decode(op: StoreOp, v: unknown): StoreResult {
  switch (op.op) {
    case 'window.add':
    case 'window.count':
    case 'distinct.add':
    case 'distinct.count':
    case 'counter.add':
    case 'counter.increase':
      return toNum(v) ?? 0;
    case 'distinct.members':
    case 'due.pop':
    case 'episode.quiet':
      return Array.isArray(v) ? (v as string[]).slice().sort() : [];
    case 'sequence.step':
      return v === 1;
    case 'episode.touch':
      return null;
    default:
      return toNum(v);
  }
}
