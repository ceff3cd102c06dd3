/**
 * The only way the engine acts on the world. For each decision, in order:
 * guard.authorize → the executor for its action → guard.settle → one ledger
 * record. A failed executor becomes outcome `failed` and feeds the breaker.
 * A denied action is never silent: denials of one guard, rule and group within
 * `denialWindowMs` become ONE page listing every denied target and the reason;
 * that page passes the guard too (page rate limit) and is a ledger record.
 * While that page is recent, later denials of the same group are recorded as a
 * suppressed page instead of paging again (one storm, one page).
 * Dry-run swaps every executor for the dry-run one at construction; the guard
 * still evaluates, so the ledger shows what would have been denied.
 */
import type { Clock } from '../core/clock.js';
import type { ActionKind, Decision, LedgerRecord, Outcome, Severity } from '../core/decision.js';
import { errorMessage, NodewardenError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Registry } from 'prom-client';
import type { ExecutionResult, Executor, Guard, GuardControl, GuardVerdict, Remediator } from './ports.js';
import { createDryRunExecutor } from './dry-run.js';
import { targetKey } from './guard/policy.js';
import { buildLedgerRecord } from './ledger/record.js';
import type { LedgerSink } from './ledger/sink.js';
import { RemediationMetrics } from './ledger/metrics.js';
import type { Pager } from './pager/pager.js';
import { boundedDedupKey, createPagerExecutor, groupLabel } from './pager/pager-executor.js';

export interface RemediatorOptions {
  guard: Guard & Partial<GuardControl>;
  executors: readonly Executor[];
  ledger: readonly LedgerSink[];
  /** Pagers for denial pages; when absent the executor registered for `page` sends them. */
  pager?: Pager | readonly Pager[];
  clock: Clock;
  logger: Logger;
  /** Metrics go here (nodewarden_actions_total, …); none when absent. */
  registry?: Registry;
  /** Shadow mode: every action goes to the dry-run executor. */
  dryRun?: boolean;
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
   * Send due denial pages from a wall-clock timer too (live engine; default true).
   * Replay turns it off and calls flush() at the end, since its clock is virtual.
   */
  autoFlush?: boolean;
}

export interface GuardedRemediator extends Remediator {
  /** Sends every held denial page now; returns (and writes) their ledger records. */
  flush(): Promise<LedgerRecord[]>;
  /** Flushes and stops the timer (idempotent). */
  close(): Promise<void>;
  readonly metrics: RemediationMetrics | undefined;
}

interface Denied {
  decisionId: string;
  action: ActionKind;
  target: string;
  reason: string;
}

interface DenialGroup {
  key: string;
  guard: string;
  rule: string;
  group: Record<string, string> | undefined;
  firstAt: number;
  severity: Severity;
  items: Denied[];
}

/** Pages and resolves are not paged about when denied: that would loop. */
const PAGE_ACTIONS: ReadonlySet<ActionKind> = new Set(['page', 'resolve']);

