/**
 * The repair ladder's state machine (pure; docs/repair-ladder.md, ADR 0023).
 *
 *   fault ─► reset the GPU ─► reboot the node ─► hand over for replacement
 *                 │                 │
 *                 └─► validate ─► quiet period ─► return to service (uncordon, or untaint of the GPU)
 *
 * One `NodeLadder` per node is the unit of state (a document of the shared
 * DocStore, namespace `ladder`: Redis in production, memory in demo/replay). It holds at most one open
 * episode and the repair attempts of the attempt window, which outlive
 * episodes: a node that comes back and faults again starts a new episode, but
 * the attempts it already had count toward the caps, so no node is reset or
 * rebooted round and round.
 *
 * Invariants (test/unit/remediations/ladder-properties.test.ts):
 * - within an episode the rung only climbs (reset → reboot → replace): no loops;
 * - reset and reboot steps of one node (and resets of one GPU) never exceed
 *   their caps within the window: a capped rung is skipped upwards;
 * - a step that fails, times out, fails validation or sees the fault again
 *   during the quiet period escalates;
 * - nothing but a passed validation followed by a quiet period returns a node;
 *   without a validation template the node is held for a person;
 * - a guard denial (pause, rate limit, breaker) never counts as an attempt and
 *   never escalates: the same step is asked for again later;
 * - a person's uncordon closes the episode (`resolved-by-person`);
 * - a held fault (the rule matched again while cooling down, ADR 0034) on
 *   what the episode isolated, during validation or the quiet period, is a
 *   fault again: no return, the next rung up;
 * - one episode per node at a time: a fault isolated separately (another
 *   GPU's taint, or the node's cordon during a GPU episode) is queued and gets
 *   its own episode when the open one ends (ADR 0034).
 *
 * Transitions return requests (actions for the remediator: guard + ledger) and
 * at most one closed episode (for the outcome metrics); they never act.
 */
import type { Outcome } from '../../core/decision.js';
import type { RuleScope } from '../../core/held-fault.js';
import { MAX_ISOLATING_EPISODES } from '../../core/held-fault.js';

export const RUNGS = ['reset', 'reboot', 'replace'] as const;
export type Rung = (typeof RUNGS)[number];

/** Actions the ladder asks the remediator for. */
export type LadderAction = 'reset' | 'reboot' | 'validate' | 'uncordon' | 'replace' | 'page';

/** `observe`: the ladder does not act on this episode (it is off, or nothing is recommended); only its outcome is kept. */
export type Phase = 'repair' | 'validate' | 'quiet' | 'return' | 'handover' | 'held' | 'observe';

export type EpisodeEnd = 'returned' | 'resolved-by-person' | 'node-gone';

export interface LadderPolicy {
  /** False: episodes are only observed (outcome figures), no step is asked for. */
  act: boolean;
  /** Reset and reboot steps of one node within `windowMs`. */
  maxAttemptsPerNode: number;
  /** Resets of one GPU within `windowMs`. */
  maxAttemptsPerGpu: number;
  windowMs: number;
  /** How long a running Job may take before it counts as failed. */
  timeoutMs: { reset: number; reboot: number; validate: number };
  /** After a passed validation, the node must stay quiet this long. */
  quietMs: number;
  /** A denied or failed request is asked for again after this long. */
  retryMs: number;
  /** A validation template is configured: without one, a repaired node is held for a person. */
  validation: boolean;
}

export interface Attempt {
  step: 'reset' | 'reboot';
  gpu: string | null;
  at: number;
  episode: string;
}

export interface HistoryEntry {
  at: number;
  what: string;
}

export interface Pending {
  action: LadderAction;
  /** Unique per request: decision ids are `ladder:<episode>:<seq>:<action>`. */
  seq: number;
  status: 'requested' | 'running' | 'retry' | 'approval' | 'done';
  requestedAt: number;
  /** running: when the Job counts as timed out. retry: when to ask again. */
  until: number | null;
  /** The Job the executor started (reset/reboot/validate), for the status watch. */
  job: string | null;
}

/** What nodewarden isolated: the whole node (cordon) or one GPU (DRA device taint; returned by `untaint`). */
export type Scope = 'node' | 'device';

