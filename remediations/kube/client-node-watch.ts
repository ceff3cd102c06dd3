/**
 * ListWatchSource on @kubernetes/client-node: paged lists through the typed
 * API (converted to wire JSON), watches through client-node's `Watch` with
 * bookmarks. Used by LiveCluster in the engine.
 */
import { AppsV1Api, CoreV1Api, Watch, type KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { kubeApiErrorCounter, mapClientNodeError, toWire } from './client-node-api.js';
import type { ListWatchSource, WatchedResource, WatchHandle } from './live-cluster.js';
import type { KubeObject } from './wire.js';

const PATHS: Record<WatchedResource, string> = {
  nodes: '/api/v1/nodes',
  replicasets: '/apis/apps/v1/replicasets',
  controllerrevisions: '/apis/apps/v1/controllerrevisions',
};
const KINDS: Record<WatchedResource, string> = { nodes: 'Node', replicasets: 'ReplicaSet', controllerrevisions: 'ControllerRevision' };

export interface ClientNodeWatchOptions {
  registry?: Registry;
  /** Page size of lists (default 500). */
  pageSize?: number;
  /** Server-side watch timeout (default 300 s); the reflector re-watches afterwards. */
  watchTimeoutSeconds?: number;
}

interface ListPage {
  items: unknown[];
  metadata?: { resourceVersion?: string; _continue?: string };
}

export function createClientNodeListWatch(kc: KubeConfig, opts: ClientNodeWatchOptions = {}): ListWatchSource {
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const watcher = new Watch(kc);
  const errors = kubeApiErrorCounter(opts.registry);
  const limit = opts.pageSize ?? 500;

  function page(resource: WatchedResource, cont: string | undefined): Promise<ListPage> {
    const p = { limit, ...(cont ? { _continue: cont } : {}) };
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
          for (const i of res.items) items.push(toWire<KubeObject>(i, KINDS[resource]));
          rv = res.metadata?.resourceVersion ?? rv;
          cont = res.metadata?._continue || undefined;
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
        PATHS[resource],
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
  };
}
