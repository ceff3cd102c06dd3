/**
 * ListWatchSource on @kubernetes/client-node: paged lists through the typed
 * API (converted to wire JSON), watches through client-node's `Watch` with
 * bookmarks. Used by LiveCluster in the engine.
 */
import { AppsV1Api, CoreV1Api, CustomObjectsApi, Watch, type KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { kubeApiErrorCounter, mapClientNodeError, toWire } from './client-node-api.js';
import { servedVersion } from './client-node-device-taints.js';
import { DEVICE_TAINT_GROUP, DEVICE_TAINT_RESOURCE, DEVICE_TAINT_VERSIONS } from './device-taint-rules.js';
import type { ListWatchSource, WatchedResource, WatchHandle } from './live-cluster.js';
import type { KubeObject } from './wire.js';

type TypedResource = 'nodes' | 'replicasets' | 'controllerrevisions';
type DraResource = 'devicetaintrules' | 'resourceslices';
const PATHS: Record<TypedResource, string> = {
  nodes: '/api/v1/nodes',
  replicasets: '/apis/apps/v1/replicasets',
  controllerrevisions: '/apis/apps/v1/controllerrevisions',
};
const KINDS: Record<TypedResource, string> = { nodes: 'Node', replicasets: 'ReplicaSet', controllerrevisions: 'ControllerRevision' };
/** ResourceSlice versions, newest first (1.33: v1beta1/v1beta2 where enabled; 1.34+: v1). */
export const RESOURCE_SLICE_VERSIONS = ['v1', 'v1beta2', 'v1beta1'] as const;

function isDra(r: WatchedResource): r is DraResource {
  return r === 'devicetaintrules' || r === 'resourceslices';
}

export interface ClientNodeWatchOptions {
  registry?: Registry;
  /** Page size of lists (default 500). */
  pageSize?: number;
  /** Server-side watch timeout (default 300 s); the reflector re-watches afterwards. */
  watchTimeoutSeconds?: number;
}

interface ListPage {
  items: unknown[];
  /** Typed lists say `_continue`; the plain JSON of CustomObjectsApi says `continue`. */
  metadata?: { resourceVersion?: string; _continue?: string; continue?: string };
}

export function createClientNodeListWatch(kc: KubeConfig, opts: ClientNodeWatchOptions = {}): ListWatchSource {
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const watcher = new Watch(kc);
  const errors = kubeApiErrorCounter(opts.registry);
  const limit = opts.pageSize ?? 500;
  const custom = kc.makeApiClient(CustomObjectsApi);
  /** Served versions of the DRA resources (discoverDeviceTaintApis); plain JSON through CustomObjectsApi (no model serializer). */
  const dra: Partial<Record<DraResource, string>> = {};
  const draPath = (r: DraResource): string => `/apis/${DEVICE_TAINT_GROUP}/${dra[r] ?? ''}/${r}`;

  function page(resource: WatchedResource, cont: string | undefined): Promise<ListPage> {
    const p = { limit, ...(cont ? { _continue: cont } : {}) };
    if (isDra(resource)) {
      const version = dra[resource];
      if (!version) return Promise.reject(new Error(`${resource}: not discovered`));
      return custom.listClusterCustomObject({ group: DEVICE_TAINT_GROUP, version, plural: resource, limit: Math.min(limit, 100), ...(cont ? { _continue: cont } : {}) }) as Promise<ListPage>;
    }
    if (resource === 'nodes') return core.listNode(p);
    if (resource === 'replicasets') return apps.listReplicaSetForAllNamespaces(p);
    return apps.listControllerRevisionForAllNamespaces(p);
  }

  return {
    async list(resource) {
      const items: KubeObject[] = [];
      let cont: string | undefined;
      let rv = '';
      try {
        do {
          const res = await page(resource, cont);
          for (const i of res.items) items.push(isDra(resource) ? (i as KubeObject) : toWire<KubeObject>(i, KINDS[resource]));
          rv = res.metadata?.resourceVersion ?? rv;
          cont = res.metadata?._continue || res.metadata?.continue || undefined;
        } while (cont);
      } catch (err) {
        const { error, label } = mapClientNodeError(err, `list ${resource}`);
        errors.inc({ verb: 'list', resource, code: label });
        throw error;
      }
      return { items, resourceVersion: rv };
    },
    async watch(resource, resourceVersion, onEvent, onDone): Promise<WatchHandle> {
      const ctrl = await watcher.watch(
        isDra(resource) ? draPath(resource) : PATHS[resource],
        { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: opts.watchTimeoutSeconds ?? 300 },
        (type: string, obj: unknown) => onEvent(type, obj as KubeObject),
        (err: unknown) => {
          if (err !== null && err !== undefined) {
            const { label } = mapClientNodeError(err, `watch ${resource}`);
            if (label !== 'timeout') errors.inc({ verb: 'watch', resource, code: label });
          }
          onDone(err ?? undefined);
        },
      );
      return { stop: () => ctrl.abort() };
    },
    async discoverDeviceTaintApis(): Promise<boolean> {
      const rules = await servedVersion(kc, DEVICE_TAINT_RESOURCE, DEVICE_TAINT_VERSIONS, 'watch');
      const slices = rules === null ? null : await servedVersion(kc, 'resourceslices', RESOURCE_SLICE_VERSIONS, 'watch');
      if (rules === null || slices === null) return false;
      dra.devicetaintrules = rules;
      dra.resourceslices = slices;
      return true;
    },
  };
}
