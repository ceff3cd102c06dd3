/**
 * The control backend over the engine's real parts: the rule set (file
 * state), the shared toggles (runtime state, changed through the audited
 * ToggleService), the guard's operator controls and the ledger store
 * (remediations/ledger).
 */
import type { Clock } from '../core/clock.js';
import type { ClusterView } from '../core/cluster.js';
import type { Severity } from '../core/decision.js';
import type { LedgerReader, LedgerWriter } from '../remediations/ledger/store.js';
import type { GuardControl, GuardStatus } from '../remediations/ports.js';
import type { RuleToggle, RuleToggles } from '../rules/toggles/port.js';
import type { ToggleService } from '../rules/toggles/toggle-service.js';
import type { ControlBackend, RuleView } from './api.js';
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

export interface ControlBackendOptions {
  rules: readonly RuleInfo[];
  toggles: RuleToggles;
  toggleService: ToggleService;
  guard: GuardControl;
  /** Reads the ledger back (the Redis ledger stream in production, memory in the demo). */
  ledger: LedgerReader;
  clock: Clock;
  /** With a cluster view, GET /api/v1/nodes lists its nodes grouped by `groupLabel`. */
  cluster?: ClusterView;
  groupLabel?: string;
  /** Where pause and resume are recorded (the same ledger as the toggles' audit); absent: not recorded. */
  audit?: Pick<LedgerWriter, 'append'>;
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
