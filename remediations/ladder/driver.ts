/**
 * Drives the repair ladder (ladder.ts) from what the remediator did: a node
 * nodewarden cordoned for a fault whose catalogue action is a reset, a reboot
 * or a hand-over starts an episode; the ledger outcome of each step moves it;
 * a tick watches the step's Job, the deadlines, the quiet period and the node
 * (a person's uncordon). With the ladder off (`policy.act` false), or for a
 * fault nothing is recommended for, the episode is only observed: its outcome
 * figures (returned by nodewarden, or by a person, repaired or not) are kept. Every step the ladder asks for is a Decision submitted
 * to the same remediator, so it passes the guard and is a ledger record like
 * every other action; decision ids are deterministic (`ladder:<episode>:<seq>:<action>`),
 * so two replicas racing on one node act once (the guard's idempotency).
 *
 * State: one document per node in the shared DocStore (namespace `ladder`),
 * changed only by compare-and-set, so it survives restarts and a replica's
 * death. Outcome figures (time to detect / isolate / return) go to the metrics
 * port and into the ledger (`details.episode` of the steps, and one record
 * when a person resolved an episode), where ctl and the daily digest read them.
 */
import type { ClusterView } from '../../core/cluster.js';
import type { Clock } from '../../core/clock.js';
import type { Decision, LedgerRecord } from '../../core/decision.js';
import type { HeldFault, RuleEpisodes, RuleScope } from '../../core/held-fault.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { XidCatalogue } from '../../rules/xid/catalogue.js';
import type { DocStore } from '../incidents/doc-store.js';
import { updateDoc } from '../incidents/doc-store.js';
import type { LedgerWriter } from '../ledger/store.js';
import type { ClosedEpisode, Episode, IsolationView, LadderInput, LadderPolicy, LadderRequest, NodeLadder, Transition } from './ladder.js';
import { emptyLadder, transition } from './ladder.js';
import { startRung, xidOf } from './start.js';
import { taintOf } from '../device-isolation.js';

export const LADDER_NS = 'ladder';

export interface JobStatus {
  state: 'running' | 'succeeded' | 'failed' | 'missing';
  detail?: string;
}

/** Where a repair step's Job stands (adapters: Kubernetes Jobs, the simulated cluster). */
export interface JobWatch {
  status(job: string): Promise<JobStatus>;
  /** Stops a Job that ran past its step's timeout (best effort). */
  stop?(job: string): Promise<void>;
}

/** Outcome figures per rule (adapter: ladder/metrics.ts over prom-client). */
export interface OutcomeMetrics {
  /** A cordon executed: fault → decision, fault → cordon, in seconds. */
  isolated(rule: string, detectSeconds: number, isolateSeconds: number): void;
  /** An episode ended. */
  closed(c: ClosedEpisode): void;
  /** A ladder step's ledger outcome. */
  step(action: string, outcome: string): void;
}

export interface LadderDriverOptions {
  store: DocStore;
  policy: LadderPolicy;
  /** The remediator's submit (guard → executor → ledger). */
  submit: (decisions: readonly Decision[]) => Promise<LedgerRecord[]>;
  view: ClusterView;
  jobs: JobWatch;
  clock: Clock;
  logger: Logger;
  catalogue?: XidCatalogue | undefined;
  /** Where the "resolved by a person" records go (the remediator's sinks). */
  ledger: readonly LedgerWriter[];
  metrics?: OutcomeMetrics | undefined;
  /** Least time between two ticks (default 5 s). */
  tickEveryMs?: number;
  /**
   * Whose DRA device taint a GPU is under, for device (GPU-taint) episodes:
   * `own` (nodewarden's DeviceTaintRule), `other` (a person's), `none`, or
   * null when unknown. Absent, or unknown: the view's `taintedGpus` where the
   * view reports them (the simulated cluster), else the GPU is taken as still
   * tainted by nodewarden (a person's removal is then not seen).
   */
  deviceTaints?: DeviceTaintState | undefined;
  /**
   * The rule engine's episodes: when an episode's node (GPU) is back in
   * service, the rule episodes that isolated it are released so the next fault
   * isolates it again at once (ADR 0034). Also bound later by
   * `bindRuleEpisodes` (the engine is built after the remediator).
   */
  ruleEpisodes?: RuleEpisodes | undefined;
}

