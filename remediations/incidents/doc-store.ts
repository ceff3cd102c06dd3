/**
 * The state of paging (incidents, holds, silences, approvals, webhook event
 * ids) as small versioned JSON documents in namespaces. Every change is a
 * compare-and-set on the document's version, so the logic that decides the
 * change stays in pure TypeScript (incident.ts, approvals/, silences/) and
 * both adapters — memory (demo, replay, tests) and Redis (production, shared
 * by every engine replica; the CAS is one Lua script) — give the same
 * atomicity. One contract suite runs against both (test/contract/).
 */
import type { Clock } from '../../core/clock.js';
import { NodewardenError } from '../../core/errors.js';

export interface Versioned<T> {
  doc: T;
  /** 1 for a new document, +1 on every write. */
  version: number;
}

export interface DocStore {
  read<T>(ns: string, id: string): Promise<Versioned<T> | null>;
  /**
   * Writes `doc` if the stored version is `expected` (0: absent). `ttlMs` > 0
   * expires the document (0: keeps it). Returns the new version, or 0 when
   * another writer got there first (nothing written).
   */
  write<T>(ns: string, id: string, doc: T, expected: number, ttlMs?: number): Promise<number>;
  /** Deletes if the stored version is `expected`; true when deleted. */
  remove(ns: string, id: string, expected: number): Promise<boolean>;
  /** Ids of the namespace's documents (expired ones may linger until read). */
  ids(ns: string): Promise<string[]>;
  /** True the first time an id is claimed within `ttlMs` (webhook replays). */
  claimOnce(ns: string, id: string, ttlMs: number): Promise<boolean>;
}

/** Bound on CAS retries: contention beyond this is a bug or a storm of writers; the caller sees an error. */
const MAX_ATTEMPTS = 32;

/**
 * Read-modify-write with retries: `change` gets the current document (or
 * null) and returns the new one, `null` to leave it, or `{ delete: true }`.
 * Returns what `change` decided for the write that won, with the result.
 * `ttlMs` may depend on the new document (a resolved incident expires).
 */
export async function updateDoc<T, R>(
  store: DocStore,
  ns: string,
  id: string,
  change: (cur: T | null) => { doc: T | null | 'delete'; result: R },
  ttlMs: number | ((doc: T) => number) = 0,
): Promise<{ doc: T | null; version: number; result: R }> {
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    const cur = await store.read<T>(ns, id);
    const { doc, result } = change(cur ? structuredClone(cur.doc) : null);
    if (doc === null) return { doc: cur?.doc ?? null, version: cur?.version ?? 0, result };
    if (doc === 'delete') {
      if (!cur || (await store.remove(ns, id, cur.version))) return { doc: null, version: 0, result };
      continue;
    }
    const v = await store.write(ns, id, doc, cur?.version ?? 0, typeof ttlMs === 'number' ? ttlMs : ttlMs(doc));
    if (v > 0) return { doc, version: v, result };
  }
  throw new NodewardenError('CONFLICT', `${ns}/${id}: too many concurrent writers`, { retriable: true });
}

interface Slot {
  json: string;
  version: number;
  expiresAt: number;
}

/** In-process adapter (demo, replay, tests); expiry on the injected clock. */
export class MemoryDocStore implements DocStore {
  private readonly data = new Map<string, Map<string, Slot>>();
  private readonly claims = new Map<string, number>();
  constructor(private readonly clock: Clock) {}

  private live(ns: string, id: string): Slot | undefined {
    const m = this.data.get(ns);
    const s = m?.get(id);
    if (s && s.expiresAt > 0 && s.expiresAt <= this.clock.now()) {
      m?.delete(id);
      return undefined;
    }
    return s;
  }

  read<T>(ns: string, id: string): Promise<Versioned<T> | null> {
    const s = this.live(ns, id);
    return Promise.resolve(s ? { doc: JSON.parse(s.json) as T, version: s.version } : null);
  }

  write<T>(ns: string, id: string, doc: T, expected: number, ttlMs = 0): Promise<number> {
    const s = this.live(ns, id);
    if ((s?.version ?? 0) !== expected) return Promise.resolve(0);
    const version = expected + 1;
    let m = this.data.get(ns);
    if (!m) this.data.set(ns, (m = new Map<string, Slot>()));
    m.set(id, { json: JSON.stringify(doc), version, expiresAt: ttlMs > 0 ? this.clock.now() + ttlMs : 0 });
    return Promise.resolve(version);
  }

  remove(ns: string, id: string, expected: number): Promise<boolean> {
    const s = this.live(ns, id);
    if (!s || s.version !== expected) return Promise.resolve(false);
    this.data.get(ns)?.delete(id);
    return Promise.resolve(true);
  }

  ids(ns: string): Promise<string[]> {
    const m = this.data.get(ns);
    return Promise.resolve(m ? [...m.keys()].filter((id) => this.live(ns, id)) : []);
  }

  claimOnce(ns: string, id: string, ttlMs: number): Promise<boolean> {
    const k = `${ns}\u0000${id}`;
    const now = this.clock.now();
    const until = this.claims.get(k);
    if (until !== undefined && until > now) return Promise.resolve(false);
    this.claims.set(k, now + ttlMs);
    if (this.claims.size > 100_000) for (const [ck, u] of this.claims) if (u <= now) this.claims.delete(ck);
    return Promise.resolve(true);
  }
}
