/**
 * cordon / uncordon / rollback executors over the KubeApi port. Each runs
 * read → decide (pure, see node-decisions.ts / rollback-decisions.ts) →
 * patch with a resourceVersion precondition; a 409 means someone wrote in
 * between, so it re-reads and decides again (bounded). Other failures become
 * an ExecutionResult carrying a NodewardenError (`retriable` tells the
 * remediator whether trying later can help). Executors never throw.
 *
 * The same executors drive the real API (client-node adapter) and the
 * simulated cluster (its in-memory KubeApi), so guards in replay see exactly
 * the behaviour production has.
 *
 * On the live engine (ADR 0041) a cordon/uncordon first plans from the
 * watch-fed view's copy of the Node (`nodeView`) and patches with ITS
 * resourceVersion: one request instead of a GET and a PATCH. The precondition
 * makes a stale view harmless (409 → GET → decide again → PATCH); a plan that
 * would not write (noop, refuse) is never trusted from the view, it is
 * re-decided on a fresh GET. With `eventQueue` the Kubernetes Event is
 * recorded after the action, off its path: a bounded queue, every Event
 * that could not be recorded (failed, or dropped when the queue is full)
 * logged and counted (the ledger is the record of truth).
 */
import os from 'node:os';
import type { Clock } from '../../core/clock.js';
import type { ActionKind, Decision } from '../../core/decision.js';
import { NodewardenError, errorMessage } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import type { ExecutionResult, Executor } from '../ports.js';
import { asNodewardenError, isCode } from './errors.js';
import { buildEvent } from './events.js';
import type { KubeApi } from './kube-api.js';
import { planCordon, planUncordon, type NodePlan } from './node-decisions.js';
import { planDaemonSetRollback, planDeploymentRollback, type RollbackPlan } from './rollback-decisions.js';
import type { KubeObject, LabelSelector, WireEvent, WireNode } from './wire.js';
import { Counter, type Registry } from 'prom-client';
import { reuseMetric } from '../../adapters/metrics.js';

export interface KubeExecutorOptions {
  clock: Clock;
  logger?: Logger;
  /** Attempts when the object changes under us (409). Default 5. */
  maxConflictRetries?: number;
  /** Write a Kubernetes Event for each action (default true). */
  recordEvents?: boolean;
  /** Event reportingInstance; default the host name (the engine pod). */
  instance?: string;
  /**
   * The watch-fed view's copy of a Node (`LiveCluster.nodeForPlan`): a
   * cordon/uncordon patches with its resourceVersion without a GET first; a
   * 409 (stale view) falls back to GET → decide → PATCH.
   */
  nodeView?: (name: string) => WireNode | undefined;
  /**
   * Record Events after the action, off its path: at most `max` waiting
   * (1..100000), `concurrency` created at a time (1..16, default 2). Absent:
   * each Event is created before the action returns.
   */
  eventQueue?: { max: number; concurrency?: number };
  /** `nodewarden_kube_events_total{result}` goes here. */
  registry?: Registry;
}

/** What became of the Kubernetes Events of actions taken. */
export type EventResult = 'recorded' | 'failed' | 'dropped';

const NODE_ACTIONS: readonly ActionKind[] = ['cordon', 'uncordon', 'rollback'];

/** Label selector in the `a=b,c in (d,e),!f` syntax the list API takes. */
export function selectorString(sel: LabelSelector | undefined): string | undefined {
  if (!sel) return undefined;
  const parts: string[] = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel.matchExpressions ?? []) {
    const vals = (e.values ?? []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${vals})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${vals})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.length > 0 ? parts.join(',') : undefined;
}

function fail(err: unknown, context: string): ExecutionResult {
  const e = asNodewardenError(err);
  return { ok: false, detail: `${context}: ${e.message}`, error: e };
}

class ConflictExhausted extends NodewardenError {
  constructor(what: string, attempts: number, cause: unknown) {
    super('CONFLICT', `${what} kept changing under us (${attempts} conflicting writes); giving up for now`, { retriable: true, cause });
  }
}

/**
 * The executor for cordon, uncordon and rollback. Construct one per API
 * client (one per engine replica, or one per simulated cluster).
 */
export class KubeExecutor implements Executor {
  readonly actions = NODE_ACTIONS;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly maxAttempts: number;
  private readonly recordEvents: boolean;
  private readonly instance: string;
  private readonly nodeView: ((name: string) => WireNode | undefined) | undefined;
  private readonly queue: { max: number; concurrency: number } | undefined;
  private readonly waiting: WireEvent[] = [];
  private workers = 0;
  private idle: Array<() => void> = [];
  private readonly eventsTotal: Counter<'result'>;
  /** Events recorded, failed and dropped since start (also `nodewarden_kube_events_total`). */
  readonly eventStats: Record<EventResult, number> = { recorded: 0, failed: 0, dropped: 0 };