export type DeviceTaintOwner = 'own' | 'other' | 'none';

/** Where a GPU's device taint stands (adapter: the DeviceTaintRule executor). */
export interface DeviceTaintState {
  owner(node: string, gpu: string): Promise<DeviceTaintOwner | null>;
}

/** What the ledger and the pages carry about an episode. */
export interface EpisodeSummary {
  id: string;
  rule: string;
  gpu: string | null;
  faultAt: string;
  detectedAt: string;
  isolatedAt: string;
  rung: string;
  /** `node` (cordon) or `device` (one GPU tainted). */
  scope: string;
  repaired: boolean;
  end?: string;
  endedAt?: string;
}

export function summarize(e: Episode, end?: ClosedEpisode): EpisodeSummary {
  const s: EpisodeSummary = {
    id: e.id,
    rule: e.rule,
    gpu: e.gpu,
    faultAt: new Date(e.faultAt).toISOString(),
    detectedAt: new Date(e.detectedAt).toISOString(),
    isolatedAt: new Date(e.isolatedAt).toISOString(),
    rung: e.rung,
    scope: e.scope ?? 'node',
    repaired: e.repaired,
  };
  if (end) {
    s.end = end.end;
    s.endedAt = new Date(end.at).toISOString();
  }
  return s;
}

/** The node a record is about: a Node target, or the node a per-GPU (Device) target names. */
function nodeOf(r: LedgerRecord): string | null {
  if (r.target.kind === 'Node') return r.target.name;
  const n = (r.target as { node?: unknown }).node;
  return typeof n === 'string' && n !== '' ? n : null;
}

/** Bound on request → record → request rounds in one call (a step's record may ask for the next step at once). */
const MAX_ROUNDS = 6;

/** Longest engine scope key kept (`n:<node>|<by>...`; a node name is ≤ 253). */
const MAX_SCOPE_KEY = 1024;

/** The rule episode a cordon or taint decision came from (the engine's `evidence.ruleScope`). */
function isolationOf(rule: string, d: Decision | undefined): RuleScope | null {
  const s = d?.evidence?.ruleScope;
  return typeof s === 'string' && s !== '' && s.length <= MAX_SCOPE_KEY ? { rule, scope: s } : null;
}

function eventTs(d: Decision | undefined): number | null {
  const t = d?.evidence?.eventTs;
  if (typeof t !== 'string') return null;
  const ms = Date.parse(t);
  return Number.isFinite(ms) ? ms : null;
}

export class LadderDriver {
  /** The ladder carries out steps (`policy.act`): what it observes of a submit may act on the cluster. */
  get acts(): boolean {
    return this.o.policy.act;
  }
  private readonly log: Logger;
  private lastTick = Number.NEGATIVE_INFINITY;
  private readonly tickEveryMs: number;
  /**
   * Nodes with an open episode, as this replica last saw them (every tick
   * reads every ladder document; every transition here updates it): held
   * faults of other nodes are dropped without a store round trip. Null until
   * the first tick loaded it: every held fault goes to the store. A stale
   * entry costs one read; a missing one is impossible for long, and only for
   * an episode opened on another replica within the last tick, i.e. one still
   * in its repair step, where a held fault changes nothing (ADR 0034).
   */
  private open: Set<string> | null = null;
  /** Per tick running (ticks may overlap): the nodes this replica's transitions opened meanwhile, kept by its reload. */
  private readonly ticking = new Set<Set<string>>();
  private ruleEpisodes: RuleEpisodes | undefined;
  constructor(private readonly o: LadderDriverOptions) {
    this.log = o.logger.child({ component: 'repair-ladder' });
    this.tickEveryMs = o.tickEveryMs ?? 5000;
    this.ruleEpisodes = o.ruleEpisodes;
  }

  /** Where returned episodes release the rule episodes that isolated them (see `ruleEpisodes`). */
  bindRuleEpisodes(r: RuleEpisodes): void {
    this.ruleEpisodes = r;
  }

