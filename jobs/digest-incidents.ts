/**
 * The paging half of the daily digest, pure over records: incidents opened,
 * resolved and still open in the window (from the incident documents the
 * paging store keeps, `incidents.keepResolved` after they resolve), MTTR of
 * the incidents resolved in the window, who acknowledged, and the silences
 * active at the end of the window or expired within it.
 *
 * Records come from several replicas whose clocks disagree a little: a time
 * up to SKEW_MS after the window's end counts as its end; anything later is
 * after this window (the next digest's). A resolve stamped before its
 * incident's trigger counts as a 0 ms repair, never a negative one.
 */
import { median } from '../core/stats.js';
import type { Incident } from '../remediations/incidents/incident.js';
import type { Silence } from '../remediations/silences/silence.js';

/** Clock skew between replicas tolerated at the end of the window. */
export const SKEW_MS = 2 * 60_000;
/** Incidents and silences listed by name (the counts are complete). */
export const MAX_LISTED = 10;

export interface DigestIncident {
  dedupKey: string;
  rule: string;
  labels: Record<string, string>;
  severity: Incident['severity'];
  openedAt: number;
  resolvedAt?: number;
  /** Who resolved it outside nodewarden (PagerDuty), or absent: every member cleared. */
  resolvedBy?: { by: string; via: string };
  ack?: { by: string; at: number; via: string };
  members: number;
  /** Pages delivered for it (trigger + updates). */
  pages: number;
}

export interface IncidentDigest {
  opened: number;
  resolved: number;
  /** Open at the end of the window, oldest first (at most MAX_LISTED). */
  stillOpen: DigestIncident[];
  stillOpenCount: number;
  /** Resolved in the window, longest repair first (at most MAX_LISTED). */
  resolvedList: DigestIncident[];
  /** Acknowledgements made in the window, oldest first (at most MAX_LISTED). */
  acks: Array<{ dedupKey: string; by: string; via: string; at: number }>;
  ackCount: number;
  /** Resolved in the window by a person (PagerDuty) rather than by every member clearing. */
  resolvedByPerson: number;
  /** Trigger to resolve of the incidents resolved in the window; null when none was. */
  mttr: { count: number; meanMs: number; medianMs: number } | null;
  /** The oldest incident still open at the end of the window. */
  longestOpen: { dedupKey: string; rule: string; openedAt: number; ageMs: number } | null;
}

export interface SilenceDigest {
  /** Active at the end of the window, soonest-ending first (at most MAX_LISTED). */
  active: Silence[];
  activeCount: number;
  /** Ended within the window (by expiry or by `ctl silence expire`). */
  expired: Silence[];
  expiredCount: number;
}

function finite(n: unknown): n is number {
  return typeof n === 'number' && Number.isFinite(n);
}

/** `t` as seen from the window [from, to]: clamped to `to` within the skew, null when after it. */
function inWindowAt(t: number, to: number): number | null {
  if (!finite(t) || t > to + SKEW_MS) return null;
  return Math.min(t, to);
}

function view(i: Incident): DigestIncident {
  return {
    dedupKey: i.dedupKey,
    rule: i.rule,
    labels: i.labels,
    severity: i.severity,
    openedAt: i.openedAt,
    ...(finite(i.resolvedAt) ? { resolvedAt: i.resolvedAt } : {}),
    ...(i.resolvedBy ? { resolvedBy: { by: i.resolvedBy.by, via: i.resolvedBy.via } } : {}),
    ...(i.ack ? { ack: i.ack } : {}),
    members: Object.keys(i.members).length + (i.moreMembers || 0),
    pages: i.sends || 0,
  };
}

export { median };

/** Pure: what happened to incidents in [from, to]. */
export function summariseIncidents(incidents: readonly Incident[], from: number, to: number): IncidentDigest {
  let opened = 0;
  let resolvedByPerson = 0;
  const resolved: Array<{ i: DigestIncident; ms: number }> = [];
  const open: DigestIncident[] = [];
  const acks: IncidentDigest['acks'] = [];
  for (const i of incidents) {
    const openedAt = inWindowAt(i.openedAt, to);
    if (openedAt === null) continue; // opened after this window (or a broken document)
    if (openedAt >= from) opened++;
    const resolvedAt = i.status === 'resolved' && finite(i.resolvedAt) ? inWindowAt(i.resolvedAt, to) : null;
    if (resolvedAt !== null && resolvedAt < from) continue; // resolved before the window: not part of it
    if (resolvedAt !== null) {
      resolved.push({ i: view(i), ms: Math.max(0, resolvedAt - openedAt) });
      if (i.resolvedBy) resolvedByPerson++;
    } else open.push(view(i)); // open, or resolved only after the window's end
    const ackAt = i.ack ? inWindowAt(i.ack.at, to) : null;
    if (i.ack && ackAt !== null && ackAt >= from) acks.push({ dedupKey: i.dedupKey, by: i.ack.by, via: i.ack.via, at: ackAt });
  }
  open.sort((a, b) => a.openedAt - b.openedAt || a.dedupKey.localeCompare(b.dedupKey));
  resolved.sort((a, b) => b.ms - a.ms || a.i.dedupKey.localeCompare(b.i.dedupKey));
  acks.sort((a, b) => a.at - b.at || a.dedupKey.localeCompare(b.dedupKey));
  const ms = resolved.map((r) => r.ms);
  const oldest = open[0];
  return {
    opened,
    resolved: resolved.length,
    stillOpen: open.slice(0, MAX_LISTED),
    stillOpenCount: open.length,
    resolvedList: resolved.slice(0, MAX_LISTED).map((r) => r.i),
    acks: acks.slice(0, MAX_LISTED),
    ackCount: acks.length,
    resolvedByPerson,
    mttr: ms.length ? { count: ms.length, meanMs: Math.round(ms.reduce((a, b) => a + b, 0) / ms.length), medianMs: Math.round(median(ms)) } : null,
    longestOpen: oldest ? { dedupKey: oldest.dedupKey, rule: oldest.rule, openedAt: oldest.openedAt, ageMs: Math.max(0, to - oldest.openedAt) } : null,
  };
}

/** Pure: silences active at `to` and those that ended in [from, to]. */
export function summariseSilences(silences: readonly Silence[], from: number, to: number): SilenceDigest {
  const active = silences.filter((s) => finite(s.startsAt) && finite(s.endsAt) && s.startsAt <= to + SKEW_MS && s.endsAt > to).sort((a, b) => a.endsAt - b.endsAt || a.id.localeCompare(b.id));
  const expired = silences.filter((s) => finite(s.endsAt) && s.endsAt >= from && s.endsAt <= to).sort((a, b) => a.endsAt - b.endsAt || a.id.localeCompare(b.id));
  return { active: active.slice(0, MAX_LISTED), activeCount: active.length, expired: expired.slice(0, MAX_LISTED), expiredCount: expired.length };
}

/** `1h 05m`, `12m`, `40s`: a duration for humans. */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}