export interface Episode {
  id: string;
  node: string;
  gpu: string | null;
  /** Absent in episodes stored before per-GPU scope: the node. */
  scope?: Scope;
  rule: string;
  reason: string;
  /** When the fault happened (the event's ts), when it was decided on, when the node was cordoned. */
  faultAt: number;
  detectedAt: number;
  isolatedAt: number;
  rung: Rung;
  phase: Phase;
  pending: Pending | null;
  quietUntil: number | null;
  /** A repair step succeeded in this episode. */
  repaired: boolean;
  history: HistoryEntry[];
  /**
   * The rule episodes (rule, engine scope key) that isolated what this episode
   * returns: released when it is back in service, so the next fault fires the
   * rule again (ADR 0034). Absent in episodes stored before: none. Bounded.
   */
  isolatedBy?: RuleScope[];
}

/** A fault isolated on its own while another episode of the node was open: its episode comes next (ADR 0034). */
export interface QueuedFault {
  gpu: string | null;
  scope: Scope;
  rule: string;
  reason: string;
  faultAt: number;
  detectedAt: number;
  isolatedAt: number;
  start: Rung | null;
  isolatedBy?: RuleScope[];
}

export interface NodeLadder {
  node: string;
  episode: Episode | null;
  attempts: Attempt[];
  /** Absent in documents stored before ADR 0034: none. Bounded by MAX_QUEUE. */
  queue?: QueuedFault[];
}

/** The ladder's own request for an action; the driver turns it into a Decision. */
export interface LadderRequest {
  decisionId: string;
  action: LadderAction;
  node: string;
  gpu: string | null;
  rule: string;
  reason: string;
  severity: 'critical' | 'warning' | 'info';
  episode: string;
  history: HistoryEntry[];
}

export interface ClosedEpisode {
  episode: Episode;
  end: EpisodeEnd;
  at: number;
  /**
   * What the episode isolated is back in service: returned by the ladder, or
   * uncordoned (untainted) by a person. Its `isolatedBy` rule episodes are
   * then released (ADR 0034). Not for a rule's own clear, a person's takeover
   * or a node gone.
   */
  inService?: boolean;
}

export type LadderInput =
  /** A node nodewarden cordoned for a fault (or a fault seen again on a node in an episode). */
  | { kind: 'fault'; at: number; faultAt: number; detectedAt: number; gpu: string | null; rule: string; reason: string; start: Rung | null; isolated: boolean; scope?: Scope; isolation?: RuleScope }
  /**
   * A held fault (core/held-fault.ts): an isolating rule matched on this node
   * (GPU `gpu`) again while it cooled down. Nothing was isolated anew: it only
   * tells an open episode that the fault is back.
   */
  | { kind: 'held'; at: number; gpu: string | null; rule: string; reason: string; start: Rung | null }
  /** nodewarden uncordoned the node (or untainted the GPU `gpu`) outside the ladder (a rule's clear with auto-uncordon). */
  | { kind: 'uncordoned'; at: number; gpu?: string }
  /** The ledger outcome of a decision the ladder asked for. */
  | { kind: 'recorded'; at: number; decisionId: string; outcome: Outcome; guard: string | null; job?: string | null; error?: string }
  /** The Job of the running step finished. */
  | { kind: 'job'; at: number; job: string; succeeded: boolean; detail?: string }
  /**
   * Time passes; `node` is the cluster's view of what the episode isolated
   * (undefined: the node is not in the view). For a device episode
   * `unschedulable` is "the GPU is still tainted" and `cordonedByNodewarden`
   * "by nodewarden's DeviceTaintRule".
   */
  | { kind: 'tick'; at: number; node: IsolationView | undefined };

export interface IsolationView {
  unschedulable: boolean;
  cordonedByNodewarden: boolean;
}

export interface Transition {
  ladder: NodeLadder;
  requests: LadderRequest[];
  closed: ClosedEpisode | null;
  /** False when the input changed nothing (no write needed). */
  changed: boolean;
}

const MAX_HISTORY = 50;
/** Faults waiting for their own episode on one node (one per GPU, and the node's); a full queue notes the rest in the history. */
export const MAX_QUEUE = 16;

export function emptyLadder(node: string): NodeLadder {
  return { node, episode: null, attempts: [] };
}

export function ladderDecisionId(episode: string, seq: number, action: LadderAction): string {
  return `ladder:${episode}:${seq}:${action}`;
}

