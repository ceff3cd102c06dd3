/**
 * A ClusterView kept in sync with the API server: one reflector per resource
 * (Nodes, and ReplicaSets / ControllerRevisions for workload revisions) does
 * list → watch from the list's resourceVersion → re-watch on close, re-list on
 * 410 Gone, plus a periodic full re-list (reconcile) that repairs anything a
 * dropped watch event left stale. Only the projections are kept (NodeInfo,
 * WorkloadRevision), never whole objects, so memory stays small at 10k nodes.
 */
import type { ClusterView, NodeInfo, UnplacedDeviceTaint, WorkloadRef, WorkloadRevision } from '../../core/cluster.js';
import { exponentialDelay } from '../../core/backoff.js';
import { errorMessage } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import { computeDeviceTaintView, projectRule, projectSlice, type DeviceTaintViewResult, type DeviceViewConfig, type RuleProjection, type SliceProjection } from './device-taint-view.js';
import { nodeInfoOf, planNodeOf } from './node-decisions.js';
import { revisionEntryOf, sortRevisions, workloadKey } from './revisions.js';
import type { KubeObject, WireNode } from './wire.js';

export type WatchedResource = 'nodes' | 'replicasets' | 'controllerrevisions' | 'devicetaintrules' | 'resourceslices';

export interface WatchHandle {
  stop(): void;
}

/**
 * List-and-watch port. `list` returns every object (all pages) and the list's
 * resourceVersion; `watch` streams changes after `resourceVersion` until it
 * ends (`onDone` once, with the error if any). Event types are the API's:
 * ADDED, MODIFIED, DELETED, BOOKMARK, ERROR (object = a Status).
 */
export interface ListWatchSource {
  list(resource: WatchedResource): Promise<{ items: KubeObject[]; resourceVersion: string }>;
  watch(
    resource: WatchedResource,
    resourceVersion: string,
    onEvent: (type: string, obj: KubeObject) => void,
    onDone: (err?: unknown) => void,
  ): Promise<WatchHandle>;
  /**
   * Whether the cluster serves DeviceTaintRule and ResourceSlice (resource.k8s.io,
   * newest served version of each; the source then lists/watches those). Absent:
   * this source cannot watch them.
   */
  discoverDeviceTaintApis?(): Promise<boolean>;
}

export interface LiveClusterOptions {
  source: ListWatchSource;
  logger?: Logger;
  /** Full re-list period (default 5 min). 0 disables it. */
  reconcileIntervalMs?: number;
  /** Also track workload revisions (ReplicaSets, ControllerRevisions). Default true. */
  watchWorkloads?: boolean;
  /** First re-watch delay after a failure; doubles up to 30 s. Default 500 ms. */
  retryDelayMs?: number;
  /** Wall clock for `listedAt` (default Date.now). */
  now?: () => number;
  /**
   * Also watch every DeviceTaintRule and the GPU driver's ResourceSlices where
   * the cluster serves them, for the GPUs others tainted (`otherTaintedGpus`,
   * docs/gpu-scope.md). Absent: not watched.
   */
  deviceTaints?: DeviceViewConfig;
}

/** Foreign rules and GPU slices kept at most (beyond: the excess rules count as unplaced, the guard denies). */
export const MAX_WATCHED_RULES = 10_000;
const MAX_WATCHED_SLICES = 50_000;

interface Sink {
  replace(items: KubeObject[]): void;
  upsert(obj: KubeObject): void;
  remove(obj: KubeObject): void;
}

const MAX_RETRY_MS = 30_000;

/** list + watch of one resource into a sink, with generation-guarded restarts. */
class Reflector {
  private rv = '';
  private handle: WatchHandle | undefined;
  private gen = 0;
  private stopped = false;
  /** Failures since the last good watch event: the back-off step (core/backoff.ts). */
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  lists = 0;
  watchEvents = 0;
  /** ms since epoch of the last successful full list (0: never). */
  listedAt = 0;

  constructor(
    readonly resource: WatchedResource,
    private readonly source: ListWatchSource,
    private readonly sink: Sink,
    private readonly log: Logger,
    private readonly baseDelay: number,
    private readonly now: () => number,
  ) {}

  /** Full list into the sink, then (re)start the watch from the list's version. */
  async relist(): Promise<void> {
    const { items, resourceVersion } = await this.source.list(this.resource);
    if (this.stopped) return;
    this.lists++;
    this.listedAt = this.now();
    this.sink.replace(items);
    this.rv = resourceVersion;
    await this.restartWatch();
  }

