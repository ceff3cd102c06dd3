/**
 * Partition-local state for node-scoped rules (ADR 0042 step 2, ADR 0045).
 *
 * One node's events live on one Kafka partition, consumed by one replica at a
 * time. This store keeps the state of NODE-scoped rules (their leaf, episode
 * and index keys) in memory, one MemoryStateStore per owned partition, and
 * sends everything else — group- and fleet-scoped rules, workload changes, the
 * tick outbox — to the shared store (Redis) exactly as before. Ops are routed
 * by the rule's declared scope (`isLocal`, built by the engine from the rule
 * set: `nodeScopedKeyTest` in rules/engine/engine.ts).
 *
 * Durability (op log + snapshot, ADR 0047 amending ADR 0045): `execFinal` —
 * the engine's last store call of a batch or tick, before its decisions reach
 * the remediator and before the offsets commit — appends the ops that changed
 * each partition's memory since its last write (sweeps included, as `drop`)
 * as ONE encoded entry to the partition's op log (a Redis list), in the SAME
 * atomic script call as that call's shared ops, guarded by the partition's
 * owner epoch. When the log since the last snapshot grows past its bound (ops
 * or characters), that flush writes a snapshot instead: the partition's
 * whole memory replaces its hash (field = key, value = the entry's JSON; a
 * rule's index as a header plus one field per member), and the log is
 * emptied in the same call. On first use of a partition after assignment (a batch
 * of it, or a tick; never inside the rebalance callback) the store takes a
 * new epoch, loads the hash and then replays the log, both in bounded chunks.
 * A write with a stale epoch fails (a replica that lost the partition is
 * fenced), and any failed call discards the memory of every partition it
 * changed: memory is trusted only as far as its last successful write, the
 * rest is re-derived from the redelivered events (all ops are idempotent per
 * event id).
 */
import { NodewardenError } from '../../core/errors.js';
import { MemoryStateStore } from './memory-store.js';
import { decodeOpLog, encodeOpLog, isMutating, OpLogKeys } from './partition-oplog.js';
import type { LoggedOp } from './partition-oplog.js';
import { StaleEpochError } from './state-store.js';
import type { StateStore, StoreOp, StoreResult, StoreTrimScope } from './state-store.js';

/**
 * What one partition's write carries: an append to its op log (`log`), or a
 * snapshot (`snapshot`: `set` replaces its hash, and the log is emptied, in
 * the same call).
 */
export interface PartitionFlush {
  partition: number;
  epoch: number;
  /** Snapshot: the partition's whole memory, field → text. */
  set: Array<[string, string]>;
  /** Append: one op-log entry (partition-oplog.ts), or null. */
  log: string | null;
  /** A snapshot: the hash becomes `set` and the op log is deleted (everything in it is in the hash now). */
  snapshot: boolean;
  /** Ops in `log` (0 for a snapshot). */
  ops: number;
}

/** The durable side: owner epochs, the per-partition hashes, and the shared store with which flushes are atomic. */
export interface PartitionStateBackend {
  /** Shared state (group- and fleet-scoped rules, the tick outbox). */
  readonly shared: StateStore;
  /** Becomes partition p's owner: a new epoch, after which earlier owners' writes fail. */
  claim(partition: number): Promise<number>;
  /** Reads partition p's entries in bounded chunks, calling `each` per chunk. */
  load(partition: number, each: (entries: ReadonlyArray<readonly [string, string]>) => void): Promise<void>;
  /** Reads partition p's op log, oldest first, in bounded chunks of entries. */
  loadLog(partition: number, each: (entries: readonly string[]) => void): Promise<void>;
  /**
   * Runs shared ops and writes the flushes in one atomic call; rejects with
   * {@link StaleEpochError} (writing nothing) when a flush's epoch is no longer current.
   */
  execFlush(ops: readonly StoreOp[], flushes: readonly PartitionFlush[]): Promise<StoreResult[]>;
}