const nextRung = (r: Rung): Rung => (r === 'reset' ? 'reboot' : 'replace');
const rungIndex = (r: Rung): number => RUNGS.indexOf(r);

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Mutable working copy of one transition. */
class Work {
  readonly requests: LadderRequest[] = [];
  closed: ClosedEpisode | null = null;
  changed = false;
  constructor(
    readonly l: NodeLadder,
    readonly p: LadderPolicy,
    readonly now: number,
  ) {}

  note(e: Episode, what: string): void {
    e.history.push({ at: this.now, what });
    if (e.history.length > MAX_HISTORY) e.history.splice(1, e.history.length - MAX_HISTORY); // keep the first (the fault)
    this.changed = true;
  }

  attemptsInWindow(): Attempt[] {
    return this.l.attempts.filter((a) => a.at > this.now - this.p.windowMs);
  }

  request(e: Episode, action: LadderAction, reason: string, severity: LadderRequest['severity'] = 'warning'): void {
    const seq = (e.pending?.seq ?? 0) + 1;
    e.pending = { action, seq, status: 'requested', requestedAt: this.now, until: null, job: null };
    this.requests.push({
      decisionId: ladderDecisionId(e.id, seq, action),
      action,
      node: e.node,
      gpu: action === 'reset' ? e.gpu : null,
      rule: e.rule,
      reason,
      severity,
      episode: e.id,
      history: action === 'replace' ? [...e.history] : [],
    });
    this.changed = true;
  }

  /** Enters a rung: the step, or the next rung up when its cap is reached. */
  enter(e: Episode, rung: Rung, why: string): void {
    e.rung = rung;
    e.quietUntil = null;
    if (rung === 'reset' && e.gpu === null) {
      this.note(e, 'no GPU named by the fault: a GPU reset is not possible, rebooting instead');
      this.enter(e, 'reboot', why);
      return;
    }
    if (rung !== 'replace') {
      const recent = this.attemptsInWindow();
      const nodeUsed = recent.length;
      if (nodeUsed >= this.p.maxAttemptsPerNode) {
        this.note(e, `cap: ${nodeUsed} repair attempt(s) on ${e.node} within the window (max ${this.p.maxAttemptsPerNode}); not trying ${rung}`);
        this.enter(e, 'replace', 'attempt cap reached');
        return;
      }
      if (rung === 'reset') {
        const gpuUsed = recent.filter((a) => a.step === 'reset' && a.gpu === e.gpu).length;
        if (gpuUsed >= this.p.maxAttemptsPerGpu) {
          this.note(e, `cap: ${gpuUsed} reset(s) of GPU ${e.gpu ?? '?'} within the window (max ${this.p.maxAttemptsPerGpu}); rebooting instead`);
          this.enter(e, 'reboot', 'GPU reset cap reached');
          return;
        }
      }
      e.phase = 'repair';
      this.note(e, `${rung} requested (${why})`);
      const what = rung === 'reset' ? `reset GPU ${e.gpu ?? '?'} on ${e.node}` : `reboot ${e.node}`;
      this.request(e, rung, `repair ladder: ${what} (${why}); ${e.reason}`);
      return;
    }
    e.phase = 'handover';
    this.note(e, `hand-over for replacement (${why})`);
    this.request(e, 'replace', `repair ladder: ${e.node} needs a person (${why}); ${e.reason}`, 'critical');
  }

  escalate(e: Episode, why: string): void {
    if (e.rung === 'replace') {
      this.note(e, `${why}; already handed over`);
      return;
    }
    this.enter(e, nextRung(e.rung), why);
  }

  close(e: Episode, end: EpisodeEnd, what: string, inService = false): void {
    this.note(e, what);
    this.closed = { episode: e, end, at: this.now, ...(inService ? { inService } : {}) };
    this.l.episode = null;
    this.changed = true;
    const q = this.l.queue ?? [];
    if (q.length === 0) return;
    if (end === 'node-gone') {
      this.l.queue = []; // nothing left to repair
      return;
    }
    const [next, ...rest] = q;
    this.l.queue = rest;
    if (next) this.open({ ...next, id: `${this.l.node}:${next.detectedAt}:${next.gpu ?? 'node'}`, queuedWhile: e.id });
  }

