/**
 * The only way the engine acts on the world. For each decision, in order:
 * guard.authorize → the executor for its action → one ledger record; once the
 * records of a submit are durable in EVERY ledger writer, guard.settle marks the
 * decisions `done` (ledger before settle: no decision is ever settled without
 * its record, so one whose ledger write failed is acted on again, idempotently,
 * and recorded when it is retried). A failed executor is settled at once
 * (outcome `failed`, feeds the breaker, frees its holds).
 *
 * Before anything else (incident routing, approvals, authorize), submit asks
 * the guard read-only (`peek`) where each decision stands: one already settled
 * (`idempotency`: a redelivered batch, a tick firing re-derived from the
 * outbox) is returned as `suppressed` but neither routed nor written again —
 * its record is already durable (one decision, one ledger record); one in
 * flight on a live replica is `inFlight` (below). A page the incident layer
 * suppresses is settled in the guard too, once its record is durable.
 * A decision the guard reports in flight elsewhere (`inFlight`) is not an
 * outcome: it is NOT written to the ledger, and comes back apart from the
 * records, in the result's `retryLater`; the caller submits it again later. A ledger
 * write that fails makes submit throw (retriable); records the caller cannot
 * regenerate (ticks, denial pages; `redeliverable: false`) are kept and
 * written before anything else at the next submit or flush.
 * In-flight leases (ADR 0026): every decision the guard allowed is renewed
 * every third of the lease until its settle; right before the ledger write the
 * remediator renews again (the fence): a decision whose lease another replica
 * took over is NOT written and NOT settled (it comes back in `retryLater`, the
 * other replica acts — idempotently — and records it); a renewal that fails
 * fails the write (retriable), like a ledger outage.
 * A denied action is never silent: denials of one guard, rule and group within
 * `denialWindowMs` become ONE page listing every denied target and the reason;
 * that page passes the guard too (page rate limit) and is a ledger record.
 * While that page is recent, later denials of the same group are recorded as a
 * suppressed page instead of paging again (one storm, one page).
 * Dry-run swaps every executor for the dry-run one at construction; the guard
 * still evaluates, so the ledger shows what would have been denied.
 *
 * With `incidents` (remediations/incidents), pages are grouped into incidents:
 * a page joins its group's incident (the opener is the trigger, the others are
 * `suppressed` with the incident's dedupKey and go out as grouped updates), a
 * resolve clears its member (the last one resolves the incident), a denial
 * page joins the open incident of its group as an immediate update, and an
 * acknowledged incident holds the actions of its group (`incidentAcknowledged`).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Clock } from '../core/clock.js';
import type { ActionKind, Decision, GuardName, LedgerRecord, Outcome, Severity } from '../core/decision.js';
import { backoffDelay } from '../core/backoff.js';
import { errorMessage, NodewardenError } from '../core/errors.js';
import { withTimeout } from '../core/timeout.js';
import type { Logger } from '../core/logger.js';
import type { Registry } from 'prom-client';
import type { ExecutionResult, Executor, Guard, GuardControl, GuardVerdict, Remediator, RetryLater, SubmitOptions, SubmitResult } from './ports.js';
import { createDryRunExecutor } from './dry-run.js';
import { createLeases, leaseLostRecord } from './leases.js';
import { DEFAULT_ACTION_TIMEOUT_MS, DEFAULT_IN_FLIGHT_TTL_MS, IN_FLIGHT_GUARD, targetKey } from './guard/policy.js';
import { buildLedgerRecord } from './ledger/record.js';
import type { LedgerWriter } from './ledger/store.js';
import { RemediationMetrics } from './ledger/metrics.js';
import type { Pager } from './pager/pager.js';
import { createPagerExecutor, groupLabel } from './pager/pager-executor.js';
import { boundedDedupKey } from './pager/pager.js';
import type { IncidentPaging, Routed } from './incidents/incident-paging.js';
import type { Incident } from './incidents/incident.js';
import { memberOf } from './incidents/incident.js';
import type { Approval, Approvals } from './approvals/approvals.js';
import { CORDON_ONLY, type DeviceIsolation } from './device-isolation.js';

export interface RemediatorOptions {
  guard: Guard & Partial<GuardControl>;
  executors: readonly Executor[];
  ledger: readonly LedgerWriter[];
  /** Pagers for denial pages; when absent the executor registered for `page` sends them. */
  pager?: Pager | readonly Pager[];
  clock: Clock;
  logger: Logger;
  /** Metrics go here (nodewarden_actions_total, …); none when absent. */
  registry?: Registry;
  /** Shadow mode: every action goes to the dry-run executor (or to one of `dryRunExecutors`). */
  dryRun?: boolean;
  /**
   * Executors that carry out shadow mode themselves, used instead of the
   * generic dry-run one for their actions (the device-taint executor: effect `None`).
   */
  dryRunExecutors?: readonly Executor[];
  /** GPU taint or node cordon (device-isolation.ts); absent: every GPU taint cordons the node. */
  isolation?: DeviceIsolation;
  /** Denials of one guard+rule+group within this window become one page (default 30 s). */
  denialWindowMs?: number;
  /**
   * After a denial page for a guard+rule+group, later denials of that group are
   * not paged again for this long (default 1 h): the incident is open, the storm
   * is one event for the human. They stay in the ledger, with a `suppressed`
   * page record listing the targets. Per replica.
   */
  denialRenotifyMs?: number;
  /**
   * Bound on one executor call and on one ledger write (default 30 s). An
   * executor that times out is `failed`.
   */
  actionTimeoutMs?: number;
  /**
   * The guard's in-flight lease (its `inFlightTtlMs`, config `guard.inFlightLease`;
   * default 15 s, 3 s to 10 min): every lease this replica holds is renewed
   * every third of it from authorize until settle, and once more right before
   * the ledger write (the fence, ADR 0026).
   */
  leaseMs?: number;
  /**
   * Send due denial pages from a wall-clock timer too (live engine; default true).
   * Replay turns it off and calls flush() at the end, since its clock is virtual.
   */
  autoFlush?: boolean;
  /**
   * Retry of a cordon/uncordon/rollback that failed (or was stopped by an open
   * breaker): same decision id, after back-off, off the caller's path (the
   * flush timer runs them). When attempts are exhausted, one page per rule and
   * group says the action could not be carried out. Default 5 attempts in all,
   * back-off from 5 s to 60 s (about 75 s at most); `maxAttempts: 1` disables.
   */
  actionRetry?: { maxAttempts: number; baseMs: number; maxMs: number; maxPending?: number };
  /**
   * Cordons and GPU taints of one submit that the guard authorized are carried
   * out up to this many at a time (ADR 0041; config `guard.actionConcurrency`,
   * 1..64). Admission (the guard) stays one decision at a time in batch order,
   * two decisions on one node never overlap, ledger records keep batch order
   * and are written after every execution. Default 1: one at a time.
   */
  actionConcurrency?: number;
  /** Group pages into incidents (remediations/incidents); absent: every page is sent as it comes. */
  incidents?: IncidentPaging;
  /** Actions that need a person's approval (remediations/approvals); absent: none do. */
  approvals?: Approvals;
  /** Called once when an approval is requested (the interactive Slack message); errors are logged. */
  onApprovalRequested?: (a: Approval) => Promise<void>;
  /** Called once (on one replica) when an approval's outcome is acted on: run, denied or timed out. */
  onApprovalDecided?: (a: Approval) => Promise<void>;
}

