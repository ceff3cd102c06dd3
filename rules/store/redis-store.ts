/**
 * Redis StateStore (production: shared by every engine replica). A batch of
 * ops is ONE pipeline; every read-modify-write op is one Lua script (in
 * rules/store/lua/, read at runtime relative to the package root and loaded
 * with ioredis `defineCommand`, i.e. EVALSHA with a NOSCRIPT fallback), so
 * each op is atomic across replicas. Every written key gets a TTL.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis, ChainableCommander } from 'ioredis';
import { NodewardenError } from '../../core/errors.js';
import { packageRoot } from '../../core/paths.js';
import type { StateStore, StoreOp, StoreResult } from './state-store.js';

/** Script name → number of KEYS. File: rules/store/lua/<name>.lua */
export const LUA_SCRIPTS = {
  'window-add': 1,
  'distinct-add': 1,
  counter: 1,
  'sustained-observe': 2,
  'due-pop': 1,
  'seen-touch': 1,
  'episode-fire': 2,
  'episode-touch': 2,
  'episode-clear': 2,
  'sequence-step': 1,
  'max-set': 1,
} as const;
type ScriptName = keyof typeof LUA_SCRIPTS;

export function luaPath(name: string): string {
  return join(packageRoot(), 'rules', 'store', 'lua', `${name}.lua`);
}

/** Command names are prefixed so they never clash with other users of the same client. */
const cmd = (name: ScriptName): string => `nwRules_${name.replace(/-/g, '_')}`;

type Scripted = Record<string, (...args: Array<string | number>) => ChainableCommander>;

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

export class RedisStateStore implements StateStore {
  private readonly client: Redis;
  private readonly ownsClient: boolean;

  constructor(opts: RedisStateStoreOptions) {
    this.client = opts.client;
    this.ownsClient = opts.ownsClient ?? false;
    for (const [name, numberOfKeys] of Object.entries(LUA_SCRIPTS)) {
      const c = cmd(name as ScriptName);
      if (!(c in this.client)) this.client.defineCommand(c, { numberOfKeys, lua: readFileSync(luaPath(name), 'utf8') });
    }
  }

  async exec(ops: readonly StoreOp[]): Promise<StoreResult[]> {
    if (ops.length === 0) return [];
    const p = this.client.pipeline();
    const s = p as unknown as Scripted;
    const call = (name: ScriptName, ...args: Array<string | number>): void => {
      (s[cmd(name)] as (...a: Array<string | number>) => ChainableCommander).apply(p, args);
    };
    for (const op of ops) {
      switch (op.op) {
        case 'window.add':
          call('window-add', op.key, op.member, op.ts, op.windowMs, op.ttlMs);
          break;
        case 'window.count':
          p.zcount(op.key, `(${op.now - op.windowMs}`, op.now);
          break;
        case 'distinct.add':
          call('distinct-add', op.key, op.member, op.ts, op.windowMs, op.ttlMs);
          break;
        case 'distinct.count':
          p.zcount(op.key, `(${op.now - op.windowMs}`, op.now);
          break;
        case 'distinct.members':
          p.zrangebyscore(op.key, `(${op.now - op.windowMs}`, op.now);
          break;
        case 'counter.add':
          call('counter', op.key, 'add', op.ts, op.windowMs, `${op.member}|${op.value}`, op.ttlMs);
          break;
        case 'counter.increase':
          call('counter', op.key, 'query', op.now, op.windowMs, '', 0);
          break;
        case 'sustained.observe':
          call('sustained-observe', op.key, op.index, op.member, op.ts, op.holds ? '1' : '0', op.ttlMs);
          break;
        case 'sustained.get':
          p.hget(op.key, 'since');
          break;
        case 'due.pop':
          call('due-pop', op.index, op.before);
          break;
        case 'seen.touch':
          call('seen-touch', op.index, op.member, op.ts, op.ttlMs);
          break;
        case 'episode.fire':
          call('episode-fire', op.key, op.index, op.member, op.now, op.cooldownMs, op.autoExpireMs, op.ttlMs);
          break;
        case 'episode.touch':
          call('episode-touch', op.key, op.index, op.member, op.now);
          break;
        case 'episode.clear':
          call('episode-clear', op.key, op.index, op.member, op.now, op.quietBefore === null ? '' : op.quietBefore);
          break;
        case 'episode.quiet':
          p.zrangebyscore(op.index, '-inf', op.before);
          break;
        case 'episode.get':
          p.hmget(op.key, 'active', 'firedAt');
          break;
        case 'sequence.step':
          call('sequence-step', op.key, op.step, op.steps, op.ts, op.windowMs, op.ttlMs);
          break;
        case 'max.set':
          call('max-set', op.key, op.value, op.ttlMs);
          break;
        case 'max.get':
          p.get(op.key);
          break;
      }
    }
    let replies: Array<[Error | null, unknown]> | null;
    try {
      replies = await p.exec();
    } catch (err) {
      throw new NodewardenError('UNAVAILABLE', `redis state store: ${(err as Error).message}`, { retriable: true, cause: err });
    }
    if (!replies) throw new NodewardenError('UNAVAILABLE', 'redis state store: pipeline aborted', { retriable: true });
    const out: StoreResult[] = new Array<StoreResult>(ops.length);
    for (let i = 0; i < ops.length; i++) {
      const [err, v] = replies[i] ?? [new Error('missing reply'), null];
      if (err) throw new NodewardenError('UNAVAILABLE', `redis state store: ${ops[i]?.op}: ${err.message}`, { retriable: true, cause: err });
      out[i] = this.decode(ops[i] as StoreOp, v);
    }
    return out;
  }

  private decode(op: StoreOp, v: unknown): StoreResult {
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
      case 'episode.get': {
        const a = v as Array<string | null>;
        return a[0] === '1' ? toNum(a[1]) : null;
      }
      case 'sequence.step':
        return toNum(v) === 1;
      case 'episode.touch':
        return null;
      default:
        return toNum(v);
    }
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.client.quit().catch(() => this.client.disconnect());
  }
}
