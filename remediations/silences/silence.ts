/**
 * Silences, like Alertmanager's: label matchers, a time range, a reason and
 * who set it. A page whose labels match an active silence is not sent — its
 * ledger record says `suppressed` by `silenced` (silences never touch the
 * ledger otherwise, nor any action). Stored in the paging DocStore, so every
 * replica honours them and they survive restarts; each expires by itself
 * and is kept KEEP_ENDED_MS more (inactive) so the daily digest can list the
 * silences that ended in its window.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import { PoisonInputError } from '../../core/errors.js';
import type { InputProblem } from '../../core/errors.js';
import type { DocStore } from '../incidents/doc-store.js';
import { updateDoc } from '../incidents/doc-store.js';

export type MatchOp = '=' | '!=' | '=~' | '!~';
export interface Matcher {
  name: string;
  op: MatchOp;
  value: string;
}

export interface Silence {
  id: string;
  matchers: Matcher[];
  startsAt: number;
  endsAt: number;
  reason: string;
  createdBy: string;
}

/** Labels a page is matched on: rule, severity, node, and its group's labels (pool, zone). */
export type PageLabels = Record<string, string>;

const NS = 'silence';
export const MAX_SILENCE_TTL_MS = 30 * 24 * 3_600_000;
/** An ended silence stays readable (by `history()` only) this long: the daily digest's window. */
export const KEEP_ENDED_MS = 48 * 3_600_000;
const MATCHER = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?$/;

/** `pool=h100-train`, `rule=~gpu-.*`, `node!=gpu-1` → a matcher; throws a one-line error otherwise. */
export function parseMatcher(s: string, path = 'matchers'): Matcher {
  const m = MATCHER.exec(s.trim());
  if (!m || s.length > 256) throw new PoisonInputError('REQUEST_INVALID', 'silence', [{ path, message: `"${s.slice(0, 60)}" is not a matcher like pool=h100-train, rule=~gpu-.* or node!=gpu-1` }]);
  const [, name, op, value] = m as unknown as [string, string, MatchOp, string];
  if (op === '=~' || op === '!~') {
    try {
      new RegExp(`^(?:${value})$`);
    } catch {
      throw new PoisonInputError('REQUEST_INVALID', 'silence', [{ path, message: `"${value}" is not a valid regular expression` }]);
    }
  }
  return { name, op, value };
}

export function matches(matchers: readonly Matcher[], labels: PageLabels): boolean {
  return matchers.every((m) => {
    const v = labels[m.name] ?? '';
    switch (m.op) {
      case '=':
        return v === m.value;
      case '!=':
        return v !== m.value;
      case '=~':
        return new RegExp(`^(?:${m.value})$`).test(v);
      case '!~':
        return !new RegExp(`^(?:${m.value})$`).test(v);
    }
  });
}

export interface NewSilence {
  matchers: readonly string[];
  ttlMs: number;
  reason: string;
  by: string;
}

export function validateNewSilence(n: NewSilence): Matcher[] {
  const problems: InputProblem[] = [];
  if (!Array.isArray(n.matchers) || n.matchers.length === 0 || n.matchers.length > 20) problems.push({ path: 'matchers', message: 'give 1 to 20 matchers' });
  if (!Number.isFinite(n.ttlMs) || n.ttlMs <= 0 || n.ttlMs > MAX_SILENCE_TTL_MS) problems.push({ path: 'ttl', message: 'must be a duration between 1s and 30d' });
  if (typeof n.reason !== 'string' || n.reason.trim().length === 0 || n.reason.length > 500) problems.push({ path: 'reason', message: 'a reason of 1 to 500 characters is required' });
  if (problems.length > 0) throw new PoisonInputError('REQUEST_INVALID', 'silence', problems);
  return n.matchers.map((s, i) => parseMatcher(s, `matchers/${i}`));
}

export class Silences {
  constructor(
    private readonly store: DocStore,
    private readonly clock: Clock,
  ) {}

  async create(n: NewSilence): Promise<Silence> {
    const matchers = validateNewSilence(n);
    const now = this.clock.now();
    const s: Silence = { id: randomUUID(), matchers, startsAt: now, endsAt: now + n.ttlMs, reason: n.reason.trim(), createdBy: n.by };
    await this.store.write(NS, s.id, s, 0, n.ttlMs + KEEP_ENDED_MS);
    return s;
  }

  /** Active silences, soonest-ending first. */
  async list(): Promise<Silence[]> {
    const now = this.clock.now();
    return (await this.history()).filter((s) => s.endsAt > now);
  }

  /** Active silences and those ended within KEEP_ENDED_MS, soonest-ending first (the digest). */
  async history(): Promise<Silence[]> {
    const out: Silence[] = [];
    for (const id of await this.store.ids(NS)) {
      const s = await this.store.read<Silence>(NS, id);
      if (s) out.push(s.doc);
    }
    return out.sort((a, b) => a.endsAt - b.endsAt);
  }

  /** Ends an active silence now (kept KEEP_ENDED_MS for the digest); false when there is no active one by that id. */
  async expire(id: string): Promise<boolean> {
    const now = this.clock.now();
    const r = await updateDoc<Silence, boolean>(
      this.store,
      NS,
      id,
      (cur) => (cur && cur.endsAt > now ? { doc: { ...cur, endsAt: now }, result: true } : { doc: null, result: false }),
      KEEP_ENDED_MS,
    );
    return r.result;
  }

  /** The first active silence matching these labels, if any. */
  async match(labels: PageLabels): Promise<Silence | null> {
    for (const s of await this.list()) if (matches(s.matchers, labels)) return s;
    return null;
  }
}