  /** Starts an episode (a fault just isolated, or the next queued one). */
  open(f: QueuedFault & { id: string; queuedWhile?: string }): void {
    const device = f.scope === 'device' && f.gpu !== null;
    const ep: Episode = {
      id: f.id,
      node: this.l.node,
      gpu: f.gpu,
      scope: device ? 'device' : 'node',
      rule: f.rule,
      reason: f.reason,
      faultAt: Math.min(f.faultAt, f.detectedAt),
      detectedAt: f.detectedAt,
      isolatedAt: f.isolatedAt,
      rung: f.start ?? 'replace',
      phase: 'repair',
      pending: null,
      quietUntil: null,
      repaired: false,
      history: [{ at: f.isolatedAt, what: `fault: ${f.reason} (rule ${f.rule}); ${device ? `GPU ${f.gpu ?? '?'} tainted` : 'cordoned'}` }],
    };
    if (f.isolatedBy?.length) ep.isolatedBy = f.isolatedBy.slice(0, MAX_ISOLATING_EPISODES);
    this.l.episode = ep;
    this.changed = true;
    if (f.queuedWhile !== undefined) this.note(ep, `queued while episode ${f.queuedWhile} was open; its own episode starts now`);
    if (!this.p.act || f.start === null) {
      ep.phase = 'observe';
      this.note(ep, this.p.act ? 'no repair step is recommended for this fault: observing only' : 'the repair ladder is off: observing only');
    } else this.enter(ep, f.start, `${f.start === 'reset' ? 'GPU reset' : f.start === 'reboot' ? 'node reboot' : 'hand-over'} recommended`);
  }

  /** Remembers one more rule episode that isolated what `e` returns (deduplicated, bounded). */
  isolatedBy(e: Episode, r: RuleScope): void {
    const list = (e.isolatedBy ??= []);
    if (list.some((x) => x.rule === r.rule && x.scope === r.scope) || list.length >= MAX_ISOLATING_EPISODES) return;
    list.push({ rule: r.rule, scope: r.scope });
    this.changed = true;
  }

  /** Queues a fault isolated on its own while episode `e` is open (one entry per GPU / the node). */
  enqueue(e: Episode, f: QueuedFault): void {
    const q = (this.l.queue ??= []);
    const what = f.scope === 'device' ? `GPU ${f.gpu ?? '?'} tainted` : `the node cordoned${f.gpu === null ? '' : ` (GPU ${f.gpu})`}`;
    if (q.some((x) => x.scope === f.scope && x.gpu === f.gpu)) {
      this.note(e, `fault again on a queued target (${what}): ${f.reason}`);
      return;
    }
    if (q.length >= MAX_QUEUE) {
      this.note(e, `fault not queued, the queue is full (${MAX_QUEUE}): ${what}: ${f.reason}`);
      return;
    }
    q.push(f);
    this.note(e, `fault isolated separately (${what}): ${f.reason}; queued for its own episode`);
  }

  /** After a repair step succeeded: validate, or hold for a person when no validation is configured. */
  afterRepair(e: Episode, step: string): void {
    e.repaired = true;
    if (this.p.validation) {
      e.phase = 'validate';
      this.note(e, `${step} succeeded; validation requested`);
      this.request(e, 'validate', `repair ladder: validate ${e.node} after ${step}; ${e.reason}`, 'info');
      return;
    }
    e.phase = 'held';
    this.note(e, `${step} succeeded; no validation template is configured, so ${e.node} stays cordoned for a person`);
    this.request(e, 'page', `repair ladder: ${step} of ${e.node} succeeded but no validation is configured (repair.validate.template); return it by hand after checking it`, 'warning');
  }
}

function pruneAttempts(l: NodeLadder, p: LadderPolicy, now: number): boolean {
  const keep = l.attempts.filter((a) => a.at > now - p.windowMs);
  if (keep.length === l.attempts.length) return false;
  l.attempts = keep;
  return true;
}

function clone(l: NodeLadder): NodeLadder {
  return structuredClone(l);
}

/**
 * One transition of one node's ladder. Pure: the input ladder is not mutated,
 * the result carries the new ladder, the requests to submit, and the episode
 * it closed (if any).
 */
