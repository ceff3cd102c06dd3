/**
 * Incidents, the pure half (Alertmanager-like grouping): which incident a
 * page belongs to, and every change of an incident document as a function
 * of (document, input, now). The adapters only store the documents
 * (doc-store.ts); this file decides.
 *
 * A page joins the incident of its group (by default rule + pool). The
 * first one opens it; the incident's trigger goes out after `groupWait`,
 * later changes (new nodes, what was done, what the guard denied) go out as
 * one update at most every `groupInterval`, and an unchanged open incident is
 * re-sent every `repeatInterval`. It resolves when every member has cleared.
 */
import type { Decision, Severity } from '../../core/decision.js';
import { boundedDedupKey } from '../pager/pager.js';

export interface GroupingOptions {
  /** Grouping labels of the decision's `group`; `rule` is the rule id (default [rule, pool]). */
  by: readonly string[];
  groupWaitMs: number;
  groupIntervalMs: number;
  repeatIntervalMs: number;
  /** An acknowledged incident holds further automated actions on its group (default true). */
  holdOnAck: boolean;
  /** How long a resolved incident is kept for the digest and late webhooks (default 7 d). */
  keepResolvedMs: number;
}

export const DEFAULT_GROUPING: GroupingOptions = {
  by: ['rule', 'pool'],
  groupWaitMs: 0,
  groupIntervalMs: 60_000,
  repeatIntervalMs: 4 * 3_600_000,
  holdOnAck: true,
  keepResolvedMs: 7 * 24 * 3_600_000,
};

/** Members and notes shown in full; beyond this an incident counts them. */
export const MAX_MEMBERS = 500;
export const MAX_NOTES = 50;
/** Rules recorded per incident (bounded like its notes). */
const MAX_RULES = 50;
/** A send claimed by a replica that died is taken over after this. */
export const SEND_LEASE_MS = 60_000;

export interface IncidentMember {
  state: 'firing' | 'cleared';
  since: number;
  /** What was done about it: `cordon executed`, `cordon denied by maxUnavailable`. */
  facts: string[];
}

export interface Incident {
  dedupKey: string;
  rule: string;
  labels: Record<string, string>;
  severity: Severity;
  summary: string;
  status: 'open' | 'resolved';
  openedAt: number;
  resolvedAt?: number;
  members: Record<string, IncidentMember>;
  /** The rules whose pages joined this incident (ADR 0020: several rules, one incident); absent in documents older than it. */
  rules?: string[];
  /** Members beyond MAX_MEMBERS, counted only. */
  moreMembers: number;
  /** Guard denials and other context, newest last. */
  notes: string[];
  /** +1 on every change humans should hear about. */
  seq: number;
  /** seq of the last trigger/update delivered (0: the trigger is not out yet). */
  sentSeq: number;
  lastSentAt: number;
  /** A replica is sending until then (lease). */
  sendingUntil: number;
  /** Pages of this incident delivered (trigger + updates). */
  sends: number;
  ack?: { by: string; at: number; via: string };
  /** Who resolved it outside nodewarden (PagerDuty), if someone did. */
  resolvedBy?: { by: string; at: number; via: string };
}

export interface IncidentGroup {
  dedupKey: string;
  rule: string;
  labels: Record<string, string>;
}

const SEVERITY_RANK: Record<Severity, number> = { info: 0, warning: 1, error: 2, critical: 3 };

/**
 * The incident a decision belongs to: its rule (or the incident its rule
 * names, `incident:` — ADR 0020) and the grouping labels of its group.
 */
export function incidentGroupOf(d: Pick<Decision, 'rule' | 'group' | 'incident'>, by: readonly string[]): IncidentGroup {
  const labels: Record<string, string> = {};
  for (const l of by) {
    if (l === 'rule') continue;
    const v = d.group?.[l];
    if (v !== undefined) labels[l] = v;
  }
  const lbl = Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const rule = by.includes('rule') ? (d.incident ?? d.rule) : '*';
  return { dedupKey: boundedDedupKey(`nodewarden/incident/${rule}/${lbl || 'fleet'}`), rule, labels };
}

