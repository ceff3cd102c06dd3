/**
 * The real-API adapter of the KubeApi port, on @kubernetes/client-node v2.
 * Typed models are turned into wire-shape JSON at this boundary (a JSON
 * round trip: Dates become RFC 3339 strings; client-node keeps wire field
 * names for every kind used here), so the pure decision code never sees
 * client-node types. Every failed call is counted in
 * `nodewarden_kube_api_errors_total{verb,resource,code}` (code = HTTP status,
 * or `network` / `timeout`).
 */
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Event,
  type KubeConfig,
} from '@kubernetes/client-node';
import { Counter, type Registry } from 'prom-client';
import { reuseMetric } from '../../adapters/metrics.js';
import type { NodewardenError } from '../../core/errors.js';
import { NodewardenError as NodewardenErrorClass } from '../../core/errors.js';
import { errorForStatus, networkError } from './errors.js';
import type { JsonPatchOp, KubeApi, MergePatch, StrategicMergePatch } from './kube-api.js';
import { FIELD_MANAGER } from './node-decisions.js';
import type {
  WireControllerRevision,
  WireDaemonSet,
  WireDeployment,
  WireEvent,
  WireNode,
  WireReplicaSet,
} from './wire.js';

export const KUBE_API_ERRORS_METRIC = 'nodewarden_kube_api_errors_total';

export interface ClientNodeKubeApiOptions {
  /** Registry for `nodewarden_kube_api_errors_total`; none → not exported. */
  registry?: Registry;
  /** Field manager recorded in managedFields for nodewarden's writes (default `nodewarden`). */
  fieldManager?: string;
}

/** The shared error counter on `registry` (created once per registry). */
export function kubeApiErrorCounter(registry: Registry | undefined): Counter<'verb' | 'resource' | 'code'> {
  return reuseMetric(
    registry,
    KUBE_API_ERRORS_METRIC,
    () =>
      new Counter({
        name: KUBE_API_ERRORS_METRIC,
        help: 'Kubernetes API calls that failed, by verb, resource and HTTP status (or network/timeout)',
        labelNames: ['verb', 'resource', 'code'] as const,
        registers: registry ? [registry] : [],
      }),
  );
}

/** Typed client-node model → plain wire JSON. */
export function toWire<T>(o: unknown, kind?: string): T {
  const w = JSON.parse(JSON.stringify(o)) as Record<string, unknown>;
  // List items come without kind/apiVersion; set them so derived logic can tell RS from CR.
  if (kind !== undefined && w.kind === undefined) w.kind = kind;
  return w as T;
}

function statusMessage(body: unknown): string | undefined {
  let b = body;
  if (typeof body === 'string') {
    try {
      b = JSON.parse(body) as unknown;
    } catch {
      return body.slice(0, 500);
    }
  }
  if (typeof b === 'object' && b !== null && typeof (b as { message?: unknown }).message === 'string') {
    return (b as { message: string }).message;
  }
  return undefined;
}

/** Maps a client-node failure to a NodewardenError plus the metric's `code` label. */
export function mapClientNodeError(err: unknown, what: string): { error: NodewardenError; label: string } {
  if (err instanceof ApiException) {
    const status = (err as ApiException<unknown>).code;
    const msg = statusMessage((err as ApiException<unknown>).body) ?? `HTTP ${status}`;
    return { error: errorForStatus(status, `${what}: HTTP ${status}: ${msg}`, err), label: String(status) };
  }
  // client-node's Watch reports a non-200 answer as an Error with statusCode.
  const sc = (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof sc === 'number') return { error: errorForStatus(sc, `${what}: HTTP ${sc}`, err), label: String(sc) };
  const e = networkError(err, what);
  return { error: e, label: e.code === 'TIMEOUT' ? 'timeout' : 'network' };
}

/** Runs one API call; a failure becomes a NodewardenError and is counted in `nodewarden_kube_api_errors_total`. */
export function countedCall(errors: Counter<'verb' | 'resource' | 'code'>) {
  return async function call<T>(verb: string, resource: string, name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const { error, label } = mapClientNodeError(err, `${verb} ${resource} ${name}`);
      errors.inc({ verb, resource, code: label });
      throw error;
    }
  };
}

