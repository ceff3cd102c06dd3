/**
 * `daily-digest` (09:00 in `jobs.timezone`, one replica): one Slack message
 * (Block Kit) summing up the last `window` of the ledger for the humans who
 * were not paged: actions taken by kind, actions denied by each guard, the
 * five busiest rules, and the nodes nodewarden cordoned with whether they are
 * still cordoned now or were uncordoned outside nodewarden; and, from the
 * paging store, incidents opened/resolved/still open with MTTR and who
 * acknowledged, the noisiest rules (pages, suppressed, silenced) and the
 * silences active or expired (digest-incidents.ts). Building the digest is
 * pure (`buildDigest`, `renderDigest`); the job reads the ledger and the
 * paging store and posts through a sender port.
 */
import type { ClusterView } from '../core/cluster.js';
import type { ActionKind, LedgerRecord } from '../core/decision.js';
import { ACTIONS } from '../core/decision.js';
import type { SlackBlock, SlackMessage, SlackWebhook } from '../remediations/pager/slack.js';
import { truncate } from '../remediations/pager/pager.js';
import type { Incident } from '../remediations/incidents/incident.js';
import type { Silence } from '../remediations/silences/silence.js';
import type { LedgerEntry } from '../remediations/ledger/entry.js';
import { isAudit, isToggleAudit } from '../remediations/ledger/entry.js';
import type { LedgerReader } from '../remediations/ledger/store.js';
import type { Job, JobSummary } from './job.js';
import { checkAborted } from './job.js';
import { readLedgerWindow } from './ledger-window.js';
import { targetNode } from './resolve-cleared.js';
import type { IncidentDigest, SilenceDigest } from './digest-incidents.js';
import { humanDuration, summariseIncidents, summariseSilences } from './digest-incidents.js';
import type { RuleOutcome } from '../remediations/ladder/outcomes.js';
import { outcomeFigures } from '../remediations/ladder/outcomes.js';

export interface CordonedNode {
  node: string;
  rule: string;
  /** ms of the (latest) executed cordon in the window. */
  at: number;
  /** true: unschedulable now; false: schedulable again; null: no longer in the cluster. */
  stillCordoned: boolean | null;
  /** Schedulable again although nodewarden never uncordoned it (a person, usually): the cordon was undone. */
  undone: boolean;
}

