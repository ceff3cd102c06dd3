/**
 * `daily-digest` (09:00 in `jobs.timezone`, one replica): one Slack message
 * (Block Kit) summing up the last `window` of the ledger for the humans who
 * were not paged: actions taken by kind, actions denied by each guard, the
 * five busiest rules, and the nodes nodewarden cordoned with whether they are
 * still cordoned now. Building the digest is pure (`buildDigest`,
 * `renderDigest`); the job reads the ledger and posts through a sender port.
 */
import type { ClusterView } from '../../core/cluster.js';
import type { ActionKind } from '../../core/decision.js';
import { ACTIONS } from '../../core/decision.js';
import type { SlackBlock, SlackMessage } from '../../remediations/pager/slack.js';
import { truncate } from '../../remediations/pager/pager.js';
import type { LedgerEntry } from '../api.js';
import type { LedgerReader } from '../backend.js';
import type { Job, JobSummary } from './job.js';
import { checkAborted } from './job.js';
import { isToggleAudit, readLedgerWindow } from './ledger-window.js';
import { targetNode } from './resolve-cleared.js';

export interface CordonedNode {
  node: string;
  rule: string;
  /** ms of the (latest) executed cordon in the window. */
  at: number;
  /** true: unschedulable now; false: schedulable again; null: no longer in the cluster. */
  stillCordoned: boolean | null;
}

export interface Digest {
  from: number;
  to: number;
  timezone: string;
  /** The local date of `to` (YYYY-MM-DD) in `timezone`. */
  day: string;
  /** Decision records in the window (toggle audits not included). */
  decisions: number;
  executed: Partial<Record<ActionKind, number>>;
  dryRun: Partial<Record<ActionKind, number>>;
  failed: Partial<Record<ActionKind, number>>;
  /** Denied actions by guard, most first. */
  denied: Array<{ guard: string; count: number }>;
  /** Duplicates and replays the guard suppressed (no action needed). */
  suppressed: number;
  /** The busiest rules by decisions that were not suppressed, most first (at most 5). */
  topRules: Array<{ rule: string; count: number }>;
  cordoned: CordonedNode[];
  toggleChanges: number;
  /** The ledger read hit its limit: counts are a lower bound. */
  truncated: boolean;
}

function inc<K extends string>(m: Partial<Record<K, number>>, k: K): void {
  m[k] = (m[k] ?? 0) + 1;
}