  private async restartWatch(): Promise<void> {
    this.handle?.stop();
    this.handle = undefined;
    if (this.stopped) return;
    const gen = ++this.gen;
    try {
      const h = await this.source.watch(
        this.resource,
        this.rv,
        (type, obj) => {
          if (gen === this.gen) this.onEvent(type, obj);
        },
        (err) => {
          if (gen === this.gen) this.onDone(err);
        },
      );
      if (gen !== this.gen || this.stopped) h.stop();
      else this.handle = h;
    } catch (err) {
      if (gen === this.gen) this.onDone(err);
    }
  }

  private onEvent(type: string, obj: KubeObject): void {
    this.watchEvents++;
    const rv = obj.metadata?.resourceVersion;
    if (type === 'ERROR') {
      const code = (obj as { code?: unknown }).code;
      this.log.info({ resource: this.resource, code }, 'watch error event; re-listing');
      this.gen++; // ignore the rest of this stream
      this.handle?.stop();
      this.schedule(() => this.relist(), code === 410 ? 0 : this.nextDelay());
      return;
    }
    this.failures = 0;
    if (type === 'ADDED' || type === 'MODIFIED') this.sink.upsert(obj);
    else if (type === 'DELETED') this.sink.remove(obj);
    if (rv !== undefined) this.rv = rv;
  }

  private onDone(err: unknown): void {
    if (this.stopped) return;
    this.gen++;
    if (err !== undefined && err !== null) {
      this.log.debug({ resource: this.resource, err: errorMessage(err) }, 'watch ended with error; re-watching');
      this.schedule(() => this.restartWatch(), this.nextDelay());
    } else {
      // Normal server-side close (timeoutSeconds, inactivity): continue where we were.
      this.schedule(() => this.restartWatch(), 0);
    }
  }

  private nextDelay(): number {
    return exponentialDelay(++this.failures, { baseMs: this.baseDelay, maxMs: MAX_RETRY_MS });
  }

  private schedule(fn: () => Promise<void>, ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      fn().catch((err: unknown) => {
        // A failed re-list (API down): keep trying with back-off; the view serves the last known state.
        this.log.warn({ resource: this.resource, err: errorMessage(err) }, 're-list failed; retrying');
        this.schedule(() => this.relist(), this.nextDelay());
      });
    }, ms);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    this.gen++;
    if (this.timer) clearTimeout(this.timer);
    this.handle?.stop();
    this.handle = undefined;
  }
}

export class LiveCluster implements ClusterView {
  private readonly nodes = new Map<string, NodeInfo>();
  /** What a cordon/uncordon plans from, per Node (planNodeOf): the executor patches with its resourceVersion (ADR 0041). */
  private readonly planNodes = new Map<string, WireNode>();
  /** uid (or kind/ns/name) of the revision object → its revision. */
  private readonly revisionsByObject = new Map<string, WorkloadRevision>();
  private readonly revisionsByWorkload = new Map<string, Map<string, WorkloadRevision>>();
  private readonly reflectors: Reflector[] = [];
  private readonly log: Logger;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private readonly reconcileMs: number;
  private readonly rules = new Map<string, RuleProjection>();
  private readonly slices = new Map<string, SliceProjection>();
  private droppedRules = 0;
  private droppedSlices = false;
  private deviceView: DeviceTaintViewResult | null = null;
  private deviceDirty = false;
  /** null: not asked yet or discovery failed; false: not served; true: watching. */
  private deviceApis: boolean | null = null;
  private readonly delay: number;
  private readonly now: () => number;

  constructor(private readonly opts: LiveClusterOptions) {
    this.log = opts.logger ?? silentLogger;
    this.reconcileMs = opts.reconcileIntervalMs ?? 300_000;
    const delay = opts.retryDelayMs ?? 500;
    const now = opts.now ?? Date.now;
    this.delay = delay;
    this.now = now;
    this.reflectors.push(new Reflector('nodes', opts.source, this.nodeSink(), this.log, delay, now));
    if (opts.watchWorkloads ?? true) {
      this.reflectors.push(new Reflector('replicasets', opts.source, this.revisionSink('ReplicaSet'), this.log, delay, now));
      this.reflectors.push(new Reflector('controllerrevisions', opts.source, this.revisionSink('ControllerRevision'), this.log, delay, now));
    }
  }

