/**
 * The partition-local store (ADR 0045) as the StateStore contract sees it:
 * every key local to partition 0, every call a whole batch. Run over the
 * memory backend (unit) and over Redis (integration).
 */
import { PartitionLocalStore } from '../../rules/store/partition-local-store.js';
import type { PartitionLocalStoreOptions, PartitionStateBackend } from '../../rules/store/partition-local-store.js';
import type { StateStore, StoreOp, StoreResult } from '../../rules/store/state-store.js';

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

