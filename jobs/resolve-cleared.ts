/**
 * `resolve-cleared` (every minute, one replica): resolves pages that the rule
 * engine itself will never resolve. The engine resolves a page when its
 * rule's clear condition holds (rules/engine: a `clear` firing turns each
 * `page` action into a `resolve`), but not when
 *
 *   - the rule is disabled (in its file or by a runtime toggle) or no longer
 *     loaded: disabled rules are not evaluated, so their clear never comes;
 *   - the page is about a node that was deleted from the cluster;
 *   - the rule cordoned the node and has no clear condition (e.g. fatal Xids),
 *     and a human has since uncordoned the node: the repair is done.
 *
 * Open pages are followed from the ledger (executed `page` records not
 * followed by an executed `resolve` of the same dedup key), incrementally
 * from a checkpoint kept in the job state. Resolves go through the Remediator,
 * so they are guarded, idempotent (stable decision ids) and ledgered.
 */
import { createHash } from 'node:crypto';
import type { ClusterView } from '../core/cluster.js';
import type { Decision, LedgerRecord, Severity, Target } from '../core/decision.js';
import type { Remediator } from '../remediations/ports.js';
import type { LedgerEntry } from '../remediations/ledger/entry.js';
import { isAudit } from '../remediations/ledger/entry.js';
import type { LedgerReader } from '../remediations/ledger/store.js';
import type { Job, JobSummary } from './job.js';
import { checkAborted } from './job.js';
import type { JobStateStore } from './job-state.js';
import { readLedgerWindow, windowStart } from './ledger-window.js';

export const RESOLVE_CLEARED = 'resolve-cleared';
/** A cordon belongs to a page's firing when it is this close to the page (the engine emits both at once). */
export const CORDON_PAGE_SKEW_MS = 5 * 60_000;

export interface OpenPage {
  dedupKey: string;
  rule: string;
  target: Target;
  severity: Severity;
  /** ms since epoch of the latest executed trigger. */
  at: number;
}

/** What the job remembers between runs. */
export interface ResolveClearedState {
  v: 1;
  /** ms: the end of the window read last time. */
  checkpoint: number;
  /** dedupKey → open page. */
  open: Record<string, OpenPage>;
  /** `rule|node` → ms of the latest executed cordon of that node by that rule. */
  cordons: Record<string, number>;
}

export function emptyResolveState(): ResolveClearedState {
  return { v: 1, checkpoint: 0, open: {}, cordons: {} };
}

/** The node a Node target names (`gpu-1` or `gpu-1/0000:3b:00` for per-GPU scopes). */
export function targetNode(t: Target): string | null {
  if (t.kind !== 'Node') return null;
  return t.name.split('/')[0] ?? null;
}

/**
 * Pure: applies ledger records (oldest first) to the state. Idempotent for
 * re-read records: a page re-read after its resolve is older than the state's
 * page time only if the resolve was applied in the same order, so the window
 * replays to the same result.
 */
export function applyLedger(s: ResolveClearedState, entries: readonly LedgerEntry[]): void {
  for (const e of entries) {
    if (isAudit(e)) continue; // operator audits (toggles, pause, resume)
    const r: LedgerRecord = e;
    if (r.outcome !== 'executed') continue;
    const t = Date.parse(r.ts);
    if (Number.isNaN(t)) continue;
    if (r.action === 'page' && r.dedupKey) {
      const cur = s.open[r.dedupKey];
      if (!cur || cur.at <= t) s.open[r.dedupKey] = { dedupKey: r.dedupKey, rule: r.rule, target: { ...r.target }, severity: r.severity ?? 'warning', at: t };
    } else if (r.action === 'resolve' && r.dedupKey) {
      const cur = s.open[r.dedupKey];
      if (cur && cur.at <= t) delete s.open[r.dedupKey];
    } else if (r.action === 'cordon') {
      const node = targetNode(r.target);
      if (node !== null) {
        const k = `${r.rule}|${node}`;
        s.cordons[k] = Math.max(s.cordons[k] ?? 0, t);
      }
    } else if (r.action === 'uncordon') {
      // nodewarden's own uncordon comes with the rule's clear, which resolves the page itself
      const node = targetNode(r.target);
      if (node !== null) for (const k of Object.keys(s.cordons)) if (k.endsWith(`|${node}`) && (s.cordons[k] ?? 0) <= t) delete s.cordons[k];
    }
  }
}

/** Drops what is older than the lookback, so the state stays bounded. */
export function pruneResolveState(s: ResolveClearedState, now: number, lookbackMs: number): void {
  const horizon = now - lookbackMs;
  for (const [k, p] of Object.entries(s.open)) if (p.at < horizon) delete s.open[k];
  for (const [k, t] of Object.entries(s.cordons)) if (t < horizon) delete s.cordons[k];
}

/** Whether a rule is evaluated now: undefined when the engine does not know it at all. */
export type RuleActivity = (rule: string, now: number) => boolean | undefined;

export interface ResolveCandidate {
  page: OpenPage;
  why: string;
}

/**
 * Pure: the open pages to resolve now, and why. Pages (and their cordons)
 * younger than `minAgeMs` are left alone: the cluster view may not show a
 * fresh cordon yet, and the engine may still be about to act.
 */
