/**
 * kubectl-like rendering for `nodewarden ctl`: aligned tables with
 * upper-case headers by default, or the server's JSON / YAML as is.
 */
import type { RuleOutcome } from '../remediations/ladder/outcomes.js';
import { stringify as toYaml } from 'yaml';
import { escapeControl } from '../core/text.js';
import { formatDuration } from '../core/duration.js';
import type { GuardStatus } from '../remediations/ports.js';
import type { LedgerEntry } from '../remediations/ledger/entry.js';
import type { RuleView } from './api.js';

export type OutputFormat = 'table' | 'json' | 'yaml';

/**
 * Columns padded to the widest cell, separated by three spaces (like kubectl).
 * Cells are escaped: a reason or name holding ESC or a newline (stored before
 * the API refused them, or from another writer of the ledger) never reaches the terminal raw.
 */
export function table(headers: readonly string[], rawRows: ReadonlyArray<readonly string[]>): string {
  const rows = rawRows.map((r) => r.map(escapeControl));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function structured(value: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? JSON.stringify(value, null, 2) + '\n' : toYaml(value);
}

/** `59m`, `2h5m`, `3d` — a compact, kubectl-AGE-like span. */
export function span(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 && m < 10 ? `${m}m${s % 60}s` : `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h}h${m % 60}m` : `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

export function renderRules(rules: readonly RuleView[], now: number): string {
  const rows = rules.map((r) => [
    r.id,
    r.fileEnabled ? 'enabled' : 'disabled',
    r.toggle ? (r.toggle.enabled ? 'enabled' : 'disabled') : '-',
    r.effective ? 'enabled' : 'disabled',
    r.toggle?.expiresAt ? span(r.toggle.expiresAt - now) : '-',
    r.toggle ? r.toggle.by : '-',
    r.toggle ? r.toggle.reason : '',
  ]);
  return table(['ID', 'FILE', 'RUNTIME', 'EFFECTIVE', 'EXPIRES', 'BY', 'REASON'], rows);
}

export function renderGuard(g: GuardStatus, now: number): string {
  const out: string[] = [];
  out.push(g.paused ? `PAUSED by ${escapeControl(g.paused.by)} ${span(now - g.paused.at)} ago: ${escapeControl(g.paused.reason)}\n\n` : 'ACTIVE (not paused)\n\n');
  // GPU-TAINTED: node-equivalents of tainted GPUs on schedulable nodes (N of G GPUs = N/G; docs/gpu-scope.md)
  const budgets = [g.fleet, ...g.groups].map((b) => [b.scope, String(b.total), String(b.unavailable), String(b.reserved), fraction(b.gpuWeight), String(b.limit), fraction(Math.max(0, b.limit - b.unavailable - b.reserved - b.gpuWeight))]);
  out.push(table(['SCOPE', 'NODES', 'UNAVAILABLE', 'RESERVED', 'GPU-TAINTED', 'LIMIT', 'HEADROOM'], budgets));
  if (g.gpus.length > 0) {
    out.push('\n');
    out.push(table(['NODE', 'TAINTED GPUS', 'OF', 'WEIGHT', 'CAP', 'GPUS'], g.gpus.map((n) => [n.node, String(n.tainted.length), n.gpus === null ? '?' : String(n.gpus), fraction(n.weight), String(n.cap), escapeControl(n.tainted.join(','))])));
  }
  const u = g.unplacedDeviceTaints;
  if (u && u.count > 0) {
    // someone else's DeviceTaintRules the view cannot map to GPUs: new cordons/taints are denied (docs/gpu-scope.md)
    out.push(`\nDENYING new cordons/taints: ${u.count} DeviceTaintRule(s) of others cannot be mapped to GPUs\n`);
    out.push(table(['RULE', 'WHY'], u.rules.map((r) => [escapeControl(r.rule), escapeControl(r.reason)])));
  }
  if (g.rateLimits.length > 0) {
    out.push('\n');
    out.push(table(['ACTION', 'USED', 'LIMIT', 'PER', 'REMAINING'], g.rateLimits.map((r) => [r.action, String(r.used), String(r.limit), span(r.windowMs), String(r.remaining)])));
  }
  if (g.breakers.length > 0) {
    out.push('\n');
    out.push(
      table(
        ['BREAKER', 'STATE', 'FAILURES', 'HALF-OPENS IN'],
        g.breakers.map((b) => [b.action, b.state, String(b.failures), b.openUntil !== undefined && b.state === 'open' ? span(b.openUntil - now) : '-']),
      ),
    );
  }
  return out.join('');
}

export function renderLedger(entries: readonly LedgerEntry[]): string {
  const rows = entries.map((e) => {
    if ('kind' in e && e.kind !== 'rule-toggle') return [e.ts, '-', e.kind === 'guard-pause' ? 'pause' : 'resume', 'Guard', '-', '-', `${e.reason ?? ''} [by ${e.by}]`];
    if ('kind' in e) {
      const what = e.enabled === null ? 'toggle:clear' : e.enabled ? 'toggle:enable' : 'toggle:disable';
      const until = e.expiresAt ? ` (until ${e.expiresAt})` : '';
      return [e.ts, e.rule, what, `Rule/${e.rule}`, '-', '-', `${e.reason} [by ${e.by}]${until}`];
    }
    const target = `${e.target.kind}/${e.target.namespace ? `${e.target.namespace}/` : ''}${e.target.name}`;
    return [e.ts, e.rule, e.action, target, e.outcome, e.guard ?? '-', e.reason];
  });
  return table(['TIME', 'RULE', 'ACTION', 'TARGET', 'OUTCOME', 'GUARD', 'REASON'], rows);
}

/** `ctl outcomes`: one row per rule (medians as durations). */
export function renderOutcomes(rows: readonly RuleOutcome[], since: string, partial: boolean): string {
  const d = (v: number | null): string => (v === null ? '-' : formatDuration(Math.round(v / 1000) * 1000));
  const body = table(
    ['RULE', 'ISOLATED', 'DETECT', 'ISOLATE', 'RETURNED', 'MTTR', 'BY-PERSON', 'UNDONE-NO-REPAIR', 'HANDED-OVER'],
    rows.map((r) => [r.rule, String(r.isolations), d(r.detectMs), d(r.isolateMs), String(r.returned), d(r.returnMs), String(r.resolvedByPerson), String(r.undoneWithoutRepair), String(r.handedOver)]),
  );
  return `${rows.length ? body : 'no cordon or repair in the window\n'}(since ${since}, medians${partial ? '; ledger read limit reached: a lower bound' : ''})\n`;
}

/** A budget figure: whole numbers as they are, fractions of a node with two decimals. */
function fraction(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}
