/**
 * What the demo prints: the live frame (plain ANSI, redrawn about once a
 * second), one line per ledger record for non-TTY output, and the final
 * summary with its machine-readable JSON line. Pure functions of the stats.
 */
import type { LedgerRecord, Outcome } from '../core/decision.js';
import { ACTIONS, OUTCOMES } from '../core/decision.js';
import type { GuardStatus } from '../remediations/ports.js';
import type { DemoNote, DemoStats } from './system.js';

const ESC = '\x1b[';
const COLORS: Record<Outcome | 'dim' | 'bold' | 'note', string> = {
  executed: '32',
  denied: '31',
  suppressed: '33',
  failed: '35',
  'dry-run': '36',
  'pending-approval': '93',
  dim: '2',
  bold: '1',
  note: '34',
};

export function paint(on: boolean, what: keyof typeof COLORS, text: string): string {
  return on ? `${ESC}${COLORS[what]}m${text}${ESC}0m` : text;
}

/** `+1h23m` style offset of virtual time from the start. */
export function clockText(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const hms = `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
  return d > 0 ? `${d}d ${hms}` : hms;
}

function target(r: LedgerRecord): string {
  return r.target.namespace ? `${r.target.kind}/${r.target.namespace}/${r.target.name}` : `${r.target.kind}/${r.target.name}`;
}

/** One ledger record as a line: `+00:25:05 executed  rollback  DaemonSet/gpu-operator/... [rule] reason`. */
export function recordLine(r: LedgerRecord, start: number, color: boolean, width = 0): string {
  const at = clockText(Date.parse(r.ts) - start);
  const guard = r.guard ? ` guard=${r.guard}` : '';
  const extra = r.toRevision !== undefined ? ` toRevision=${r.toRevision}` : r.severity && (r.action === 'page' || r.action === 'resolve') ? ` ${r.severity}` : '';
  let line = `+${at} ${paint(color, r.outcome, r.outcome.padEnd(10))} ${r.action.padEnd(8)} ${target(r)} [${r.rule}]${guard}${extra} — ${r.reason}`;
  if (width > 0) line = truncateVisible(line, width);
  return line;
}

export function noteLine(n: DemoNote, start: number, color: boolean): string {
  return `+${clockText(n.at - start)} ${paint(color, 'note', `[${n.kind}]`)} ${n.text}`;
}

/** Truncates to `width` visible characters, keeping ANSI sequences intact. */
function truncateVisible(s: string, width: number): string {
  let out = '';
  let visible = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\x1b') {
      const end = s.indexOf('m', i);
      if (end > 0) {
        out += s.slice(i, end + 1);
        i = end;
        continue;
      }
    }
    if (visible >= width - 1) return `${out}…${ESC}0m`;
    out += s[i];
    visible++;
  }
  return out;
}

export interface FrameView {
  stats: DemoStats;
  guard: GuardStatus;
  speed: number;
  amplify: number;
  seed: number;
  wallMs: number;
  eventsPerSec: number;
  /** Virtual ms the simulation is behind wall time × speed (slow host). */
  lagMs: number;
  metricsUrl: string;
  /** The operator's console, shown first. */
  consoleUrl?: string;
  token: string;
  local: string;
  width: number;
}

/** Causes by what a node can see of them, for the "honest" part of the summary. */
export function causeLines(stats: DemoStats): string[] {
  const by = (pred: (s: DemoStats['causes'][number]) => boolean): string =>
    stats.causes
      .filter((c) => pred(c) && c.count > 0)
      .map((c) => `${c.cause} ${c.count}`)
      .join(', ') || '—';
  return [
    `  seen as Xids          ${by((c) => c.signal === 'xid')}`,
    `  seen as containerd    ${by((c) => c.signal === 'containerd')}`,
    `  seen as silent node   ${by((c) => c.signal === 'host-down')}  (cause itself not visible: NotReady + no heartbeat)`,
    `  thermal (DCGM)        ${by((c) => c.signal === 'thermal')}  (observed; no default rule acts on it)`,
    `  INVISIBLE to nodes    ${by((c) => c.signal === null)}  (network, NIC, NCCL hangs, silent data corruption: no node signal exists)`,
  ];
}

function decisionTable(stats: DemoStats, color: boolean): string[] {
  const head = `  ${'action'.padEnd(9)}${OUTCOMES.map((o) => paint(color, o, o.padStart(11))).join('')}`;
  const rows = ACTIONS.map((a) => `  ${a.padEnd(9)}${OUTCOMES.map((o) => String(stats.decisions[a][o]).padStart(11)).join('')}`);
  return [head, ...rows];
}

export function renderFrame(v: FrameView): string {
  const s = v.stats;
  const c = true;
  const w = Math.max(60, v.width);
  const fleet = v.guard.fleet;
  const pools = v.guard.groups.filter((g) => g.scope.startsWith('pool='));
  const open = v.guard.breakers.filter((b) => b.state !== 'closed');
  const lines: string[] = [];
  if (v.consoleUrl) lines.push(paint(c, 'bold', `console: ${v.consoleUrl}   (open it in a browser; sign in with the token below)`));
  lines.push(paint(c, 'bold', `nodewarden demo — ${s.nodes} simulated GPU nodes, real engine + guard + remediator, in-memory everything`));
  lines.push(
    `virtual ${clockText(s.now - s.start)} (${new Date(s.now).toISOString().slice(0, 16)}Z)  ×${v.speed}  faults ×${v.amplify}  seed ${v.seed}  wall ${clockText(v.wallMs)}${v.lagMs > 5000 ? paint(c, 'failed', `  behind by ${clockText(v.lagMs)}`) : ''}`,
  );
  lines.push(`events ${s.events} (${Math.round(v.eventsPerSec)}/s)  dead letters ${s.invalid}  duplicates ${s.duplicates}   ${paint(c, 'dim', v.metricsUrl)}`);
  lines.push('');
  lines.push(paint(c, 'bold', 'guard'));
  const fleetText = `${fleet.unavailable + fleet.reserved}/${fleet.limit}`;
  lines.push(
    `  fleet unavailable ${fleet.unavailable >= fleet.limit ? paint(c, 'denied', fleetText) : paint(c, 'executed', fleetText)} of ${fleet.total}  (cordoned by nodewarden ${s.cordonedByNodewarden}, max so far ${s.maxCordonedByNodewarden})${v.guard.paused ? paint(c, 'denied', `  PAUSED by ${v.guard.paused.by}: ${v.guard.paused.reason}`) : ''}`,
  );
  lines.push(`  pools  ${pools.map((g) => `${g.scope.slice(5)} ${g.unavailable + g.reserved}/${g.limit}`).join('  ')}`);
  lines.push(
    `  circuit ${open.length === 0 ? paint(c, 'executed', 'closed (all actions)') : open.map((b) => paint(c, 'denied', `${b.action} ${b.state}`)).join(' ')}   rate ${v.guard.rateLimits.map((r) => `${r.action} ${r.used}/${r.limit}`).join(' ')}`,
  );
  lines.push(
    `  driver DaemonSet revision ${s.driverRevision ?? '?'} (${s.driverImage?.replace(/^.*:/, '') ?? '?'})  rollbacks executed ${s.rollbacks.executed}  humans uncordoned ${s.humanUncordons}  nodewarden uncordoned ${s.nodewardenUncordons}`,
  );
  lines.push('');
  lines.push(paint(c, 'bold', 'decisions (action × outcome)'));
  lines.push(...decisionTable(s, c));
  lines.push(`  denied by: ${Object.entries(s.deniedBy).map(([g, n]) => `${g} ${n}`).join(', ') || '—'}   pages: ${s.pages.triggers} triggered, ${s.pages.resolves} resolved, ${s.pages.open} open`);
  lines.push('');
  lines.push(paint(c, 'bold', `faults injected: ${s.faults} (Llama 3 causes)`));
  lines.push(...causeLines(s));
  lines.push(`  local host           ${v.local}`);
  lines.push('');
  lines.push(paint(c, 'bold', 'ledger (latest)'));
  for (const r of s.ledgerTail.slice(-10)) lines.push(`  ${recordLine(r, s.start, c, w - 2)}`);
  lines.push('');
  lines.push(paint(c, 'bold', 'what happened'));
  for (const n of s.notes.slice(-5)) lines.push(truncateVisible(`  ${noteLine(n, s.start, c)}`, w));
  lines.push('');
  lines.push(paint(c, 'dim', `try: NODEWARDEN_TOKEN=${v.token} ./bin/nodewarden ctl --server ${v.metricsUrl.replace(/\/metrics$/, '')} guard    (Ctrl-C to stop)`));
  return lines.join('\n');
}

/** One plain status line (non-TTY output), every few seconds. */
export function statusLine(s: DemoStats, guard: GuardStatus, eventsPerSec: number): string {
  const d = s.decisions;
  return (
    `status +${clockText(s.now - s.start)} events=${s.events} (${Math.round(eventsPerSec)}/s) unavailable=${guard.fleet.unavailable}/${guard.fleet.limit} ` +
    `cordonedByNodewarden=${s.cordonedByNodewarden} cordons executed=${d.cordon.executed} denied=${d.cordon.denied} rollbacks=${s.rollbacks.executed} ` +
    `pages=${s.pages.triggers}/${s.pages.resolves} faults=${s.faults} circuit=${guard.breakers.every((b) => b.state === 'closed') ? 'closed' : 'OPEN'}`
  );
}

export interface SummaryExtra {
  seed: number;
  speed: number;
  amplify: number;
  wallMs: number;
  localHost: string;
}

/** The machine-readable end-of-run line (one JSON object; `kind` tells it apart). */
export function summaryJson(s: DemoStats, x: SummaryExtra): string {
  return JSON.stringify({
    kind: 'nodewarden.demo.summary',
    seed: x.seed,
    speed: x.speed,
    amplify: x.amplify,
    wallSeconds: Math.round(x.wallMs / 100) / 10,
    virtualSeconds: Math.round((s.now - s.start) / 1000),
    events: s.events,
    deadLetters: s.invalid,
    faults: s.faults,
    causes: Object.fromEntries(s.causes.filter((c) => c.count > 0).map((c) => [c.cause, c.count])),
    decisions: s.decisions,
    deniedBy: s.deniedBy,
    pages: s.pages,
    rollbacks: s.rollbacks,
    driverRevision: s.driverRevision,
    driverImage: s.driverImage,
    nodes: s.nodes,
    fleetLimit: s.fleetLimit,
    cordonedByNodewarden: s.cordonedByNodewarden,
    maxCordonedByNodewarden: s.maxCordonedByNodewarden,
    maxUnavailable: s.maxUnavailable,
    humanUncordons: s.humanUncordons,
    nodewardenUncordons: s.nodewardenUncordons,
    hostsDown: s.hostsDown,
    localHost: x.localHost,
  });
}

export function finalSummary(s: DemoStats, x: SummaryExtra, color: boolean): string {
  const lines: string[] = [];
  lines.push(paint(color, 'bold', `nodewarden demo: ${clockText(s.now - s.start)} of virtual time in ${clockText(x.wallMs)} (×${x.speed}, faults ×${x.amplify}, seed ${x.seed})`));
  lines.push(`  events ${s.events}, dead letters ${s.invalid}, faults injected ${s.faults}`);
  lines.push(...decisionTable(s, color));
  lines.push(`  denied by: ${Object.entries(s.deniedBy).map(([g, n]) => `${g} ${n}`).join(', ') || '—'}`);
  lines.push(`  pages: ${s.pages.triggers} triggered, ${s.pages.resolves} resolved, ${s.pages.open} still open`);
  lines.push(
    `  driver DaemonSet: ${s.rollbacks.executed} rollback(s) executed${s.rollbacks.toRevision !== null ? ` (to revision ${s.rollbacks.toRevision})` : ''}, now revision ${s.driverRevision ?? '?'} (${s.driverImage ?? '?'})`,
  );
  lines.push(`  nodes cordoned by nodewarden: ${s.cordonedByNodewarden} now, at most ${s.maxCordonedByNodewarden} at once (budget ${s.fleetLimit} of ${s.nodes}); unavailable at most ${s.maxUnavailable}`);
  lines.push(`  uncordoned by humans ${s.humanUncordons}, by nodewarden ${s.nodewardenUncordons} (autoUncordon is off)`);
  lines.push(...causeLines(s));
  lines.push(`  local host: ${x.localHost}`);
  return lines.join('\n');
}
