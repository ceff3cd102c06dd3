/**
 * The real-API adapter of the DeviceTaintApi port, on @kubernetes/client-node's
 * generic KubernetesObjectApi: DeviceTaintRule exists in several versions
 * (v1alpha3 on 1.33/1.34, later v1beta2/v1) and the typed clients are per
 * version, so one version-agnostic client serves them all. Discovery asks each
 * version's resource list (newest first) with a fresh client, because the
 * generic client caches resource lists for its lifetime and a cluster can
 * start serving the API later (DeviceTaintDiscovery holds the TTL).
 * Failures count in `nodewarden_kube_api_errors_total` like every KubeApi call.
 */
import { KubernetesObjectApi, type KubeConfig, type KubernetesObject, type V1DeleteOptions } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { kubeApiErrorCounter, mapClientNodeError, toWire } from './client-node-api.js';
import { DEVICE_TAINT_GROUP, DEVICE_TAINT_KIND, DEVICE_TAINT_RESOURCE, DEVICE_TAINT_VERSIONS, type WireDeviceTaintRule } from './device-taint-rules.js';
import type { DeviceTaintApi } from './device-taints.js';
import { FIELD_MANAGER } from './node-decisions.js';

/** Exposes the generic client's resource-list lookup (protected there) for discovery. */
class DiscoveryClient extends KubernetesObjectApi {
  lookup(apiVersion: string, kind: string): ReturnType<KubernetesObjectApi['resource']> {
    return this.resource(apiVersion, kind);
  }
}

export function createClientNodeDeviceTaintApi(kc: KubeConfig, opts: { registry?: Registry } = {}): DeviceTaintApi {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const errors = kubeApiErrorCounter(opts.registry);

  async function call<T>(verb: string, name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const { error, label } = mapClientNodeError(err, `${verb} ${DEVICE_TAINT_RESOURCE} ${name}`);
      errors.inc({ verb, resource: DEVICE_TAINT_RESOURCE, code: label });
      throw error;
    }
  }
  const ref = (apiVersion: string, name: string): KubernetesObject => ({ apiVersion, kind: DEVICE_TAINT_KIND, metadata: { name } });

  return {
    async discover(): Promise<string | null> {
      const fresh = kc.makeApiClient(DiscoveryClient);
      for (const v of DEVICE_TAINT_VERSIONS) {
        const apiVersion = `${DEVICE_TAINT_GROUP}/${v}`;
        try {
          const r = await fresh.lookup(apiVersion, DEVICE_TAINT_KIND);
          if (r?.name === DEVICE_TAINT_RESOURCE && r.verbs.includes('create')) return apiVersion;
        } catch (err) {
          const { error, label } = mapClientNodeError(err, `discover ${apiVersion}`);
          if (error.code === 'NOT_FOUND') continue; // this version is not served
          errors.inc({ verb: 'discover', resource: DEVICE_TAINT_RESOURCE, code: label });
          throw error;
        }
      }
      return null;
    },
    create: (_apiVersion, rule, o) =>
      call('create', rule.metadata?.name ?? '', async () =>
        toWire<WireDeviceTaintRule>(await objects.create(rule as KubernetesObject, undefined, o.dryRun ? 'All' : undefined, FIELD_MANAGER), DEVICE_TAINT_KIND),
      ),
    get: (apiVersion, name) => call('get', name, async () => toWire<WireDeviceTaintRule>(await objects.read(ref(apiVersion, name) as KubernetesObject & { metadata: { name: string } }), DEVICE_TAINT_KIND)),
    delete: (apiVersion, name, o) =>
      call('delete', name, async () => {
        const body: V1DeleteOptions = o.uid ? { preconditions: { uid: o.uid } } : {};
        await objects.delete(ref(apiVersion, name), undefined, o.dryRun ? 'All' : undefined, undefined, undefined, undefined, body);
      }),
  };
}
