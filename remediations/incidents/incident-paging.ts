/**
 * Incident paging: what the remediator asks before a page or a resolve is
 * sent, and before an action runs on the targets of an acknowledged incident.
 * State lives in the DocStore (Redis across replicas, memory in demo and
 * replay); decisions about it are the pure functions of incident.ts.
 *
 * - route(page): the page joins its group's incident. The page that opens it
 *   becomes the incident's trigger (when group-wait is 0), carrying the
 *   incident's dedupKey; the others are `suppressed` with that dedupKey and
 *   reach humans as the next update — but the first page of a rule that
 *   joins another rule's incident (`incident:`, ADR 0020) is sent as an
 *   update at once, like the first guard denial.
 * - route(resolve): the member clears; the last member to clear sends the
 *   incident's resolve, earlier ones are `suppressed` (still firing).
 * - due(): trigger/updates whose group-wait / group-interval / repeat-interval
 *   has come, claimed under a lease so one replica sends each.
 */
import type { Clock } from '../../core/clock.js';
import type { Decision, GuardName } from '../../core/decision.js';
import { MAX_SUMMARY, truncate } from '../pager/pager.js';
import { groupLabel } from '../pager/pager-executor.js';
import type { Silence, Silences } from '../silences/silence.js';
import { matches } from '../silences/silence.js';
import { NodewardenError } from '../../core/errors.js';
import type { DocStore } from './doc-store.js';
import { updateDoc } from './doc-store.js';
import type { GroupingOptions, Incident, SendKind } from './incident.js';
import { acknowledge, addFacts, claimSend, clear, DEFAULT_GROUPING, firingCount, incidentGroupOf, join, memberLines, memberOf, resolveExternally, settleSend, unacknowledge } from './incident.js';

export const INCIDENT_NS = 'incident';

/** What the remediator does with a page or resolve decision. */
export type Routed =
  /** Send `decision` through the guard and the pagers; then settleSend(dedupKey, seq, delivered). */
  | { kind: 'send'; decision: Decision; dedupKey: string; seq: number; event: SendKind | 'resolve'; nodes: string[] }
  /** Record the page as suppressed (it joined an open incident, a member still fires, or a silence matched). */
  | { kind: 'suppressed'; dedupKey: string; guard: Extract<GuardName, 'incidentOpen' | 'incidentFiring' | 'silenced'>; reason: string; nodes?: string[] };

/** A routed page or resolve, or the incident store's failure for it (the caller sends it as it comes). */
export type RouteOutcome = Routed | { kind: 'failed'; error: unknown };

export interface IncidentPaging {
  readonly options: GroupingOptions;
  route(d: Decision, facts?: readonly string[]): Promise<Routed>;
  /**
   * `route` of each item in turn, with one read and at most one write per incident (ADR 0050).
   * Null: not routed yet, because an earlier item of its incident is a send; call again with
   * those once the sends are carried out and settled. The first item of each incident is always
   * routed. `failed`: its incident's store could not be read or written.
   */
  routeAll(items: ReadonlyArray<{ d: Decision; facts: readonly string[] }>): Promise<Array<RouteOutcome | null>>;
  /**
   * A guard denial page: joins the group's open incident as a note; `urgent`
   * (the first denial page of a storm) sends the update at once, otherwise it
   * waits for the group interval. Null when no incident of its group is open.
   */
  routeDenial(d: Decision, urgent: boolean): Promise<Routed | null>;
  /** What was done about a member (executed cordon, denied by a guard): shown in the next update. */
  noteFacts(d: Decision, facts: readonly string[]): Promise<void>;
  /** `noteFacts` of each decision in turn, with one read and at most one write per incident (ADR 0044). */
  noteFactsAll(items: ReadonlyArray<readonly [Decision, readonly string[]]>): Promise<void>;
  /** The acknowledged open incident that holds actions of this decision, if any. */
  heldBy(d: Decision): Promise<Incident | null>;
  /** `heldBy` of each decision, with one read per incident (ADR 0044). */
  heldByAll(ds: readonly Decision[]): Promise<Array<Incident | null>>;
  /** Claims every trigger/update due now (one replica gets each). */
  due(): Promise<Array<Extract<Routed, { kind: 'send' }>>>;
  settleSend(dedupKey: string, seq: number, delivered: boolean): Promise<void>;
  get(dedupKey: string): Promise<Incident | null>;
  list(): Promise<Incident[]>;
  acknowledge(dedupKey: string, by: string, via: string): Promise<Incident | null>;
  unacknowledge(dedupKey: string): Promise<Incident | null>;
  resolveExternally(dedupKey: string, by: string, via: string): Promise<Incident | null>;
}