  /** The records of one submit (with its decisions): starts and moves episodes. Returns the ladder's own records. */
  async observe(decisions: readonly Decision[], records: readonly LedgerRecord[]): Promise<LedgerRecord[]> {
    const byId = new Map(decisions.map((d) => [d.id, d]));
    const inputs: Array<[string, LadderInput]> = [];
    for (const r of records) {
      const node = nodeOf(r);
      if (node === null || r.decisionId === undefined) continue;
      const at = Date.parse(r.ts);
      if (r.decisionId.startsWith('ladder:')) {
        this.o.metrics?.step(r.action, r.outcome);
        const job = typeof r.details?.job === 'string' ? r.details.job : null;
        inputs.push([node, { kind: 'recorded', at, decisionId: r.decisionId, outcome: r.outcome, guard: r.guard, job, ...(r.error ? { error: r.error } : {}) }]);
        continue;
      }
      if (r.action === 'uncordon' && r.outcome === 'executed') {
        inputs.push([node, { kind: 'uncordoned', at }]);
        continue;
      }
      if (r.action === 'untaint' && r.outcome === 'executed' && r.target.kind === 'Device') {
        inputs.push([node, { kind: 'uncordoned', at, gpu: r.target.name }]);
        continue;
      }
      if (r.action !== 'cordon' && !(r.action === 'taint' && r.target.kind === 'Device')) continue;
      const device = r.target.kind === 'Device' ? r.target.name : null;
      // a GPU taint carried out as the cordon of its node has a derived id (device-isolation.ts, cordonInstead)
      const d = byId.get(r.decisionId) ?? byId.get(taintOf(r.decisionId));
      const detectedAt = d?.at ?? at;
      const faultAt = Math.min(eventTs(d) ?? detectedAt, detectedAt);
      const isolated = r.outcome === 'executed';
      if (isolated) this.o.metrics?.isolated(r.rule, Math.max(0, detectedAt - faultAt) / 1000, Math.max(0, at - faultAt) / 1000);
      if (r.outcome === 'dry-run') continue;
      const x = d ? xidOf(d) : null;
      const start = x ? startRung(this.o.catalogue, x) : null;
      const gpu = device ?? x?.gpu ?? null;
      const isolation = isolationOf(r.rule, d);
      inputs.push([node, { kind: 'fault', at, faultAt, detectedAt, gpu, rule: r.rule, reason: r.reason, start: start?.rung ?? null, isolated, scope: device === null ? 'node' : 'device', ...(isolation ? { isolation } : {}) }]);
    }
    const out: LedgerRecord[] = [];
    for (const [node, input] of inputs) out.push(...(await this.apply(node, input, 0)));
    return out;
  }

  /**
   * Held faults (the engine's fault events of isolating rules during their
   * cooldown, ADR 0034): a node (GPU) in validation or its quiet period sees
   * its fault come back and escalates instead of returning. Faults of nodes
   * without an open episode are dropped here; one per node and GPU per call.
   * Returns the ladder's records.
   */
  async held(faults: readonly HeldFault[]): Promise<LedgerRecord[]> {
    const seen = new Set<string>();
    const inputs: Array<[string, LadderInput]> = [];
    for (const f of faults) {
      if (this.open !== null && !this.open.has(f.node)) continue;
      const k = `${f.node}\u0000${f.gpu ?? ''}`;
      if (seen.has(k)) continue;
      seen.add(k);
      const start = f.xid ? startRung(this.o.catalogue, f.xid) : null;
      inputs.push([f.node, { kind: 'held', at: this.o.clock.now(), gpu: f.gpu ?? f.xid?.gpu ?? null, rule: f.rule, reason: `${f.reason} at ${new Date(f.at).toISOString()}`, start: start?.rung ?? null }]);
    }
    const out: LedgerRecord[] = [];
    for (const [node, input] of inputs) {
      try {
        out.push(...(await this.apply(node, input, 0)));
      } catch (err) {
        this.log.warn({ node, err: errorMessage(err) }, 'repair ladder: a held fault could not be applied');
      }
    }
    return out;
  }