/**
 * Inside the remediator (and the ladder that sees its steps the same way), a
 * decision in flight elsewhere is carried as a record with guard `inFlight`:
 * never written, never returned as a record (`splitRecords`).
 */
export function isRetryLater(r: LedgerRecord): boolean {
  return r.guard === IN_FLIGHT_GUARD;
}

/** The records of a submit, and apart the decisions in flight elsewhere. */
export function splitRecords(all: readonly LedgerRecord[]): SubmitResult {
  const out: SubmitResult = { records: [], retryLater: [] };
  for (const r of all) {
    if (!isRetryLater(r)) {
      out.records.push(r);
      continue;
    }
    const inFlight = r.details?.guardReason;
    out.retryLater.push({ decisionId: r.decisionId ?? '?', rule: r.rule, action: r.action, target: r.target, reason: r.reason, inFlight: typeof inFlight === 'string' ? inFlight : 'in flight elsewhere', ts: r.ts });
  }
  return out;
}

/** The inverse of `splitRecords` for one decision: how the repair ladder reads a step in flight elsewhere (not done: asked again). */
export function retryLaterRecord(r: RetryLater): LedgerRecord {
  return { ts: r.ts, rule: r.rule, action: r.action, target: r.target, outcome: 'suppressed', reason: r.reason, guard: IN_FLIGHT_GUARD, decisionId: r.decisionId, details: { guardReason: r.inFlight } };
}

/**
 * A record submit returns for a decision that was already carried out or
 * decided (the guard's idempotency record, or the same decision twice in one
 * submit): not written again, one decision attempt has one ledger record.
 */
export function isReplayed(r: LedgerRecord): boolean {
  return r.guard === 'idempotency';
}


interface Denied {
  decisionId: string;
  action: ActionKind;
  target: string;
  reason: string;
}

interface DenialGroup {
  key: string;
  /** `denied`: a guard stopped the actions; `failed`: they were tried and could not be carried out. */
  kind: 'denied' | 'failed';
  /** The guard that denied, or `actionFailed` for a failed group. */
  guard: GuardName | 'actionFailed';
  rule: string;
  /** The incident the denied decisions' pages join (their rule's `incident:`). */
  incident: string | undefined;
  group: Record<string, string> | undefined;
  firstAt: number;
  severity: Severity;
  items: Denied[];
}

/** Pages and resolves are not paged about when denied: that would loop. */
const PAGE_ACTIONS: ReadonlySet<ActionKind> = new Set(['page', 'resolve']);

/** Guard verdicts that pass by themselves (the breaker half-opens), so the action is retried. */
const RETRIED_GUARDS: ReadonlySet<GuardName> = new Set(['circuitOpen']);

/** A failed action waiting for its next attempt. */
interface PendingRetry {
  decision: Decision;
  /** Attempts made so far. */
  attempts: number;
  dueAt: number;
  lastError: string;
}

/** One handled decision: its record, and the settle to run once that record is durable. */
interface Handled {
  rec: LedgerRecord;
  settle: (() => Promise<void>) | null;
  /** A failed action whose error may pass by itself (5xx, timeout, conflict): worth retrying. */
  retriable?: boolean;
}

/** A decision the guard let through, not yet carried out (its lease is held). */
interface Admitted {
  verdict: GuardVerdict;
  started: number;
}

/** Actions whose executions within one submit may overlap (ADR 0041): node-level isolation, guarded by the budget. */
const CONCURRENT_ACTIONS: ReadonlySet<ActionKind> = new Set(['cordon', 'taint']);

/** Records not yet durable in every ledger writer, with the settles waiting for them. */
interface Owed {
  records: LedgerRecord[];
  settles: Array<() => Promise<void>>;
}

/** A long-lived service: a pending action's timer does not hold the process open. */
const UNREF = { unref: true } as const;

