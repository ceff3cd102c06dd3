/**
 * The Executor of the repair ladder's steps `reset`, `reboot` and `validate`:
 * a Kubernetes Job rendered from the user's template (job-template.ts), or for
 * `reboot` in `annotation` mode an annotation on the node that an external
 * reboot controller acts on (and removes when the node is back). Never a
 * shell on the engine. The `replace` step (the hand-over) is a page: see
 * `createHandoverExecutor`.
 *
 * Also the JobWatch the ladder's driver polls: a Job's conditions, or for an
 * annotation the node (the annotation gone: done).
 */
import type { NodewardenConfig } from '../../core/config.js';
import type { Decision } from '../../core/decision.js';
import { parseDuration } from '../../core/duration.js';
import { NodewardenError, errorMessage } from '../../core/errors.js';
import type { ExecutionResult, Executor } from '../ports.js';
import type { JobStatus, JobWatch } from './driver.js';
import { jobState, renderJob } from './job-template.js';

/** The Kubernetes calls the repair steps need (adapters: client-node, the simulated cluster). */
export interface RepairJobsApi {
  createJob(namespace: string, job: Record<string, unknown>): Promise<void>;
  /** The Job as the API returns it; rejects NOT_FOUND when it is gone. */
  getJob(namespace: string, name: string): Promise<unknown>;
  /** Deletes the Job and its pods (background propagation); NOT_FOUND is not an error. */
  deleteJob(namespace: string, name: string): Promise<void>;
  /** Merge-patches one annotation of a node (null removes it). */
  annotateNode(node: string, key: string, value: string | null): Promise<void>;
  /** The node's annotations; rejects NOT_FOUND when the node is gone. */
  nodeAnnotations(node: string): Promise<Record<string, string>>;
}

const ANNOTATION_PREFIX = 'node-annotation/';

export interface RepairJobsOptions {
  api: RepairJobsApi;
  repair: NodewardenConfig['repair'];
}

function notConfigured(step: string): NodewardenError {
  return new NodewardenError('REQUEST_INVALID', `no repair.${step}.template is configured`, { retriable: false });
}

/** Executor for `reset`, `reboot`, `validate`. */
export function createRepairJobExecutor(o: RepairJobsOptions): Executor {
  const r = o.repair;
  return {
    actions: ['reset', 'reboot', 'validate'],
    async execute(d: Decision): Promise<ExecutionResult> {
      const step = d.action as 'reset' | 'reboot' | 'validate';
      if (d.target.kind !== 'Node') return { ok: false, error: new NodewardenError('REQUEST_INVALID', `${step} needs a Node target`) };
      const node = d.target.name;
      if (step === 'reboot' && r.reboot.mode === 'annotation') {
        await o.api.annotateNode(node, r.reboot.annotation, d.id);
        return { ok: true, job: `${ANNOTATION_PREFIX}${node}/${r.reboot.annotation}`, detail: `annotated ${node} ${r.reboot.annotation}=${d.id} for the reboot controller` };
      }
      const cfg = r[step];
      if (cfg.template === null) return { ok: false, error: notConfigured(step) };
      const episode = d.params?.episode ?? d.id;
      const job = renderJob({ template: cfg.template, step, namespace: r.namespace, node, gpu: d.target.gpu ?? null, episode, decisionId: d.id, timeoutMs: parseDuration(cfg.timeout) });
      const name = (job.metadata as { name: string }).name;
      try {
        await o.api.createJob(r.namespace, job);
      } catch (err) {
        // a replayed decision: its Job is already there (the name is derived from the decision id)
        if (!(err instanceof NodewardenError && err.code === 'CONFLICT')) throw err;
      }
      return { ok: true, job: `${r.namespace}/${name}`, detail: `Job ${r.namespace}/${name} on ${node}${d.target.gpu ? ` for ${d.target.gpu}` : ''}` };
    },
  };
}

/** The ladder's view of its Jobs (and of reboot annotations). */
export function createRepairJobWatch(api: RepairJobsApi): JobWatch & { stop(job: string): Promise<void> } {
  const split = (job: string): [string, string] => {
    const i = job.indexOf('/');
    return [job.slice(0, i), job.slice(i + 1)];
  };
  return {
    async status(job: string): Promise<JobStatus> {
      try {
        if (job.startsWith(ANNOTATION_PREFIX)) {
          const rest = job.slice(ANNOTATION_PREFIX.length);
          const i = rest.indexOf('/');
          const ann = await api.nodeAnnotations(rest.slice(0, i));
          return rest.slice(i + 1) in ann ? { state: 'running' } : { state: 'succeeded', detail: 'the reboot controller removed the annotation' };
        }
        const [ns, name] = split(job);
        return jobState(await api.getJob(ns, name));
      } catch (err) {
        if (err instanceof NodewardenError && err.code === 'NOT_FOUND') return { state: 'missing' };
        throw err;
      }
    },
    async stop(job: string): Promise<void> {
      if (job.startsWith(ANNOTATION_PREFIX)) return;
      const [ns, name] = split(job);
      await api.deleteJob(ns, name).catch((err: unknown) => {
        if (!(err instanceof NodewardenError && err.code === 'NOT_FOUND')) throw new NodewardenError('UNAVAILABLE', `stopping Job ${job}: ${errorMessage(err)}`, { retriable: true, cause: err });
      });
    },
  };
}

/** The `replace` step: a critical page whose details carry the episode's history; the pager executor sends it. */
export function createHandoverExecutor(pages: Executor): Executor {
  return {
    actions: ['replace'],
    execute: (d: Decision) => pages.execute({ ...d, action: 'page', severity: 'critical' }),
  };
}
