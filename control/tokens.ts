/**
 * Bearer tokens for the control API, read from a file (a mounted Secret):
 *
 *     # token                              role       name
 *     3f9c0a7e5d...                        admin      alice
 *     9b1d44c2a8...                        read-only  grafana
 *
 * One `token role name` per line, whitespace-separated; `#` starts a
 * comment; blank lines are ignored. Roles: `admin` (everything) and
 * `read-only` (GET only). Tokens must be at least 16 characters.
 *
 * Only SHA-256 digests are kept in memory, and a presented token is compared
 * with every entry by `crypto.timingSafeEqual` on equal-length digests,
 * without stopping at the first match, so the time taken says nothing about
 * which token (or how much of one) matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { InputProblem } from '../core/errors.js';
import { PoisonInputError } from '../core/errors.js';

export const ROLES = ['admin', 'read-only'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  name: string;
  role: Role;
}

interface Entry extends Principal {
  digest: Buffer;
}

const MIN_TOKEN = 16;

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Parses a tokens file's text; throws PoisonInputError listing every bad line. */
export function parseTokens(text: string, source: string, equal?: DigestEqual): TokenTable {
  const problems: InputProblem[] = [];
  const entries: Entry[] = [];
  const names = new Set<string>();
  text.split(/\r?\n/).forEach((line, i) => {
    const content = line.replace(/#.*$/, '').trim();
    if (!content) return;
    const path = `line ${i + 1}`;
    const parts = content.split(/\s+/);
    if (parts.length !== 3) {
      problems.push({ path, message: `expected "token role name", got ${parts.length} field(s)` });
      return;
    }
    const [token, role, name] = parts as [string, string, string];
    if (token.length < MIN_TOKEN) problems.push({ path, message: `token must be at least ${MIN_TOKEN} characters` });
    if (!(ROLES as readonly string[]).includes(role)) problems.push({ path, message: `unknown role "${role}" (expected admin or read-only)` });
    if (names.has(name)) problems.push({ path, message: `duplicate name "${name}"` });
    names.add(name);
    entries.push({ name, role: role as Role, digest: digest(token) });
  });
  if (problems.length > 0) throw new PoisonInputError('CONFIG_INVALID', source, problems);
  return new TokenTable(entries, equal);
}

/** Compares two equal-length digests; injectable so tests can observe the constant-time path. */
export type DigestEqual = (a: Buffer, b: Buffer) => boolean;

export class TokenTable {
  constructor(
    private readonly entries: readonly Entry[],
    private readonly equal: DigestEqual = timingSafeEqual,
  ) {}

  get size(): number {
    return this.entries.length;
  }

  /** The principal holding `token`, or null. Constant time in the token's content. */
  lookup(token: string): Principal | null {
    const d = digest(token);
    let found: Entry | null = null;
    for (const e of this.entries) {
      // Both digests are 32 bytes, so timingSafeEqual never throws; no early exit.
      const same = this.equal(d, e.digest);
      if (same && found === null) found = e;
    }
    return found ? { name: found.name, role: found.role } : null;
  }
}

/** Extracts the token of an `Authorization: Bearer <token>` header; null when absent or another scheme. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return m?.[1] ?? null;
}

/**
 * The tokens file, re-read when its mtime changes (checked at most every
 * `recheckMs`), so rotating a Secret needs no restart. A bad new file keeps
 * the previous table and reports the error.
 */
export class TokenFile {
  private table: TokenTable;
  private mtimeMs: number;
  private checkedAt = 0;
  constructor(
    private readonly path: string,
    private readonly onReloadError: (err: unknown) => void = () => undefined,
    private readonly recheckMs = 5000,
  ) {
    this.mtimeMs = this.stat();
    this.table = this.read();
  }

  private stat(): number {
    try {
      return statSync(this.path).mtimeMs;
    } catch (err) {
      throw new PoisonInputError('CONFIG_INVALID', this.path, [{ path: '', message: `cannot read tokens file: ${(err as Error).message}` }], err);
    }
  }

  private read(): TokenTable {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      throw new PoisonInputError('CONFIG_INVALID', this.path, [{ path: '', message: `cannot read tokens file: ${(err as Error).message}` }], err);
    }
    return parseTokens(text, this.path);
  }

  lookup(token: string, now = Date.now()): Principal | null {
    if (now - this.checkedAt >= this.recheckMs) {
      this.checkedAt = now;
      try {
        const m = this.stat();
        if (m !== this.mtimeMs) {
          this.table = this.read();
          this.mtimeMs = m;
        }
      } catch (err) {
        this.onReloadError(err);
      }
    }
    return this.table.lookup(token);
  }
}

/** Anything that resolves a token to a principal (TokenFile, TokenTable). */
export interface TokenLookup {
  lookup(token: string): Principal | null;
}