export interface IncidentPagingOptions {
  store: DocStore;
  clock: Clock;
  options?: Partial<GroupingOptions>;
  silences?: Silences;
}

/** The labels a page is matched against silences with. */
export function pageLabels(d: Decision): Record<string, string> {
  return { rule: d.rule, severity: d.severity ?? 'warning', action: d.action, ...(d.target.kind === 'Node' ? { node: d.target.name } : { target: d.target.name }), ...(d.group ?? {}) };
}

function nodesOf(i: Incident): string[] {
  return Object.keys(i.members);
}

/** The page that carries an incident's trigger or update to the pagers. */
export function incidentDecision(i: Incident, event: SendKind, seq: number, now: number, base?: Decision): Decision {
  const lbl = groupLabel(i.labels);
  const nodes = nodesOf(i);
  const firing = firingCount(i);
  const head =
    base && event === 'update'
      ? `${base.reason} [incident ${i.dedupKey}: ${firing} firing of ${nodes.length + i.moreMembers}]`
      : event === 'trigger' && nodes.length <= 1
        ? i.summary
        : `${i.rule === '*' ? 'nodewarden' : i.rule}${lbl ? ` in ${lbl}` : ''}: ${firing} firing of ${nodes.length + i.moreMembers} — ${nodes.slice(0, 10).join(', ')}${nodes.length > 10 ? ', …' : ''}. First: ${i.summary}`;
  return {
    id: base?.id ?? `incident:${i.dedupKey}:${seq}`,
    at: now,
    rule: base?.rule ?? (i.rule === '*' ? 'incident' : i.rule),
    action: 'page',
    target: base?.target ?? (lbl ? { kind: 'Group', name: lbl } : { kind: 'Fleet', name: 'fleet' }),
    reason: truncate(head, MAX_SUMMARY),
    severity: i.severity,
    dedupKey: i.dedupKey,
    ...(base?.group ? { group: base.group } : Object.keys(i.labels).length ? { group: i.labels } : {}),
    ...(base?.params ? { params: base.params } : {}),
    evidence: {
      incident: { event, seq, opened: new Date(i.openedAt).toISOString(), firing, nodes: memberLines(i), ...(i.notes.length ? { guardDenials: i.notes } : {}), ...(i.ack ? { acknowledgedBy: i.ack.by } : {}) },
    },
  };
}