/** What the engine service and the batch processor tell the partition-local store. */
export interface PartitionOwnership {
  /** The consumer's assignment (GROUP_JOIN). Cheap: nothing is read here. */
  assign(partitions: readonly number[]): void;
  /** Before a batch of `partition`, or a tick (null): restores what is not in memory yet. */
  enter(partition: number | null): Promise<void>;
  /** After it: on failure, memory it changed and did not write is discarded. */
  leave(ok: boolean): void;
}

export interface PartitionLocalStoreOptions {
  backend: PartitionStateBackend;
  /** True for a key (or index) of a node-scoped rule. */
  isLocal: (key: string) => boolean;
  /** Entries held at most across owned partitions (default 2,000,000). At the cap batches fail (retriable) after a sweep. */
  maxKeys?: number;
  /** Time for the at-cap sweep (default the wall clock: live op times are event times close to it). */
  now?: () => number;
  /**
   * A snapshot is written when the log since the last one holds at least
   * max(`snapshotOps`, `snapshotKeysFactor` × the partition's live keys) ops
   * (defaults 50,000 and 4) ...
   */
  snapshotOps?: number;
  snapshotKeysFactor?: number;
  /** ... or `maxLogChars` characters (default 16 Mi), or when one append would exceed `maxAppendChars` (default 4 Mi). */
  maxLogChars?: number;
  maxAppendChars?: number;
  /** For logs: a partition was restored (`skipped`: unreadable hash fields; `refused`: malformed op-log entries, not replayed) / discarded. */
  onRestore?: (partition: number, keys: number, ms: number, skipped: number, refused: number) => void;
  onDiscard?: (partition: number, reason: string) => void;
}

export interface PartitionLocalStats {
  restores: number;
  restoredKeys: number;
  discards: number;
  /** Partition writes (appends + snapshots). */
  flushes: number;
  snapshots: number;
  /** Hash fields written by snapshots. */
  flushedKeys: number;
  loggedOps: number;
  replayedOps: number;
  /** Malformed op-log entries a restore refused (not replayed). */
  refusedLogEntries: number;
  localOps: number;
  sharedOps: number;
}

interface Owned {
  store: MemoryStateStore;
  epoch: number;
  /** Ops that changed memory since the last successful write, in order: the next log entry. */
  pending: LoggedOp[];
  /** Keys the store's sweep dropped, not yet in `pending`. */
  swept: string[];
  /** What the durable log holds since the last snapshot. */
  logOps: number;
  logChars: number;
  /** The next write is a snapshot (a restore refused a log entry: the log is rewritten from memory). */
  snapshotNext: boolean;
  /** The log's key table since the last snapshot (what its entries defined; partition-oplog.ts). */
  table: OpLogKeys;
  /** Restored and owned: its keys are in the store's `where` map. */
  live: boolean;
  /**
   * Restored keys this store's `isLocal` calls shared (written under another
   * rule set): ops on them still go to the shared store, as before. Every other
   * key in memory is local (only local ops run on memory), which lets `run`
   * route an op on a key the context's memory holds without classifying it.
   */
  foreign: Set<string>;
}

/** Hash field of one index member: `<index>\n<member>` (keys and scopes hold no newline). */
const MEMBER_SEP = '\n';

/**
 * Whether an op's result shows it changed nothing (not logged): a fire that
 * was refused, a clear of nothing, a pop of nothing. Reads change nothing either.
 */
function changedNothing(op: StoreOp, result: StoreResult): boolean {
  switch (op.op) {
    case 'episode.fire':
    case 'episode.clear':
      return result === null;
    case 'due.pop':
      return (result as string[]).length === 0;
    default:
      return !isMutating(op);
  }
}

/** A sweep's drops become logged ops at the point they happened. */
function takeSwept(o: Owned): void {
  if (o.swept.length === 0) return;
  for (const key of o.swept) o.pending.push({ op: 'drop', key });
  o.swept = [];
}