export function transition(input: NodeLadder, ev: LadderInput, p: LadderPolicy): Transition {
  const l = clone(input);
  const w = new Work(l, p, ev.at);
  if (pruneAttempts(l, p, ev.at)) w.changed = true;
  const e = l.episode;
  switch (ev.kind) {
    case 'fault': {
      if (!e && !ev.isolated) break; // a cordon that did not happen starts nothing
      const scope: Scope = ev.scope === 'device' && ev.gpu !== null ? 'device' : 'node';
      const isolatedBy = ev.isolation ? [ev.isolation] : undefined;
      if (!e) {
        w.open({ id: `${l.node}:${ev.detectedAt}`, gpu: ev.gpu, scope, rule: ev.rule, reason: ev.reason, faultAt: ev.faultAt, detectedAt: ev.detectedAt, isolatedAt: ev.at, start: ev.start, ...(isolatedBy ? { isolatedBy } : {}) });
        break;
      }
      const hits = concerns(e, ev.gpu);
      if (hits && backBeforeReturn(e)) faultAgain(w, e, ev.reason, ev.start);
      else if (hits) w.note(e, `fault during ${e.phase}: ${ev.reason}`);
      // isolated on its own (another GPU's taint; the node's cordon during a GPU episode): its own episode, later
      const same = (e.scope ?? 'node') === scope && (scope === 'node' || ev.gpu === e.gpu);
      if (!same && ev.isolated) w.enqueue(e, { gpu: ev.gpu, scope, rule: ev.rule, reason: ev.reason, faultAt: ev.faultAt, detectedAt: ev.detectedAt, isolatedAt: ev.at, start: ev.start, ...(isolatedBy ? { isolatedBy } : {}) });
      // the same isolation by another rule (or scope): its episode too ends when this one returns the node
      if (same && ev.isolated && ev.isolation) w.isolatedBy(e, ev.isolation);
      else if (!hits) w.note(e, `fault on ${ev.gpu === null ? 'the node' : `GPU ${ev.gpu}`} (not this episode's): ${ev.reason}`);
      break;
    }
    case 'held':
      // only a fault on what the episode returns, before it is returned; anything else changes nothing (no write)
      if (e && concerns(e, ev.gpu) && backBeforeReturn(e)) faultAgain(w, e, `${ev.reason} (rule ${ev.rule}, held by its cooldown)`, ev.start);
      break;
    case 'recorded':
      if (e) onRecorded(w, e, ev);
      break;
    case 'job':
      if (e?.pending?.status === 'running' && e.pending.job === ev.job) onJobDone(w, e, e.pending, ev.succeeded, ev.detail);
      break;
    case 'tick':
      if (e) onTick(w, e, ev.node);
      break;
    case 'uncordoned': {
      // a queued fault whose isolation nodewarden undid (a rule's clear) needs no episode any more
      const q = l.queue ?? [];
      const left = q.filter((x) => !(x.scope === 'device' ? ev.gpu === x.gpu : ev.gpu === undefined));
      if (left.length < q.length) {
        l.queue = left;
        w.changed = true;
      }
      // only the undo of what this episode isolated: an untaint of another GPU, or an uncordon during a GPU episode, is not its end
      if (e && e.phase !== 'return' && (e.scope === 'device' ? ev.gpu === e.gpu : ev.gpu === undefined))
        w.close(e, 'returned', e.scope === 'device' ? `nodewarden untainted GPU ${e.gpu ?? '?'} (the rule cleared)` : 'nodewarden uncordoned the node (the rule cleared)');
      break;
    }
  }
  return { ladder: l, requests: w.requests, closed: w.closed, changed: w.changed };
}

/**
 * A fault on GPU `gpu` (null: the node) concerns the episode when it is about
 * what the episode returns: anything on the node for a node episode (its quiet
 * period is the node's), the same GPU for a GPU episode.
 */
function concerns(e: Episode, gpu: string | null): boolean {
  return e.scope !== 'device' || (gpu !== null && gpu === e.gpu);
}

/** Validated or being validated, not yet returned: a fault now means the repair did not hold. */
function backBeforeReturn(e: Episode): boolean {
  return e.phase === 'validate' || e.phase === 'quiet' || (e.phase === 'return' && e.pending?.status !== 'done');
}

