/**
 * A ClusterView kept in sync with the API server: one reflector per resource
 * (Nodes, and ReplicaSets / ControllerRevisions for workload revisions) does
 * list → watch from the list's resourceVersion → re-watch on close, re-list on
 * 410 Gone, plus a periodic full re-list (reconcile) that repairs anything a
 * dropped watch event left stale. Only the projections are kept (NodeInfo,
 * WorkloadRevision), never whole objects, so memory stays small at 10k nodes.
 */
import type { ClusterView, NodeInfo, WorkloadRef, WorkloadRevision } from '../../core/cluster.js';
import { exponentialDelay } from '../../core/backoff.js';
import { errorMessage } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import { nodeInfoOf } from './node-decisions.js';
import { revisionEntryOf, sortRevisions, workloadKey } from './revisions.js';
import type { KubeObject } from './wire.js';

export type WatchedResource = 'nodes' | 'replicasets' | 'controllerrevisions';

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
}

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
  /** uid (or kind/ns/name) of the revision object → its revision. */
  private readonly revisionsByObject = new Map<string, WorkloadRevision>();
  private readonly revisionsByWorkload = new Map<string, Map<string, WorkloadRevision>>();
  private readonly reflectors: Reflector[] = [];
  private readonly log: Logger;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private readonly reconcileMs: number;

  constructor(opts: LiveClusterOptions) {
    this.log = opts.logger ?? silentLogger;
    this.reconcileMs = opts.reconcileIntervalMs ?? 300_000;
    const delay = opts.retryDelayMs ?? 500;
    const now = opts.now ?? Date.now;
    this.reflectors.push(new Reflector('nodes', opts.source, this.nodeSink(), this.log, delay, now));
    if (opts.watchWorkloads ?? true) {
      this.reflectors.push(new Reflector('replicasets', opts.source, this.revisionSink('ReplicaSet'), this.log, delay, now));
      this.reflectors.push(new Reflector('controllerrevisions', opts.source, this.revisionSink('ControllerRevision'), this.log, delay, now));
    }
  }

  /** Initial list of every resource (rejects if one fails: bad credentials should be loud), then watches. */
  async start(): Promise<void> {
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
    await Promise.all(this.reflectors.map((r) => r.relist()));
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
    return [...this.nodes.values()];
  }

  getNode(name: string): NodeInfo | undefined {
    return this.nodes.get(name);
  }

  workloadRevisions(ref: WorkloadRef): WorkloadRevision[] {
    const m = this.revisionsByWorkload.get(workloadKey(ref));
    return m ? sortRevisions([...m.values()].map((r) => ({ ...r }))) : [];
  }

  private nodeSink(): Sink {
    return {
      replace: (items) => {
        this.nodes.clear();
        for (const n of items) this.nodes.set(n.metadata?.name ?? '', nodeInfoOf(n));
      },
      upsert: (n) => this.nodes.set(n.metadata?.name ?? '', nodeInfoOf(n)),
      remove: (n) => this.nodes.delete(n.metadata?.name ?? ''),
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