export function pagesToResolve(s: ResolveClearedState, o: { now: number; minAgeMs: number; view: ClusterView; activity: RuleActivity }): ResolveCandidate[] {
  const out: ResolveCandidate[] = [];
  const viewKnowsNodes = o.view.listNodes().length > 0;
  for (const page of Object.values(s.open)) {
    if (o.now - page.at < o.minAgeMs) continue;
    const active = o.activity(page.rule, o.now);
    if (active === undefined) {
      out.push({ page, why: `rule ${page.rule} is no longer loaded` });
      continue;
    }
    if (!active) {
      out.push({ page, why: `rule ${page.rule} is disabled` });
      continue;
    }
    const nodeName = targetNode(page.target);
    if (nodeName === null) continue;
    const node = o.view.getNode(nodeName);
    if (!node) {
      // an empty view (not synced yet) proves nothing
      if (viewKnowsNodes) out.push({ page, why: `node ${nodeName} was deleted from the cluster` });
      continue;
    }
    const cordonAt = s.cordons[`${page.rule}|${nodeName}`];
    if (cordonAt !== undefined && Math.abs(cordonAt - page.at) <= CORDON_PAGE_SKEW_MS && o.now - cordonAt >= o.minAgeMs && !node.unschedulable) {
      out.push({ page, why: `node ${nodeName} was uncordoned by a human after ${page.rule} cordoned it at ${new Date(cordonAt).toISOString()}` });
    }
  }
  return out.sort((a, b) => a.page.at - b.page.at || a.page.dedupKey.localeCompare(b.page.dedupKey));
}

/** The resolve decision of a candidate; its id is stable per page, so a retried run never resolves twice. */
export function resolveDecision(c: ResolveCandidate, now: number): Decision {
  const id = createHash('sha256').update(`${c.page.dedupKey}|${c.page.at}`).digest('hex').slice(0, 24);
  return {
    id: `${RESOLVE_CLEARED}-${id}`,
    at: now,
    rule: c.page.rule,
    action: 'resolve',
    target: { ...c.page.target },
    reason: `resolved by nodewarden (${RESOLVE_CLEARED}): ${c.why}`,
    severity: c.page.severity,
    dedupKey: c.page.dedupKey,
    evidence: { pagedAt: new Date(c.page.at).toISOString(), why: c.why },
  };
}

export interface ResolveClearedDeps {
  ledger: LedgerReader;
  remediator: Pick<Remediator, 'submit'>;
  view: ClusterView;
  activity: RuleActivity;
  state: JobStateStore;
  /** Config `jobs.resolveCleared.minAge`. */
  minAgeMs: number;
  /** Config `jobs.resolveCleared.lookback`: pages older than this are no longer followed. */
  lookbackMs: number;
  /** At most this many resolves per run (a mass disable must not flood the pagers at once). */
  maxPerRun?: number;
}

export function resolveClearedJob(d: ResolveClearedDeps): Job {
  return {
    name: RESOLVE_CLEARED,
    scope: 'cluster',
    async run(ctx): Promise<JobSummary> {
      const s = (await d.state.load<ResolveClearedState>(RESOLVE_CLEARED)) ?? emptyResolveState();
      if (s.v !== 1) Object.assign(s, emptyResolveState());
      const since = windowStart(s.checkpoint || null, ctx.now, d.lookbackMs);
      const win = await readLedgerWindow(d.ledger, since, ctx.now);
      if (win.truncated) ctx.logger.warn({ since: new Date(since).toISOString(), read: win.entries.length }, 'ledger window truncated: older pages may be missed');
      checkAborted(ctx.signal);
      applyLedger(s, win.entries);
      pruneResolveState(s, ctx.now, d.lookbackMs);
      const candidates = pagesToResolve(s, { now: ctx.now, minAgeMs: d.minAgeMs, view: d.view, activity: d.activity }).slice(0, d.maxPerRun ?? 100);
      let resolved = 0;
      let notResolved = 0;
      if (candidates.length > 0) {
        checkAborted(ctx.signal);
        const decisions = candidates.map((c) => resolveDecision(c, ctx.now));
        const { records, retryLater } = await d.remediator.submit(decisions);
        // each candidate by its decision's record (a submit may also return denial pages and incident updates)
        const recordOf = new Map<string, LedgerRecord>();
        for (const r of records) if (r.decisionId !== undefined && !recordOf.has(r.decisionId)) recordOf.set(r.decisionId, r);
        const inFlight = new Set(retryLater.map((r) => r.decisionId));
        for (const [i, c] of candidates.entries()) {
          const id = decisions[i]?.id ?? '';
          const r = recordOf.get(id);
          // executed, or already done by an earlier run (idempotency suppression): no longer open
          if (r && (r.outcome === 'executed' || r.outcome === 'dry-run' || (r.outcome === 'suppressed' && r.guard === 'idempotency'))) {
            delete s.open[c.page.dedupKey];
            resolved++;
          } else {
            notResolved++;
            ctx.logger.warn({ dedupKey: c.page.dedupKey, outcome: r?.outcome ?? (inFlight.has(id) ? 'in flight elsewhere' : 'no record'), guard: r?.guard ?? null, err: r?.error }, 'resolve not done; retried next run');
          }
        }
      }
      s.checkpoint = ctx.now;
      await d.state.save(RESOLVE_CLEARED, s);
      return { read: win.entries.length, open: Object.keys(s.open).length, resolved, notResolved };
    },
  };
}
