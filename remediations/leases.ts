/**
 * The in-flight leases one replica holds (ADR 0026). The guard's authorize
 * writes a short lease naming this replica's holder token; from then until
 * the decision's settle the lease is renewed every third of it, so a live but
 * slow replica keeps it while a dead one loses it after at most one lease.
 * Right before the ledger write the remediator renews once more and waits for
 * the answer (the fence): a decision another replica has taken over is not
 * written and not settled here. A lapsed lease nobody took is still ours (the
 * guard's take-over is atomic and rewrites the holder), so renewing it is safe.
 */
import type { LedgerRecord } from '../core/decision.js';
import { errorMessage, NodewardenError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { IN_FLIGHT_GUARD, LEASE_RENEWALS_PER_TTL } from './guard/policy.js';
import type { Guard } from './ports.js';

/** Decisions renewed in one guard call (one Lua script, one round trip). */
const RENEW_CHUNK = 256;


export interface Leases {
  /** Authorize allowed `decisionId`: renew its lease until it is released. */
  hold(decisionId: string): void;
  /** The decision is being settled: true when its lease is still held (settle it), false when lost or given up. */
  release(decisionId: string): boolean;
  /** `rec` is the ledger record of the held decision `decisionId` (what the fence checks). */
  recordOf(rec: LedgerRecord, decisionId: string): void;
  /** The record will not be written by this replica (a redelivery regenerates it): stop renewing its lease. */
  giveUp(rec: LedgerRecord): void;
  /**
   * Renews the leases of these records now; returns the records whose lease is
   * lost (never written or settled here). Throws UNAVAILABLE (retriable) when
   * the guard cannot answer: nothing is written then.
   */
  fence(records: readonly LedgerRecord[]): Promise<Set<LedgerRecord>>;
  stop(): void;
}

/** The record returned for a decision whose lease was lost at the fence: retry later, not written. */
export function leaseLostRecord(rec: LedgerRecord): LedgerRecord {
  const guardReason = `lease of decision ${rec.decisionId ?? '?'} taken over by another replica before the ledger write; that replica records it`;
  return { ...rec, outcome: 'suppressed', guard: IN_FLIGHT_GUARD, details: { ...rec.details, guardReason } };
}

/**
 * `maxRenewMs`: a lease held longer than this is no longer renewed by the timer
 * (one the caller never settled or gave up — a submit that threw half-way —
 * must not block its decision for ever): it lapses, and the fence still answers
 * for it (lapsed and not taken over is still ours).
 */
export function createLeases(guard: Guard, leaseMs: number, maxRenewMs: number, logger: Logger): Leases {
  /** Decision id → when it was taken (monotonic ms). */
  const held = new Map<string, number>();
  const ofRecord = new WeakMap<LedgerRecord, string>();
  let timer: NodeJS.Timeout | undefined;
  let renewing = false;

  async function renew(ids: readonly string[]): Promise<Map<string, 'held' | 'lost'>> {
    const out = new Map<string, 'held' | 'lost'>();
    for (let i = 0; i < ids.length; i += RENEW_CHUNK) {
      const part = await guard.renew(ids.slice(i, i + RENEW_CHUNK), guard.holder, leaseMs);
      for (const [id, st] of part) out.set(id, st);
    }
    for (const id of ids) {
      if (out.get(id) === 'held') continue;
      if (held.delete(id)) logger.warn({ decisionId: id }, 'in-flight lease lost: another replica took the decision over');
    }
    return out;
  }

  async function renewAll(): Promise<void> {
    const since = performance.now() - maxRenewMs;
    const due = [...held].filter(([, at]) => at > since).map(([id]) => id);
    if (due.length === 0) {
      if (timer) clearInterval(timer);
      timer = undefined;
      return;
    }
    if (renewing) return;
    renewing = true;
    try {
      await renew(due);
    } catch (err) {
      // the next renewal may get through; the fence decides before anything is written
      logger.warn({ leases: held.size, err: errorMessage(err) }, 'in-flight lease renewal failed');
    } finally {
      renewing = false;
    }
  }

  return {
    hold(decisionId: string): void {
      held.set(decisionId, performance.now());
      if (timer) return;
      timer = setInterval(() => void renewAll(), Math.floor(leaseMs / LEASE_RENEWALS_PER_TTL));
      timer.unref();
    },
    release(decisionId: string): boolean {
      return held.delete(decisionId);
    },
    recordOf(rec: LedgerRecord, decisionId: string): void {
      ofRecord.set(rec, decisionId);
    },
    giveUp(rec: LedgerRecord): void {
      const id = ofRecord.get(rec);
      if (id !== undefined) held.delete(id);
    },
    async fence(records: readonly LedgerRecord[]): Promise<Set<LedgerRecord>> {
      const lost = new Set<LedgerRecord>();
      const fenced = records.flatMap((r) => {
        const id = ofRecord.get(r);
        return id === undefined ? [] : [[r, id] as const];
      });
      if (fenced.length === 0) return lost;
      // given up or lost earlier: not ours any more, no need to ask
      const ask = fenced.filter(([, id]) => held.has(id)).map(([, id]) => id);
      let answer: Map<string, 'held' | 'lost'>;
      try {
        answer = ask.length > 0 ? await renew(ask) : new Map<string, 'held' | 'lost'>();
      } catch (err) {
        throw new NodewardenError('UNAVAILABLE', `in-flight lease renewal before the ledger write failed: ${errorMessage(err)}`, { retriable: true, cause: err });
      }
      for (const [r, id] of fenced) {
        if (answer.get(id) === 'held') continue;
        lost.add(r);
        logger.warn({ decisionId: id, rule: r.rule, action: r.action, outcome: r.outcome }, 'lease lost before the ledger write: not recorded or settled here (the replica that took it over does)');
      }
      return lost;
    },
    stop(): void {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