export function createIncidentPaging(o: IncidentPagingOptions): IncidentPaging {
  const opts: GroupingOptions = { ...DEFAULT_GROUPING, ...o.options };
  const store = o.store;
  const now = (): number => o.clock.now();
  /** Open incidents stay; resolved ones expire after keepResolvedMs. */
  const keep = (i: Incident): number => (i.status === 'resolved' ? opts.keepResolvedMs : 0);

  async function silenced(d: Decision): Promise<Silence | null> {
    return o.silences ? o.silences.match(pageLabels(d)) : null;
  }

  async function claim(dedupKey: string, force: boolean, base?: Decision): Promise<Extract<Routed, { kind: 'send' }> | null> {
    const t = now();
    const r = await updateDoc<Incident, { kind: SendKind; seq: number } | null>(store, INCIDENT_NS, dedupKey, (cur) => {
      const c = claimSend(cur, t, opts, force);
      return { doc: c.doc, result: c.result };
    }, keep);
    if (!r.result || !r.doc) return null;
    const decision = incidentDecision(r.doc, r.result.kind, r.result.seq, t, base);
    return { kind: 'send', decision, dedupKey, seq: r.result.seq, event: r.result.kind, nodes: nodesOf(r.doc) };
  }

  async function noteFactsAll(items: ReadonlyArray<readonly [Decision, readonly string[]]>): Promise<void> {
    const byIncident = new Map<string, Array<readonly [string, readonly string[]]>>();
    for (const [d, facts] of items) {
      if (facts.length === 0) continue;
      const key = incidentGroupOf(d, opts.by).dedupKey;
      const notes = byIncident.get(key) ?? [];
      notes.push([memberOf(d), facts]);
      byIncident.set(key, notes);
    }
    for (const [key, notes] of byIncident) {
      await updateDoc(store, INCIDENT_NS, key, (cur: Incident | null) => {
        // each note in turn, as that many noteFacts would; written once if any changed it
        let changed = false;
        for (const [member, facts] of notes) if (addFacts(cur, member, facts)) changed = true;
        return { doc: changed ? cur : null, result: null };
      }, keep);
    }
  }

  async function heldByAll(ds: readonly Decision[]): Promise<Array<Incident | null>> {
    if (!opts.holdOnAck) return ds.map(() => null);
    const keys = ds.map((d) => incidentGroupOf(d, opts.by).dedupKey);
    const docs = new Map<string, Incident | null>();
    for (const key of new Set(keys)) {
      const cur = await store.read<Incident>(INCIDENT_NS, key);
      docs.set(key, cur?.doc.status === 'open' && cur.doc.ack ? cur.doc : null);
    }
    return keys.map((key) => docs.get(key) ?? null);
  }

  /**
   * `route` of each page or resolve in turn (ADR 0050): the items of one incident are applied
   * in order to its document with one read and at most one compare-and-set write, retried as
   * a whole on a conflict. An item routed to a send ends its incident's round: the items after
   * it come back null, to be routed by the next call once the send is carried out and settled
   * (as `route` one by one would see it). Silences are listed once per call. A failure of one
   * incident's document (the store is down) is that incident's items' `failed`.
   */
  async function routeAll(items: ReadonlyArray<{ d: Decision; facts: readonly string[] }>): Promise<Array<RouteOutcome | null>> {
    const out = new Array<RouteOutcome | null>(items.length).fill(null);
    let active: readonly Silence[] = [];
    let silencesDown: { kind: 'failed'; error: unknown } | null = null;
    if (o.silences && items.some((x) => x.d.action !== 'resolve')) {
      try {
        active = await o.silences.list();
      } catch (error) {
        silencesDown = { kind: 'failed', error };
      }
    }
    const byIncident = new Map<string, number[]>();
    for (const [k, { d }] of items.entries()) {
      if (silencesDown && d.action !== 'resolve') {
        out[k] = silencesDown;
        continue;
      }
      const key = incidentGroupOf(d, opts.by).dedupKey;
      byIncident.set(key, [...(byIncident.get(key) ?? []), k]);
    }
    // incidents are separate documents: their reads and writes overlap
    await Promise.all([...byIncident].map(async ([key, ks]) => {
      const t = now();
      try {
        const r = await updateDoc<Incident, Array<readonly [number, Routed]>>(store, INCIDENT_NS, key, (cur) => {
          let doc = cur;
          let changed = false;
          const routed: Array<readonly [number, Routed]> = [];
          for (const k of ks) {
            const x = items[k];
            if (!x) continue;
            const step = routeOne(doc, x.d, x.facts, active, t);
            if (step.doc) {
              doc = step.doc;
              changed = true;
            }
            routed.push([k, step.routed]);
            // a send is carried out and settled before the incident's next item is routed
            if (step.ends) break;
          }
          return { doc: changed ? doc : null, result: routed };
        }, keep);
        for (const [k, routed] of r.result) out[k] = routed;
      } catch (error) {
        for (const k of ks) out[k] = { kind: 'failed', error };
      }
    }));
    return out;
  }

  /** One page or resolve against its incident's document as it stands: the new document (null: unchanged), what to do, and whether it ends the round (a send the incident waits for). */
  function routeOne(cur: Incident | null, d: Decision, facts: readonly string[], active: readonly Silence[], t: number): { doc: Incident | null; routed: Routed; ends: boolean } {
    const g = incidentGroupOf(d, opts.by);
    const member = memberOf(d);
    if (d.action === 'resolve') {
      const c = clear(cur, member, t);
      if (c.result.resolvedNow && c.doc) {
        const decision: Decision = { ...d, dedupKey: g.dedupKey, reason: truncate(`resolved: every member of ${g.dedupKey} has cleared (${nodesOf(c.doc).length} node(s)); last: ${d.reason}`, MAX_SUMMARY) };
        return { doc: c.doc, routed: { kind: 'send', decision, dedupKey: g.dedupKey, seq: c.doc.seq, event: 'resolve', nodes: nodesOf(c.doc) }, ends: true };
      }
      // a page from before incidents (or after the incident resolved): resolve its own key as before (no incident send to settle)
      if (!c.result.known) return { doc: null, routed: { kind: 'send', decision: d, dedupKey: d.dedupKey ?? g.dedupKey, seq: 0, event: 'resolve', nodes: [member] }, ends: false };
      return { doc: c.doc, routed: { kind: 'suppressed', dedupKey: g.dedupKey, guard: 'incidentFiring', reason: `${member} cleared; incident ${g.dedupKey} still has ${c.result.firing} firing member(s)` }, ends: false };
    }
    const labels = pageLabels(d);
    const s = active.find((x) => matches(x.matchers, labels));
    if (s) return { doc: null, routed: { kind: 'suppressed', dedupKey: g.dedupKey, guard: 'silenced', reason: `silenced by ${s.id} (${s.reason}, by ${s.createdBy}, until ${new Date(s.endsAt).toISOString()})` }, ends: false };
    const j = join(cur, { group: g, member, severity: d.severity ?? 'warning', summary: d.reason, facts, rule: d.rule }, t);
    const doc = j.doc;
    // another rule's diagnosis of the same storm (the rollout rule: "roll back the driver, approval pending") is news
    // humans act on: its FIRST page goes out now, not after group-interval; its later members wait for the next update
    // like the owner's (else a storm of a joining rule's faults would send one update per node)
    const force = j.result.opened ? false : j.result.newRule && d.incident !== undefined && d.incident !== d.rule ? true : null;
    if (force !== null) {
      const c = claimSend(doc, t, opts, force);
      if (c.result) return { doc, routed: { kind: 'send', decision: incidentDecision(doc, c.result.kind, c.result.seq, t, d), dedupKey: g.dedupKey, seq: c.result.seq, event: c.result.kind, nodes: nodesOf(doc) }, ends: true };
    }
    if (j.result.opened) return { doc, routed: { kind: 'suppressed', dedupKey: g.dedupKey, guard: 'incidentOpen', reason: `opened incident ${g.dedupKey}; its trigger goes out after group-wait`, nodes: [member] }, ends: false };
    const n = Object.keys(doc.members).length;
    return { doc, routed: { kind: 'suppressed', dedupKey: g.dedupKey, guard: 'incidentOpen', reason: `joined open incident ${g.dedupKey} (${n} node(s)${j.result.newMember ? '' : `; ${member} already in it`}); humans hear it in the next update`, nodes: [member] }, ends: false };
  }

  return {
    options: opts,
    async route(d: Decision, facts: readonly string[] = []): Promise<Routed> {
      const [r] = await routeAll([{ d, facts }]);
      // the first page of an incident is always routed in its round
      if (!r) throw new NodewardenError('INTERNAL', `page ${d.id} not routed`);
      if (r.kind === 'failed') throw r.error;
      return r;
    },
    routeAll,
    async routeDenial(d: Decision, urgent: boolean): Promise<Routed | null> {
      const g = incidentGroupOf(d, opts.by);
      const cur = await store.read<Incident>(INCIDENT_NS, g.dedupKey);
      if (cur?.doc.status !== 'open') return null;
      const s = await silenced(d);
      if (s) return { kind: 'suppressed', dedupKey: g.dedupKey, guard: 'silenced', reason: `silenced by ${s.id} (${s.reason})` };
      const t = now();
      await updateDoc(store, INCIDENT_NS, g.dedupKey, (c: Incident | null) => (c?.status === 'open' ? join(c, { group: g, severity: d.severity ?? 'warning', summary: d.reason, note: truncate(d.reason, 500) }, t) : { doc: null, result: null }), keep);
      // humans must hear at once that automation stopped: no group-interval wait for the first
      const sent = await claim(g.dedupKey, urgent, d);
      const denied = Array.isArray(d.evidence?.denied) ? (d.evidence.denied as Array<{ target?: unknown }>).map((x) => (typeof x.target === 'string' ? x.target.replace(/^Node\//, '') : '')) : [];
      return sent ?? { kind: 'suppressed', dedupKey: g.dedupKey, guard: 'incidentOpen', reason: `guard denial joined open incident ${g.dedupKey}; humans hear it in the next update`, nodes: denied };
    },
    async noteFacts(d: Decision, facts: readonly string[]): Promise<void> {
      await noteFactsAll([[d, facts]]);
    },
    noteFactsAll,
    async heldBy(d: Decision): Promise<Incident | null> {
      return (await heldByAll([d]))[0] ?? null;
    },
    heldByAll,
    async due() {
      const out: Array<Extract<Routed, { kind: 'send' }>> = [];
      for (const id of await store.ids(INCIDENT_NS)) {
        const c = await claim(id, false);
        if (c) out.push(c);
      }
      return out;
    },
    async settleSend(dedupKey: string, seq: number, delivered: boolean): Promise<void> {
      const t = now();
      await updateDoc(store, INCIDENT_NS, dedupKey, (cur: Incident | null) => ({ doc: settleSend(cur, seq, delivered, t), result: null }), keep);
    },
    async get(dedupKey: string): Promise<Incident | null> {
      return (await store.read<Incident>(INCIDENT_NS, dedupKey))?.doc ?? null;
    },
    async list(): Promise<Incident[]> {
      const out: Incident[] = [];
      for (const id of await store.ids(INCIDENT_NS)) {
        const r = await store.read<Incident>(INCIDENT_NS, id);
        if (r) out.push(r.doc);
      }
      return out.sort((a, b) => b.openedAt - a.openedAt);
    },
    async acknowledge(dedupKey: string, by: string, via: string): Promise<Incident | null> {
      const t = now();
      return (await updateDoc(store, INCIDENT_NS, dedupKey, (cur: Incident | null) => ({ doc: acknowledge(cur, by, via, t), result: null }), keep)).doc;
    },
    async unacknowledge(dedupKey: string): Promise<Incident | null> {
      return (await updateDoc(store, INCIDENT_NS, dedupKey, (cur: Incident | null) => ({ doc: unacknowledge(cur), result: null }), keep)).doc;
    },
    async resolveExternally(dedupKey: string, by: string, via: string): Promise<Incident | null> {
      const t = now();
      const r = await updateDoc(store, INCIDENT_NS, dedupKey, (cur: Incident | null) => {
        const doc = resolveExternally(cur, by, via, t);
        return { doc, result: doc !== null };
      }, keep);
      return r.result ? r.doc : null;
    },
  };
}
