/**
 * Replica-local answers to sustained observations that change nothing
 * (ADR 0042, issue 13 item 1, first step).
 *
 * Most `sustained.observe` ops repeat what the key already says: a conntrack
 * sample far below 90 % on a key where nothing is sustained, a containerd
 * "serving" on a key that has held "serving" for hours. On the shared store
 * such an op only moves the key's `last` time (and, once per quarter of its
 * TTL, the TTL). This wrapper remembers, per NODE-scoped sustained key, the
 * key's state (since when the predicate holds, or null) and the latest
 * observation time, answers those ops here, and sends the rest to the inner
 * store unchanged. It answers exactly what the inner store would:
 *
 *  - an observation that agrees with the key's state: `since` unchanged
 *    (its time only raises the remembered `last`);
 *  - an observation older than the remembered `last`: ignored as out of
 *    order → `since`;
 *  - `sustained.get`: `since`;
 *  - a change (an interval starts or ends), or a sample that enters a new
 *    TTL-refresh period of batch.lua (a quarter of the TTL): sent, so Redis
 *    refreshes the key's TTL on the very samples it would without the filter.
 *
 * Why a replica may know: a node-scoped sustained key changes only through
 * observations of that node's events (ticks pop the index, never the key);
 * one node's events live on one partition, which one replica consumes at a
 * time. Knowledge is learned only from the inner store's answers, and is
 * dropped (`forget`) whenever another replica may have written: on every
 * partition assignment, when a batch meets events another replica already
 * evaluated (dedupe `duplicate`: a replica still working on a partition it
 * lost), and when the Redis connection is (re)established. Group- and
 * fleet-scoped keys, every other op, and the guard always go to the shared store.
 *
 * The answered observations' times are not lost: when knowledge is dropped,
 * the latest answered observation of each key is sent with the next batch
 * (max-time semantics make that late write exact for in-order samples).
 */
import type { StateStore, StoreOp, StoreResult, StoreTrimScope, SustainedObserveOp } from './state-store.js';

/** What the engine service tells the filter (ADR 0042). */
export interface LocalStateKnowledge {
  /** Another replica may have written node-scoped state: drop what this replica knows. */
  forget(reason: string): void;
}

interface Known {
  /** The key's state in the shared store: since when the predicate holds, or null. */
  since: number | null;
  /** Latest observation time seen for the key (sent or answered here). */
  last: number;
  /** Latest observation time sent to the shared store (its TTL refresh follows it). */
  sentAt: number;
  /** The latest observation answered here, newer than what the shared store was sent, if any. */
  pending: SustainedObserveOp | null;
}

export interface NodeSustainedFilterOptions {
  /** Keys remembered at most (default 200,000); beyond it everything is forgotten (and flushed). */
  maxKeys?: number;
  /** Called when knowledge is dropped (for logs). */
  onForget?: (reason: string, keys: number) => void;
}

export interface NodeSustainedFilterStats {
  /** Ops answered here. */
  skipped: number;
  /** Ops sent to the inner store. */
  sent: number;
  /** Times knowledge was dropped. */
  forgotten: number;
}

const isNodeObserve = (op: StoreOp): op is SustainedObserveOp => op.op === 'sustained.observe' && op.member.startsWith('n:');

export class NodeSustainedFilterStore implements StateStore, LocalStateKnowledge {
  readonly stats: NodeSustainedFilterStats = { skipped: 0, sent: 0, forgotten: 0 };
  readonly execSync?: (ops: readonly StoreOp[]) => StoreResult[];
  private readonly known = new Map<string, Known>();
  /** Skipped observations to send with the next batch (after a `forget`). */
  private flush: SustainedObserveOp[] = [];
  private readonly maxKeys: number;

  constructor(
    private readonly inner: StateStore,
    private readonly opts: NodeSustainedFilterOptions = {},
  ) {
    this.maxKeys = Math.max(1, opts.maxKeys ?? 200_000);
    const sync = inner.execSync?.bind(inner);
    if (sync) {
      this.execSync = (ops) => {
        const plan = this.plan(ops);
        let res: StoreResult[];
        try {
          res = plan.send.length > 0 ? sync(plan.send) : [];
        } catch (err) {
          this.unplan(plan);
          throw err;
        }
        return this.learn(ops, plan, res);
      };
    }
  }

