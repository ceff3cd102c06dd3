/**
 * Makes `episode.fire` idempotent for the event that fired it, so a decision
 * whose batch failed (or whose replica died) after the episode was stored is
 * decided again when the batch is redelivered.
 *
 * Why: decision ids are rule + scope + episode start + action, and a batch's
 * episode state is written before its decisions reach the guard. Without
 * this, a redelivered event finds its episode active, `episode.fire` returns
 * null and the decision is never made again — the cordon of a replica killed
 * between the store write and the guard is lost. With it, an `episode.fire`
 * that returns null is answered with the episode's start when that start is
 * exactly the op's `now` (the same event time): the same episode, hence the
 * same decision ids, which the guard turns into `suppressed` (done), "retry
 * later" (in flight) or a takeover (lease lapsed). Never a second action.
 *
 * One extra store round trip, only for batches with a refused fire (an
 * incident in progress). The atomic form belongs in the store itself (return
 * `firedAt` from episode-fire when `now == firedAt`); this decorator keeps the
 * guarantee with any StateStore adapter until then.
 */
import type { EpisodeFireOp, StateStore, StoreOp, StoreResult } from '../store/state-store.js';

function refused(ops: readonly StoreOp[], results: readonly StoreResult[]): Array<{ i: number; op: EpisodeFireOp }> {
  const out: Array<{ i: number; op: EpisodeFireOp }> = [];
  ops.forEach((op, i) => {
    if (op.op === 'episode.fire' && results[i] === null) out.push({ i, op });
  });
  return out;
}

function apply(results: StoreResult[], retry: ReadonlyArray<{ i: number; op: EpisodeFireOp }>, started: readonly StoreResult[]): StoreResult[] {
  retry.forEach(({ i, op }, j) => {
    if (started[j] === op.now) results[i] = op.now;
  });
  return results;
}

const getOps = (retry: ReadonlyArray<{ op: EpisodeFireOp }>): StoreOp[] => retry.map(({ op }) => ({ op: 'episode.get', key: op.key }));

export class RefiringStateStore implements StateStore {
  readonly execSync?: (ops: readonly StoreOp[]) => StoreResult[];

  constructor(private readonly inner: StateStore) {
    const sync = inner.execSync?.bind(inner);
    if (sync) {
      this.execSync = (ops) => {
        const results = sync(ops);
        const retry = refused(ops, results);
        return retry.length === 0 ? results : apply(results, retry, sync(getOps(retry)));
      };
    }
  }

  async exec(ops: readonly StoreOp[]): Promise<StoreResult[]> {
    const results = await this.inner.exec(ops);
    const retry = refused(ops, results);
    if (retry.length === 0) return results;
    return apply(results, retry, await this.inner.exec(getOps(retry)));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