  /** Initial list of every resource (rejects if one fails: bad credentials should be loud), then watches. */
  async start(): Promise<void> {
    await this.discoverDeviceTaints();
    await Promise.all(this.reflectors.map((r) => r.relist()));
    if (this.reconcileMs > 0) {
      this.reconcileTimer = setInterval(() => {
        this.reconcile().catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'reconcile failed'));
      }, this.reconcileMs);
      this.reconcileTimer.unref();
    }
  }

  /** Full re-list of every resource now. */
  async reconcile(): Promise<void> {
    await this.discoverDeviceTaints();
    await Promise.all(this.reflectors.map((r) => r.relist()));
  }

  /**
   * Adds the DeviceTaintRule and ResourceSlice reflectors once the cluster
   * serves both (asked at start and, until served, at each reconcile: a few
   * discovery GETs per reconcile period, never per decision).
   */
  private async discoverDeviceTaints(): Promise<void> {
    const cfg = this.opts.deviceTaints;
    const discover = this.opts.source.discoverDeviceTaintApis?.bind(this.opts.source);
    if (!cfg || !discover || this.deviceApis === true) return;
    try {
      this.deviceApis = await discover();
    } catch (err) {
      this.deviceApis = null;
      this.log.warn({ err: errorMessage(err) }, 'DeviceTaintRule/ResourceSlice discovery failed; GPUs tainted by others are not seen until it succeeds');
      return;
    }
    if (!this.deviceApis) return;
    this.log.info({}, 'watching DeviceTaintRules and ResourceSlices: GPUs tainted by others count in the guard');
    this.reflectors.push(new Reflector('devicetaintrules', this.opts.source, this.ruleSink(), this.log, this.delay, this.now));
    this.reflectors.push(new Reflector('resourceslices', this.opts.source, this.sliceSink(cfg.driver), this.log, this.delay, this.now));
  }

  /** ms since epoch of the oldest reflector's last full list (0 until every resource was listed once). */
  listedAt(): number {
    return Math.min(...this.reflectors.map((r) => r.listedAt));
  }

  stop(): void {
    if (this.reconcileTimer) clearInterval(this.reconcileTimer);
    for (const r of this.reflectors) r.stop();
  }

  /** Counters for tests and metrics: lists done and watch events seen per resource. */
  stats(): Record<string, { lists: number; watchEvents: number }> {
    return Object.fromEntries(this.reflectors.map((r) => [r.resource, { lists: r.lists, watchEvents: r.watchEvents }]));
  }

  listNodes(): NodeInfo[] {
    const v = this.devices();
    if (!v || v.otherTainted.size === 0) return [...this.nodes.values()];
    return [...this.nodes.values()].map((n) => this.withOthers(n, v));
  }

  /** The view's copy of Node `name` for planning a cordon (a copy: callers may keep it); undefined when not in the view. */
  nodeForPlan(name: string): WireNode | undefined {
    const n = this.planNodes.get(name);
    return n === undefined ? undefined : structuredClone(n);
  }

  getNode(name: string): NodeInfo | undefined {
    const n = this.nodes.get(name);
    const v = this.devices();
    return n && v ? this.withOthers(n, v) : n;
  }

  unplacedDeviceTaints(): { rules: readonly UnplacedDeviceTaint[]; count: number } {
    const v = this.devices();
    if (!v) return { rules: [], count: 0 };
    const overflow: UnplacedDeviceTaint[] = [];
    if (this.droppedRules > 0) overflow.push({ rule: `(${this.droppedRules} rules)`, reason: `more than ${MAX_WATCHED_RULES} DeviceTaintRules: the view keeps no more` });
    if (this.droppedSlices) overflow.push({ rule: '(every rule)', reason: `more than ${MAX_WATCHED_SLICES} ResourceSlices of the GPU driver: the view keeps no more` });
    return { rules: [...v.unplaced, ...overflow], count: v.unplacedCount + this.droppedRules + (this.droppedSlices ? 1 : 0) };
  }

  private withOthers(n: NodeInfo, v: DeviceTaintViewResult): NodeInfo {
    const others = v.otherTainted.get(n.name);
    return others ? { ...n, otherTaintedGpus: others } : n;
  }

  /** The mapping of the watched rules and slices, recomputed only after a change (never per decision when nothing moved). */
  private devices(): DeviceTaintViewResult | null {
    const cfg = this.opts.deviceTaints;
    if (!cfg || this.deviceApis !== true) return null;
    if (this.deviceDirty || !this.deviceView) {
      this.deviceView = computeDeviceTaintView(this.rules.values(), this.slices.values(), cfg);
      this.deviceDirty = false;
    }
    return this.deviceView;
  }

  private ruleSink(): Sink {
    const key = (o: KubeObject): string => o.metadata?.name ?? '';
    const upsert = (o: KubeObject): void => {
      this.deviceDirty = true;
      const k = key(o);
      if (!this.rules.has(k) && this.rules.size >= MAX_WATCHED_RULES) {
        this.droppedRules++;
        return;
      }
      this.rules.set(k, projectRule(o));
    };
    return {
      replace: (items) => {
        this.rules.clear();
        this.droppedRules = 0;
        for (const o of items) upsert(o);
        this.deviceDirty = true;
      },
      upsert,
      remove: (o) => {
        this.deviceDirty = true;
        if (!this.rules.delete(key(o)) && this.droppedRules > 0) this.droppedRules--;
      },
    };
  }

  private sliceSink(driver: string): Sink {
    const key = (o: KubeObject): string => o.metadata?.name ?? '';
    const upsert = (o: KubeObject): void => {
      const p = projectSlice(o, driver);
      const k = key(o);
      if (this.slices.delete(k)) this.deviceDirty = true;
      if (!p) return;
      if (this.slices.size >= MAX_WATCHED_SLICES) {
        this.droppedSlices = true;
        return;
      }
      this.slices.set(k, p);
      this.deviceDirty = true;
    };
    return {
      replace: (items) => {
        this.slices.clear();
        this.droppedSlices = false;
        for (const o of items) upsert(o);
        this.deviceDirty = true;
      },
      upsert,
      remove: (o) => {
        if (this.slices.delete(key(o))) this.deviceDirty = true;
      },
    };
  }

  workloadRevisions(ref: WorkloadRef): WorkloadRevision[] {
    const m = this.revisionsByWorkload.get(workloadKey(ref));
    return m ? sortRevisions([...m.values()].map((r) => ({ ...r }))) : [];
  }

  private nodeSink(): Sink {
    return {
      replace: (items) => {
        this.nodes.clear();
        this.planNodes.clear();
        for (const n of items) {
          this.nodes.set(n.metadata?.name ?? '', nodeInfoOf(n));
          this.planNodes.set(n.metadata?.name ?? '', planNodeOf(n));
        }
      },
      upsert: (n) => {
        this.nodes.set(n.metadata?.name ?? '', nodeInfoOf(n));
        this.planNodes.set(n.metadata?.name ?? '', planNodeOf(n));
      },
      remove: (n) => {
        this.nodes.delete(n.metadata?.name ?? '');
        this.planNodes.delete(n.metadata?.name ?? '');
      },
    };
  }

  private revisionSink(kind: 'ReplicaSet' | 'ControllerRevision'): Sink {
    const id = (o: KubeObject): string => o.metadata?.uid ?? `${kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
    const remove = (key: string): void => {
      const prev = this.revisionsByObject.get(key);
      if (!prev) return;
      this.revisionsByObject.delete(key);
      const m = this.revisionsByWorkload.get(workloadKey(prev));
      m?.delete(key);
      if (m && m.size === 0) this.revisionsByWorkload.delete(workloadKey(prev));
    };
    const upsert = (o: KubeObject): void => {
      const key = id(o);
      remove(key);
      const rev = revisionEntryOf({ ...o, kind });
      if (!rev) return;
      this.revisionsByObject.set(key, rev);
      const wk = workloadKey(rev);
      let m = this.revisionsByWorkload.get(wk);
      if (!m) this.revisionsByWorkload.set(wk, (m = new Map<string, WorkloadRevision>()));
      m.set(key, rev);
    };
    return {
      replace: (items) => {
        for (const [key, rev] of [...this.revisionsByObject]) {
          if ((rev.kind === 'Deployment') === (kind === 'ReplicaSet')) remove(key);
        }
        for (const o of items) upsert(o);
      },
      upsert,
      remove: (o) => remove(id(o)),
    };
  }
}

export function createLiveCluster(opts: LiveClusterOptions): LiveCluster {
  return new LiveCluster(opts);
}
