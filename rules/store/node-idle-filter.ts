/**
 * Replica-local skip of sustained observations that cannot change anything
 * (ADR 0042, issue 13 item 1, first step).
 *
 * Most `sustained.observe` ops say "the condition does not hold" for a key on
 * which nothing is being sustained (a conntrack sample far below 90 %, a
 * containerd answer that is not a timeout): on the shared store such an op
 * only moves the key's `last` time and its TTL. This wrapper remembers, per
 * NODE-scoped sustained key, that the key is idle (since = null) and the
 * latest observation time it has seen, answers those ops here, and sends the
 * rest to the inner store unchanged. It answers exactly what the inner store
 * would:
 *
 *  - holds=false on an idle key: since stays null → null (its time only
 *    raises the remembered `last`);
 *  - holds=true older than the remembered `last`: ignored as out of order → null;
 *  - `sustained.get` on an idle key: null;
 *  - holds=true at or after `last`: sent (it starts an interval).
 *
 * Why a replica may know: a node-scoped sustained key changes only through
 * observations of that node's events (ticks pop the index, never the key);
 * one node's events live on one partition, which one replica consumes at a
 * time. Knowledge is learned only from the inner store's answers, and is
 * dropped (`forget`) whenever another replica may have written: on every
 * partition assignment, and when a batch meets events another replica already
 * evaluated (dedupe `duplicate`: a replica still working on a partition it
 * lost). Group- and fleet-scoped keys, every other op, and the guard always go
 * to the shared store.
 *
 * The skipped observations' times are not lost: when knowledge is dropped, the
 * latest skipped "not holding" observation of each key is sent with the next
 * batch (max-time semantics make that late write exact for in-order samples).
 */
import type { StateStore, StoreOp, StoreResult, StoreTrimScope, SustainedObserveOp } from './state-store.js';

/** What the engine service tells the filter (ADR 0042). */
export interface LocalStateKnowledge {
  /** Another replica may have written node-scoped state: drop what this replica knows. */
  forget(reason: string): void;
}

interface Idle {
  /** Latest observation time seen for the key (sent or skipped). */
  last: number;
  /** The latest skipped "not holding" observation newer than what the inner store was sent, if any. */
  pending: SustainedObserveOp | null;
}

export interface NodeIdleFilterOptions {
  /** Keys remembered at most (default 200,000); beyond it everything is forgotten (and flushed). */
  maxKeys?: number;
  /** Called when knowledge is dropped (for logs). */
  onForget?: (reason: string, keys: number) => void;
}

export interface NodeIdleFilterStats {
  /** Ops answered here. */
  skipped: number;
  /** Ops sent to the inner store. */
  sent: number;
  /** Times knowledge was dropped. */
  forgotten: number;
}

const isNodeObserve = (op: StoreOp): op is SustainedObserveOp => op.op === 'sustained.observe' && op.member.startsWith('n:');

export class NodeIdleFilterStore implements StateStore, LocalStateKnowledge {
  readonly stats: NodeIdleFilterStats = { skipped: 0, sent: 0, forgotten: 0 };
  readonly execSync?: (ops: readonly StoreOp[]) => StoreResult[];
  private readonly idle = new Map<string, Idle>();
  /** Skipped observations to send with the next batch (after a `forget`). */
  private flush: SustainedObserveOp[] = [];
  private readonly maxKeys: number;

  constructor(
    private readonly inner: StateStore,
    private readonly opts: NodeIdleFilterOptions = {},
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

  /** Keys known idle right now. */
  get size(): number {
    return this.idle.size;
  }

  forget(reason: string): void {
    const keys = this.idle.size;
    for (const e of this.idle.values()) if (e.pending) this.flush.push(e.pending);
    this.idle.clear();
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
        const e = sentKeys?.has(op.key) ? undefined : this.idle.get(op.key);
        if (e) {
          if (op.op === 'sustained.get') {
            out[i] = null;
            this.stats.skipped++;
            continue;
          }
          if (!op.holds || op.ts < e.last) {
            if (!op.holds && op.ts > e.last) {
              e.last = op.ts;
              e.pending = op;
            }
            out[i] = null;
            this.stats.skipped++;
            continue;
          }
          // holds at or after every observation seen: it starts an interval (the inner store agrees: its last ≤ ours)
          this.idle.delete(op.key);
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
      if (r === null) {
        const e = this.idle.get(op.key);
        if (e) {
          if (op.ts > e.last) e.last = op.ts;
        } else {
          if (this.idle.size >= this.maxKeys) this.forget('capacity');
          this.idle.set(op.key, { last: op.ts, pending: null });
        }
      } else this.idle.delete(op.key);
    }
    return out;
  }
}

interface Plan {
  send: StoreOp[];
  /** For each sent op after the flushed ones: its index in the caller's batch. */
  at: number[];
  out: StoreResult[];
  /** How many of `send` are flushed observations (first). */
  flushed: number;
}