function ranked(m: Map<string, number>): Array<[string, number]> {
  return [...m].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** Local calendar date (YYYY-MM-DD) of `ms` in `tz`. */
export function localDay(ms: number, tz: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(ms);
}

/** Local `YYYY-MM-DD HH:MM` of `ms` in `tz`. */
export function localTime(ms: number, tz: string): string {
  const hm = new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(ms);
  return `${localDay(ms, tz)} ${hm}`;
}

/** Pure: the digest of ledger entries in [from, to], with the cluster as it is now. */
export function buildDigest(entries: readonly LedgerEntry[], o: { from: number; to: number; timezone: string; view: ClusterView; truncated?: boolean }): Digest {
  const d: Digest = {
    from: o.from,
    to: o.to,
    timezone: o.timezone,
    day: localDay(o.to, o.timezone),
    decisions: 0,
    executed: {},
    dryRun: {},
    failed: {},
    denied: [],
    suppressed: 0,
    topRules: [],
    cordoned: [],
    toggleChanges: 0,
    truncated: o.truncated ?? false,
  };
  const denied = new Map<string, number>();
  const rules = new Map<string, number>();
  const cordons = new Map<string, { rule: string; at: number }>();
  for (const e of entries) {
    const t = Date.parse(e.ts);
    if (Number.isNaN(t) || t < o.from || t > o.to) continue;
    if (isToggleAudit(e)) {
      d.toggleChanges++;
      continue;
    }
    if ('kind' in e) continue; // a pause or resume audit: not a decision
    d.decisions++;
    if (e.outcome === 'suppressed') {
      d.suppressed++;
      continue;
    }
    rules.set(e.rule, (rules.get(e.rule) ?? 0) + 1);
    if (e.outcome === 'executed') inc(d.executed, e.action);
    else if (e.outcome === 'dry-run') inc(d.dryRun, e.action);
    else if (e.outcome === 'failed') inc(d.failed, e.action);
    else if (e.outcome === 'denied') denied.set(e.guard ?? 'unknown', (denied.get(e.guard ?? 'unknown') ?? 0) + 1);
    if (e.action === 'cordon' && e.outcome === 'executed') {
      const node = targetNode(e.target);
      const prev = node === null ? undefined : cordons.get(node);
      if (node !== null && (!prev || prev.at <= t)) cordons.set(node, { rule: e.rule, at: t });
    }
  }
  d.denied = ranked(denied).map(([guard, count]) => ({ guard, count }));
  d.topRules = ranked(rules)
    .slice(0, 5)
    .map(([rule, count]) => ({ rule, count }));
  d.cordoned = [...cordons]
    .map(([node, c]) => {
      const n = o.view.getNode(node);
      return { node, rule: c.rule, at: c.at, stillCordoned: n === undefined ? null : n.unschedulable };
    })
    .sort((a, b) => Number(b.stillCordoned === true) - Number(a.stillCordoned === true) || a.at - b.at || a.node.localeCompare(b.node));
  return d;
}

function countLines(m: Partial<Record<ActionKind, number>>): string[] {
  return ACTIONS.filter((a) => (m[a] ?? 0) > 0).map((a) => `• ${a}: *${m[a] ?? 0}*`);
}

function sum(m: Partial<Record<ActionKind, number>>): number {
  return Object.values(m).reduce((a, b) => a + (b ?? 0), 0);
}

/** Block Kit limits: section text ≤ 3000, header ≤ 150, ≤ 50 blocks. */
const MAX_NODES_LISTED = 25;
const NODE_LIST_CHARS = 2900;

function section(text: string): SlackBlock {
  return { type: 'section', text: { type: 'mrkdwn', text: truncate(text, 3000) } };
}

/** Pure: the Slack message of a digest. */
export function renderDigest(d: Digest): SlackMessage {
  const tz = d.timezone;
  const still = d.cordoned.filter((c) => c.stillCordoned === true);
  const deniedTotal = d.denied.reduce((a, x) => a + x.count, 0);
  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: truncate(`nodewarden daily digest · ${d.day}`, 150) } },
    section(`*${d.decisions}* decisions from ${localTime(d.from, tz)} to ${localTime(d.to, tz)} (${tz})${d.truncated ? ' — _ledger read limit reached: counts are a lower bound_' : ''}`),
    { type: 'divider' },
  ];
  const executed = countLines(d.executed);
  const extra: string[] = [];
  if (sum(d.failed) > 0) extra.push(`failed: ${countLines(d.failed).map((l) => l.slice(2)).join(', ')}`);
  if (sum(d.dryRun) > 0) extra.push(`dry-run (not acted on): ${countLines(d.dryRun).map((l) => l.slice(2)).join(', ')}`);
  blocks.push(section(`*Actions taken*\n${executed.length ? executed.join('\n') : '• none'}${extra.length ? `\n_${extra.join(' · ')}_` : ''}`));
  blocks.push(
    section(
      `*Denied by the guard* (${deniedTotal})\n${d.denied.length ? d.denied.map((x) => `• ${x.guard}: *${x.count}*`).join('\n') : '• none: every action stayed within its budget'}`,
    ),
  );
  blocks.push(section(`*Top rules*\n${d.topRules.length ? d.topRules.map((r, i) => `${i + 1}. \`${r.rule}\`: ${r.count}`).join('\n') : 'no rule fired'}`));
  const head = `*Nodes cordoned*: ${d.cordoned.length}, *still cordoned*: ${still.length}`;
  const listed: string[] = [];
  let used = head.length;
  for (const c of d.cordoned) {
    const state = c.stillCordoned === true ? '*still cordoned*' : c.stillCordoned === false ? 'uncordoned since' : 'no longer in the cluster';
    const line = `• \`${c.node}\`: ${state} (by \`${c.rule}\` at ${localTime(c.at, tz)})`;
    // the still-cordoned come first; stop before the section's 3000 characters
    if (listed.length >= MAX_NODES_LISTED || used + line.length + 1 > NODE_LIST_CHARS) break;
    listed.push(line);
    used += line.length + 1;
  }
  if (d.cordoned.length > listed.length) listed.push(`…and ${d.cordoned.length - listed.length} more`);
  blocks.push(section(`${head}\n${listed.length ? listed.join('\n') : '• none'}`));
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `suppressed duplicates: ${d.suppressed} · rule toggle changes: ${d.toggleChanges}` }] });
  const actions = ACTIONS.filter((a) => (d.executed[a] ?? 0) > 0).map((a) => `${d.executed[a] ?? 0} ${a}`);
  const text = `nodewarden daily digest ${d.day}: ${actions.length ? actions.join(', ') : 'no action'} executed; ${deniedTotal} denied by the guard; ${d.cordoned.length} nodes cordoned, ${still.length} still cordoned`;
  return { text: truncate(text, 3000), blocks };
}

/** Posts a digest message (Slack incoming webhook). */
export interface DigestSender {
  send(message: SlackMessage): Promise<void>;
}

export interface DailyDigestDeps {
  ledger: LedgerReader;
  view: ClusterView;
  sender: DigestSender;
  timezone: string;
  /** Config `jobs.dailyDigest.window`. */
  windowMs: number;
}

export function dailyDigestJob(d: DailyDigestDeps): Job {
  return {
    name: 'daily-digest',
    scope: 'cluster',
    async run(ctx): Promise<JobSummary> {
      const from = ctx.now - d.windowMs;
      const win = await readLedgerWindow(d.ledger, from, ctx.now);
      checkAborted(ctx.signal);
      const digest = buildDigest(win.entries, { from, to: ctx.now, timezone: d.timezone, view: d.view, truncated: win.truncated });
      await d.sender.send(renderDigest(digest));
      return { decisions: digest.decisions, cordoned: digest.cordoned.length, stillCordoned: digest.cordoned.filter((c) => c.stillCordoned === true).length };
    },
  };
}
