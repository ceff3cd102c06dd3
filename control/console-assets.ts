/**
 * The operator's console (docs/console.md): three static files shipped in
 * the package under control/console/, served at `/` of the engine's HTTP
 * port. They hold no data and no secret; the page reads everything through
 * the authenticated control API with the token the operator types in.
 *
 * Every answer carries a strict Content-Security-Policy (scripts and styles
 * from this origin only, no inline code, no framing, fetch to this origin
 * only), so an injected string in a rule reason or a node name cannot run.
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { packageRoot } from '../adapters/paths.js';

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cache-control': 'no-cache',
};

/** URL path → file in control/console/ and its content type. */
const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/console/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

export interface ConsoleAsset {
  type: string;
  body: Buffer;
  etag: string;
}

export function isConsolePath(path: string): boolean {
  return Object.hasOwn(FILES, path);
}

export function consoleDir(): string {
  return join(packageRoot(), 'control', 'console');
}

/** The console's files, read once (they ship with the package and do not change while it runs). */
export class ConsoleAssets {
  private cache: Map<string, ConsoleAsset> | null = null;
  constructor(private readonly dir: string = consoleDir()) {}

  get(path: string): ConsoleAsset | undefined {
    this.cache ??= this.load();
    return this.cache.get(path);
  }

  /** Bytes of all the console's files (what a first visit downloads). */
  totalBytes(): number {
    this.cache ??= this.load();
    let n = 0;
    for (const a of this.cache.values()) n += a.body.length;
    return n;
  }

  private load(): Map<string, ConsoleAsset> {
    const out = new Map<string, ConsoleAsset>();
    for (const [path, f] of Object.entries(FILES)) {
      const body = readFileSync(join(this.dir, f.file));
      out.set(path, { type: f.type, body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
    }
    return out;
  }
}