export function createClientNodeKubeApi(kc: KubeConfig, opts: ClientNodeKubeApiOptions = {}): KubeApi {
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const errors = kubeApiErrorCounter(opts.registry);
  const fieldManager = opts.fieldManager ?? FIELD_MANAGER;
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  const strategic = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
  const json = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

  const call = countedCall(errors);

  return {
    getNode: (name) => call('get', 'nodes', name, async () => toWire<WireNode>(await core.readNode({ name }), 'Node')),
    patchNode: (name, patch: MergePatch) =>
      call('patch', 'nodes', name, async () => toWire<WireNode>(await core.patchNode({ name, body: patch, fieldManager }, merge), 'Node')),
    getDeployment: (namespace, name) =>
      call('get', 'deployments', `${namespace}/${name}`, async () =>
        toWire<WireDeployment>(await apps.readNamespacedDeployment({ namespace, name }), 'Deployment'),
      ),
    patchDeployment: (namespace, name, patch: JsonPatchOp[]) =>
      call('patch', 'deployments', `${namespace}/${name}`, async () =>
        toWire<WireDeployment>(await apps.patchNamespacedDeployment({ namespace, name, body: patch, fieldManager }, json), 'Deployment'),
      ),
    listReplicaSets: (namespace, labelSelector) =>
      call('list', 'replicasets', namespace, async () => {
        const list = await apps.listNamespacedReplicaSet({ namespace, ...(labelSelector ? { labelSelector } : {}) });
        return list.items.map((i) => toWire<WireReplicaSet>(i, 'ReplicaSet'));
      }),
    getDaemonSet: (namespace, name) =>
      call('get', 'daemonsets', `${namespace}/${name}`, async () =>
        toWire<WireDaemonSet>(await apps.readNamespacedDaemonSet({ namespace, name }), 'DaemonSet'),
      ),
    patchDaemonSet: (namespace, name, patch: StrategicMergePatch) =>
      call('patch', 'daemonsets', `${namespace}/${name}`, async () =>
        toWire<WireDaemonSet>(await apps.patchNamespacedDaemonSet({ namespace, name, body: patch, fieldManager }, strategic), 'DaemonSet'),
      ),
    listControllerRevisions: (namespace, labelSelector) =>
      call('list', 'controllerrevisions', namespace, async () => {
        const list = await apps.listNamespacedControllerRevision({ namespace, ...(labelSelector ? { labelSelector } : {}) });
        return list.items.map((i) => toWire<WireControllerRevision>(i, 'ControllerRevision'));
      }),
    createEvent: (namespace, event: WireEvent) =>
      call('create', 'events', `${namespace}/${event.metadata?.name ?? ''}`, async () => {
        await core.createNamespacedEvent({ namespace, body: event as unknown as CoreV1Event });
      }),
  };
}


/**
 * Loads the kubeconfig the usual way (KUBECONFIG, ~/.kube/config, in-cluster
 * service account) or explains in one line why there is none. client-node would
 * otherwise throw a raw ENOENT or silently fall back to http://localhost:8080.
 */
export function loadDefaultKubeConfig(kc: KubeConfig): void {
  const hint = 'set KUBECONFIG, provide ~/.kube/config, run in a pod with a service account, or pass --cluster FILE';
  try {
    kc.loadFromDefault();
  } catch (err) {
    throw new NodewardenConfigError(`cannot load the kubeconfig: ${(err as Error).message.split('\n')[0]} (${hint})`, err);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster || (cluster.name === 'cluster' && cluster.server === 'http://localhost:8080' && kc.getContexts().length <= 1 && !process.env.KUBECONFIG))
    throw new NodewardenConfigError(`no kubeconfig found (${hint})`);
}

class NodewardenConfigError extends NodewardenErrorClass {
  constructor(message: string, cause?: unknown) {
    super('CONFIG_INVALID', message, { retriable: false, cause });
  }
}