  /** Keys known right now. */
  get size(): number {
    return this.known.size;
  }

  forget(reason: string): void {
    const keys = this.known.size;
    for (const e of this.known.values()) if (e.pending) this.flush.push(e.pending);
    this.known.clear();
    this.stats.forgotten++;
    this.opts.onForget?.(reason, keys);
  }

  async exec(ops: readonly StoreOp[]): Promise<StoreResult[]> {
    const plan = this.plan(ops);
    let res: StoreResult[];
    try {
      res = plan.send.length > 0 ? await this.inner.exec(plan.send) : [];
    } catch (err) {
      this.unplan(plan);
      throw err;
    }
    return this.learn(ops, plan, res);
  }

  trim(scope: StoreTrimScope): Promise<number> {
    return this.inner.trim(scope);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /**
   * Splits a batch: ops answered here get their result now, the others are
   * sent (after any flushed observations). Once one op on a key is sent, every
   * later op on it in the batch is sent too (its answer depends on the first).
   */
  private plan(ops: readonly StoreOp[]): Plan {
    const flushed = this.flush;
    this.flush = [];
    const send: StoreOp[] = [...flushed];
    const at: number[] = [];
    const out: StoreResult[] = new Array<StoreResult>(ops.length);
    let sentKeys: Set<string> | null = null;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as StoreOp;
      if (op.op === 'sustained.observe' || op.op === 'sustained.get') {
        const e = sentKeys?.has(op.key) ? undefined : this.known.get(op.key);
        if (e) {
          if (op.op === 'sustained.get') {
            out[i] = e.since;
            this.stats.skipped++;
            continue;
          }
          if (op.ts < e.last) {
            // out of order: the shared store ignores it too (its last ≤ ours)
            out[i] = e.since;
            this.stats.skipped++;
            continue;
          }
          if (op.holds === (e.since !== null) && !refreshDue(op.ts, e.sentAt, op.ttlMs)) {
            // no change but the time: answered here, the time remembered (and flushed on forget)
            e.last = op.ts;
            e.pending = op;
            out[i] = e.since;
            this.stats.skipped++;
            continue;
          }
          // a change (an interval starts or ends), or the key's TTL is due for its refresh: sent, learned again
          this.known.delete(op.key);
        }
        (sentKeys ??= new Set()).add(op.key);
      }
      at.push(i);
      send.push(op);
    }
    this.stats.sent += send.length;
    return { send, at, out, flushed: flushed.length };
  }

  /** The batch failed: flushed observations go with the next one (skipped ones stay remembered: idempotent). */
  private unplan(plan: Plan): void {
    if (plan.flushed > 0) this.flush = [...(plan.send.slice(0, plan.flushed) as SustainedObserveOp[]), ...this.flush];
  }

  private learn(ops: readonly StoreOp[], plan: Plan, res: readonly StoreResult[]): StoreResult[] {
    const { out, at, flushed } = plan;
    for (let j = 0; j < at.length; j++) {
      const i = at[j] as number;
      const r = res[flushed + j] as StoreResult;
      out[i] = r;
      const op = ops[i] as StoreOp;
      if (!isNodeObserve(op)) continue;
      if (r !== null && typeof r !== 'number') continue;
      const e = this.known.get(op.key);
      if (e) {
        // a later op on the key in the same batch: its answer is the state now
        e.since = r;
        if (op.ts > e.last) e.last = op.ts;
        if (op.ts > e.sentAt) e.sentAt = op.ts;
      } else {
        if (this.known.size >= this.maxKeys) this.forget('capacity');
        this.known.set(op.key, { since: r, last: op.ts, sentAt: op.ts, pending: null });
      }
    }
    return out;
  }
}

/**
 * The shared store refreshes a sustained key's TTL when a sample's time enters
 * a new period of a quarter of the TTL (batch.lua `due`): such a sample is
 * always sent, so the key's TTL in Redis is what it would be without the filter.
 */
function refreshDue(ts: number, sentAt: number, ttlMs: number): boolean {
  const every = ttlMs / 4;
  return every <= 0 || Math.floor(ts / every) !== Math.floor(sentAt / every);
}

interface Plan {
  send: StoreOp[];
  /** For each sent op after the flushed ones: its index in the caller's batch. */
  at: number[];
  out: StoreResult[];
  /** How many of `send` are flushed observations (first). */
  flushed: number;
}
