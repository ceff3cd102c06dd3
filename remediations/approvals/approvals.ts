/**
 * Approval where it matters: an action that requires approval (`approval:
 * required` on the rule's action, or its kind in `approvals.requiredFor`,
 * rollbacks by default) waits for a person. Its ledger record says
 * `pending-approval`; a person approves or denies it (Slack button, `ctl
 * approve/deny`, the control API); on approval the SAME decision is submitted
 * again and runs through the guard as usual. On timeout the configured thing
 * happens (default: deny, which pages like every denial).
 *
 * Each approval is a document in the paging store (Redis across replicas),
 * changed only by compare-and-set: pending → approved|denied|expired, and
 * approved → executed exactly once (`consume`), so a decision approved on one
 * replica and executed by another after a crash runs once, and an approval
 * survives a restart.
 */
import type { Clock } from '../../core/clock.js';
import type { ActionKind, Decision } from '../../core/decision.js';
import type { DocStore } from '../incidents/doc-store.js';
import { updateDoc } from '../incidents/doc-store.js';

/** `closed`: a denial or expiry whose ledger record has been written. */
export type ApprovalState = 'pending' | 'approved' | 'denied' | 'expired' | 'executed' | 'closed';

export interface Approval {
  /** The decision id. */
  id: string;
  decision: Decision;
  state: ApprovalState;
  requestedAt: number;
  deadline: number;
  /** Who approved or denied, and through what (slack, ctl, api); `timeout` for an expiry. */
  by?: string;
  via?: string;
  decidedAt?: number;
}

export interface ApprovalOptions {
  /** Action kinds that need approval unless the rule says `approval: none` (default [rollback]). */
  requiredFor: readonly ActionKind[];
  timeoutMs: number;
  /** What a timeout does (default deny; `approve` runs the action). */
  onTimeout: 'deny' | 'approve';
  /** How long a decided approval is kept (default 7 d). */
  keepMs: number;
}

export const DEFAULT_APPROVALS: ApprovalOptions = { requiredFor: ['rollback'], timeoutMs: 15 * 60_000, onTimeout: 'deny', keepMs: 7 * 24 * 3_600_000 };
const NS = 'approval';

/** What the remediator does with a decision that needs approval. */
export type Gate =
  | { kind: 'pending'; approval: Approval; created: boolean }
  | { kind: 'run'; approval: Approval }
  | { kind: 'denied'; approval: Approval }
  | { kind: 'done'; approval: Approval };

export class Approvals {
  readonly options: ApprovalOptions;
  constructor(
    private readonly store: DocStore,
    private readonly clock: Clock,
    options: Partial<ApprovalOptions> = {},
  ) {
    this.options = { ...DEFAULT_APPROVALS, ...options };
  }

  required(d: Decision): boolean {
    const p = d.params?.approval;
    if (p === 'none') return false;
    return p === 'required' || this.options.requiredFor.includes(d.action);
  }

  /** Asks (once) for approval of `d`, or takes the approval given: `run` is returned to exactly one caller. */
  async gate(d: Decision): Promise<Gate> {
    const now = this.clock.now();
    const r = await updateDoc<Approval, Gate>(
      this.store,
      NS,
      d.id,
      (cur) => {
        if (!cur) {
          const a: Approval = { id: d.id, decision: d, state: 'pending', requestedAt: now, deadline: now + this.options.timeoutMs };
          return { doc: a, result: { kind: 'pending', approval: a, created: true } };
        }
        if (cur.state === 'approved') {
          cur.state = 'executed';
          return { doc: cur, result: { kind: 'run', approval: cur } };
        }
        if (cur.state === 'pending') return { doc: null, result: { kind: 'pending', approval: cur, created: false } };
        if (cur.state === 'executed' || cur.state === 'closed') return { doc: null, result: { kind: 'done', approval: cur } };
        // denied or expired: the one caller that closes it records the denial
        const closed = { ...cur, state: 'closed' as const };
        return { doc: closed, result: { kind: 'denied', approval: cur } };
      },
      (a) => (a.state === 'pending' ? 0 : this.options.keepMs),
    );
    return r.result;
  }

  /** A person decides; only a pending approval changes. Returns the approval and whether this call decided it. */
  async decide(id: string, verdict: 'approved' | 'denied', by: string, via: string): Promise<{ approval: Approval | null; changed: boolean }> {
    const now = this.clock.now();
    const r = await updateDoc<Approval, boolean>(
      this.store,
      NS,
      id,
      (cur) => {
        if (cur?.state !== 'pending') return { doc: null, result: false };
        cur.state = verdict;
        cur.by = by;
        cur.via = via;
        cur.decidedAt = now;
        return { doc: cur, result: true };
      },
      (a) => (a.state === 'pending' ? 0 : this.options.keepMs),
    );
    return { approval: r.doc, changed: r.result };
  }

  /**
   * Decisions to submit again now: approvals decided by a person (on any
   * replica, also one that died since) and pending ones past their deadline,
   * which the timeout rule decides first (exactly once).
   */
  async due(): Promise<Decision[]> {
    await this.expireDue();
    const out: Decision[] = [];
    for (const a of await this.list()) if (a.state === 'approved' || a.state === 'denied' || a.state === 'expired') out.push(a.decision);
    return out;
  }

  /** Pending approvals past their deadline, each decided by the timeout rule exactly once. */
  async expireDue(): Promise<Approval[]> {
    const now = this.clock.now();
    const out: Approval[] = [];
    for (const a of await this.list('pending')) {
      if (a.deadline > now) continue;
      const verdict = this.options.onTimeout === 'approve' ? 'approved' : 'expired';
      const r = await updateDoc<Approval, boolean>(this.store, NS, a.id, (cur) => {
        if (cur?.state !== 'pending' || cur.deadline > now) return { doc: null, result: false };
        cur.state = verdict;
        cur.by = 'timeout';
        cur.via = 'timeout';
        cur.decidedAt = now;
        return { doc: cur, result: true };
      }, this.options.keepMs);
      if (r.result && r.doc) out.push(r.doc);
    }
    return out;
  }

  async get(id: string): Promise<Approval | null> {
    return (await this.store.read<Approval>(NS, id))?.doc ?? null;
  }

  async list(state?: ApprovalState): Promise<Approval[]> {
    const out: Approval[] = [];
    for (const id of await this.store.ids(NS)) {
      const a = (await this.store.read<Approval>(NS, id))?.doc;
      if (a && (state === undefined || a.state === state)) out.push(a);
    }
    return out.sort((x, y) => x.requestedAt - y.requestedAt);
  }
}