/** Runs ops on a partition's memory and records what changed (the next log entry). */
function apply(o: Owned, ops: readonly StoreOp[]): StoreResult[] {
  takeSwept(o); // a sweep outside a call (the cap, the trim job) happened before these ops
  const res = o.store.execSync(ops);
  for (let j = 0; j < ops.length; j++) {
    const op = ops[j] as StoreOp;
    const r = res[j] as StoreResult;
    if (!changedNothing(op, r)) o.pending.push(op);
  }
  takeSwept(o); // execSync sweeps after its ops
  return res;
}

/** Ops that read a rule's whole index: asked of every owned partition. */
const isFanOut = (op: StoreOp): op is Extract<StoreOp, { op: 'due.pop' | 'episode.quiet' }> => op.op === 'due.pop' || op.op === 'episode.quiet';

export class PartitionLocalStore implements StateStore, PartitionOwnership {
  readonly stats: PartitionLocalStats = {
    restores: 0,
    restoredKeys: 0,
    discards: 0,
    flushes: 0,
    snapshots: 0,
    flushedKeys: 0,
    loggedOps: 0,
    replayedOps: 0,
    refusedLogEntries: 0,
    localOps: 0,
    sharedOps: 0,
  };
  private readonly owned = new Map<number, Owned>();
  /** Partitions assigned to this replica (restored on first use). */
  private assigned = new Set<number>();
  /** The partition whose batch is being evaluated, or null (tick, release). */
  private context: number | null = null;
  /** Scope → partition of the last fan-out that returned it (phase 2 of a tick). */
  private popHome = new Map<string, number>();
  private readonly maxKeys: number;
  private readonly snapshotOps: number;
  private readonly snapshotKeysFactor: number;
  private readonly maxLogChars: number;
  private readonly maxAppendChars: number;
  private readonly classified = new Map<string, boolean>();
  /**
   * Which owned partition holds a key (ADR 0051): every key any live
   * partition's memory holds, kept by the memory stores' `onKeys` as keys come
   * and go. Routing an op is one lookup here instead of probing every
   * partition for keys nobody holds (reads of state never created, clears of
   * no episode: most of the probes on the bench).
   */
  private readonly where = new Map<string, Owned>();

  constructor(private readonly o: PartitionLocalStoreOptions) {
    this.maxKeys = Math.max(1, o.maxKeys ?? 2_000_000);
    this.snapshotOps = Math.max(0, o.snapshotOps ?? 50_000);
    this.snapshotKeysFactor = Math.max(0, o.snapshotKeysFactor ?? 4);
    this.maxLogChars = Math.max(0, o.maxLogChars ?? 16 * 1024 * 1024);
    this.maxAppendChars = Math.max(0, Math.min(this.maxLogChars, o.maxAppendChars ?? 4 * 1024 * 1024));
  }

  /** The consumer's assignment changed (GROUP_JOIN): partitions no longer assigned are dropped; new ones restore on first use. */
  assign(partitions: readonly number[]): void {
    this.assigned = new Set(partitions);
    for (const p of [...this.owned.keys()]) if (!this.assigned.has(p)) this.discard(p, 'partition no longer assigned');
  }

  /**
   * Before a batch of `partition` (or, with null, a tick: every assigned
   * partition): restores what is not in memory yet and sets the routing context.
   */
  async enter(partition: number | null): Promise<void> {
    this.context = null;
    if (partition !== null) {
      // a batch of a partition this replica is not assigned (fetched before a rebalance): taking its epoch
      // would fence the real owner, so the batch fails and is redelivered to that owner
      if (!this.assigned.has(partition)) throw new NodewardenError('CONFLICT', `partition ${partition} is not assigned to this replica; its batch will be redelivered to its owner`, { retriable: true });
      await this.restore(partition);
    } else for (const p of this.assigned) await this.restore(p);
    this.checkCap();
    this.context = partition;
  }

  /** After the batch or tick: on failure, what it changed in memory and did not write is discarded. */
  leave(ok: boolean): void {
    this.context = null;
    if (!ok) this.discardDirty('batch or tick failed');
  }

  /** Keys held across owned partitions. */
  get size(): number {
    let n = 0;
    for (const o of this.owned.values()) n += o.store.size();
    return n;
  }

