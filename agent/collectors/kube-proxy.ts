/**
 * kube-proxy signals.
 *
 * `kubeproxy.restart`: watches the pods of this node that match the
 * kube-proxy selector and emits one event per observed restartCount increase,
 * with the container's `lastState.terminated` reason and exit code (an
 * OOMKilled kube-proxy stops programming iptables/ipvs rules: new connections
 * fail while old ones keep working). The first sight of a pod only records its
 * baseline: restarts from before the agent started are history, not news.
 * The diffing is a pure function; the Kubernetes API sits behind `PodSource`.
 *
 * `kubeproxy.health`: GET kube-proxy's `/healthz` (port 10256), healthy or
 * not, and the age of its `lastUpdated` (how long since it last synced rules).
 */
import { httpGetText } from './http-get.js';
import { probeLoopCollector } from './periodic.js';
import type { Collector, CollectorContext, CollectResult, Emit } from '../collector.js';
import type { KubeProxyRestartData } from '../../core/envelope.js';
import { exponentialDelay } from '../../core/backoff.js';
import { errorMessage } from '../../core/errors.js';

// ------------------------------------------------------------- pure diffing

/** The part of a pod the restart diff needs. */
export interface PodRestartView {
  namespace: string;
  name: string;
  uid: string;
  containers: Array<{ name: string; restartCount: number; reason: string | null; exitCode: number | null }>;
}

/** Restart counts last seen, by `uid/container`. */
export type RestartBaseline = Map<string, number>;

export type KubeProxyRestart = KubeProxyRestartData & { namespace: string; container: string; previousRestartCount: number };

/**
 * Compares a pod with the baseline and updates the baseline in place.
 * Returns one restart per container whose restartCount went up; a container
 * seen for the first time only sets its baseline. A count that went down
 * (a pod recreated under the same uid cannot, but be safe) resets the baseline.
 */
export function diffPodRestarts(baseline: RestartBaseline, pod: PodRestartView): KubeProxyRestart[] {
  const out: KubeProxyRestart[] = [];
  for (const c of pod.containers) {
    const key = `${pod.uid}/${c.name}`;
    const prev = baseline.get(key);
    baseline.set(key, c.restartCount);
    if (prev === undefined || c.restartCount <= prev) continue;
    out.push({
      pod: pod.name,
      namespace: pod.namespace,
      container: c.name,
      restartCount: c.restartCount,
      previousRestartCount: prev,
      reason: c.reason,
      exitCode: c.exitCode,
    });
  }
  return out;
}

/** Forgets a deleted pod so the baseline does not grow forever. */
export function forgetPod(baseline: RestartBaseline, uid: string): void {
  for (const key of [...baseline.keys()]) if (key.startsWith(`${uid}/`)) baseline.delete(key);
}

/** Keeps only the pods present in a fresh list (pods deleted while the watch was down). */
export function retainPods(baseline: RestartBaseline, uids: ReadonlySet<string>): void {
  for (const key of [...baseline.keys()]) if (!uids.has(key.slice(0, key.indexOf('/')))) baseline.delete(key);
}

interface RawContainerStatus {
  name?: string;
  restartCount?: number;
  lastState?: { terminated?: { reason?: string; exitCode?: number } };
}
interface RawPod {
  metadata?: { namespace?: string; name?: string; uid?: string };
  status?: { containerStatuses?: RawContainerStatus[] };
}

/** Reduces a Kubernetes Pod object (as the API returns it) to the restart view. */
export function podView(raw: unknown): PodRestartView | null {
  const pod = raw as RawPod | null;
  const md = pod?.metadata;
  if (!md?.name || !md.uid) return null;
  return {
    namespace: md.namespace ?? '',
    name: md.name,
    uid: md.uid,
    containers: (pod?.status?.containerStatuses ?? []).map((c) => ({
      name: c.name ?? '',
      restartCount: typeof c.restartCount === 'number' ? c.restartCount : 0,
      reason: c.lastState?.terminated?.reason ?? null,
      exitCode: typeof c.lastState?.terminated?.exitCode === 'number' ? c.lastState.terminated.exitCode : null,
    })),
  };
}

// ------------------------------------------------------------- the API port

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** Lists and watches this node's kube-proxy pods. */
export interface PodSource {
  list(): Promise<{ pods: PodRestartView[]; resourceVersion: string }>;
  /**
   * Watches from `resourceVersion`. `onEvent` gets each event (pod null for
   * BOOKMARK/ERROR; `code` 410 on ERROR means the version is too old: re-list).
   * `onDone` is called once when the watch ends, with the error if any.
   */
  watch(
    resourceVersion: string,
    onEvent: (type: WatchEventType, pod: PodRestartView | null, resourceVersion: string | null, code?: number) => void,
    onDone: (err: unknown) => void,
  ): Promise<{ abort(): void }>;
}

/**
 * A PodSource over the agent's lean API client (`agent/kube-api.ts`, loaded
 * lazily): list and watch `/api/v1/pods` with this node's field selector.
 * No kubeconfig path: the in-cluster ServiceAccount.
 */