  /** Job status, deadlines, quiet periods and people's uncordons; at most once per `tickEveryMs`. */
  async tick(force = false): Promise<LedgerRecord[]> {
    const now = this.o.clock.now();
    if (!force && now - this.lastTick < this.tickEveryMs) return [];
    this.lastTick = now;
    const out: LedgerRecord[] = [];
    const found = new Set<string>();
    const touched = new Set<string>();
    this.ticking.add(touched);
    try {
      for (const node of await this.o.store.ids(LADDER_NS)) {
        try {
          const cur = await this.o.store.read<NodeLadder>(LADDER_NS, node);
          const e = cur?.doc.episode;
          if (!e) continue;
          found.add(node);
          const pd = e.pending;
          if (pd?.status === 'running' && pd.job) {
            const s = await this.o.jobs.status(pd.job);
            if (s.state === 'running' && pd.until !== null && now >= pd.until && this.o.jobs.stop) {
              await this.o.jobs.stop(pd.job).catch((err: unknown) => this.log.warn({ node, job: pd.job, err: errorMessage(err) }, 'a timed-out repair Job could not be stopped'));
            }
            if (s.state !== 'running') {
              const detail = s.state === 'missing' ? 'the Job is gone (deleted before it finished)' : s.detail;
              out.push(...(await this.apply(node, { kind: 'job', at: now, job: pd.job, succeeded: s.state === 'succeeded', ...(detail ? { detail } : {}) }, 0)));
            }
          }
          out.push(...(await this.apply(node, { kind: 'tick', at: this.o.clock.now(), node: await this.isolation(e) }, 0)));
        } catch (err) {
          found.add(node); // unknown: keep it in the set
          this.log.warn({ node, err: errorMessage(err) }, 'repair ladder tick failed for a node; next tick tries again');
        }
      }
    } finally {
      this.ticking.delete(touched);
    }
    for (const n of touched) found.add(n);
    this.open = found;
    return out;
  }

  /**
   * The cluster's view of what episode `e` isolated: the node's cordon, or
   * for a device episode the GPU's taint (`unschedulable` = still tainted,
   * `cordonedByNodewarden` = by nodewarden's rule).
   */
  private async isolation(e: Episode): Promise<IsolationView | undefined> {
    const n = this.o.view.getNode(e.node);
    if (!n) return undefined;
    if (e.scope !== 'device' || e.gpu === null) return { unschedulable: n.unschedulable, cordonedByNodewarden: n.cordonedByNodewarden };
    let owner: DeviceTaintOwner | null = null;
    try {
      owner = (await this.o.deviceTaints?.owner(e.node, e.gpu)) ?? null;
    } catch (err) {
      this.log.warn({ node: e.node, gpu: e.gpu, err: errorMessage(err) }, 'device taint state unknown; taken as still tainted by nodewarden');
    }
    if (owner === null && n.taintedGpus !== undefined) owner = n.taintedGpus.includes(e.gpu) ? 'own' : 'none';
    if (owner === null) owner = 'own';
    return { unschedulable: owner !== 'none', cordonedByNodewarden: owner === 'own' };
  }

  /** Open episodes (for ctl and the console). */
  async episodes(): Promise<Episode[]> {
    const out: Episode[] = [];
    for (const node of await this.o.store.ids(LADDER_NS)) {
      const cur = await this.o.store.read<NodeLadder>(LADDER_NS, node);
      if (cur?.doc.episode) out.push(cur.doc.episode);
    }
    return out;
  }

  private async apply(node: string, input: LadderInput, depth: number): Promise<LedgerRecord[]> {
    const p = this.o.policy;
    const { result: t } = await updateDoc<NodeLadder, Transition | null>(
      this.o.store,
      LADDER_NS,
      node,
      (cur) => {
        const t = transition(cur ?? emptyLadder(node), input, p);
        this.seen(node, (t.changed ? t.ladder : cur)?.episode != null);
        if (!t.changed) return { doc: null, result: null };
        const keep = t.ladder.episode !== null || t.ladder.attempts.length > 0;
        return { doc: keep ? t.ladder : 'delete', result: t };
      },
      // an idle ladder (attempts only) lives as long as its attempts count
      (doc) => (doc.episode ? 0 : p.windowMs),
    );
    if (!t) return [];
    const out: LedgerRecord[] = [];
    if (t.closed) out.push(...(await this.onClosed(t.closed)));
    if (t.requests.length === 0) return out;
    if (depth >= MAX_ROUNDS) {
      this.log.error({ node, requests: t.requests.map((r) => r.decisionId) }, 'repair ladder: too many steps in one round; the next tick continues');
      return out;
    }
    const episode = t.ladder.episode ?? t.closed?.episode;
    const decisions = t.requests.map((r) => this.decisionOf(r, episode));
    const records = await this.o.submit(decisions);
    out.push(...records);
    for (const r of records) {
      if (r.decisionId?.startsWith('ladder:') !== true) continue;
      this.o.metrics?.step(r.action, r.outcome);
      const job = typeof r.details?.job === 'string' ? r.details.job : null;
      const at = this.o.clock.now();
      out.push(...(await this.apply(node, { kind: 'recorded', at, decisionId: r.decisionId, outcome: r.outcome, guard: r.guard, job, ...(r.error ? { error: r.error } : {}) }, depth + 1)));
    }
    return out;
  }