  /** Partitions held in memory. */
  partitions(): number[] {
    return [...this.owned.keys()].sort((a, b) => a - b);
  }

  /** A held partition's memory (tests compare what a restore rebuilt). */
  memoryOf(partition: number): MemoryStateStore | undefined {
    return this.owned.get(partition)?.store;
  }

  exec(ops: readonly StoreOp[]): Promise<StoreResult[]> {
    return this.run(ops, false);
  }

  execFinal(ops: readonly StoreOp[]): Promise<StoreResult[]> {
    return this.run(ops, true);
  }

  async trim(scope: StoreTrimScope): Promise<number> {
    let n = 0;
    for (const o of this.owned.values()) n += await o.store.trim();
    return n + (await this.o.backend.shared.trim(scope));
  }

  close(): Promise<void> {
    return this.o.backend.shared.close();
  }

  private local(key: string): boolean {
    let v = this.classified.get(key);
    if (v === undefined) {
      v = this.o.isLocal(key);
      if (this.classified.size >= 200_000) this.classified.clear();
      this.classified.set(key, v);
    }
    return v;
  }

  private isLocalOp(op: StoreOp): boolean {
    return 'key' in op ? this.local(op.key) : this.local(op.index);
  }

  /** `k` left `o`'s memory (or `o` left this replica): another partition that holds it, if any, becomes its home. */
  private unlist(k: string, o: Owned): void {
    if (this.where.get(k) !== o) return;
    this.where.delete(k);
    for (const x of this.owned.values())
      if (x !== o && x.live && x.store.has(k)) {
        this.where.set(k, x);
        return;
      }
  }

  /**
   * The partition an op of a node-scoped rule that no owned partition holds
   * belongs to: the batch's, or for a tick the partition whose fan-out
   * returned its scope; null when there is none (answered from an empty store).
   */
  private home(op: Exclude<StoreOp, { op: 'due.pop' | 'episode.quiet' }>): number | null {
    if (this.context !== null) return this.context;
    if ('member' in op) return this.popHome.get(op.member) ?? null;
    return null;
  }

