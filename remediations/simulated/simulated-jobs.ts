/**
 * Repair Jobs on the simulated cluster (demo, replay, unit tests): a Job
 * "runs" for `runMs` of the injected clock, then succeeds — or fails when
 * `fails(step, node)` says so (the demo's fault scenarios decide). A reboot
 * annotation is removed after `runMs`, as a reboot controller would.
 */
import type { Clock } from '../../core/clock.js';
import { NodewardenError } from '../../core/errors.js';
import type { RepairJobsApi } from '../ladder/job-executor.js';
import { JOB_LABELS } from '../ladder/job-template.js';

interface SimJob {
  job: Record<string, unknown>;
  createdAt: number;
  step: string;
  node: string;
}

export class SimulatedRepairJobs implements RepairJobsApi {
  readonly jobs = new Map<string, SimJob>();
  private readonly annotations = new Map<string, { key: string; at: number }>();
  constructor(
    private readonly clock: Clock,
    private readonly runMs = 120_000,
    /** Whether a step on a node fails (default: never). */
    public fails: (step: string, node: string) => boolean = () => false,
  ) {}

  createJob(namespace: string, job: Record<string, unknown>): Promise<void> {
    const meta = (job.metadata ?? {}) as { name?: string; labels?: Record<string, string> };
    const key = `${namespace}/${meta.name ?? ''}`;
    if (this.jobs.has(key)) return Promise.reject(new NodewardenError('CONFLICT', `job ${key} already exists`, { retriable: true }));
    this.jobs.set(key, { job, createdAt: this.clock.now(), step: meta.labels?.[JOB_LABELS.step] ?? '?', node: meta.labels?.[JOB_LABELS.node] ?? '?' });
    return Promise.resolve();
  }

  getJob(namespace: string, name: string): Promise<unknown> {
    const j = this.jobs.get(`${namespace}/${name}`);
    if (!j) return Promise.reject(new NodewardenError('NOT_FOUND', `job ${namespace}/${name} not found`));
    if (this.clock.now() - j.createdAt < this.runMs) return Promise.resolve({ ...j.job, status: { active: 1 } });
    const failed = this.fails(j.step, j.node);
    const cond = failed ? { type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'simulated failure' } : { type: 'Complete', status: 'True' };
    return Promise.resolve({ ...j.job, status: { conditions: [cond], ...(failed ? { failed: 1 } : { succeeded: 1 }) } });
  }

  deleteJob(namespace: string, name: string): Promise<void> {
    this.jobs.delete(`${namespace}/${name}`);
    return Promise.resolve();
  }

  annotateNode(node: string, key: string, value: string | null): Promise<void> {
    if (value === null) this.annotations.delete(node);
    else this.annotations.set(node, { key, at: this.clock.now() });
    return Promise.resolve();
  }

  nodeAnnotations(node: string): Promise<Record<string, string>> {
    const a = this.annotations.get(node);
    if (!a || this.clock.now() - a.at >= this.runMs) return Promise.resolve({});
    return Promise.resolve({ [a.key]: 'requested' });
  }
}