/**
 * The member a decision is about: a node by name, anything else as Kind/name;
 * a non-node decision of a rule that joins another rule's incident (the
 * rollout rule's page and rollback) is one member, `Rule/<id>`, so what it
 * did shows in the incident (`rollback executed`) and its clear is matched.
 */
export function memberOf(d: Pick<Decision, 'target' | 'rule' | 'incident'>): string {
  if (d.target.kind === 'Node') return d.target.name;
  if (d.incident !== undefined && d.incident !== d.rule) return `Rule/${d.rule}`;
  return `${d.target.kind}/${d.target.namespace ? `${d.target.namespace}/` : ''}${d.target.name}`;
}

function fresh(g: IncidentGroup, severity: Severity, summary: string, now: number): Incident {
  return { dedupKey: g.dedupKey, rule: g.rule, labels: g.labels, severity, summary, status: 'open', openedAt: now, members: {}, moreMembers: 0, notes: [], seq: 0, sentSeq: 0, lastSentAt: 0, sendingUntil: 0, sends: 0 };
}

export interface JoinInput {
  group: IncidentGroup;
  /** Absent for a note that names no member (a guard denial page). */
  member?: string;
  severity: Severity;
  summary: string;
  facts?: readonly string[];
  note?: string;
  /** The rule of the page that joins (recorded in `rules`). */
  rule?: string;
}

export interface JoinResult {
  /** This join opened the incident (a new one, or after the last resolved). */
  opened: boolean;
  /** The member was not in the incident before. */
  newMember: boolean;
  /** The joining page's rule had not joined the incident before (its first page of this incident). */
  newRule: boolean;
}

/** Adds a member (and what was done about it) or a note; opens the incident when none is open. */
export function join(cur: Incident | null, i: JoinInput, now: number): { doc: Incident; result: JoinResult } {
  const opened = !cur || cur.status === 'resolved';
  const doc = opened ? fresh(i.group, i.severity, i.summary, now) : cur;
  let changed = opened;
  if (SEVERITY_RANK[i.severity] > SEVERITY_RANK[doc.severity]) {
    doc.severity = i.severity;
    changed = true;
  }
  let newMember = false;
  if (i.member !== undefined) {
    const m = doc.members[i.member];
    if (!m) {
      newMember = true;
      changed = true;
      if (Object.keys(doc.members).length >= MAX_MEMBERS) doc.moreMembers++;
      else doc.members[i.member] = { state: 'firing', since: now, facts: [...(i.facts ?? [])] };
    } else {
      if (m.state === 'cleared') {
        m.state = 'firing';
        m.since = now;
        changed = true;
      }
      for (const f of i.facts ?? [])
        if (!m.facts.includes(f)) {
          m.facts.push(f);
          changed = true;
        }
    }
  }
  let newRule = false;
  if (i.rule !== undefined) {
    const rules = (doc.rules ??= []);
    if (!rules.includes(i.rule) && rules.length < MAX_RULES) {
      rules.push(i.rule);
      newRule = !opened;
      changed = true;
    }
  }
  if (i.note !== undefined && !doc.notes.includes(i.note)) {
    doc.notes.push(i.note);
    if (doc.notes.length > MAX_NOTES) doc.notes.splice(0, doc.notes.length - MAX_NOTES);
    changed = true;
  }
  if (changed) doc.seq++;
  return { doc, result: { opened, newMember, newRule } };
}

/** Records what was done about a member of an open incident (nothing when none is open). */
export function addFacts(cur: Incident | null, member: string, facts: readonly string[]): Incident | null {
  const m = cur?.status === 'open' ? cur.members[member] : undefined;
  if (!cur || !m) return null;
  const add = facts.filter((f) => !m.facts.includes(f));
  if (add.length === 0) return null;
  m.facts.push(...add);
  cur.seq++;
  return cur;
}

