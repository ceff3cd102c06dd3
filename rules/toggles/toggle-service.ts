/**
 * Changing a toggle is an operator action: it is applied to the shared
 * toggles and recorded in the ledger as a `rule-toggle` audit record. The
 * toggle is written first (the change matters more than its record); a failed
 * audit write is reported to the caller as an error after the change.
 */
import type { Clock } from '../../core/clock.js';
import type { ToggleAuditRecord } from '../../remediations/ledger/entry.js';
import type { LedgerWriter } from '../../remediations/ledger/store.js';
import type { RuleToggle, RuleToggles } from './port.js';

export interface ToggleChange {
  rule: string;
  reason: string;
  by: string;
  /** Time to live in ms; undefined/null = until changed. */
  ttlMs?: number | null;
}

export class ToggleService {
  constructor(
    private readonly toggles: RuleToggles,
    private readonly audit: Pick<LedgerWriter, 'append'>,
    private readonly clock: Clock,
  ) {}

  disable(change: ToggleChange): Promise<RuleToggle> {
    return this.apply(change, false);
  }

  enable(change: ToggleChange): Promise<RuleToggle> {
    return this.apply(change, true);
  }

  /** Removes the runtime toggle: the rule goes back to its file state. */
  async clear(change: Omit<ToggleChange, 'ttlMs'>): Promise<void> {
    await this.toggles.clear(change.rule);
    await this.audit.append([
      { ts: new Date(this.clock.now()).toISOString(), kind: 'rule-toggle', rule: change.rule, enabled: null, reason: change.reason, by: change.by, expiresAt: null },
    ]);
  }

  private async apply(change: ToggleChange, enabled: boolean): Promise<RuleToggle> {
    const now = this.clock.now();
    const ttl = change.ttlMs ?? null;
    const toggle: RuleToggle = { rule: change.rule, enabled, reason: change.reason, by: change.by, at: now, expiresAt: ttl === null ? null : now + ttl };
    await this.toggles.set(toggle);
    await this.audit.append([toAudit(toggle)]);
    return toggle;
  }
}

export function toAudit(t: RuleToggle): ToggleAuditRecord {
  return {
    ts: new Date(t.at).toISOString(),
    kind: 'rule-toggle',
    rule: t.rule,
    enabled: t.enabled,
    reason: t.reason,
    by: t.by,
    expiresAt: t.expiresAt === null ? null : new Date(t.expiresAt).toISOString(),
  };
}