export async function kubePodSource(opts: { kubeconfigPath?: string | undefined; node: string; labelSelector: string }): Promise<PodSource> {
  const { kubeGet, kubeWatch, targetFor } = await import('../kube-api.js');
  const target = await targetFor({ kubeconfigPath: opts.kubeconfigPath });
  const selectors = `fieldSelector=${encodeURIComponent(`spec.nodeName=${opts.node}`)}&labelSelector=${encodeURIComponent(opts.labelSelector)}`;
  return {
    async list() {
      const res = (await kubeGet(target, `/api/v1/pods?${selectors}`)) as { items?: unknown[]; metadata?: { resourceVersion?: string } } | null;
      const pods = (res?.items ?? []).map((p) => podView(p)).filter((p): p is PodRestartView => p !== null);
      return { pods, resourceVersion: res?.metadata?.resourceVersion ?? '' };
    },
    watch(resourceVersion, onEvent, onDone) {
      const path = `/api/v1/pods?watch=1&allowWatchBookmarks=true&${selectors}&resourceVersion=${encodeURIComponent(resourceVersion)}`;
      const ctl = kubeWatch(
        target,
        path,
        (phase, obj) => {
          const o = obj as { metadata?: { resourceVersion?: string }; code?: number } | null;
          const type = phase as WatchEventType;
          const rv = o?.metadata?.resourceVersion ?? null;
          if (type === 'ERROR') onEvent(type, null, null, o?.code);
          else if (type === 'BOOKMARK') onEvent(type, null, rv);
          else onEvent(type, podView(obj), rv);
        },
        onDone,
      );
      return Promise.resolve(ctl);
    },
  };
}

// ------------------------------------------------------------- restart collector

export interface KubeProxyRestartOptions {
  /** Builds the PodSource; null means no cluster is reachable (the collector is skipped). */
  source: () => Promise<PodSource | null>;
  /** Back-off between failed list/watch attempts. */
  backoff?: { initialMs: number; maxMs: number };
}

export function createKubeProxyRestartCollector(ctx: CollectorContext, opts: KubeProxyRestartOptions): Collector {
  const log = ctx.logger.child({ collector: 'kubeproxy.restart' });
  const backoff = opts.backoff ?? { initialMs: 1000, maxMs: 30_000 };
  const baseline: RestartBaseline = new Map();
  let stopped = true;
  let source: PodSource | null = null;
  let current: { abort(): void } | null = null;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;

  const toEvents = (rs: KubeProxyRestart[]) => rs.map((r) => ctx.newEvent('kubeproxy.restart', 'kube-api', r));

  function retryLater(emit: Emit, why: unknown): void {
    if (stopped) return;
    failures++;
    const delay = exponentialDelay(failures, { baseMs: backoff.initialMs, maxMs: backoff.maxMs });
    log.warn({ err: errorMessage(why), retryInMs: delay }, 'kube-proxy pod watch failed; re-listing');
    timer = setTimeout(() => void listAndWatch(emit), delay);
  }

  async function watchFrom(emit: Emit, src: PodSource, rv: string): Promise<void> {
    let lastRv = rv;
    let gone = false;
    current = await src.watch(
      rv,
      (type, pod, newRv, code) => {
        if (newRv) lastRv = newRv;
        if (type === 'ERROR') {
          gone = true;
          log.info({ code }, 'kube-proxy pod watch error event; re-listing');
          return;
        }
        if (!pod) return;
        if (type === 'DELETED') {
          forgetPod(baseline, pod.uid);
          return;
        }
        const restarts = diffPodRestarts(baseline, pod);
        if (restarts.length > 0) emit(toEvents(restarts));
      },
      (err) => {
        current = null;
        if (stopped) return;
        if (err || gone) {
          retryLater(emit, err ?? new Error('watch expired (410 Gone)'));
          return;
        }
        // A clean close (server-side timeout): resume from the last version seen, no re-list needed.
        watchFrom(emit, src, lastRv).catch((e: unknown) => retryLater(emit, e));
      },
    );
  }

  async function listAndWatch(emit: Emit): Promise<void> {
    if (stopped || !source) return;
    try {
      const { pods, resourceVersion } = await source.list();
      if (stopped) return;
      retainPods(baseline, new Set(pods.map((p) => p.uid)));
      const restarts = pods.flatMap((p) => diffPodRestarts(baseline, p));
      if (restarts.length > 0) emit(toEvents(restarts));
      await watchFrom(emit, source, resourceVersion);
      failures = 0;
    } catch (err) {
      retryLater(emit, err);
    }
  }

  return {
    name: 'kubeproxy.restart',
    async start(emit: Emit): Promise<void> {
      if (!stopped) return;
      source = await opts.source();
      if (!source) throw new Error('no Kubernetes API reachable (not in a cluster and no kubeconfig)');
      stopped = false;
      void listAndWatch(emit);
    },
    stop(): Promise<void> {
      stopped = true;
      if (timer) clearTimeout(timer);
      current?.abort();
      current = null;
      return Promise.resolve();
    },
    async collectOnce(): Promise<CollectResult> {
      const src = await opts.source();
      if (!src) return { events: [], skipped: 'no Kubernetes API (not in a cluster and no kubeconfig): kube-proxy restarts not watched' };
      const { pods } = await src.list();
      for (const p of pods) diffPodRestarts(baseline, p);
      // One look can only set baselines: a restart is an increase between two looks.
      return { events: [], skipped: `baseline recorded for ${pods.length} kube-proxy pod(s); restarts are reported as increases in live mode` };
    },
  };
}

