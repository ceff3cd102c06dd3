/**
 * A Redis Lua script file (every read-modify-write of nodewarden's Redis state
 * is one), read at runtime relative to the package root — the .lua files ship
 * beside the sources, not in dist/ — and run by EVALSHA with a fallback to EVAL
 * when the server's script cache is empty (first use, or after a restart).
 * Only a type import of ioredis: the client is the caller's.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { packageRoot } from '../paths.js';

export class LuaScript {
  readonly source: string;
  readonly sha: string;
  /**
   * `folder` is relative to the package root, e.g. `remediations/guard/lua`;
   * `prelude`, a file of the same folder run first as part of the one script
   * (the locals and helpers several scripts of a module share).
   */
  constructor(readonly name: string, folder: string, prelude?: string) {
    const dir = join(packageRoot(), folder);
    const read = (file: string): string => readFileSync(join(dir, `${file}.lua`), 'utf8');
    this.source = prelude === undefined ? read(name) : `${read(prelude)}\n${read(name)}`;
    this.sha = createHash('sha1').update(this.source).digest('hex');
  }

  /**
   * KEYS then ARGV as one flat array (no spread: a rules batch carries tens of
   * thousands of keys). Calls made back to back on one connection run in order,
   * their NOSCRIPT fallbacks too.
   */
  async run(redis: Redis, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    const argv = keys.concat(args.map(String));
    try {
      return await redis.evalsha(this.sha, keys.length, argv);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) return redis.eval(this.source, keys.length, argv);
      throw err;
    }
  }
}