/** One rule's noise in the window. */
export interface RuleNoise {
  rule: string;
  /** Decisions that were not suppressed. */
  count: number;
  /** Pages delivered (executed `page` decisions). */
  pages: number;
  /** Suppressed by the guard or the incident layer (duplicates, joined an open incident). */
  suppressed: number;
  /** Pages a silence held back. */
  silenced: number;
  /** Its cordons in the window that were undone outside nodewarden. */
  undone: number;
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
  /** The busiest rules by pages, then decisions that were not suppressed, most first (at most 5). */
  topRules: RuleNoise[];
  /** The rules most held back (suppressed + silenced), most first (at most 5). */
  quietedRules: RuleNoise[];
  cordoned: CordonedNode[];
  toggleChanges: number;
  /** The ledger read hit its limit: counts are a lower bound. */
  truncated: boolean;
  /** Per rule: time to detect / isolate / return to service, cordons a person undid before any repair (remediations/ladder/outcomes.ts). */
  outcomes: RuleOutcome[];
  /** Absent when the digest had no incident store (incidents off). */
  incidents?: IncidentDigest;
  silences?: SilenceDigest;
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
export function buildDigest(
  entries: readonly LedgerEntry[],
  o: { from: number; to: number; timezone: string; view: ClusterView; truncated?: boolean; incidents?: readonly Incident[]; silences?: readonly Silence[] },
): Digest {
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
    quietedRules: [],
    cordoned: [],
    toggleChanges: 0,
    truncated: o.truncated ?? false,
    outcomes: [],
  };
  const denied = new Map<string, number>();
  const rules = new Map<string, RuleNoise>();
  const rule = (id: string): RuleNoise => {
    let r = rules.get(id);
    if (!r) rules.set(id, (r = { rule: id, count: 0, pages: 0, suppressed: 0, silenced: 0, undone: 0 }));
    return r;
  };
  const cordons = new Map<string, { rule: string; at: number }>();
  /** The latest executed uncordon by nodewarden, per node. */
  const uncordons = new Map<string, number>();
  for (const e of entries) {
    const t = Date.parse(e.ts);
    if (Number.isNaN(t) || t < o.from || t > o.to) continue;
    if (isToggleAudit(e)) {
      d.toggleChanges++;
      continue;
    }
    if (isAudit(e)) continue; // a pause or resume audit: not a decision
    d.decisions++;
    if (e.outcome === 'suppressed') {
      d.suppressed++;
      if (e.guard === 'silenced') rule(e.rule).silenced++;
      else rule(e.rule).suppressed++;
      continue;
    }
    const r = rule(e.rule);
    r.count++;
    if (e.action === 'page' && e.outcome === 'executed') r.pages++;
    if (e.action === 'uncordon' && e.outcome === 'executed') {
      const node = targetNode(e.target);
      if (node !== null) uncordons.set(node, Math.max(t, uncordons.get(node) ?? t));
    }
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
  const noise = [...rules.values()];
  d.topRules = noise
    .filter((r) => r.count > 0)
    .sort((a, b) => b.pages - a.pages || b.count - a.count || a.rule.localeCompare(b.rule))
    .slice(0, 5);
  d.cordoned = [...cordons]
    .map(([node, c]) => {
      const n = o.view.getNode(node);
      const stillCordoned = n === undefined ? null : n.unschedulable;
      // schedulable again with no uncordon of ours since the cordon: someone undid it
      const undone = stillCordoned === false && (uncordons.get(node) ?? -Infinity) < c.at;
      if (undone) rule(c.rule).undone++;
      return { node, rule: c.rule, at: c.at, stillCordoned, undone };
    })
    .sort((a, b) => Number(b.stillCordoned === true) - Number(a.stillCordoned === true) || a.at - b.at || a.node.localeCompare(b.node));
  d.quietedRules = noise
    .filter((r) => r.suppressed + r.silenced > 0)
    .sort((a, b) => b.suppressed + b.silenced - (a.suppressed + a.silenced) || a.rule.localeCompare(b.rule))
    .slice(0, 5);
  d.outcomes = outcomeFigures(entries.filter((e): e is LedgerRecord => !isAudit(e)), o.from, o.to);
  if (o.incidents) d.incidents = summariseIncidents(o.incidents, o.from, o.to);
  if (o.silences) d.silences = summariseSilences(o.silences, o.from, o.to);
  return d;
}

function countLines(m: Partial<Record<ActionKind, number>>): string[] {
  return ACTIONS.filter((a) => (m[a] ?? 0) > 0).map((a) => `• ${a}: *${m[a] ?? 0}*`);
}

function sum(m: Partial<Record<ActionKind, number>>): number {
  return Object.values(m).reduce((a, b) => a + (b ?? 0), 0);
}

/** One line per rule (at most 10): medians, returns, and cordons a person undid before any repair. */
export function outcomesText(rows: readonly RuleOutcome[]): string {
  const d = (v: number | null): string => (v === null ? '–' : humanDuration(v));
  const lines = rows.slice(0, 10).map(
    (r) =>
      `• \`${r.rule}\`: ${r.isolations} isolated · detect ${d(r.detectMs)} · isolate ${d(r.isolateMs)} · ${r.returned} returned after repair (MTTR ${d(r.returnMs)})` +
      `${r.resolvedByPerson ? ` · ${r.resolvedByPerson} resolved by a person` : ''}${r.undoneWithoutRepair ? ` · *${r.undoneWithoutRepair} undone without repair* (likely false positive)` : ''}${r.handedOver ? ` · ${r.handedOver} handed over` : ''}`,
  );
  return `*Outcomes per rule* (medians)\n${lines.join('\n')}`;
}

/** Block Kit limits: section text ≤ 3000, header ≤ 150, ≤ 50 blocks. */
const MAX_NODES_LISTED = 25;
const NODE_LIST_CHARS = 2900;

function section(text: string): SlackBlock {
  return { type: 'section', text: { type: 'mrkdwn', text: truncate(text, 3000) } };
}

function more(shown: number, total: number): string {
  return total > shown ? `\n…and ${total - shown} more` : '';
}

function incidentsText(i: IncidentDigest, tz: string): string {
  const lines = [
    `*Incidents*: opened *${i.opened}*, resolved *${i.resolved}*${i.resolvedByPerson ? ` (${i.resolvedByPerson} by a person)` : ''}, still open *${i.stillOpenCount}*`,
    i.mttr ? `MTTR: mean *${humanDuration(i.mttr.meanMs)}*, median *${humanDuration(i.mttr.medianMs)}* over ${i.mttr.count} resolved` : 'MTTR: no incident resolved in the window',
  ];
  if (i.longestOpen) lines.push(`Longest open: \`${i.longestOpen.dedupKey}\` (\`${i.longestOpen.rule}\`) for *${humanDuration(i.longestOpen.ageMs)}*, since ${localTime(i.longestOpen.openedAt, tz)}`);
  for (const x of i.stillOpen) lines.push(`• open: \`${x.dedupKey}\` ${x.severity}, ${x.members} member(s), ${x.pages} page(s)${x.ack ? `, acknowledged by ${x.ack.by}` : ', *not acknowledged*'}`);
  if (i.stillOpenCount > i.stillOpen.length) lines.push(`…and ${i.stillOpenCount - i.stillOpen.length} more open`);
  for (const a of i.acks) lines.push(`• acknowledged: \`${a.dedupKey}\` by *${a.by}* via ${a.via} at ${localTime(a.at, tz)}`);
  return lines.join('\n') + more(i.acks.length, i.ackCount);
}

function silencesText(s: SilenceDigest, tz: string): string {
  const m = (x: Silence): string => x.matchers.map((y) => `${y.name}${y.op}${y.value}`).join(', ');
  const lines = [`*Silences*: active *${s.activeCount}*, expired in the window *${s.expiredCount}*`];
  for (const x of s.active) lines.push(`• active until ${localTime(x.endsAt, tz)}: \`${m(x)}\` (${x.reason}, by ${x.createdBy})`);
  if (s.activeCount > s.active.length) lines.push(`…and ${s.activeCount - s.active.length} more active`);
  for (const x of s.expired) lines.push(`• ended ${localTime(x.endsAt, tz)}: \`${m(x)}\` (${x.reason}, by ${x.createdBy})`);
  return lines.join('\n') + more(s.expired.length, s.expiredCount);
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
  blocks.push(section(`*Top rules* (pages · decisions)\n${d.topRules.length ? d.topRules.map((r, i) => `${i + 1}. \`${r.rule}\`: ${r.pages} · ${r.count}${r.undone ? ` — *${r.undone}* cordon(s) undone outside nodewarden` : ''}`).join('\n') : 'no rule fired'}`));
  if (d.quietedRules.length) blocks.push(section(`*Most held back* (suppressed · silenced)\n${d.quietedRules.map((r, i) => `${i + 1}. \`${r.rule}\`: ${r.suppressed} · ${r.silenced}`).join('\n')}`));
  if (d.outcomes.length) blocks.push(section(outcomesText(d.outcomes)));
  if (d.incidents) blocks.push(section(incidentsText(d.incidents, tz)));
  if (d.silences) blocks.push(section(silencesText(d.silences, tz)));
  const head = `*Nodes cordoned*: ${d.cordoned.length}, *still cordoned*: ${still.length}`;
  const listed: string[] = [];
  let used = head.length;
  for (const c of d.cordoned) {
    const state = c.stillCordoned === true ? '*still cordoned*' : c.stillCordoned === false ? (c.undone ? '*uncordoned outside nodewarden* since' : 'uncordoned by nodewarden since') : 'no longer in the cluster';
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
  const inc = d.incidents ? `; incidents: ${d.incidents.opened} opened, ${d.incidents.resolved} resolved, ${d.incidents.stillOpenCount} open` : '';
  const text = `nodewarden daily digest ${d.day}: ${actions.length ? actions.join(', ') : 'no action'} executed; ${deniedTotal} denied by the guard; ${d.cordoned.length} nodes cordoned, ${still.length} still cordoned${inc}`;
  return { text: truncate(text, 3000), blocks };
}

/** Posts a digest message. */
export interface DigestSender {
  send(message: SlackMessage): Promise<void>;
}

/** The digest through the Slack pager's webhook client: its slots, its retries, one rate limit for pages and digest. */
export function slackDigestSender(webhook: SlackWebhook): DigestSender {
  return { send: (m) => webhook.send(m, 'slack digest') };
}

export interface DailyDigestDeps {
  ledger: LedgerReader;
  view: ClusterView;
  sender: DigestSender;
  timezone: string;
  /** Config `jobs.dailyDigest.window`. */
  windowMs: number;
  /** The paging store's incidents (open and kept resolved); absent when incidents are off. */
  incidents?: { list(): Promise<Incident[]> };
  /** Silences, including those ended within the last `KEEP_ENDED_MS` (48 h). */
  silences?: { history(): Promise<Silence[]> };
}

export function dailyDigestJob(d: DailyDigestDeps): Job {
  return {
    name: 'daily-digest',
    scope: 'cluster',
    async run(ctx): Promise<JobSummary> {
      const from = ctx.now - d.windowMs;
      const win = await readLedgerWindow(d.ledger, from, ctx.now);
      checkAborted(ctx.signal);
      const incidents = d.incidents ? await d.incidents.list() : undefined;
      const silences = d.silences ? await d.silences.history() : undefined;
      checkAborted(ctx.signal);
      const digest = buildDigest(win.entries, {
        from,
        to: ctx.now,
        timezone: d.timezone,
        view: d.view,
        truncated: win.truncated,
        ...(incidents ? { incidents } : {}),
        ...(silences ? { silences } : {}),
      });
      await d.sender.send(renderDigest(digest));
      return {
        decisions: digest.decisions,
        cordoned: digest.cordoned.length,
        stillCordoned: digest.cordoned.filter((c) => c.stillCordoned === true).length,
        ...(digest.incidents ? { incidentsOpened: digest.incidents.opened, incidentsResolved: digest.incidents.resolved, incidentsOpen: digest.incidents.stillOpenCount } : {}),
      };
    },
  };
}