function faultAgain(w: Work, e: Episode, reason: string, start: Rung | null): void {
  // the repair did not hold: the fault came back before the node was returned
  const phase = e.phase;
  w.note(e, `fault again during ${phase}: ${reason}`);
  // the next rung up, or higher when the new fault asks for more (never the same rung again, never past what it asks)
  const up = e.rung === 'replace' ? 'replace' : nextRung(e.rung);
  w.enter(e, start !== null && rungIndex(start) > rungIndex(up) ? start : up, `fault again during ${phase}`);
}

function onRecorded(w: Work, e: Episode, ev: Extract<LadderInput, { kind: 'recorded' }>): void {
  const pd = e.pending;
  if (!pd || pd.status !== 'requested' && pd.status !== 'approval') return;
  if (ladderDecisionId(e.id, pd.seq, pd.action) !== ev.decisionId) return; // an older request's record
  const done = ev.outcome === 'executed' || ev.outcome === 'dry-run' || (ev.outcome === 'suppressed' && ev.guard === 'idempotency');
  if (ev.outcome === 'pending-approval') {
    pd.status = 'approval';
    w.note(e, `${pd.action} waits for a person's approval`);
    return;
  }
  if (done) {
    switch (pd.action) {
      case 'reset':
      case 'reboot':
      case 'validate': {
        if (pd.action !== 'validate') w.l.attempts.push({ step: pd.action, gpu: pd.action === 'reset' ? e.gpu : null, at: w.now, episode: e.id });
        if (ev.outcome === 'dry-run' || !ev.job) {
          // nothing to watch (shadow mode, or an annotation for an external reboot controller
          // that reports through the node): the step counts as done
          pd.status = 'done';
          w.note(e, `${pd.action} ${ev.outcome === 'dry-run' ? 'dry-run' : 'handed to the reboot controller'}`);
          if (pd.action === 'validate') enterQuiet(w, e);
          else w.afterRepair(e, pd.action);
          return;
        }
        pd.status = 'running';
        pd.job = ev.job;
        const timeout = w.p.timeoutMs[pd.action];
        pd.until = w.now + timeout;
        w.note(e, `${pd.action} Job ${ev.job} started (timeout ${iso(pd.until)})`);
        return;
      }
      case 'uncordon':
        pd.status = 'done';
        w.close(e, 'returned', `returned to service (${e.scope === 'device' ? `GPU ${e.gpu ?? '?'} untainted` : 'uncordoned'}${ev.outcome === 'dry-run' ? ', dry-run' : ''})`, true);
        return;
      case 'replace':
      case 'page':
        pd.status = 'done';
        w.note(e, `${pd.action === 'replace' ? 'hand-over page' : 'page'} sent`);
        return;
    }
  }
  if (pd.action === 'uncordon' && ev.guard === 'notOwned') {
    pd.status = 'done';
    w.close(e, 'resolved-by-person', 'a person cordoned the node again: left to them (resolved by a person)');
    return;
  }
  if (ev.outcome === 'failed' && (pd.action === 'reset' || pd.action === 'reboot' || pd.action === 'validate')) {
    // the step could not even start (Job refused): it counts, and escalates
    if (pd.action !== 'validate') w.l.attempts.push({ step: pd.action, gpu: pd.action === 'reset' ? e.gpu : null, at: w.now, episode: e.id });
    pd.status = 'done';
    w.note(e, `${pd.action} failed to start: ${ev.error ?? 'unknown error'}`);
    w.escalate(e, `${pd.action} failed`);
    return;
  }
  // denied or suppressed by a guard, or a page/uncordon that failed: nothing happened, ask again later
  pd.status = 'retry';
  pd.until = w.now + w.p.retryMs;
  w.note(e, `${pd.action} ${ev.outcome}${ev.guard ? ` by ${ev.guard}` : ''}; asking again at ${iso(pd.until)}`);
}

/** What the return step gives back: the node, or one GPU of it. */
function returned(e: Episode): string {
  return e.scope === 'device' ? `GPU ${e.gpu ?? '?'} of ${e.node}` : e.node;
}

function enterQuiet(w: Work, e: Episode): void {
  e.phase = 'quiet';
  e.quietUntil = w.now + w.p.quietMs;
  w.note(e, `validation passed; quiet until ${iso(e.quietUntil)}`);
}