  constructor(
    private readonly api: KubeApi,
    opts: KubeExecutorOptions,
  ) {
    this.clock = opts.clock;
    this.log = opts.logger ?? silentLogger;
    this.maxAttempts = Math.max(1, opts.maxConflictRetries ?? 5);
    this.recordEvents = opts.recordEvents ?? true;
    this.instance = opts.instance ?? os.hostname();
    this.nodeView = opts.nodeView;
    const q = opts.eventQueue;
    if (q && (!Number.isInteger(q.max) || q.max < 1 || q.max > 100_000 || !Number.isInteger(q.concurrency ?? 2) || (q.concurrency ?? 2) < 1 || (q.concurrency ?? 2) > 16)) {
      throw new NodewardenError('CONFIG_INVALID', `kube executor: event queue ${JSON.stringify(q)} is outside max 1..100000, concurrency 1..16`);
    }
    this.queue = q ? { max: q.max, concurrency: q.concurrency ?? 2 } : undefined;
    this.eventsTotal = reuseMetric(
      opts.registry,
      'nodewarden_kube_events_total',
      () => new Counter<'result'>({ name: 'nodewarden_kube_events_total', help: 'Kubernetes Events of actions taken, by result (recorded, failed, dropped: queue full)', labelNames: ['result'], registers: opts.registry ? [opts.registry] : [] }),
    );
  }

  /** Waits until every queued Event is recorded (or failed), at most `timeoutMs`; what is left is logged and counted as dropped. */
  async drainEvents(timeoutMs = 5000): Promise<void> {
    if (this.workers === 0 && this.waiting.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise<void>((resolve) => this.idle.push(resolve)), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    const left = this.waiting.splice(0);
    for (const ev of left) this.count('dropped', ev, 'engine stopping');
  }

  async execute(decision: Decision): Promise<ExecutionResult> {
    try {
      switch (decision.action) {
        case 'cordon':
          return await this.nodeAction(decision, 'cordon');
        case 'uncordon':
          return await this.nodeAction(decision, 'uncordon');
        case 'rollback':
          return await this.rollback(decision);
        default:
          return fail(new NodewardenError('REQUEST_INVALID', `action ${decision.action} is not a Kubernetes action`), 'kube executor');
      }
    } catch (err) {
      // Defensive: the paths below already turn failures into results.
      return fail(err, `${decision.action} ${decision.target.name}`);
    }
  }

  /** Re-read and re-decide while the object changes under us. */
  private async withConflictRetry<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    let last: unknown;
    for (let i = 1; i <= this.maxAttempts; i++) {
      try {
        return await attempt();
      } catch (err) {
        if (!isCode(err, 'CONFLICT')) throw err;
        last = err;
        this.log.info({ what, attempt: i }, 'conflict: object changed between read and write; re-reading');
      }
    }
    throw new ConflictExhausted(what, this.maxAttempts, last);
  }

  private async nodeAction(decision: Decision, action: 'cordon' | 'uncordon'): Promise<ExecutionResult> {
    const name = decision.target.name;
    if (decision.target.kind !== 'Node') {
      return fail(new NodewardenError('REQUEST_INVALID', `${action} needs a Node target, got ${decision.target.kind}`), `${action} ${name}`);
    }
    let plan: NodePlan | undefined;
    let node: KubeObject | undefined;
    try {
      // the view's copy first (patched with its resourceVersion), once; after that (or without one) a fresh GET
      let viewed = this.nodeView?.(name);
      await this.withConflictRetry(`node ${name}`, async () => {
        const planOf = (n: WireNode): NodePlan => (action === 'cordon' ? planCordon(n, decision, this.clock.now()) : planUncordon(n, decision));
        const fromView = viewed?.metadata?.resourceVersion === undefined ? undefined : viewed;
        viewed = undefined;
        const viewPlan = fromView && planOf(fromView);
        // only a write is taken from the view: its precondition proves the view current, a noop or refusal proves nothing
        if (viewPlan?.type === 'patch') plan = viewPlan;
        else {
          const current = await this.api.getNode(name);
          node = current;
          plan = planOf(current);
        }
        if (plan.type === 'patch') node = await this.api.patchNode(name, plan.patch);
      });
    } catch (err) {
      return fail(err, `${action} node ${name}`);
    }
    const p = plan as NodePlan;
    if (p.type === 'refuse') {
      return { ok: false, detail: p.detail, error: new NodewardenError('FORBIDDEN', p.detail, { retriable: false }) };
    }
    let detail = p.detail;
    if (node !== undefined && (p.type === 'patch' || (action === 'cordon' && !p.owned))) {
      const skipped = p.type === 'noop';
      detail += await this.event({
        object: node,
        decision,
        reason: action === 'cordon' ? (skipped ? 'NodewardenCordonSkipped' : 'NodewardenCordon') : 'NodewardenUncordon',
        type: action === 'cordon' && !skipped ? 'Warning' : 'Normal',
        action: action === 'cordon' ? 'Cordon' : 'Uncordon',
        message: skipped
          ? `nodewarden rule ${decision.rule} wanted to cordon this node (${decision.reason}) but it was already cordoned by someone else; left as is`
          : action === 'cordon'
            ? `Cordoned by nodewarden rule ${decision.rule}: ${decision.reason} (not drained; running pods keep running)`
            : `Uncordoned by nodewarden rule ${decision.rule}: ${decision.reason}`,
      });
    }
    this.log.info({ node: name, action, decision: decision.id, detail }, `${action} ${p.type === 'patch' ? 'done' : 'not needed'}`);
    return { ok: true, detail };
  }