  private async run(ops: readonly StoreOp[], final: boolean): Promise<StoreResult[]> {
    const out: StoreResult[] = new Array<StoreResult>(ops.length);
    const shared: StoreOp[] = [];
    const sharedAt: number[] = [];
    try {
      let fanned = false;
      // Each local op runs on its partition's memory as it is routed, in call order (partitions hold disjoint keys, and
      // shared ops never read local keys, so this equals running each store's ops together); each store that ran ops
      // sweeps once at the end, as `execSync` does after its ops, and its sweeps are logged where they happen.
      const ran: Owned[] = [];
      let last: Owned | undefined;
      const one = (o: Owned, op: StoreOp): StoreResult => {
        if (o !== last) {
          last = o;
          if (!ran.includes(o)) {
            ran.push(o);
            takeSwept(o); // a sweep outside a call (the cap, the trim job) happened before these ops
          }
        }
        const r = o.store.execOne(op);
        if (!changedNothing(op, r)) o.pending.push(op);
        return r;
      };
      const drain = (): void => {
        for (const o of ran) {
          o.store.sweepIfDue();
          takeSwept(o);
        }
        ran.length = 0;
        last = undefined;
      };
      const ctx = this.context === null ? undefined : this.owned.get(this.context);
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i] as StoreOp;
        // a key some owned partition holds runs there (partitions hold disjoint keys; should two hold one, the batch's
        // own wins), unless it is a restored key this rule set routes to the shared store
        if ('key' in op) {
          const held = this.where.get(op.key);
          if (held !== undefined && (held.foreign.size === 0 || !held.foreign.has(op.key))) {
            this.stats.localOps++;
            out[i] = one(ctx !== undefined && held !== ctx && ctx.store.has(op.key) ? ctx : held, op);
            continue;
          }
        }
        if (!this.isLocalOp(op)) {
          shared.push(op);
          sharedAt.push(i);
          continue;
        }
        this.stats.localOps++;
        if (isFanOut(op)) {
          drain();
          if (!fanned) this.popHome = new Map();
          fanned = true;
          const all: string[] = [];
          for (const [p, o] of this.owned) {
            const r = apply(o, [op])[0] as string[];
            for (const m of r) {
              all.push(m);
              this.popHome.set(m, p);
            }
          }
          out[i] = all.sort();
          continue;
        }
        const p = this.home(op);
        const o = p === null ? undefined : this.owned.get(p);
        // the batch's (or the popped scope's) partition was dropped meanwhile (a rebalance): never answer from nothing
        if (p !== null && !o) throw new NodewardenError('CONFLICT', `partition ${p} left this replica during the batch or tick; it will be redelivered to its owner`, { retriable: true });
        if (!o) {
          // no owned partition holds it: the answer of an empty store, nothing kept
          out[i] = new MemoryStateStore().execSync([op])[0] as StoreResult;
          continue;
        }
        // a key this op creates is in `where` from now on: later ops on it in this call find it there
        out[i] = one(o, op);
      }
      drain();
      this.stats.sharedOps += shared.length;
      let res: StoreResult[];
      if (final) {
        if (this.context !== null && !this.owned.has(this.context)) throw new NodewardenError('CONFLICT', `partition ${this.context} left this replica during the batch; it will be redelivered to its owner`, { retriable: true });
        const flushes = this.flushes();
        res = shared.length > 0 || flushes.length > 0 ? await this.o.backend.execFlush(shared, flushes) : [];
        this.flushed(flushes);
      } else res = shared.length > 0 ? await this.o.backend.shared.exec(shared) : [];
      for (let j = 0; j < sharedAt.length; j++) out[sharedAt[j] as number] = res[j] as StoreResult;
      return out;
    } catch (err) {
      if (err instanceof StaleEpochError) this.discard(err.partition, 'owner epoch stale: another replica took the partition');
      this.discardDirty(`store call failed: ${err instanceof Error ? err.message : String(err)}`);
      throw err;
    }
  }

  /**
   * Per partition that changed since its last write: an append of what
   * changed, or — the log past its bound, or an op that cannot be logged
   * exactly — a snapshot of the partition's whole memory.
   */
  private flushes(): PartitionFlush[] {
    const out: PartitionFlush[] = [];
    for (const [partition, o] of this.owned) {
      takeSwept(o);
      if (o.pending.length === 0 && !o.snapshotNext) continue;
      if (!o.snapshotNext && o.logOps + o.pending.length < Math.max(this.snapshotOps, this.snapshotKeysFactor * o.store.size())) {
        const s0 = o.table.strs.length;
        const k0 = o.table.keys.length;
        const log = encodeOpLog(o.pending, o.table);
        if (log !== null && log.length <= this.maxAppendChars && o.logChars + log.length <= this.maxLogChars) {
          out.push({ partition, epoch: o.epoch, set: [], log, snapshot: false, ops: o.pending.length });
          continue;
        }
        // not appended: what the entry defined is not in the log (the snapshot below starts a new table anyway)
        o.table.truncate(s0, k0);
      }
      const set: Array<[string, string]> = [];
      for (const k of o.store.keys()) {
        set.push([k, o.store.exportEntry(k) as string]);
        for (const [m, score] of o.store.members(k)) set.push([k + MEMBER_SEP + m, String(score)]);
      }
      out.push({ partition, epoch: o.epoch, set, log: null, snapshot: true, ops: 0 });
    }
    return out;
  }

  private flushed(flushes: readonly PartitionFlush[]): void {
    for (const f of flushes) {
      const o = this.owned.get(f.partition);
      if (!o) continue;
      this.stats.flushes++;
      this.stats.loggedOps += f.ops;
      o.pending = [];
      if (f.snapshot) {
        this.stats.snapshots++;
        this.stats.flushedKeys += f.set.length;
        o.logOps = 0;
        o.logChars = 0;
        o.snapshotNext = false;
        o.table = new OpLogKeys(); // the log is emptied with the snapshot
      } else {
        o.logOps += f.ops;
        o.logChars += f.log?.length ?? 0;
      }
    }
  }

  private async restore(partition: number): Promise<void> {
    if (this.owned.has(partition)) return;
    const started = Date.now();
    const o: Owned = { store: null as unknown as MemoryStateStore, epoch: 0, pending: [], swept: [], logOps: 0, logChars: 0, snapshotNext: false, table: new OpLogKeys(), live: false, foreign: new Set() };
    o.store = new MemoryStateStore({
      onSweep: (k) => o.swept.push(k),
      onKeys: { added: (k) => o.live && this.where.set(k, o), removed: (k) => o.live && this.unlist(k, o) },
    });
    o.epoch = await this.o.backend.claim(partition);
    let skipped = 0;
    const headers = new Set<string>();
    const indexes = new Set<string>();
    await this.o.backend.load(partition, (entries) => {
      for (const [k, v] of entries) {
        const sep = k.indexOf(MEMBER_SEP);
        if (sep >= 0) {
          const index = k.slice(0, sep);
          o.store.importMember(index, k.slice(sep + 1), Number(v));
          indexes.add(index);
        } else if (o.store.importEntry(k, v)) headers.add(k);
        else skipped++; // unreadable: gone with the next snapshot
      }
    });
    // members of an index whose header is gone (an old write-behind's leftovers): dropped; the next snapshot replaces the hash
    for (const index of indexes) if (!headers.has(index)) o.store.drop(index);
    // then the ops logged since that snapshot, in order, exactly as the writer applied them (its sweeps are `drop` ops)
    let refused = 0;
    await this.o.backend.loadLog(partition, (entries) => {
      for (const text of entries) {
        o.logChars += text.length;
        const ops = decodeOpLog(text, o.table);
        if (ops === null) {
          // not an entry this store wrote: refused, never thrown (that would fail the partition's batches for good);
          // its ops are lost, as an unreadable hash field is, and the next write snapshots memory and empties the log
          refused++;
          o.snapshotNext = true;
          continue;
        }
        o.logOps += ops.length;
        this.stats.replayedOps += ops.length;
        try {
          for (const op of ops) {
            if (op.op === 'drop') o.store.drop(op.key);
            else o.store.replayOne(op);
          }
        } catch {
          // an op the memory store cannot apply (an entry that decodes but no writer of this store made): refused too
          refused++;
          o.snapshotNext = true;
        }
      }
    });
    this.stats.refusedLogEntries += refused;
    // keys a writer with another rule set kept here that this one routes to the shared store
    for (const k of o.store.keys()) if (!this.o.isLocal(k)) o.foreign.add(k);
    this.owned.set(partition, o);
    o.live = true;
    for (const k of o.store.keys()) if (!this.where.has(k)) this.where.set(k, o);
    this.stats.restores++;
    this.stats.restoredKeys += o.store.size();
    this.o.onRestore?.(partition, o.store.size(), Date.now() - started, skipped, refused);
  }

  private discard(partition: number, reason: string): void {
    const o = this.owned.get(partition);
    if (!o || !this.owned.delete(partition)) return;
    o.live = false;
    for (const k of o.store.keys()) this.unlist(k, o);
    this.stats.discards++;
    this.o.onDiscard?.(partition, reason);
  }

  /** Discards every partition whose memory changed since its last successful write. */
  private discardDirty(reason: string): void {
    for (const [p, o] of [...this.owned]) if (o.pending.length > 0 || o.swept.length > 0) this.discard(p, reason);
  }

  /** Bounded memory: over the cap after a sweep, the batch fails (retriable) instead of growing. */
  private checkCap(): void {
    if (this.size <= this.maxKeys) return;
    const now = (this.o.now ?? Date.now)();
    for (const o of this.owned.values()) o.store.sweep(now);
    const n = this.size;
    if (n > this.maxKeys)
      throw new NodewardenError('UNAVAILABLE', `partition-local state holds ${n} keys, over its cap of ${this.maxKeys}: batches fail until state expires or partitions move (add replicas to spread the partitions, or run --state shared)`, { retriable: true });
  }
}