export function createRemediator(o: RemediatorOptions): Remediator {
  const logger = o.logger.child({ component: 'remediator' });
  const windowMs = o.denialWindowMs ?? 30_000;
  const actionTimeoutMs = o.actionTimeoutMs ?? DEFAULT_ACTION_TIMEOUT_MS;
  const leaseMs = o.leaseMs ?? DEFAULT_IN_FLIGHT_TTL_MS;
  if (!Number.isInteger(leaseMs) || leaseMs < 3000 || leaseMs > 600_000) throw new NodewardenError('CONFIG_INVALID', `remediator: in-flight lease ${leaseMs} ms is outside 3 s .. 10 min`);
  // renewed while the action(s) of a submit and its ledger write can take; a lease held longer lapses (the fence still decides)
  const leases = createLeases(o.guard, leaseMs, Math.max(4 * actionTimeoutMs, 2 * leaseMs), logger);
  let owed: Owed = { records: [], settles: [] };
  const metrics = o.registry ? new RemediationMetrics(o.registry, { guard: o.guard.status ? (o.guard as GuardControl) : undefined, logger }) : undefined;
  const dryRunExecutor = createDryRunExecutor({ logger });
  const byAction = new Map<ActionKind, Executor>();
  for (const e of o.executors) for (const a of e.actions) if (!byAction.has(a)) byAction.set(a, e);
  const pagers = o.pager === undefined ? undefined : Array.isArray(o.pager) ? (o.pager as readonly Pager[]) : [o.pager as Pager];
  const denialPager: Executor | undefined = pagers ? createPagerExecutor({ pagers, logger }) : byAction.get('page');
  const ownDryRun = new Map<ActionKind, Executor>();
  for (const e of o.dryRunExecutors ?? []) for (const a of e.actions) if (!ownDryRun.has(a)) ownDryRun.set(a, e);
  const executorFor = (a: ActionKind): Executor | undefined => (o.dryRun ? (ownDryRun.get(a) ?? dryRunExecutor) : byAction.get(a));
  const isolation = o.isolation ?? CORDON_ONLY;
  const denialExecutor = (): Executor | undefined => (o.dryRun ? dryRunExecutor : denialPager);

  const denials = new Map<string, DenialGroup>();
  const renotifyMs = o.denialRenotifyMs ?? 3_600_000;
  const lastPaged = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const retryPolicy = { maxAttempts: 5, baseMs: 5000, maxMs: 60_000, maxPending: 10_000, ...o.actionRetry };
  const retries = new Map<string, PendingRetry>();
  const concurrency = o.actionConcurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new NodewardenError('CONFIG_INVALID', `remediator: action concurrency ${concurrency} is outside 1 .. 64`);
  const slots = semaphore(concurrency);
  // where a submit's time goes (debug log 'submit phases'): wall ms and calls per step
  // (one map per submit: the completion of one submit may overlap the start of the next, ADR 0050)
  const submitPhases = new AsyncLocalStorage<Map<string, { calls: number; ms: number }>>();
  const timed = async <T>(phase: string, f: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    try {
      return await f();
    } finally {
      const phases = submitPhases.getStore();
      if (phases) {
        const p = phases.get(phase) ?? { calls: 0, ms: 0 };
        p.calls++;
        p.ms += performance.now() - t;
        phases.set(phase, p);
      }
    }
  };
  let retrying = false;
  if (o.autoFlush ?? true) {
    timer = setInterval(() => {
      void flushDue(o.clock.now()).catch((err: unknown) => logger.error({ err: errorMessage(err) }, 'denial page flush failed'));
    }, Math.max(250, Math.min(5000, Math.floor(windowMs / 4))));
    timer.unref();
  }

  async function handle(d: Decision, executor: Executor | undefined): Promise<Handled> {
    const a = await admit(d, executor);
    return 'rec' in a ? a : await execute(d, executor, a);
  }

  /** The guard's answer for one decision: a record (refused, degraded page) or the go-ahead, its lease held. */
  async function admit(d: Decision, executor: Executor | undefined): Promise<Handled | Admitted> {
    const started = performance.now();
    let verdict: GuardVerdict;
    try {
      verdict = await timed('authorize', () => o.guard.authorize(d));
    } catch (err) {
      // fail closed: no guard answer, no action — except a page, which goes out marked degraded
      // (a human must hear about a hardware fault even while the guard's store is down)
      verdict = guardDown(err);
      if (PAGE_ACTIONS.has(d.action) && executor) return await degradedPage(d, executor, verdict.reason ?? 'guard unavailable');
    }
    if (!verdict.allowed) return refused(d, verdict);
    leases.hold(d.id);
    return { verdict, started };
  }

  /** Carries out an admitted decision: its record, and its settle (a failure is settled at once). Never throws. */
  async function execute(d: Decision, executor: Executor | undefined, { verdict, started }: Admitted): Promise<Handled> {
    let result: ExecutionResult;
    if (!executor) {
      result = { ok: false, error: new NodewardenError('NOT_FOUND', `no executor for action ${d.action}`) };
    } else {
      try {
        result = await timed('execute', () => withTimeout(executor.execute(d), actionTimeoutMs, `${d.action} of ${targetKey(d.target)}`, UNREF));
      } catch (err) {
        result = { ok: false, error: err instanceof NodewardenError ? err : new NodewardenError('INTERNAL', errorMessage(err), { cause: err }) };
      }
    }
    const outcome: Outcome = !result.ok ? 'failed' : result.dryRun ? 'dry-run' : 'executed';
    const rec = buildLedgerRecord({ decision: d, outcome, now: o.clock.now(), verdict, result });
    metrics?.duration.observe({ action: d.action }, (performance.now() - started) / 1000);
    if (outcome === 'failed') logger.error({ decisionId: d.id, rule: d.rule, action: d.action, target: d.target, err: rec.error }, `${d.action} failed`);
    else logger.info({ decisionId: d.id, rule: d.rule, action: d.action, target: d.target, outcome }, `${d.action} ${outcome}`);
    const settle = async (): Promise<void> => {
      // a lease lost at the fence (another replica took the decision over) or given up is not settled here
      if (!leases.release(d.id)) return;
      try {
        await timed('settle', () => o.guard.settle(d, verdict, result));
      } catch (err) {
        // an unsettled success stays in flight until its lease lapses; failures' holds expire by themselves
        logger.error({ decisionId: d.id, err: errorMessage(err) }, 'guard settle failed');
      }
    };
    if (!result.ok) {
      // a failure changed nothing: free its holds and feed the breaker now, so later decisions see it
      await settle();
      return { rec, settle: null, retriable: result.error?.retriable ?? true };
    }
    leases.recordOf(rec, d.id);
    return { rec, settle };
  }

  /** A decision the guard (or the incident layer) did not let through: its record, and the settle that remembers the outcome. */
  function refused(d: Decision, verdict: GuardVerdict): Handled {
    const rec = buildLedgerRecord({ decision: d, outcome: verdict.outcome ?? 'denied', now: o.clock.now(), verdict });
    if (verdict.guard === IN_FLIGHT_GUARD) {
      logger.info({ decisionId: d.id, rule: d.rule, action: d.action, target: d.target, reason: verdict.reason }, `${d.action} in flight elsewhere: retry later`);
      return { rec, settle: null };
    }
    logger.warn({ decisionId: d.id, rule: d.rule, action: d.action, target: d.target, guard: verdict.guard, reason: verdict.reason }, `${d.action} ${rec.outcome}`);
    return { rec, settle: remember(d, verdict) };
  }

  /** A decision the acknowledged incident of its group holds. */
  function heldRecord(d: Decision, held: Incident): Handled {
    const reason = `incident ${held.dedupKey} acknowledged by ${held.ack?.by ?? '?'} (${held.ack?.via ?? '?'}): automated actions on its group are held`;
    return { rec: buildLedgerRecord({ decision: d, outcome: 'suppressed', now: o.clock.now(), verdict: { allowed: false, guard: 'incidentAcknowledged', outcome: 'suppressed', reason } }), settle: null };
  }

  /** The settle of a refused decision: the guard remembers its outcome, so the same decision again is `idempotency` and not recorded twice. */
  function remember(d: Decision, verdict: GuardVerdict): () => Promise<void> {
    return async (): Promise<void> => {
      try {
        await timed('settleDenial', () => o.guard.settle(d, verdict, { ok: false }));
      } catch (err) {
        // not remembered: a redelivery decides it again (no action was taken)
        logger.warn({ decisionId: d.id, err: errorMessage(err) }, 'guard could not record the denial');
      }
    };
  }

  /** A page sent without the guard (its store is down): no rate limit, marked degraded in the page and the ledger. */
  async function degradedPage(d: Decision, executor: Executor, why: string): Promise<Handled> {
    const marked: Decision = { ...d, reason: `[degraded: ${why}] ${d.reason}`, evidence: { ...d.evidence, degraded: why } };
    let result: ExecutionResult;
    try {
      result = await withTimeout(executor.execute(marked), actionTimeoutMs, `${d.action} of ${targetKey(d.target)}`, UNREF);
    } catch (err) {
      result = { ok: false, error: err instanceof NodewardenError ? err : new NodewardenError('INTERNAL', errorMessage(err), { cause: err }) };
    }
    const outcome: Outcome = !result.ok ? 'failed' : result.dryRun ? 'dry-run' : 'executed';
    logger.warn({ decisionId: d.id, rule: d.rule, action: d.action, outcome, why }, `${d.action} sent degraded (guard unavailable)`);
    return { rec: buildLedgerRecord({ decision: d, outcome, now: o.clock.now(), result, details: { degraded: why } }), settle: null };
  }

  function noteDenial(d: Decision, rec: LedgerRecord, now: number): void {
    if (rec.outcome !== 'denied' || rec.guard === null || PAGE_ACTIONS.has(d.action)) return;
    if (RETRIED_GUARDS.has(rec.guard) && retries.has(d.id)) return; // paged about when its retries run out
    addToGroup('denied', rec.guard, d, typeof rec.details?.guardReason === 'string' ? rec.details.guardReason : '', now);
  }

  function addToGroup(kind: DenialGroup['kind'], guard: DenialGroup['guard'], d: Decision, reason: string, now: number): void {
    const gl = groupLabel(d.group) ?? 'fleet';
    const key = `${kind === 'failed' ? 'failed:' : ''}${guard}|${d.rule}|${gl}`;
    let g = denials.get(key);
    if (!g) {
      g = { key, kind, guard, rule: d.rule, incident: d.incident, group: d.group, firstAt: now, severity: 'warning', items: [] };
      denials.set(key, g);
    }
    if (d.severity === 'critical' || kind === 'failed') g.severity = 'critical';
    if (g.items.some((i) => i.decisionId === d.id)) return; // a redelivered decision, denied again
    g.items.push({ decisionId: d.id, action: d.action, target: targetKey(d.target), reason });
  }

  /** After a failed attempt (or an open breaker): schedule the next one, or page that it could not be done. */
  function noteFailure(d: Decision, rec: LedgerRecord, now: number, attempts: number, retriable = true): void {
    if (PAGE_ACTIONS.has(d.action) || o.dryRun) return;
    const failed = rec.outcome === 'failed';
    const breaker = rec.outcome === 'denied' && rec.guard !== null && RETRIED_GUARDS.has(rec.guard);
    if (!failed && !breaker) {
      retries.delete(d.id);
      return;
    }
    const lastError = rec.error ?? (typeof rec.details?.guardReason === 'string' ? rec.details.guardReason : rec.outcome);
    // a refusal (403, a workload that must not be rolled back) is final: page at once
    if (retriable && attempts < retryPolicy.maxAttempts && (retries.has(d.id) || retries.size < retryPolicy.maxPending)) {
      const dueAt = now + backoffDelay(attempts, retryPolicy);
      retries.set(d.id, { decision: d, attempts, dueAt, lastError });
      logger.warn({ decisionId: d.id, action: d.action, target: d.target, attempts, retryAt: new Date(dueAt).toISOString(), err: lastError }, `${d.action} will be retried`);
      return;
    }
    retries.delete(d.id);
    addToGroup('failed', 'actionFailed', d, `${attempts} attempt(s), last: ${lastError}`, now);
    logger.error({ decisionId: d.id, action: d.action, target: d.target, attempts, err: lastError }, `${d.action} could not be carried out`);
  }

  /** Runs the retries that are due (one at a time: bounded concurrency, never on the consumer's path). */
  async function runRetries(now: number): Promise<LedgerRecord[]> {
    if (retrying) return [];
    retrying = true;
    const out: LedgerRecord[] = [];
    try {
      const due = [...retries.values()].filter((r) => r.dueAt <= now);
      for (const r of due) {
        if (closed && !retries.has(r.decision.id)) continue;
        const h = await handle(r.decision, executorFor(r.decision.action));
        h.rec.details = { ...h.rec.details, attempt: r.attempts + 1 };
        if (isRetryLater(h.rec)) {
          // another replica holds it now: leave it to that one
          retries.delete(r.decision.id);
          continue;
        }
        await commit([h], () => true);
        noteFailure(r.decision, h.rec, o.clock.now(), r.attempts + 1, h.retriable);
        out.push(h.rec);
      }
    } finally {
      retrying = false;
    }
    return out;
  }

  function denialPage(g: DenialGroup, now: number): Decision {
    const gl = groupLabel(g.group);
    const actions = [...new Set(g.items.map((i) => i.action))].join('/');
    const targets = g.items.map((i) => i.target.replace(/^Node\//, ''));
    const shown = targets.slice(0, 20).join(', ') + (targets.length > 20 ? `, … (${targets.length} in all)` : '');
    const what =
      g.kind === 'failed'
        ? `${g.items.length} ${actions} action(s) of rule ${g.rule}${gl ? ` in ${gl}` : ''} could not be carried out`
        : `guard ${g.guard} stopped ${g.items.length} ${actions} action(s) of rule ${g.rule}${gl ? ` in ${gl}` : ''}`;
    return {
      id: `denial:${g.key}:${g.firstAt}`,
      at: now,
      rule: g.rule,
      action: 'page',
      target: gl ? { kind: 'Group', name: gl } : { kind: 'Fleet', name: 'fleet' },
      reason: `${what}: ${shown}. ${g.items[0]?.reason ?? ''}`,
      severity: g.severity,
      dedupKey: boundedDedupKey(`nodewarden:${g.kind}:${g.guard}:${g.rule}:${gl ?? 'fleet'}`),
      ...(g.group ? { group: g.group } : {}),
      ...(g.incident ? { incident: g.incident } : {}),
      evidence: { guard: g.guard, denied: g.items },
    };
  }

  /** Sends or records a page/resolve the incident layer routed. */
  async function sendRouted(r: Routed, d: Decision): Promise<Handled> {
    const inc = o.incidents as IncidentPaging;
    if (r.kind === 'suppressed') {
      const verdict: GuardVerdict = { allowed: false, guard: r.guard, outcome: 'suppressed', reason: r.reason };
      const rec = buildLedgerRecord({ decision: { ...d, dedupKey: r.dedupKey }, outcome: 'suppressed', now: o.clock.now(), verdict, ...(r.nodes ? { details: { nodes: r.nodes } } : {}) });
      logger.info({ decisionId: d.id, rule: d.rule, dedupKey: r.dedupKey, guard: r.guard }, `${d.action} suppressed`);
      // settled once its record is durable (ledger before settle): re-derived or redelivered, the page is then
      // `idempotency` at the guard's peek, neither routed to its incident nor recorded again; a failed write keeps it routable
      return { rec, settle: remember(d, verdict) };
    }
    const h = await handle(r.decision, executorFor(r.decision.action));
    h.rec.details = { ...h.rec.details, incident: { event: r.event, seq: r.seq }, nodes: r.nodes };
    if (r.event !== 'resolve' || r.seq > 0) {
      const delivered = h.rec.outcome === 'executed' || h.rec.outcome === 'dry-run';
      await inc.settleSend(r.dedupKey, r.seq, delivered).catch((err: unknown) => logger.error({ dedupKey: r.dedupKey, err: errorMessage(err) }, 'incident send not settled'));
    }
    return h;
  }

  /** An action that needs approval: asks for it, or runs / denies it as a person (or the timeout) decided. */
  async function gated(d: Decision, approvals: Approvals): Promise<Handled> {
    const g = await approvals.gate(d);
    const a = g.approval;
    const now = o.clock.now();
    if ((g.kind === 'run' || g.kind === 'denied') && o.onApprovalDecided)
      await o.onApprovalDecided(a).catch((err: unknown) => logger.error({ decisionId: d.id, err: errorMessage(err) }, 'approval outcome not delivered'));
    if (g.kind === 'run') {
      const h = await handle(d, executorFor(d.action));
      h.rec.details = { ...h.rec.details, approval: { by: a.by, via: a.via } };
      return h;
    }
    if (g.kind === 'pending') {
      const reason = `waiting for approval until ${new Date(a.deadline).toISOString()} (approve: nodewarden ctl approve ${d.id})`;
      if (g.created && o.onApprovalRequested)
        await o.onApprovalRequested(a).catch((err: unknown) => logger.error({ decisionId: d.id, err: errorMessage(err) }, 'approval request not delivered'));
      const rec = buildLedgerRecord({ decision: d, outcome: 'pending-approval', now, details: { guardReason: reason } });
      logger.info({ decisionId: d.id, rule: d.rule, action: d.action, target: d.target }, `${d.action} pending approval`);
      return { rec, settle: null };
    }
    if (g.kind === 'done') {
      const reason = `decision ${d.id} already ${a.state === 'executed' ? 'approved and run' : 'denied'}; not acting twice`;
      return { rec: buildLedgerRecord({ decision: d, outcome: 'suppressed', now, verdict: { allowed: false, guard: 'idempotency', outcome: 'suppressed', reason } }), settle: null };
    }
    const timedOut = a.state === 'expired';
    const reason = timedOut ? `no approval within the timeout (requested ${new Date(a.requestedAt).toISOString()})` : `denied by ${a.by ?? '?'} via ${a.via ?? '?'}`;
    const rec = buildLedgerRecord({ decision: d, outcome: 'denied', now, verdict: { allowed: false, guard: timedOut ? 'approvalTimeout' : 'approvalDenied', outcome: 'denied', reason }, details: { approval: { by: a.by, via: a.via } } });
    return { rec, settle: null };
  }

  /** Incident triggers/updates due now (group-wait, group-interval, repeat-interval); none while the incident store is down. */
  async function sendDueIncidents(): Promise<Handled[]> {
    if (!o.incidents) return [];
    const due = await o.incidents.due().catch((err: unknown) => {
      logger.warn({ err: errorMessage(err) }, 'incident store unavailable: due incident updates wait for it');
      return [];
    });
    const out: Handled[] = [];
    for (const r of due) out.push(await sendRouted(r, r.decision));
    return out;
  }

  /** The incident store failed routing a page: the reason, logged; the caller sends the page as it comes. */
  function incidentStoreDown(d: Decision, err: unknown): string {
    const why = `incident store unavailable: ${errorMessage(err)}`;
    logger.warn({ decisionId: d.id, rule: d.rule, action: d.action, err: errorMessage(err) }, `${d.action} sent without incident grouping`);
    return why;
  }

  /**
   * A page or resolve sent as it comes, without its incident: the incident store is the guard's (Redis), so while
   * it is down the page goes out degraded when the guard is down too; a human must hear it. The incident resumes with the store.
   */
  async function ungrouped(d: Decision, why: string): Promise<Handled> {
    const h = await handle(d, executorFor(d.action));
    h.rec.details = { ...h.rec.details, incidentUnavailable: why };
    return h;
  }

  /** Facts for the incident: `cordon executed`, `cordon denied by maxUnavailable`. */
  const factOf = (rec: LedgerRecord): string => `${rec.action} ${rec.outcome}${rec.guard ? ` by ${rec.guard}` : ''}`;

  /** Appends to every ledger writer (each bounded by the action timeout); throws if any failed. */
  async function writeLedger(records: readonly LedgerRecord[]): Promise<void> {
    if (records.length === 0) return;
    const results = await Promise.allSettled(o.ledger.map((sink) => withTimeout(sink.append(records), actionTimeoutMs, `ledger write to ${sink.name}`, UNREF)));
    let first: unknown;
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      const sink = o.ledger[i];
      metrics?.ledgerErrors.inc({ sink: sink?.name ?? '?' });
      logger.error({ sink: sink?.name, records: records.length, err: errorMessage(r.reason) }, 'ledger write failed');
      first ??= r.reason;
    });
    if (first !== undefined) throw new NodewardenError('UNAVAILABLE', `ledger write failed: ${errorMessage(first)}`, { retriable: true, cause: first });
    for (const r of records) metrics?.record(r);
  }

  /** Writes the records, then runs their settles; on failure keeps what `keep` selects for the next write. */
  async function commit(handled: Handled[], keep: (h: Handled) => boolean): Promise<void> {
    // a replayed decision (already done: its record is durable, ledger before settle) is not recorded again
    const writable = handled.filter((h) => !isRetryLater(h.rec) && !isReplayed(h.rec));
    try {
      // the fence: a decision another replica took over is neither written nor settled here
      const lost = await timed('fence', () => leases.fence(writable.map((h) => h.rec)));
      const records = writable.filter((h) => !lost.has(h.rec)).map((h) => h.rec);
      for (const h of writable) if (lost.has(h.rec)) h.rec = leaseLostRecord(h.rec);
      await timed('ledger', () => writeLedger(records));
    } catch (err) {
      const kept = handled.filter((h) => !isRetryLater(h.rec) && !isReplayed(h.rec) && keep(h));
      // records left to a redelivery: their leases are not renewed any more (the redelivery takes them over)
      const keptSet = new Set(kept);
      for (const h of writable) if (!keptSet.has(h)) leases.giveUp(h.rec);
      owed = {
        records: [...owed.records, ...kept.map((h) => h.rec)],
        settles: [...owed.settles, ...kept.flatMap((h) => (h.settle ? [h.settle] : []))],
      };
      throw err;
    }
    // issued together, in order (ADR 0044): on one connection the guard's store runs them in that order; each handles its own failure
    const settles = handled.flatMap((h) => (h.settle && !isRetryLater(h.rec) ? [h.settle] : []));
    await timed('settles', () => Promise.all(settles.map((settle) => settle())));
  }

  /** Writes (and settles) records a failed write left behind; throws while the ledger still fails. */
  async function payOwed(): Promise<LedgerRecord[]> {
    if (owed.records.length === 0) return [];
    const due = owed;
    owed = { records: [], settles: [] };
    let written: LedgerRecord[];
    try {
      // fenced again: a lease may have been taken over while the ledger was down (its settle then does nothing)
      const lost = await leases.fence(due.records);
      written = due.records.filter((r) => !lost.has(r));
      await writeLedger(written);
    } catch (err) {
      owed = { records: [...due.records, ...owed.records], settles: [...due.settles, ...owed.settles] };
      throw err;
    }
    for (const settle of due.settles) await settle();
    logger.info({ records: written.length }, 'ledger records of an earlier failed write are now durable');
    return written;
  }

  async function sendDenialPages(due: DenialGroup[], now: number): Promise<Handled[]> {
    const out: Handled[] = [];
    for (const g of due) {
      const page = denialPage(g, now);
      const pagedAt = lastPaged.get(g.key);
      const recent = pagedAt !== undefined && now - pagedAt < renotifyMs;
      const routed = o.incidents ? await o.incidents.routeDenial(page, !recent).catch((err: unknown) => (incidentStoreDown(page, err), null)) : null;
      if (routed) {
        // the denial joins its group's open incident: an update, or a suppressed record that names the targets
        const h = await sendRouted(routed, page);
        if (h.rec.outcome === 'executed' || h.rec.outcome === 'dry-run') lastPaged.set(g.key, now);
        out.push(h);
        continue;
      }
      if (recent) {
        const reason = `denial page for this group already sent ${Math.round((now - pagedAt) / 1000)}s ago; not paging again`;
        out.push({ rec: buildLedgerRecord({ decision: page, outcome: 'suppressed', now, verdict: { allowed: false, guard: 'denialPageOpen', outcome: 'suppressed', reason } }), settle: null });
        continue;
      }
      const h = await handle(page, denialExecutor());
      const rec = h.rec;
      if (rec.outcome === 'executed' || rec.outcome === 'dry-run') lastPaged.set(g.key, now);
      if (rec.outcome === 'denied') logger.error({ rule: g.rule, guard: g.guard, denied: g.items.length, pageGuard: rec.guard }, 'denial page itself denied');
      out.push(h);
    }
    return out;
  }

  function takeDue(now: number, all: boolean): DenialGroup[] {
    const due: DenialGroup[] = [];
    for (const [k, g] of denials) {
      if (all || now - g.firstAt >= windowMs) {
        due.push(g);
        denials.delete(k);
      }
    }
    return due;
  }

  async function flushDue(now: number): Promise<LedgerRecord[]> {
    const paid = await payOwed();
    const retried = await runRetries(now);
    if (retried.length > 0) paid.push(...retried);
    const approved = await submitApprovalsDue();
    const hs = [...(await sendDenialPages(takeDue(now, false), now)), ...(await sendDueIncidents())];
    await commit(hs, () => true);
    return [...paid, ...approved, ...hs.map((h) => h.rec)];
  }

  /** Denial pages are never regenerated by a redelivery: their records are always kept. */
  const isDenialPage = (h: Handled): boolean => h.rec.decisionId?.startsWith('denial:') === true || h.rec.decisionId?.startsWith('incident:') === true;

  /** Decisions a person (or the timeout) decided since, on any replica: run or denied now. */
  async function submitApprovalsDue(): Promise<LedgerRecord[]> {
    if (!o.approvals) return [];
    const due = await o.approvals.due();
    return due.length ? submitAll(due) : [];
  }

  return {
    get pendingRetries(): number {
      return retries.size;
    },
    submit: async (decisions, options) => splitRecords(await submitAll(decisions, options)),
    async begin(decisions, options) {
      const rest = await beginAll(decisions, options ?? {}, true);
      return async () => splitRecords(await rest());
    },
    async flush(): Promise<SubmitResult> {
      // approvals first: a denial they record is paged by this same flush
      const approved = await submitApprovalsDue();
      const now = o.clock.now();
      const paid = await payOwed();
      paid.push(...(await runRetries(now)));
      if (closed) {
        // stopping: what is still waiting for a retry will not be tried by this replica; say so
        for (const r of retries.values()) addToGroup('failed', 'actionFailed', r.decision, `${r.attempts} attempt(s), engine stopping before the next; last: ${r.lastError}`, now);
        retries.clear();
      }
      const hs = [...(await sendDenialPages(takeDue(now, true), now)), ...(await sendDueIncidents())];
      await commit(hs, () => true);
      return splitRecords([...approved, ...paid, ...hs.map((h) => h.rec)]);
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (timer) clearInterval(timer);
      await this.flush();
      leases.stop();
    },
  };

  /** The guard's read-only answer per decision; all null (each goes on to authorize) when it cannot be asked. */
  async function peek(ds: readonly Decision[], options: SubmitOptions): Promise<ReadonlyArray<GuardVerdict | null>> {
    if (ds.length === 0 || options.storeDown) return [];
    try {
      return await timed('peek', () => o.guard.peek(ds));
    } catch (err) {
      logger.warn({ decisions: ds.length, err: errorMessage(err) }, 'guard peek failed: each decision goes on to authorize');
      return [];
    }
  }

  /**
   * Which decisions of a submit go first and may overlap (ADR 0041): cordons and GPU taints
   * that need no approval, unless an earlier decision of the batch left in order names the
   * same node, the same incident member or the same decision id, or is anything but a page
   * or resolve (a rollback, a repair step: everything after it stays in batch order).
   * None with `actionConcurrency` 1: the submit is exactly sequential.
   */
  function hoistable(ds: readonly Decision[]): boolean[] {
    if (concurrency <= 1) return ds.map(() => false);
    const blocked = new Set<string>();
    let barrier = false;
    return ds.map((d) => {
      const keys = [nodeKey(d), `member:${d.rule}|${memberOf(d)}`, `id:${d.id}`];
      const ok = !barrier && CONCURRENT_ACTIONS.has(d.action) && !(o.approvals?.required(d) === true && !o.dryRun) && !keys.some((k) => blocked.has(k));
      if (!ok) {
        for (const k of keys) blocked.add(k);
        if (!PAGE_ACTIONS.has(d.action)) barrier = true;
      }
      return ok;
    });
  }

  /** One submit: every record, the ones in flight elsewhere included (`splitRecords` parts them). */
  async function submitAll(decisions: readonly Decision[], options: SubmitOptions = {}): Promise<LedgerRecord[]> {
    return (await beginAll(decisions, options, false))();
  }

  /**
   * A submit up to the end of its concurrent cordons (ADR 0050), and the rest of it (incident facts, the
   * pages and resolves in order, denial pages, due incident updates, the ledger write and the settles) as
   * the function returned. With `split`, the rest is left to the caller only when it carries out no action
   * on the cluster (every decision left in order is a page or a resolve); otherwise it is run here first.
   */
  async function beginAll(decisions: readonly Decision[], options: SubmitOptions, split: boolean): Promise<() => Promise<LedgerRecord[]>> {
    const phases = new Map<string, { calls: number; ms: number }>();
    return submitPhases.run(phases, () => beginIn(phases, decisions, options, split));
  }

  async function beginIn(phases: Map<string, { calls: number; ms: number }>, decisions: readonly Decision[], options: SubmitOptions, split: boolean): Promise<() => Promise<LedgerRecord[]>> {
    const submitStarted = performance.now();
    // an earlier write still owed goes first: while the ledger fails, nothing new is acted on
    await payOwed();
    const out: Handled[] = [];
    out.push(...(await sendDenialPages(takeDue(o.clock.now(), false), o.clock.now())));
    // the same decision twice in one submit: its first record is not durable (nor settled) yet
    const seen = new Map<string, LedgerRecord>();
    // what this submit did to each member, for the page of the same firing that follows
    const facts = new Map<string, string[]>();
    const factKey = (d: Decision): string => `${d.rule}|${memberOf(d)}`;
    // a GPU taint runs as a taint only where the cluster can do it; else the node is cordoned (before the guard)
    const routedDecisions: Decision[] = [];
    for (const proposed of decisions) routedDecisions.push(await isolation.route(proposed));
    // decisions already settled (or in flight elsewhere) come again with a redelivered batch or a tick firing
    // re-derived from the outbox: skipped before the incident layer, approvals and the guard (one decision, one record)
    const standing = await peek(routedDecisions, options);
    const results = new Array<Handled | undefined>(routedDecisions.length);
    /** What a submit did to one decision, after it is carried out: incident facts, retries, denial pages, its slot in `results`. */
    // facts of the concurrent decisions, noted in the incidents once they are all finished (ADR 0044)
    const factsLater: Array<readonly [Decision, string[]]> = [];
    const finish = async (i: number, d: Decision, h: Handled, page: boolean, concurrent = false): Promise<void> => {
      if (!page && o.incidents && !isRetryLater(h.rec)) {
        const f = factOf(h.rec);
        facts.set(factKey(d), [...(facts.get(factKey(d)) ?? []), f]);
        if (concurrent) factsLater.push([d, [f]]);
        else await timed('incidentFacts', () => (o.incidents as IncidentPaging).noteFacts(d, [f])).catch((err: unknown) => logger.warn({ decisionId: d.id, err: errorMessage(err) }, 'incident facts not recorded'));
      }
      seen.set(d.id, h.rec);
      if (!isRetryLater(h.rec)) noteFailure(d, h.rec, o.clock.now(), (retries.get(d.id)?.attempts ?? 0) + 1, h.retriable);
      noteDenial(d, h.rec, o.clock.now());
      results[i] = h;
    };
    // concurrent executions (ADR 0041): their finishes run one after the other in batch order
    let finishing: Promise<void> = Promise.resolve();
    const byNode = new Map<string, Promise<void>>();
    const errors: unknown[] = [];
    const later = (i: number, d: Decision, h: Handled | Promise<Handled>): void => {
      const done = Promise.all([h, finishing]).then(([handled]) => finish(i, d, handled, false, true));
      finishing = done.catch((err: unknown) => void errors.push(err));
      byNode.set(nodeKey(d), finishing);
    };
    /** The same decision earlier in the submit, or one the guard's peek found settled: its record, and true. */
    const decidedBefore = (i: number, d: Decision): boolean => {
      const prev = seen.get(d.id);
      if (prev && !isRetryLater(prev)) {
        const reason = `decision ${d.id} already ${prev.outcome}; not acting twice`;
        results[i] = { rec: buildLedgerRecord({ decision: d, outcome: 'suppressed', now: o.clock.now(), verdict: { allowed: false, guard: 'idempotency', outcome: 'suppressed', reason } }), settle: null };
        return true;
      }
      const settled = standing[i];
      if (settled) {
        const h = refused(d, settled);
        seen.set(d.id, h.rec);
        results[i] = h;
        return true;
      }
      return false;
    };
    const one = async (i: number, d: Decision, concurrent: boolean): Promise<void> => {
      // one node, one decision at a time, in batch order: the earlier one is carried out and finished first
      if (concurrent && queuedNodes.has(nodeKey(d))) await admitQueued();
      await byNode.get(nodeKey(d));
      if (decidedBefore(i, d)) return;
      if (concurrent) {
        // admitted with the decisions queued before it, in one guard call (ADR 0044)
        queue.push({ i, d });
        queuedNodes.add(nodeKey(d));
        if (queue.length >= concurrency) await admitQueued();
        return;
      }
      if (o.incidents && PAGE_ACTIONS.has(d.action)) {
        // only in a degraded evaluation (the store is down); else pages are routed in runs (routeRun)
        await finish(i, d, await ungrouped(d, 'incident store unavailable (degraded evaluation)'), true);
        return;
      }
      const held = o.incidents ? await timed('incidentHeld', () => (o.incidents as IncidentPaging).heldBy(d)) : null;
      let h: Handled;
      if (held?.ack) h = heldRecord(d, held);
      else if (o.approvals?.required(d) && !o.dryRun) h = await gated(d, o.approvals); // shadow mode asks nobody
      else h = await handle(d, executorFor(d.action));
      await finish(i, d, h, false);
    };
    // the concurrent decisions waiting for admission, in batch order, and their nodes
    let queue: Array<{ i: number; d: Decision }> = [];
    const queuedNodes = new Set<string>();
    /**
     * Admits the queued decisions in batch order (ADR 0044): a held incident is read once per
     * incident, and each run of decisions that found a free slot is authorized in one guard
     * call; so at most `actionConcurrency` admitted decisions are unfinished at any time, as before.
     */
    const admitQueued = async (): Promise<void> => {
      const q = queue;
      queue = [];
      queuedNodes.clear();
      if (q.length === 0) return;
      const held = o.incidents ? await timed('incidentHeld', () => (o.incidents as IncidentPaging).heldByAll(q.map((x) => x.d))) : [];
      let ready: Array<{ i: number; d: Decision }> = [];
      const go = async (): Promise<void> => {
        const r = ready;
        ready = [];
        if (r.length > 0) await launchAll(r);
      };
      for (const [j, x] of q.entries()) {
        const inc = held[j];
        if (inc?.ack) {
          await go();
          later(x.i, x.d, heldRecord(x.d, inc));
          continue;
        }
        if (!slots.tryAcquire()) {
          await go();
          await slots.acquire();
        }
        ready.push(x);
      }
      await go();
    };
    /** Authorizes decisions that each hold a slot in one guard call, and carries out the allowed ones in the background. */
    const launchAll = async (xs: ReadonlyArray<{ i: number; d: Decision }>): Promise<void> => {
      const started = performance.now();
      let verdicts: GuardVerdict[];
      try {
        verdicts = await timed('authorize', () => o.guard.authorizeBatch(xs.map((x) => x.d)));
      } catch (err) {
        // fail closed: no guard answer, no action (none of these is a page)
        verdicts = xs.map(() => guardDown(err));
      }
      xs.forEach(({ i, d }, j) => {
        const verdict = verdicts[j] ?? guardDown(new Error('no verdict'));
        if (!verdict.allowed) {
          slots.release();
          later(i, d, refused(d, verdict));
          return;
        }
        leases.hold(d.id);
        later(i, d, execute(d, executorFor(d.action), { verdict, started }).finally(() => slots.release()));
      });
    };
    const hoisted = hoistable(routedDecisions);
    await timed('hoisted', async () => {
      try {
        // first the cordons and taints that can overlap: admitted in batch order, carried out up to `actionConcurrency` at a time
        for (const [i, d] of routedDecisions.entries()) if (hoisted[i] === true) await one(i, d, true);
        await admitQueued();
      } finally {
        // every execution is over (and its outcome noted) before anything else of the submit, and before it returns or throws
        await finishing;
      }
      // their facts, in batch order, one read (and at most one write) per incident
      if (factsLater.length > 0 && o.incidents) {
        const inc = o.incidents;
        await timed('incidentFacts', () => inc.noteFactsAll(factsLater)).catch((err: unknown) => logger.warn({ decisions: factsLater.length, err: errorMessage(err) }, 'incident facts not recorded'));
      }
    });
    if (errors.length > 0) throw errors[0];
    /**
     * A run of pages and resolves in a row (ADR 0050): routed to their incidents with one read and at most one
     * write per incident per round; a send ends its incident's round, and is carried out and settled before
     * that incident's next page is routed. Records keep batch order (their slots in `results`).
     */
    const routeRun = async (run: ReadonlyArray<{ i: number; d: Decision }>): Promise<void> => {
      const inc = o.incidents as IncidentPaging;
      let pending = run.filter(({ i, d }) => !decidedBefore(i, d));
      while (pending.length > 0) {
        const xs = pending;
        const routed = await timed('incidentRoute', () => inc.routeAll(xs.map(({ d }) => ({ d, facts: facts.get(factKey(d)) ?? [] }))));
        // the first item of each incident is always routed; should none be, they go out as they come (never loop)
        const stuck = routed.every((r) => r === null || r === undefined);
        pending = [];
        for (const [k, { i, d }] of xs.entries()) {
          const r = stuck ? { kind: 'failed' as const, error: new NodewardenError('INTERNAL', 'incident routing made no progress') } : routed[k];
          if (r === null || r === undefined) {
            pending.push({ i, d });
            continue;
          }
          await finish(i, d, r.kind === 'failed' ? await ungrouped(d, incidentStoreDown(d, r.error)) : await sendRouted(r, d), true);
        }
      }
    };
    const rest = (): Promise<LedgerRecord[]> => submitPhases.run(phases, () => complete());
    if (split && routedDecisions.every((d, i) => hoisted[i] === true || PAGE_ACTIONS.has(d.action))) return rest;
    const records = await rest();
    return () => Promise.resolve(records);

    async function complete(): Promise<LedgerRecord[]> {
      await timed('inOrder', async () => {
        let run: Array<{ i: number; d: Decision }> = [];
        const routePending = async (): Promise<void> => {
          const r = run;
          run = [];
          if (r.length > 0) await routeRun(r);
        };
        for (const [i, d] of routedDecisions.entries()) {
          if (hoisted[i] === true) continue;
          if (o.incidents && !options.storeDown && PAGE_ACTIONS.has(d.action)) {
            // the same decision twice: the first is finished before the second is looked at
            if (run.some((x) => x.d.id === d.id)) await routePending();
            run.push({ i, d });
            continue;
          }
          await routePending();
          await one(i, d, false);
        }
        await routePending();
      });
      for (const h of results) if (h) out.push(h);
      out.push(...(await timed('denialPages', async () => sendDenialPages(takeDue(o.clock.now(), false), o.clock.now()))));
      if (!options.storeDown) out.push(...(await timed('incidentsDue', () => sendDueIncidents())));
      await timed('commit', () => commit(out, options.redeliverable === true ? isDenialPage : () => true));
      if (decisions.length > 0) logger.debug({ decisions: decisions.length, hoisted: hoisted.filter(Boolean).length, ms: Math.round(performance.now() - submitStarted), phases: Object.fromEntries([...phases].map(([k, v]) => [k, { calls: v.calls, ms: Math.round(v.ms) }])) }, 'submit phases');
      // an empty submit is a tick (engine, replay, demo): approvals decided since run or are denied now
      if (decisions.length === 0 && o.approvals) return [...out.map((h) => h.rec), ...(await submitApprovalsDue())];
      return out.map((h) => h.rec);
    }
  }
}

/** The verdict when the guard cannot answer: fail closed. */
function guardDown(err: unknown): GuardVerdict {
  return { allowed: false, guard: 'guardUnavailable', outcome: 'denied', reason: `guard unavailable: ${errorMessage(err)}` };
}

/** The key that serializes decisions on one node (a GPU taint's node is its target's `node`). */
function nodeKey(d: Decision): string {
  if (d.target.kind === 'Node') return `node:${d.target.name}`;
  return d.target.node === undefined ? `target:${targetKey(d.target)}` : `node:${d.target.node}`;
}

/** A counting semaphore: at most `n` holders; waiters are served in arrival order. */
function semaphore(n: number): { acquire(): Promise<void>; tryAcquire(): boolean; release(): void } {
  let held = 0;
  const waiting: Array<() => void> = [];
  return {
    tryAcquire(): boolean {
      if (held >= n) return false;
      held++;
      return true;
    },
    async acquire(): Promise<void> {
      if (held < n) {
        held++;
        return;
      }
      // the slot is handed over by release(): `held` stays counted
      await new Promise<void>((resolve) => waiting.push(resolve));
    },
    release(): void {
      const next = waiting.shift();
      if (next) next();
      else held--;
    },
  };
}
