/**
 * `trim-state` (hourly, one replica): bounds the state that TTLs do not.
 *
 *  - the ledger store (`LedgerStore.trim`), on Redis: XADD keeps the stream
 *    near `MAXLEN ~`; the job trims it to exactly `ledgerMaxLen` and drops
 *    entries older than `ledgerMaxAge` (the Kafka ledger topic is the
 *    long-term record);
 *  - the rule state store, by its own `StateStore.trim`: on Redis each rule's
 *    active-episode index (members whose episode ended), in memory the sweep
 *    of expired keys.
 *  Dedupe ids, guard decisions/cooldowns/rates, rule windows and toggles all
 *  carry their own TTL or are pruned by their owners.
 *
 * Every trimmer runs even when another fails; the run fails if any did.
 */
import { errorMessage, NodewardenError } from '../core/errors.js';
import type { LedgerStore, LedgerTrim } from '../remediations/ledger/store.js';
import type { StateStore, StoreTrimScope } from '../rules/store/state-store.js';
import type { Job, JobSummary } from './job.js';
import { checkAborted } from './job.js';

/** One kind of state to bound. */
export interface StateTrimmer {
  readonly name: string;
  /** Removes what is due; returns how many entries went. */
  trim(now: number, signal: AbortSignal): Promise<number>;
}

export function trimStateJob(trimmers: readonly StateTrimmer[]): Job {
  return {
    name: 'trim-state',
    scope: 'cluster',
    async run(ctx): Promise<JobSummary> {
      const out: JobSummary = {};
      const failed: string[] = [];
      for (const t of trimmers) {
        checkAborted(ctx.signal);
        try {
          out[t.name] = await t.trim(ctx.now, ctx.signal);
        } catch (err) {
          out[t.name] = null;
          failed.push(`${t.name}: ${errorMessage(err)}`);
          ctx.logger.warn({ trimmer: t.name, err: errorMessage(err) }, 'trimmer failed');
        }
      }
      if (failed.length > 0) throw new NodewardenError('UNAVAILABLE', `trim-state: ${failed.join('; ')}`, { retriable: true });
      return out;
    },
  };
}

/** The ledger store's own trim (LedgerStore.trim): on Redis the stream to an exact MAXLEN, then by age. */
export function ledgerTrimmer(ledger: Pick<LedgerStore, 'trim'>, bounds: LedgerTrim): StateTrimmer {
  return { name: 'ledgerStream', trim: (now) => ledger.trim(now, bounds) };
}

/** Members of each rule's active-episode index whose episode is no longer active (atomic per chunk). */
/** The rule state store's own trim (StateStore.trim): expired keys, index members of ended episodes. */
export function ruleStateTrimmer(store: StateStore, scope: Omit<StoreTrimScope, 'signal'>): StateTrimmer {
  return { name: 'ruleState', trim: (_now, signal) => store.trim({ ...scope, signal }) };
}