  /** Keeps the open-episode set (see `open`) up to date with what a transition left. */
  private seen(node: string, open: boolean): void {
    if (open) {
      this.open?.add(node);
      for (const t of this.ticking) t.add(node);
    } else this.open?.delete(node);
  }

  private decisionOf(r: LadderRequest, e: Episode | undefined): Decision {
    // a GPU episode returns the GPU: the undo of its taint, never the node's uncordon
    const step: Pick<Decision, 'action' | 'target'> | null =
      r.action === 'uncordon' && e?.scope === 'device' && e.gpu !== null ? { action: 'untaint', target: { kind: 'Device', name: e.gpu, node: e.node } } : null;
    const d: Decision = {
      id: r.decisionId,
      at: this.o.clock.now(),
      rule: r.rule,
      action: step?.action ?? r.action,
      target: step?.target ?? (r.gpu ? { kind: 'Node', name: r.node, gpu: r.gpu } : { kind: 'Node', name: r.node }),
      reason: r.reason,
      severity: r.severity,
      params: { episode: r.episode },
      evidence: { episode: e ? summarize(e) : { id: r.episode } },
    };
    if (r.action === 'replace' || r.action === 'page') {
      d.dedupKey = `nodewarden/repair/${r.node}`;
      d.evidence = { ...d.evidence, history: r.history.map((h) => `${new Date(h.at).toISOString()} ${h.what}`) };
    }
    return d;
  }

  /**
   * Back in service: the rule episodes that isolated it end, cooldown included,
   * so a later fault fires the rule again (cordon or taint, page, a new
   * episode). Best effort: a failure leaves the cooldown as it was (the gap of
   * old), logged.
   */
  private async release(e: Episode): Promise<void> {
    const isolatedBy = e.isolatedBy ?? [];
    if (isolatedBy.length === 0) return;
    if (!this.ruleEpisodes) {
      this.log.warn({ node: e.node, episode: e.id }, 'repair ladder: no rule engine bound; the isolating rule episodes run out their cooldown');
      return;
    }
    try {
      const n = await this.ruleEpisodes.release(isolatedBy);
      this.log.info({ node: e.node, episode: e.id, released: n, rules: isolatedBy.map((r) => r.rule) }, 'back in service: the isolating rule episodes ended (a new fault isolates again)');
    } catch (err) {
      this.log.error({ node: e.node, episode: e.id, err: errorMessage(err) }, 'back in service, but the isolating rule episodes could not be ended: a new fault is held until their cooldown ends');
    }
  }

  private async onClosed(c: ClosedEpisode): Promise<LedgerRecord[]> {
    this.o.metrics?.closed(c);
    const e = c.episode;
    this.log.info({ node: e.node, episode: e.id, end: c.end, repaired: e.repaired }, `repair episode ended: ${c.end}`);
    if (c.inService === true) await this.release(e);
    if (c.end === 'returned') return []; // the executed uncordon is its record
    const rec: LedgerRecord = {
      ts: new Date(c.at).toISOString(),
      rule: e.rule,
      ...(e.scope === 'device' && e.gpu !== null ? { action: 'untaint' as const, target: { kind: 'Device' as const, name: e.gpu, node: e.node } } : { action: 'uncordon' as const, target: { kind: 'Node' as const, name: e.node } }),
      outcome: 'suppressed',
      reason: c.end === 'resolved-by-person' ? `resolved by a person: ${e.history[e.history.length - 1]?.what ?? ''}` : `${e.node} left the cluster during the repair episode`,
      guard: c.end === 'resolved-by-person' ? 'resolvedByPerson' : 'nodeGone',
      decisionId: `ladder:${e.id}:closed`,
      details: { episode: summarize(e, c) },
    };
    try {
      await Promise.all(this.o.ledger.map((s) => s.append([rec])));
    } catch (err) {
      this.log.error({ node: e.node, err: errorMessage(err) }, 'repair episode end not written to the ledger');
    }
    return [rec];
  }
}