// ------------------------------------------------------------- health collector

export interface KubeProxyHealthData {
  healthy: boolean;
  statusCode: number | null;
  /** currentTime - lastUpdated as kube-proxy reports them (its own clock), ms. */
  lastUpdatedAgeMs: number | null;
  lastUpdated: string | null;
  /** Newer kube-proxy versions: whether this node should receive load-balancer traffic. */
  nodeEligible?: boolean;
  error?: string;
  url: string;
}

/**
 * Parses a timestamp as kube-proxy prints it: Go's `time.Time.String()`
 * (`2020-06-03 23:59:53.688063083 +0000 UTC m=+202.631797660`), or RFC 3339.
 * Returns epoch ms or NaN.
 */
export function parseGoTime(text: string): number {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d+))? ([+-])(\d{2})(\d{2})\b/.exec(text.trim());
  if (!m) return Date.parse(text);
  const frac = (m[3] ?? '').slice(0, 3).padEnd(3, '0');
  return Date.parse(`${m[1] ?? ''}T${m[2] ?? ''}.${frac}${m[4] ?? '+'}${m[5] ?? '00'}:${m[6] ?? '00'}`);
}

/**
 * Reads kube-proxy's /healthz answer (200 = healthy, 503 = rules not synced
 * in time). A healthy kube-proxy reports lastUpdated = currentTime (age 0);
 * an unhealthy one reports when it last synced. Pure.
 */
export function parseKubeProxyHealthz(statusCode: number, body: string, url: string, nowMs: number): KubeProxyHealthData {
  let lastUpdated: string | null = null;
  let ageMs: number | null = null;
  let eligible: boolean | undefined;
  try {
    const j = JSON.parse(body) as { lastUpdated?: unknown; currentTime?: unknown; nodeEligible?: unknown };
    if (typeof j.nodeEligible === 'boolean') eligible = j.nodeEligible;
    if (typeof j.lastUpdated === 'string') {
      lastUpdated = j.lastUpdated;
      const lu = parseGoTime(j.lastUpdated);
      const cur = typeof j.currentTime === 'string' ? parseGoTime(j.currentTime) : nowMs;
      if (!Number.isNaN(lu) && !Number.isNaN(cur)) ageMs = Math.max(0, cur - lu);
    }
  } catch {
    // Older kube-proxy versions answer plain "ok": healthy by status code, no age.
  }
  const out: KubeProxyHealthData = { healthy: statusCode === 200, statusCode, lastUpdatedAgeMs: ageMs, lastUpdated, url };
  if (eligible !== undefined) out.nodeEligible = eligible;
  if (statusCode !== 200) out.error = `HTTP ${statusCode}`;
  return out;
}

/** One GET of the healthz URL; never rejects. `refused` tells "nothing listening" apart. */
export async function fetchKubeProxyHealth(url: string, timeoutMs: number, now: () => number = Date.now): Promise<{ data: KubeProxyHealthData; refused: boolean }> {
  try {
    const res = await httpGetText(url, { timeoutMs, maxBytes: 64 * 1024 });
    return { data: parseKubeProxyHealthz(res.status, res.body, url, now()), refused: false };
  } catch (err) {
    const refused = (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
    return { data: { healthy: false, statusCode: null, lastUpdatedAgeMs: null, lastUpdated: null, error: errorMessage(err), url }, refused };
  }
}

export interface KubeProxyHealthOptions {
  url: string;
  intervalMs: number;
  timeoutMs?: number;
}

export function createKubeProxyHealthCollector(ctx: CollectorContext, opts: KubeProxyHealthOptions): Collector {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const log = ctx.logger.child({ collector: 'kubeproxy.health' });

  return probeLoopCollector({
    name: 'kubeproxy.health',
    intervalMs: opts.intervalMs,
    async round(emit: Emit): Promise<void> {
      const at = ctx.clock.now();
      const { data } = await fetchKubeProxyHealth(opts.url, timeoutMs, () => ctx.clock.now());
      emit([ctx.newEvent('kubeproxy.health', 'healthz', data, at)]);
    },
    onError: (err: unknown) => log.warn({ err: errorMessage(err) }, 'kube-proxy health probe failed'),
    async collectOnce(): Promise<CollectResult> {
      const at = ctx.clock.now();
      const { data, refused } = await fetchKubeProxyHealth(opts.url, timeoutMs, () => ctx.clock.now());
      if (refused) return { events: [], skipped: `nothing listening at ${opts.url}` };
      return { events: [ctx.newEvent('kubeproxy.health', 'healthz', data, at)] };
    },
  });
}