function onJobDone(w: Work, e: Episode, pd: Pending, ok: boolean, detail: string | undefined): void {
  pd.status = 'done';
  const why = detail ? `: ${detail}` : '';
  if (pd.action === 'validate') {
    if (ok) enterQuiet(w, e);
    else {
      w.note(e, `validation failed${why}`);
      w.escalate(e, 'validation failed');
    }
    return;
  }
  if (ok) w.afterRepair(e, pd.action);
  else {
    w.note(e, `${pd.action} Job failed${why}`);
    w.escalate(e, `${pd.action} failed`);
  }
}

function onTick(w: Work, e: Episode, node: IsolationView | undefined): void {
  const pd = e.pending;
  if (node === undefined) {
    // the node left the cluster (replaced, or removed by a person): nothing left to repair
    if (e.phase === 'handover' || e.phase === 'held' || e.phase === 'observe') w.close(e, 'node-gone', `${e.node} is no longer in the cluster`);
    return;
  }
  if (!node.unschedulable && !(e.phase === 'return' && pd?.status !== 'retry')) {
    const how = e.scope === 'device' ? `removed GPU ${e.gpu ?? '?'}'s device taint` : 'uncordoned it';
    w.close(e, 'resolved-by-person', `a person returned ${e.node} to service (${how}) during ${e.phase}: resolved by a person`, true);
    return;
  }
  if (node.unschedulable && !node.cordonedByNodewarden && e.phase !== 'return') {
    // a person took the cordon over (re-cordoned by hand): ours to leave alone from now on
    w.close(e, 'resolved-by-person', `a person took ${e.scope === 'device' ? `GPU ${e.gpu ?? '?'}'s device taint` : `${e.node}'s cordon`} over during ${e.phase}: resolved by a person`);
    return;
  }
  if (pd?.status === 'running' && pd.until !== null && w.now >= pd.until) {
    pd.status = 'done';
    w.note(e, `${pd.action} Job ${pd.job ?? ''} timed out`);
    if (pd.action === 'validate') w.escalate(e, 'validation timed out');
    else w.escalate(e, `${pd.action} timed out`);
    return;
  }
  if (pd?.status === 'retry' && pd.until !== null && w.now >= pd.until) {
    const action = pd.action;
    w.note(e, `asking for ${action} again`);
    if (action === 'reset' || action === 'reboot') w.request(e, action, `repair ladder: ${action === 'reset' ? `reset GPU ${e.gpu ?? '?'} on` : 'reboot'} ${e.node} (retry); ${e.reason}`);
    else if (action === 'validate') w.request(e, 'validate', `repair ladder: validate ${e.node} (retry); ${e.reason}`, 'info');
    else if (action === 'uncordon') w.request(e, 'uncordon', `repair ladder: return ${returned(e)} to service (retry)`, 'info');
    else w.request(e, action, `repair ladder: ${e.node} needs a person; ${e.reason}`, action === 'replace' ? 'critical' : 'warning');
    return;
  }
  if (e.phase === 'quiet' && e.quietUntil !== null && w.now >= e.quietUntil) {
    e.phase = 'return';
    w.note(e, 'quiet period passed');
    w.request(e, 'uncordon', `repair ladder: return ${returned(e)} to service (validated, quiet since ${iso(e.quietUntil - w.p.quietMs)})`, 'info');
  }
}

/** The rung NVIDIA's immediate action starts at; null: no repair (the app restarts, or nothing to do). */
export function rungForNvidiaAction(action: string, recovery?: string | null): Rung | null {
  switch (action) {
    case 'RESET_GPU':
    case 'WORKFLOW_XID_48':
    case 'WORKFLOW_NVLINK_ERR':
    case 'WORKFLOW_NVLINK5_ERR':
      return 'reset';
    case 'RESTART_BM':
      return 'reboot';
    case 'CONTACT_SUPPORT':
    case 'CHECK_MECHANICALS':
      return 'replace';
    case 'XID_154':
      switch (recovery) {
        case 'gpu-reset':
        case 'drain-and-reset':
        case 'drain-p2p':
          return 'reset';
        case 'node-reboot':
        case 'system-reboot':
        case 'bus-reset':
          return 'reboot';
        case 'recover-imex-domain':
          return 'replace';
        default:
          return null;
      }
    default:
      return null;
  }
}