export function createRemediator(o: RemediatorOptions): GuardedRemediator {
  const logger = o.logger.child({ component: 'remediator' });
  const windowMs = o.denialWindowMs ?? 30_000;
  const metrics = o.registry ? new RemediationMetrics(o.registry, { guard: o.guard.status ? (o.guard as GuardControl) : undefined, logger }) : undefined;
  const dryRunExecutor = createDryRunExecutor({ logger });
  const byAction = new Map<ActionKind, Executor>();
  for (const e of o.executors) for (const a of e.actions) if (!byAction.has(a)) byAction.set(a, e);
  const pagers = o.pager === undefined ? undefined : Array.isArray(o.pager) ? (o.pager as readonly Pager[]) : [o.pager as Pager];
  const denialPager: Executor | undefined = pagers ? createPagerExecutor({ pagers, logger }) : byAction.get('page');
  const executorFor = (a: ActionKind): Executor | undefined => (o.dryRun ? dryRunExecutor : byAction.get(a));
  const denialExecutor = (): Executor | undefined => (o.dryRun ? dryRunExecutor : denialPager);

  const denials = new Map<string, DenialGroup>();
  const renotifyMs = o.denialRenotifyMs ?? 3_600_000;
  const lastPaged = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  if (o.autoFlush ?? true) {
    timer = setInterval(() => {
      void flushDue(o.clock.now()).catch((err: unknown) => logger.error({ err: errorMessage(err) }, 'denial page flush failed'));
    }, Math.max(250, Math.min(5000, Math.floor(windowMs / 4))));
    timer.unref();
  }

  async function handle(d: Decision, executor: Executor | undefined): Promise<LedgerRecord> {
    const started = performance.now();
    let verdict: GuardVerdict;
    try {
      verdict = await o.guard.authorize(d);
    } catch (err) {
      // fail closed: no guard answer, no action
      verdict = { allowed: false, guard: 'guardUnavailable', outcome: 'denied', reason: `guard unavailable: ${errorMessage(err)}` };
    }
    if (!verdict.allowed) {
      const rec = buildLedgerRecord({ decision: d, outcome: verdict.outcome ?? 'denied', now: o.clock.now(), verdict });
      logger.warn({ decisionId: d.id, rule: d.rule, action: d.action, target: d.target, guard: verdict.guard, reason: verdict.reason }, `${d.action} ${rec.outcome}`);
      return rec;
    }
    let result: ExecutionResult;
    if (!executor) {
      result = { ok: false, error: new NodewardenError('NOT_FOUND', `no executor for action ${d.action}`) };
    } else {
      try {
        result = await executor.execute(d);
      } catch (err) {
        result = { ok: false, error: err instanceof NodewardenError ? err : new NodewardenError('INTERNAL', errorMessage(err), { cause: err }) };
      }
    }
    try {
      await o.guard.settle(d, verdict, result);
    } catch (err) {
      // reservations expire by themselves; the action already happened (or not)
      logger.error({ decisionId: d.id, err: errorMessage(err) }, 'guard settle failed');
    }
    const outcome: Outcome = !result.ok ? 'failed' : result.dryRun ? 'dry-run' : 'executed';
    const rec = buildLedgerRecord({ decision: d, outcome, now: o.clock.now(), verdict, result });
    metrics?.duration.observe({ action: d.action }, (performance.now() - started) / 1000);
    if (outcome === 'failed') logger.error({ decisionId: d.id, rule: d.rule, action: d.action, target: d.target, err: rec.error }, `${d.action} failed`);
    else logger.info({ decisionId: d.id, rule: d.rule, action: d.action, target: d.target, outcome }, `${d.action} ${outcome}`);
    return rec;
  }

  function noteDenial(d: Decision, rec: LedgerRecord, now: number): void {
    if (rec.outcome !== 'denied' || rec.guard === null || PAGE_ACTIONS.has(d.action)) return;
    const gl = groupLabel(d.group) ?? 'fleet';
    const key = `${rec.guard}|${d.rule}|${gl}`;
    let g = denials.get(key);
    if (!g) {
      g = { key, guard: rec.guard, rule: d.rule, group: d.group, firstAt: now, severity: 'warning', items: [] };
      denials.set(key, g);
    }
    if (d.severity === 'critical') g.severity = 'critical';
    g.items.push({ decisionId: d.id, action: d.action, target: targetKey(d.target), reason: typeof rec.details?.guardReason === 'string' ? rec.details.guardReason : '' });
  }

  function denialPage(g: DenialGroup, now: number): Decision {
    const gl = groupLabel(g.group);
    const actions = [...new Set(g.items.map((i) => i.action))].join('/');
    const targets = g.items.map((i) => i.target.replace(/^Node\//, ''));
    const shown = targets.slice(0, 20).join(', ') + (targets.length > 20 ? `, … (${targets.length} in all)` : '');
    return {
      id: `denial:${g.key}:${g.firstAt}`,
      at: now,
      rule: g.rule,
      action: 'page',
      target: gl ? { kind: 'Group', name: gl } : { kind: 'Fleet', name: 'fleet' },
      reason: `guard ${g.guard} stopped ${g.items.length} ${actions} action(s) of rule ${g.rule}${gl ? ` in ${gl}` : ''}: ${shown}. ${g.items[0]?.reason ?? ''}`,
      severity: g.severity,
      dedupKey: boundedDedupKey(`nodewarden:denied:${g.guard}:${g.rule}:${gl ?? 'fleet'}`),
      ...(g.group ? { group: g.group } : {}),
      evidence: { guard: g.guard, denied: g.items },
    };
  }

  async function writeLedger(records: readonly LedgerRecord[]): Promise<void> {
    if (records.length === 0) return;
    for (const r of records) metrics?.record(r);
    await Promise.all(
      o.ledger.map(async (sink) => {
        try {
          await sink.write(records);
        } catch (err) {
          metrics?.ledgerErrors.inc({ sink: sink.name });
          logger.error({ sink: sink.name, records: records.length, err: errorMessage(err) }, 'ledger write failed');
        }
      }),
    );
  }

  async function sendDenialPages(due: DenialGroup[], now: number): Promise<LedgerRecord[]> {
    const out: LedgerRecord[] = [];
    for (const g of due) {
      const page = denialPage(g, now);
      const pagedAt = lastPaged.get(g.key);
      if (pagedAt !== undefined && now - pagedAt < renotifyMs) {
        const reason = `denial page for this group already sent ${Math.round((now - pagedAt) / 1000)}s ago; not paging again`;
        out.push(buildLedgerRecord({ decision: page, outcome: 'suppressed', now, verdict: { allowed: false, guard: 'denialPageOpen', outcome: 'suppressed', reason } }));
        continue;
      }
      const rec = await handle(page, denialExecutor());
      if (rec.outcome === 'executed' || rec.outcome === 'dry-run') lastPaged.set(g.key, now);
      if (rec.outcome === 'denied') logger.error({ rule: g.rule, guard: g.guard, denied: g.items.length, pageGuard: rec.guard }, 'denial page itself denied');
      out.push(rec);
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
    const recs = await sendDenialPages(takeDue(now, false), now);
    await writeLedger(recs);
    return recs;
  }

  return {
    metrics,
    async submit(decisions: readonly Decision[]): Promise<LedgerRecord[]> {
      const out: LedgerRecord[] = [];
      out.push(...(await sendDenialPages(takeDue(o.clock.now(), false), o.clock.now())));
      for (const d of decisions) {
        const rec = await handle(d, executorFor(d.action));
        noteDenial(d, rec, o.clock.now());
        out.push(rec);
      }
      out.push(...(await sendDenialPages(takeDue(o.clock.now(), false), o.clock.now())));
      await writeLedger(out);
      return out;
    },
    async flush(): Promise<LedgerRecord[]> {
      const now = o.clock.now();
      const recs = await sendDenialPages(takeDue(now, true), now);
      await writeLedger(recs);
      return recs;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (timer) clearInterval(timer);
      await this.flush();
    },
  };
}
