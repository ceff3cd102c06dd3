/**
 * The partition-local store (ADR 0045) as the StateStore contract sees it:
 * every key local to partition 0, every call a whole batch. Run over the
 * memory backend (unit) and over Redis (integration).
 */
import { PartitionLocalStore } from '../../rules/store/partition-local-store.js';
import type { PartitionLocalStoreOptions, PartitionStateBackend } from '../../rules/store/partition-local-store.js';
import type { StateStore, StoreOp, StoreResult } from '../../rules/store/state-store.js';
import { NodewardenError } from '../../core/errors.js';
import { MemoryStateStore } from '../../rules/store/memory-store.js';
import { StaleEpochError } from '../../rules/store/state-store.js';
import type { PartitionFlush } from '../../rules/store/partition-local-store.js';
import type { Decision, LedgerRecord } from '../../core/decision.js';
import type { RuleEpisodes, RuleScope } from '../../core/held-fault.js';
import type { Remediator } from '../../remediations/ports.js';

/**
 * A remediator that executes every decision on paper (records them in
 * `submitted`) and keeps the rule episodes the batch processor binds, so a
 * test can call what the repair ladder calls when it returns a node.
 */
export function recordingRemediator(): { remediator: Pick<Remediator, 'submit' | 'heldFaults' | 'bindRuleEpisodes'>; submitted: Decision[]; ladderRelease: (episodes: RuleScope[]) => Promise<number> } {
  const submitted: Decision[] = [];
  let bound: RuleEpisodes | null = null;
  const remediator: Pick<Remediator, 'submit' | 'heldFaults' | 'bindRuleEpisodes'> = {
    submit: (ds) => {
      submitted.push(...ds);
      return Promise.resolve({ records: ds.map((d): LedgerRecord => ({ ts: new Date(d.at).toISOString(), rule: d.rule, action: d.action, target: d.target, outcome: 'executed', reason: d.reason, guard: null, decisionId: d.id })), retryLater: [] });
    },
    heldFaults: () => Promise.resolve({ records: [], retryLater: [] }),
    bindRuleEpisodes: (r) => {
      bound = r;
    },
  };
  const ladderRelease = (episodes: RuleScope[]): Promise<number> => bound?.release(episodes) ?? Promise.reject(new Error('not bound'));
  return { remediator, submitted, ladderRelease };
}

/** Every call a whole batch of partition 0 (enter, execFinal, leave), optionally on a fresh replica each time (restore round trip). */
export class RoutedForContract implements StateStore {
  private store: PartitionLocalStore;
  constructor(
    private readonly backend: PartitionStateBackend,
    private readonly restoreEveryCall: boolean,
    /** e.g. snapshot bounds: a small `snapshotOps` restores from snapshot + log, 0 from snapshots alone. */
    private readonly opts: Partial<PartitionLocalStoreOptions> = {},
  ) {
    this.store = this.fresh();
  }
  private fresh(): PartitionLocalStore {
    const s = new PartitionLocalStore({ ...this.opts, backend: this.backend, isLocal: () => true });
    s.assign([0]);
    return s;
  }
  async exec(ops: readonly StoreOp[]): Promise<StoreResult[]> {
    if (this.restoreEveryCall) this.store = this.fresh();
    await this.store.enter(0);
    try {
      return await this.store.execFinal(ops);
    } finally {
      this.store.leave(true);
    }
  }
  trim(): Promise<number> {
    return Promise.resolve(0);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The durable side in memory, as RedisPartitionState + batch.lua behave: epochs
 * are counters, a flush with a stale epoch writes nothing (shared ops neither),
 * hashes are read in chunks of `chunk` fields, op logs in chunks of `logChunk` entries.
 */
export class MemoryBackend implements PartitionStateBackend {
  readonly shared = new MemoryStateStore();
  readonly hashes = new Map<number, Map<string, string>>();
  readonly logs = new Map<number, string[]>();
  readonly epochs = new Map<number, number>();
  claims = 0;
  loads = 0;
  chunks = 0;
  logChunks = 0;
  failNext = false;
  constructor(
    readonly chunk = 1000,
    readonly logChunk = 16,
  ) {}

  claim(p: number): Promise<number> {
    this.claims++;
    const e = (this.epochs.get(p) ?? 0) + 1;
    this.epochs.set(p, e);
    return Promise.resolve(e);
  }
  load(p: number, each: (entries: ReadonlyArray<readonly [string, string]>) => void): Promise<void> {
    this.loads++;
    const all = [...(this.hashes.get(p) ?? new Map<string, string>())];
    for (let i = 0; i < all.length; i += this.chunk) {
      this.chunks++;
      each(all.slice(i, i + this.chunk));
    }
    return Promise.resolve();
  }
  loadLog(p: number, each: (entries: readonly string[]) => void): Promise<void> {
    const all = this.logs.get(p) ?? [];
    for (let i = 0; i < all.length; i += this.logChunk) {
      this.logChunks++;
      each(all.slice(i, i + this.logChunk));
    }
    return Promise.resolve();
  }
  execFlush(ops: readonly StoreOp[], flushes: readonly PartitionFlush[]): Promise<StoreResult[]> {
    if (this.failNext) {
      this.failNext = false;
      return Promise.reject(new NodewardenError('UNAVAILABLE', 'redis down', { retriable: true }));
    }
    for (const f of flushes) if (this.epochs.get(f.partition) !== f.epoch) return Promise.reject(new StaleEpochError(f.partition));
    const res = this.shared.execSync(ops);
    for (const f of flushes) {
      if (f.snapshot) {
        this.hashes.set(f.partition, new Map(f.set));
        this.logs.delete(f.partition);
      }
      if (f.log !== null) this.logs.set(f.partition, [...(this.logs.get(f.partition) ?? []), f.log]);
    }
    return Promise.resolve(res);
  }
}
