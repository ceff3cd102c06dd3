/**
 * `expire-toggles` (every minute, one replica): a runtime toggle with a TTL
 * stops applying at `expiresAt` by itself (the toggle stores judge expiry on
 * read), so nothing would say in the audit trail that the rule went back to
 * its file state. This job records each expiry as a `rule-toggle` audit
 * record (`enabled: null`, by `nodewarden/expire-toggles`, the expired
 * toggle's `expiresAt`) and drops expired toggles from the store.
 *
 * Toggles are followed from the audit records in the ledger, not from the
 * store: an expired toggle stops applying at once, and a toggle with a TTL
 * shorter than a minute may come and go between two runs. Per rule the job keeps the latest
 * audit record and whether its expiry was recorded; a toggle that expired
 * and was then replaced still gets its expiry record.
 */
import type { ClosableRuleToggles } from '../rules/toggles/port.js';
import type { LedgerEntry, ToggleAuditRecord } from '../remediations/ledger/entry.js';
import { isToggleAudit } from '../remediations/ledger/entry.js';
import { MAX_TTL_MS } from '../control/api.js';
import type { LedgerReader, LedgerWriter } from '../remediations/ledger/store.js';
import type { Job, JobSummary } from './job.js';
import { checkAborted } from './job.js';
import type { JobStateStore } from './job-state.js';
import { readLedgerWindow, windowStart } from './ledger-window.js';

export const EXPIRE_TOGGLES = 'expire-toggles';
/** `by` of the expiry audit records this job writes. */
export const EXPIRY_BY = 'nodewarden/expire-toggles';

interface Followed {
  audit: ToggleAuditRecord;
  expiryRecorded: boolean;
}

export interface ExpireTogglesState {
  v: 1;
  checkpoint: number;
  /** rule → its latest (non-expiry) toggle audit record. */
  rules: Record<string, Followed>;
}

export function emptyToggleState(): ExpireTogglesState {
  return { v: 1, checkpoint: 0, rules: {} };
}

function ms(iso: string | null): number | null {
  if (iso === null) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

/** A toggle that set a state (not a clear) with a TTL. */
function expiresAt(a: ToggleAuditRecord): number | null {
  return a.enabled === null ? null : ms(a.expiresAt);
}

function sameAudit(a: ToggleAuditRecord, b: ToggleAuditRecord): boolean {
  return a.ts === b.ts && a.enabled === b.enabled && a.by === b.by && a.reason === b.reason && a.expiresAt === b.expiresAt;
}

/**
 * Pure: applies ledger entries (oldest first) and returns the toggles whose
 * expiry must be recorded now (those that expired by `now`, and those that
 * expired before a later change replaced them). Marks them recorded in `s`.
 */
export function applyToggleAudits(s: ExpireTogglesState, entries: readonly LedgerEntry[], now: number): ToggleAuditRecord[] {
  const due: ToggleAuditRecord[] = [];
  for (const e of entries) {
    if (!isToggleAudit(e)) continue;
    const cur = s.rules[e.rule];
    if (e.by === EXPIRY_BY) {
      // our own record, read back: it closes the toggle it names
      if (cur && cur.audit.expiresAt === e.expiresAt) cur.expiryRecorded = true;
      continue;
    }
    const t = ms(e.ts);
    if (t === null) continue;
    if (cur) {
      const curT = ms(cur.audit.ts) ?? 0;
      if (curT > t || sameAudit(cur.audit, e)) continue; // older, or read before
      const exp = expiresAt(cur.audit);
      if (!cur.expiryRecorded && exp !== null && exp <= t) due.push(cur.audit);
    }
    s.rules[e.rule] = { audit: { ...e }, expiryRecorded: false };
  }
  for (const f of Object.values(s.rules)) {
    const exp = expiresAt(f.audit);
    if (!f.expiryRecorded && exp !== null && exp <= now) {
      due.push(f.audit);
      f.expiryRecorded = true;
    }
  }
  return due;
}

/** The audit record that says `expired` expired. */
export function expiryRecord(expired: ToggleAuditRecord, now: number): ToggleAuditRecord {
  const state = expired.enabled ? 'enabled' : 'disabled';
  return {
    ts: new Date(now).toISOString(),
    kind: 'rule-toggle',
    rule: expired.rule,
    enabled: null,
    reason: `expired at ${expired.expiresAt ?? '?'}: the rule is back to its file state (it was ${state} by ${expired.by} at ${expired.ts}: ${expired.reason})`,
    by: EXPIRY_BY,
    expiresAt: expired.expiresAt,
  };
}

/** Keeps the state bounded: rules whose last change is older than the longest TTL and needs nothing more. */
export function pruneToggleState(s: ExpireTogglesState, now: number): void {
  for (const [rule, f] of Object.entries(s.rules)) {
    const t = ms(f.audit.ts) ?? 0;
    const settled = f.expiryRecorded || expiresAt(f.audit) === null;
    if (settled && t < now - MAX_TTL_MS) delete s.rules[rule];
  }
}

export interface ExpireTogglesDeps {
  ledger: LedgerReader;
  /** Where toggle audits go (the ledger topic and stream, as for the control API's changes). */
  audit: Pick<LedgerWriter, 'append'>;
  /** The toggle store whose expired toggles are dropped. */
  toggles?: Pick<ClosableRuleToggles, 'dropExpired'>;
  state: JobStateStore;
}

export function expireTogglesJob(d: ExpireTogglesDeps): Job {
  return {
    name: EXPIRE_TOGGLES,
    scope: 'cluster',
    async run(ctx): Promise<JobSummary> {
      const s = (await d.state.load<ExpireTogglesState>(EXPIRE_TOGGLES)) ?? emptyToggleState();
      if (s.v !== 1) Object.assign(s, emptyToggleState());
      // a first run looks back as far as the longest TTL the control API accepts
      const since = windowStart(s.checkpoint || null, ctx.now, MAX_TTL_MS);
      const win = await readLedgerWindow(d.ledger, since, ctx.now);
      if (win.truncated) ctx.logger.warn({ read: win.entries.length }, 'ledger window truncated: older toggles may be missed');
      checkAborted(ctx.signal);
      const due = applyToggleAudits(s, win.entries, ctx.now);
      const records = due.map((a) => expiryRecord(a, ctx.now));
      // recorded before the state is saved: a failed write is retried next run, never lost
      if (records.length > 0) await d.audit.append(records);
      for (const r of records) ctx.logger.info({ rule: r.rule, expiresAt: r.expiresAt }, 'rule toggle expired');
      const dropped = d.toggles ? await d.toggles.dropExpired(ctx.now) : 0;
      pruneToggleState(s, ctx.now);
      s.checkpoint = ctx.now;
      await d.state.save(EXPIRE_TOGGLES, s);
      return { read: win.entries.length, expired: records.length, dropped, followed: Object.keys(s.rules).length };
    },
  };
}
