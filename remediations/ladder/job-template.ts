/**
 * Renders a repair step's Kubernetes Job from the user's template (config
 * `repair.reset|reboot|validate.template`; docs/repair-ladder.md). Pure.
 *
 * Whatever the template says, the rendered Job:
 * - runs on the faulty node: `spec.template.spec.nodeName` is set to it (the
 *   scheduler is bypassed, so the cordon does not keep it off), and any
 *   `nodeSelector`/`affinity` of the template is kept;
 * - tolerates nodewarden's taint and the unschedulable taint;
 * - has a name derived from the decision id (a replayed decision finds its Job
 *   already there instead of starting a second one), nodewarden's labels, no
 *   retries (`backoffLimit: 0` unless set), `restartPolicy: Never`, an
 *   `activeDeadlineSeconds` of the step's timeout unless set, and a TTL;
 * - has `{{node}}`, `{{gpu}}`, `{{episode}}` substituted in every string.
 *   The values are checked first (a node name, a GPU UUID or PCI address),
 *   so nothing else can be smuggled into a container's command line.
 */
import { createHash } from 'node:crypto';
import { NW } from '../../core/cluster.js';
import { NodewardenError } from '../../core/errors.js';
import { isRecord } from '../../core/records.js';

export interface JobRenderInput {
  template: Record<string, unknown>;
  /** `reset`, `reboot` or `validate`. */
  step: string;
  namespace: string;
  node: string;
  gpu: string | null;
  episode: string;
  decisionId: string;
  timeoutMs: number;
}

export const JOB_LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  step: 'nodewarden.io/repair-step',
  node: 'nodewarden.io/node',
} as const;
const JOB_ANNOTATION_DECISION = 'nodewarden.io/decision-id';

const NODE_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** `GPU-<uuid>`, `MIG-<uuid>` or a PCI address like `0000:3b:00.0`. */
const GPU_RE = /^(?:(?:GPU|MIG)-[0-9a-fA-F-]{8,64}|[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-7])?)$/;

function invalid(msg: string): NodewardenError {
  return new NodewardenError('REQUEST_INVALID', msg, { retriable: false });
}

function substitute(v: unknown, vars: Record<string, string>): unknown {
  if (typeof v === 'string') return v.replace(/\{\{\s*(node|gpu|episode)\s*\}\}/g, (_, k: string) => vars[k] ?? '');
  if (Array.isArray(v)) return v.map((x) => substitute(x, vars));
  if (isRecord(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substitute(x, vars)]));
  return v;
}

/** Job name of a decision: `nw-<step>-<hash>` (stable, within the 63 characters a Job's pod labels allow). */
export function jobName(step: string, decisionId: string): string {
  return `nw-${step}-${createHash('sha256').update(decisionId).digest('hex').slice(0, 16)}`;
}

/** The Job to create; throws a one-line REQUEST_INVALID error naming what is wrong. */
export function renderJob(i: JobRenderInput): Record<string, unknown> {
  if (!NODE_RE.test(i.node)) throw invalid(`node name ${JSON.stringify(i.node.slice(0, 80))} is not a valid Kubernetes node name`);
  if (i.gpu !== null && !GPU_RE.test(i.gpu)) throw invalid(`GPU id ${JSON.stringify(i.gpu.slice(0, 80))} is neither a GPU UUID nor a PCI address`);
  if (i.gpu === null && /\{\{\s*gpu\s*\}\}/.test(JSON.stringify(i.template))) throw invalid(`the ${i.step} template uses {{gpu}} but the fault names no GPU`);
  const vars = { node: i.node, gpu: i.gpu ?? '', episode: i.episode.replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 63) };
  const job = substitute(structuredClone(i.template), vars) as Record<string, unknown>;
  const spec = job.spec;
  if (!isRecord(spec)) throw invalid(`repair.${i.step}.template: spec must be a Job spec`);
  const tpl = isRecord(spec.template) ? spec.template : null;
  const pod = tpl && isRecord(tpl.spec) ? tpl.spec : null;
  if (!tpl || !pod || !Array.isArray(pod.containers) || pod.containers.length === 0)
    throw invalid(`repair.${i.step}.template: spec.template.spec.containers must list at least one container`);
  const name = jobName(i.step, i.decisionId);
  const meta = isRecord(job.metadata) ? job.metadata : {};
  const labels = { ...(isRecord(meta.labels) ? meta.labels : {}), [JOB_LABELS.managedBy]: 'nodewarden', [JOB_LABELS.step]: i.step, [JOB_LABELS.node]: i.node.slice(0, 63) };
  job.apiVersion = 'batch/v1';
  job.kind = 'Job';
  job.metadata = {
    ...meta,
    name,
    namespace: i.namespace,
    labels,
    annotations: { ...(isRecord(meta.annotations) ? meta.annotations : {}), [JOB_ANNOTATION_DECISION]: i.decisionId },
  };
  delete (job.metadata as Record<string, unknown>).generateName;
  spec.backoffLimit ??= 0;
  spec.activeDeadlineSeconds ??= Math.max(1, Math.ceil(i.timeoutMs / 1000));
  spec.ttlSecondsAfterFinished ??= 86_400;
  const tplMeta = isRecord(tpl.metadata) ? tpl.metadata : {};
  tpl.metadata = { ...tplMeta, labels: { ...(isRecord(tplMeta.labels) ? tplMeta.labels : {}), [JOB_LABELS.managedBy]: 'nodewarden', [JOB_LABELS.step]: i.step } };
  pod.nodeName = i.node;
  pod.restartPolicy = 'Never';
  const tolerations = Array.isArray(pod.tolerations) ? [...(pod.tolerations as unknown[])] : [];
  tolerations.push({ key: NW.taintKey, operator: 'Exists', effect: 'NoSchedule' }, { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' });
  pod.tolerations = tolerations;
  return job;
}

/** Where a Job stands, from its status conditions (batch/v1). */
export function jobState(job: unknown): { state: 'running' | 'succeeded' | 'failed'; detail?: string } {
  const status = isRecord(job) && isRecord(job.status) ? job.status : {};
  const conds = Array.isArray(status.conditions) ? status.conditions.filter(isRecord) : [];
  const cond = (type: string): Record<string, unknown> | undefined => conds.find((c) => c.type === type && c.status === 'True');
  if (cond('Complete') || cond('SuccessCriteriaMet')) return { state: 'succeeded' };
  const failed = cond('Failed') ?? cond('FailureTarget');
  if (failed) return { state: 'failed', detail: [failed.reason, failed.message].filter((x) => typeof x === 'string' && x !== '').join(': ') || 'Job failed' };
  return { state: 'running' };
}
