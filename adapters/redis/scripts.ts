/**
 * The one registry of nodewarden's Redis Lua scripts, all run the one way
 * (LuaScript: EVALSHA, EVAL on NOSCRIPT). Each .lua file stays next to the
 * module that owns the keys it touches; this table says where, and which
 * prelude (a file of the same folder: shared locals and helpers, such as
 * decoding the JSON plan and the decision record) runs first as part of it.
 * A script is read from disk on first use, once per process.
 */
import { LuaScript } from './lua-script.js';

const SCRIPTS = {
  /** The rule state store's batch interpreter (keys: adapters/redis/keys.ts). */
  'rules.batch': ['batch', 'rules/store/lua'],
  'rules.trim-episode-index': ['trim-episode-index', 'rules/store/lua'],
  /** Event dedupe (keys: adapters/redis/keys.ts). */
  'dedupe.claim': ['dedupe-claim', 'rules/service/lua'],
  'dedupe.confirm': ['dedupe-confirm', 'rules/service/lua'],
  /** Rule toggles (keys: adapters/redis/keys.ts). */
  'toggles.prune': ['prune-toggles', 'rules/toggles/lua'],
  /** The blast-radius guard (keys: adapters/redis/keys.ts). */
  'guard.authorize': ['authorize', 'remediations/guard/lua', 'prelude'],
  'guard.settle': ['settle', 'remediations/guard/lua', 'prelude'],
  'guard.renew': ['renew', 'remediations/guard/lua', 'prelude'],
  'guard.settle-denial': ['settle-denial', 'remediations/guard/lua', 'prelude'],
  'guard.status': ['status', 'remediations/guard/lua', 'prelude'],
  'guard.hdel-if-equal': ['hdel-if-equal', 'remediations/guard/lua'],
  /** Paging state: incidents, approvals, silences (keys: adapters/redis/keys.ts). */
  'paging.cas-write': ['cas-write', 'remediations/incidents/lua'],
  /** Idempotent ledger append (keys: adapters/redis/keys.ts). */
  'ledger.append': ['append', 'remediations/ledger/lua'],
  /** Scheduled jobs (keys: adapters/redis/keys.ts). */
  'jobs.release-lock': ['release-lock', 'jobs/lua'],
} as const satisfies Record<string, readonly [file: string, folder: string, prelude?: string]>;

export type RedisScriptName = keyof typeof SCRIPTS;

const loaded = new Map<RedisScriptName, LuaScript>();

export function redisScript(name: RedisScriptName): LuaScript {
  let s = loaded.get(name);
  if (!s) {
    const [file, folder, prelude]: readonly [string, string, string?] = SCRIPTS[name];
    s = new LuaScript(file, folder, prelude);
    loaded.set(name, s);
  }
  return s;
}
