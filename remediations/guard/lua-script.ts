/**
 * A Lua script file under remediations/guard/lua/, read at runtime relative to
 * the package root (the .lua files ship beside the sources, not in dist/), run
 * by EVALSHA with a fallback to EVAL when the server's script cache is empty
 * (first use, or after a Redis restart).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { packageRoot } from '../../core/paths.js';

export class LuaScript {
  readonly source: string;
  readonly sha: string;
  constructor(readonly name: string, dir = join(packageRoot(), 'remediations', 'guard', 'lua')) {
    this.source = readFileSync(join(dir, `${name}.lua`), 'utf8');
    this.sha = createHash('sha1').update(this.source).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) return redis.eval(this.source, keys.length, ...keys, ...args);
      throw err;
    }
  }
}
