/**
 * The control backend over the engine's real parts: the rule set (file
 * state), the shared toggles (runtime state, changed through the audited
 * ToggleService), the guard's operator controls and a ledger reader.
 */
import type { Clock } from '../core/clock.js';
import type { ClusterView } from '../core/cluster.js';
import type { Severity } from '../core/decision.js';
import { SeenLedgerKeys } from '../remediations/ledger/record.js';
import type { GuardControl, GuardStatus } from '../remediations/ports.js';
import type { RuleToggle, RuleToggles, ToggleAuditSink } from '../rules/toggles/port.js';
import type { ToggleService } from '../rules/toggles/toggle-service.js';
import type { ControlBackend, LedgerEntry, LedgerQuery, RuleView } from './api.js';
import { MAX_LEDGER_LIMIT } from './api.js';
import { nodeViews } from './nodes.js';

/** What the backend needs to know of a rule (a CompiledRule has all of it). */
export interface RuleInfo {
  id: string;
  description: string;
  severity: Severity;
  enabled: boolean;
  source: string;
}

/** Reads the ledger back (the Redis ledger stream in production, memory in the demo). */
export interface LedgerReader {
  query(q: LedgerQuery): Promise<LedgerEntry[]>;
}

export interface ControlBackendOptions {
  rules: readonly RuleInfo[];
  toggles: RuleToggles;
  toggleService: ToggleService;
  guard: GuardControl;
  ledger: LedgerReader;
  clock: Clock;
  /** With a cluster view, GET /api/v1/nodes lists its nodes grouped by `groupLabel`. */
  cluster?: ClusterView;
  groupLabel?: string;
  /** Where pause and resume are recorded (the same sink as the toggles' audit); absent: not recorded. */
  audit?: ToggleAuditSink;
  dryRun?: boolean;
}

export function createControlBackend(o: ControlBackendOptions): ControlBackend {
  const cluster = o.cluster;
  const byId = new Map(o.rules.map((r) => [r.id, r]));
  return {
    listRules(): RuleView[] {
      const now = o.clock.now();
      const toggles = new Map(o.toggles.list(now).map((t) => [t.rule, t]));
      return o.rules.map((r) => ({
        id: r.id,
        description: r.description,
        severity: r.severity,
        source: r.source,
        fileEnabled: r.enabled,
        toggle: toggles.get(r.id) ?? null,
        effective: o.toggles.isEnabled(r.id, r.enabled, now),
      }));
    },
    hasRule: (id) => byId.has(id),
    setRule(id, enabled, change): Promise<RuleToggle> {
      const c = { rule: id, reason: change.reason, by: change.by, ttlMs: change.ttlMs };
      return enabled ? o.toggleService.enable(c) : o.toggleService.disable(c);
    },
    async pause(reason, by) {
      await o.guard.pause(reason, by);
      await o.audit?.append([{ ts: new Date(o.clock.now()).toISOString(), kind: 'guard-pause', reason, by }]);
    },
    async resume(by, reason) {
      await o.guard.resume();
      await o.audit?.append([{ ts: new Date(o.clock.now()).toISOString(), kind: 'guard-resume', reason: reason ?? null, by }]);
    },
    guard: (): Promise<GuardStatus> => o.guard.status(),
    ledger: (q) => o.ledger.query(q),
    ...(cluster ? { nodes: async () => nodeViews(cluster.listNodes(), await o.ledger.query({ limit: MAX_LEDGER_LIMIT }), o.groupLabel ?? 'nodewarden.io/pool') } : {}),
    ...(o.dryRun === undefined ? {} : { dryRun: o.dryRun }),
  };
}

/** Filters ledger entries (newest first) the way the API's query asks. */
export function filterLedger(entries: Iterable<LedgerEntry>, q: LedgerQuery): LedgerEntry[] {
  const out: LedgerEntry[] = [];
  for (const e of entries) {
    const t = Date.parse(e.ts);
    if (q.since !== undefined && t < q.since) continue;
    if (q.until !== undefined && t >= q.until) continue;
    if (q.rule !== undefined && (!('rule' in e) || e.rule !== q.rule)) continue;
    if ('kind' in e) {
      // Operator audits have no node and no outcome.
      if (q.node !== undefined || q.outcome !== undefined) continue;
    } else {
      if (q.node !== undefined && !(e.target.kind === 'Node' && e.target.name === q.node)) continue;
      if (q.outcome !== undefined && e.outcome !== q.outcome) continue;
    }
    out.push(e);
  }
  out.sort((a, b) => Date.parse(b.ts) - Date.parse(a.ts));
  return out.slice(0, q.limit);
}

/** A ledger reader over records kept in memory (demo, embedded engine, tests). */
export class MemoryLedgerReader implements LedgerReader {
  readonly entries: LedgerEntry[] = [];
  private readonly seen: SeenLedgerKeys;
  /** Keeps the newest `maxEntries` (memory stays bounded in a long-running embedded engine). */
  constructor(private readonly maxEntries = 100_000) {
    this.seen = new SeenLedgerKeys(maxEntries);
  }
  /** Idempotent per decision attempt, like every ledger sink (remediations/ledger/record.ts `ledgerKey`). */
  append(records: readonly LedgerEntry[]): Promise<void> {
    this.entries.push(...this.seen.fresh(records));
    if (this.entries.length > this.maxEntries) this.entries.splice(0, this.entries.length - this.maxEntries);
    return Promise.resolve();
  }
  query(q: LedgerQuery): Promise<LedgerEntry[]> {
    return Promise.resolve(filterLedger(this.entries, q));
  }
}