export interface ClearResult {
  /** This clear resolved the incident: the caller sends the resolve (exactly one caller does). */
  resolvedNow: boolean;
  /** Members still firing. */
  firing: number;
  /** The member was part of an open incident. */
  known: boolean;
}

export function clear(cur: Incident | null, member: string, now: number): { doc: Incident | null; result: ClearResult } {
  const m = cur?.status === 'open' ? cur.members[member] : undefined;
  if (!cur || !m) return { doc: null, result: { resolvedNow: false, firing: cur ? firingCount(cur) : 0, known: false } };
  if (m.state === 'cleared') return { doc: null, result: { resolvedNow: false, firing: firingCount(cur), known: true } };
  m.state = 'cleared';
  m.since = now;
  const firing = firingCount(cur);
  if (firing === 0 && cur.moreMembers === 0) {
    cur.status = 'resolved';
    cur.resolvedAt = now;
  }
  cur.seq++;
  return { doc: cur, result: { resolvedNow: cur.status === 'resolved', firing, known: true } };
}

export function firingCount(i: Incident): number {
  return Object.values(i.members).filter((m) => m.state === 'firing').length + i.moreMembers;
}

export type SendKind = 'trigger' | 'update';

/** Whether a trigger/update is due now; claiming it takes a lease so one replica sends. */
export function claimSend(cur: Incident | null, now: number, o: GroupingOptions, force = false): { doc: Incident | null; result: { kind: SendKind; seq: number } | null } {
  if (!cur || cur.status !== 'open' || cur.sendingUntil > now) return { doc: null, result: null };
  const first = cur.sentSeq === 0;
  const changed = cur.seq > cur.sentSeq;
  const due = first
    ? force || now - cur.openedAt >= o.groupWaitMs
    : (changed && (force || now - cur.lastSentAt >= o.groupIntervalMs)) || now - cur.lastSentAt >= o.repeatIntervalMs;
  if (!due) return { doc: null, result: null };
  cur.sendingUntil = now + SEND_LEASE_MS;
  return { doc: cur, result: { kind: first ? 'trigger' : 'update', seq: cur.seq } };
}

/** After a send: delivered moves sentSeq on, failed frees the lease for a retry. */
export function settleSend(cur: Incident | null, seq: number, delivered: boolean, now: number): Incident | null {
  if (!cur) return null;
  cur.sendingUntil = 0;
  if (delivered) {
    cur.sentSeq = Math.max(cur.sentSeq, seq);
    cur.lastSentAt = now;
    cur.sends++;
  }
  return cur;
}

export function acknowledge(cur: Incident | null, by: string, via: string, now: number): Incident | null {
  if (!cur || cur.status !== 'open') return null;
  cur.ack = { by, at: now, via };
  return cur;
}

export function unacknowledge(cur: Incident | null): Incident | null {
  if (!cur?.ack) return null;
  delete cur.ack;
  return cur;
}

export function resolveExternally(cur: Incident | null, by: string, via: string, now: number): Incident | null {
  if (!cur || cur.status !== 'open') return null;
  cur.status = 'resolved';
  cur.resolvedAt = now;
  cur.resolvedBy = { by, at: now, via };
  return cur;
}

/** Nodes of an incident for humans: `name (cordon executed; …)`, cleared ones marked. */
export function memberLines(i: Incident, max = 100): string[] {
  const lines = Object.entries(i.members)
    .slice(0, max)
    .map(([name, m]) => `${name}${m.state === 'cleared' ? ' [cleared]' : ''}${m.facts.length ? ` (${m.facts.join('; ')})` : ''}`);
  const more = Object.keys(i.members).length - Math.min(max, Object.keys(i.members).length) + i.moreMembers;
  if (more > 0) lines.push(`… and ${more} more`);
  return lines;
}