  private async rollback(decision: Decision): Promise<ExecutionResult> {
    const { kind, name } = decision.target;
    const namespace = decision.target.namespace ?? 'default';
    if (kind !== 'Deployment' && kind !== 'DaemonSet') {
      return fail(new NodewardenError('REQUEST_INVALID', `rollback needs a Deployment or DaemonSet target, got ${kind}`), `rollback ${name}`);
    }
    let plan: RollbackPlan<unknown> | undefined;
    let obj: KubeObject | undefined;
    try {
      await this.withConflictRetry(`${kind} ${namespace}/${name}`, async () => {
        const now = this.clock.now();
        if (kind === 'Deployment') {
          const d = await this.api.getDeployment(namespace, name);
          obj = d;
          const rs = await this.api.listReplicaSets(namespace, selectorString(d.spec?.selector));
          const pl = planDeploymentRollback(d, rs, decision, now);
          plan = pl;
          if (pl.type === 'patch') obj = await this.api.patchDeployment(namespace, name, pl.patch);
        } else {
          const ds = await this.api.getDaemonSet(namespace, name);
          obj = ds;
          const crs = await this.api.listControllerRevisions(namespace, selectorString(ds.spec?.selector));
          const pl = planDaemonSetRollback(ds, crs, decision, now);
          plan = pl;
          if (pl.type === 'patch') obj = await this.api.patchDaemonSet(namespace, name, pl.patch);
        }
      });
    } catch (err) {
      return fail(err, `rollback ${kind} ${namespace}/${name}`);
    }
    const p = plan as RollbackPlan<unknown>;
    if (p.type === 'refuse') {
      return { ok: false, detail: p.detail, error: new NodewardenError(p.code, p.detail, { retriable: false }) };
    }
    let detail = p.detail;
    if (p.type === 'patch' && obj !== undefined) {
      detail += await this.event({
        object: obj,
        decision,
        reason: 'NodewardenRollback',
        type: 'Warning',
        action: 'Rollback',
        message: `Rolled back to revision ${p.toRevision} by nodewarden rule ${decision.rule}: ${decision.reason}`,
      });
    }
    this.log.info({ kind, namespace, name, decision: decision.id, toRevision: p.toRevision, detail }, 'rollback');
    return p.toRevision === undefined ? { ok: true, detail } : { ok: true, toRevision: p.toRevision, detail };
  }

  /** Records an Event (or queues it); its failure never fails the action already taken. Returns a detail suffix. */
  private async event(spec: Omit<Parameters<typeof buildEvent>[0], 'now' | 'instance'>): Promise<string> {
    if (!this.recordEvents) return '';
    const ev = buildEvent({ ...spec, now: this.clock.now(), instance: this.instance });
    if (this.queue) {
      if (this.waiting.length >= this.queue.max) {
        this.count('dropped', ev, `event queue full (${this.queue.max})`);
        return ' (Event not recorded: event queue full)';
      }
      this.waiting.push(ev);
      this.pump();
      return '';
    }
    const err = await this.create(ev);
    return err === undefined ? '' : ` (Event not recorded: ${err})`;
  }

  /** Creates one Event; the error message when it could not be recorded (logged and counted). */
  private async create(ev: WireEvent): Promise<string | undefined> {
    try {
      await this.api.createEvent(ev.metadata?.namespace ?? 'default', ev);
    } catch (err) {
      if (!isCode(err, 'CONFLICT')) {
        this.count('failed', ev, errorMessage(err));
        return errorMessage(err);
      }
      // AlreadyExists: a replay of the same decision, recorded before
    }
    this.count('recorded', ev);
    return undefined;
  }

  private count(result: EventResult, ev: WireEvent, why?: string): void {
    this.eventStats[result]++;
    this.eventsTotal.inc({ result });
    if (result !== 'recorded') this.log.warn({ event: ev.metadata?.name, involvedObject: ev.involvedObject.name, reason: ev.reason, result, err: why }, 'could not record Kubernetes Event');
  }

  /** Starts workers (up to the queue's concurrency) that create the queued Events in order. */
  private pump(): void {
    const q = this.queue;
    if (!q) return;
    while (this.workers < q.concurrency && this.waiting.length > 0) {
      this.workers++;
      void (async () => {
        for (let ev = this.waiting.shift(); ev !== undefined; ev = this.waiting.shift()) await this.create(ev);
        this.workers--;
        if (this.workers === 0 && this.waiting.length === 0) for (const resolve of this.idle.splice(0)) resolve();
      })();
    }
  }
}

export function createKubeExecutor(api: KubeApi, opts: KubeExecutorOptions): KubeExecutor {
  return new KubeExecutor(api, opts);
}
