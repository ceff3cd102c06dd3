/**
 * The real-API adapter of the repair ladder's RepairJobsApi (batch/v1 Jobs in
 * one namespace, one annotation on a node), on @kubernetes/client-node. The
 * engine's Role grants create/get/watch/delete on Jobs in `repair.namespace`
 * only (deploy/, test/integration/rbac-least-privilege.test.ts).
 */
import { BatchV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import type { RepairJobsApi } from '../ladder/job-executor.js';
import { countedCall, kubeApiErrorCounter } from './client-node-api.js';
import { isCode } from './errors.js';
import { FIELD_MANAGER } from './node-decisions.js';
import { annotationsOf, type WireNode } from './wire.js';

function jobNameOf(job: Record<string, unknown>): string {
  const meta = job.metadata;
  return typeof meta === 'object' && meta !== null && typeof (meta as { name?: unknown }).name === 'string' ? (meta as { name: string }).name : '';
}

export function createClientNodeRepairJobs(kc: KubeConfig, opts: { registry?: Registry } = {}): RepairJobsApi {
  const batch = kc.makeApiClient(BatchV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const call = countedCall(kubeApiErrorCounter(opts.registry));
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  return {
    createJob: (namespace, job) =>
      call('create', 'jobs', `${namespace}/${jobNameOf(job)}`, async () => {
        await batch.createNamespacedJob({ namespace, body: job, fieldManager: FIELD_MANAGER });
      }),
    getJob: (namespace, name) => call('get', 'jobs', `${namespace}/${name}`, async () => JSON.parse(JSON.stringify(await batch.readNamespacedJob({ namespace, name }))) as unknown),
    deleteJob: async (namespace, name) => {
      try {
        await call('delete', 'jobs', `${namespace}/${name}`, () => batch.deleteNamespacedJob({ namespace, name, propagationPolicy: 'Background' }));
      } catch (err) {
        if (!isCode(err, 'NOT_FOUND')) throw err;
      }
    },
    annotateNode: (node, key, value) =>
      call('patch', 'nodes', node, async () => {
        await core.patchNode({ name: node, body: { metadata: { annotations: { [key]: value } } }, fieldManager: FIELD_MANAGER }, merge);
      }),
    nodeAnnotations: (node) => call('get', 'nodes', node, async () => annotationsOf(JSON.parse(JSON.stringify(await core.readNode({ name: node }))) as WireNode)),
  };
}
