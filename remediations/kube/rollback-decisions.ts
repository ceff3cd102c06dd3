/**
 * Pure rollback decisions, following `kubectl rollout undo`
 * (k8s.io/kubectl/pkg/polymorphichelpers/rollback.go):
 *
 * Deployment — among the ReplicaSets the Deployment controls, take the one
 * with the second-highest `deployment.kubernetes.io/revision` (or exactly
 * `toRevision`); skip when its template already equals the Deployment's
 * (ignoring `pod-template-hash`); refuse a paused Deployment; otherwise
 * JSON-patch `/spec/template` with the ReplicaSet's template minus the hash
 * label and `/metadata/annotations` with the ReplicaSet's annotations, keeping
 * the Deployment's own revision/history/last-applied annotations. The
 * Deployment controller then gives the reused ReplicaSet revision max+1, which
 * is how the revision annotation "moves forward".
 *
 * DaemonSet — among the ControllerRevisions the DaemonSet controls, sorted
 * by `.revision`, take the second-highest (or exactly `toRevision`); skip when
 * its template equals the DaemonSet's; otherwise strategic-merge-patch the
 * DaemonSet with the revision's `.data` (`{"spec":{"template":{…,"$patch":"replace"}}}`).
 *
 * nodewarden adds a resourceVersion precondition (a concurrent writer gives a
 * 409 and a re-read, never a lost update) and two annotations naming the
 * decision, so a replayed decision sees its own rollback and does not roll
 * back again (a second undo would flip back to the bad revision).
 */
import type { Decision } from '../../core/decision.js';
import type { JsonPatchOp, StrategicMergePatch } from './kube-api.js';
import {
  POD_TEMPLATE_HASH_LABEL,
  REVISION_ANNOTATION,
  annotationsOf,
  clone,
  deploymentRevisionOf,
  isControlledBy,
  isRecord,
  jsonEqual,
  type PodTemplate,
  type WireControllerRevision,
  type WireDaemonSet,
  type WireDeployment,
  type WireReplicaSet,
} from './wire.js';

/** Annotations nodewarden puts on a workload it rolled back. */
export const NW_ROLLBACK = {
  annDecision: 'nodewarden.io/rollback-decision-id',
  annToRevision: 'nodewarden.io/rollback-to-revision',
  annTime: 'nodewarden.io/rolled-back-at',
} as const;

/** Deployment annotations kubectl keeps from the Deployment instead of copying them from the ReplicaSet. */
export const ANNOTATIONS_TO_SKIP: ReadonlySet<string> = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  REVISION_ANNOTATION,
  'deployment.kubernetes.io/revision-history',
  'deployment.kubernetes.io/desired-replicas',
  'deployment.kubernetes.io/max-replicas',
  'deprecated.deployment.rollback.to',
]);

export type RollbackPlan<P> =
  | { type: 'patch'; patch: P; toRevision: number; fromRevision: number | undefined; detail: string }
  /** Already where it should be: report success without writing. */
  | { type: 'noop'; toRevision: number | undefined; detail: string }
  /** Cannot or must not act (no previous revision, paused, revision not found). */
  | { type: 'refuse'; detail: string; code: 'NOT_FOUND' | 'CONFLICT' | 'REQUEST_INVALID' };

/** `params.toRevision` of a rollback: a positive integer, undefined (absent or 0) for "the previous one", NaN when not a revision. */
export function requestedRevision(decision: Decision): number | undefined {
  const v = decision.action === 'rollback' ? decision.params?.toRevision : undefined;
  if (v === undefined || v === 0) return undefined;
  return Number.isInteger(v) && v > 0 ? v : Number.NaN;
}

function stripHash(t: PodTemplate | undefined): PodTemplate {
  const c = clone(t ?? {});
  if (c.metadata?.labels) {
    delete c.metadata.labels[POD_TEMPLATE_HASH_LABEL];
    if (Object.keys(c.metadata.labels).length === 0) delete c.metadata.labels;
  }
  return c;
}

/** Pod templates equal ignoring `pod-template-hash` (kubectl's equalIgnoreHash). */
export function equalIgnoreHash(a: PodTemplate | undefined, b: PodTemplate | undefined): boolean {
  return jsonEqual(stripHash(a), stripHash(b));
}

function alreadyDone(o: WireDeployment | WireDaemonSet, decision: Decision): RollbackPlan<never> | undefined {
  const ann = annotationsOf(o);
  if (ann[NW_ROLLBACK.annDecision] !== decision.id) return undefined;
  const to = Number(ann[NW_ROLLBACK.annToRevision]);
  return {
    type: 'noop',
    toRevision: Number.isInteger(to) ? to : undefined,
    detail: `${o.kind ?? 'workload'} ${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''} already rolled back by this decision`,
  };
}

function nwAnnotations(decision: Decision, toRevision: number, now: number): Record<string, string> {
  return {
    [NW_ROLLBACK.annDecision]: decision.id,
    [NW_ROLLBACK.annToRevision]: String(toRevision),
    [NW_ROLLBACK.annTime]: new Date(now).toISOString(),
  };
}

/** kubectl's deploymentRevision(): the ReplicaSet to roll back to. */
export function pickDeploymentRevision(
  deploy: WireDeployment,
  replicaSets: readonly WireReplicaSet[],
  toRevision: number | undefined,
): { rs: WireReplicaSet; revision: number; current: number | undefined } | { error: string } {
  const owned = replicaSets.filter((rs) => isControlledBy(rs, deploy, 'Deployment'));
  let latest: { rs: WireReplicaSet; v: number } | undefined;
  let previous: { rs: WireReplicaSet; v: number } | undefined;
  for (const rs of owned) {
    const v = deploymentRevisionOf(rs);
    if (v === undefined) continue;
    if (toRevision !== undefined) {
      if (v === toRevision) return { rs, revision: v, current: deploymentRevisionOf(deploy) };
      continue;
    }
    if (latest === undefined || latest.v < v) {
      previous = latest;
      latest = { rs, v };
    } else if (previous === undefined || previous.v < v) {
      previous = { rs, v };
    }
  }
  if (toRevision !== undefined) return { error: `revision ${toRevision} not found in the rollout history` };
  if (previous === undefined) return { error: 'no previous revision in the rollout history' };
  return { rs: previous.rs, revision: previous.v, current: latest?.v };
}

/** What every rollback plan checks first: already done by this decision? a valid requested revision? */
function beginRollback(kind: string, o: WireDeployment | WireDaemonSet, decision: Decision): { plan: RollbackPlan<never> } | { id: string; wanted: number | undefined } {
  const id = `${kind} ${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
  const done = alreadyDone(o, decision);
  if (done) return { plan: done };
  const wanted = requestedRevision(decision);
  if (Number.isNaN(wanted)) return { plan: { type: 'refuse', code: 'REQUEST_INVALID', detail: `${id}: params.toRevision must be a positive integer` } };
  return { id, wanted };
}

export function planDeploymentRollback(
  deploy: WireDeployment,
  replicaSets: readonly WireReplicaSet[],
  decision: Decision,
  now: number,
): RollbackPlan<JsonPatchOp[]> {
  const start = beginRollback('deployment', deploy, decision);
  if ('plan' in start) return start.plan;
  const { id, wanted } = start;
  const pick = pickDeploymentRevision(deploy, replicaSets, wanted);
  if ('error' in pick) return { type: 'refuse', code: 'NOT_FOUND', detail: `${id}: ${pick.error}; refusing to roll back` };
  if (deploy.spec?.paused === true) {
    return { type: 'refuse', code: 'CONFLICT', detail: `${id} is paused; a paused Deployment is not rolled back (resume it first)` };
  }
  if (equalIgnoreHash(pick.rs.spec?.template, deploy.spec?.template)) {
    return { type: 'noop', toRevision: pick.revision, detail: `${id}: skipped rollback (current template already matches revision ${pick.revision})` };
  }
  const template = stripHash(pick.rs.spec?.template);
  const current = annotationsOf(deploy);
  const annotations: Record<string, string> = {};
  for (const k of ANNOTATIONS_TO_SKIP) if (current[k] !== undefined) annotations[k] = current[k];
  for (const [k, v] of Object.entries(annotationsOf(pick.rs))) if (!ANNOTATIONS_TO_SKIP.has(k)) annotations[k] = v;
  Object.assign(annotations, nwAnnotations(decision, pick.revision, now));
  const patch: JsonPatchOp[] = [];
  const rv = deploy.metadata?.resourceVersion;
  if (rv !== undefined) patch.push({ op: 'replace', path: '/metadata/resourceVersion', value: rv });
  patch.push({ op: 'replace', path: '/spec/template', value: template });
  patch.push({ op: deploy.metadata?.annotations ? 'replace' : 'add', path: '/metadata/annotations', value: annotations });
  return {
    type: 'patch',
    patch,
    toRevision: pick.revision,
    fromRevision: pick.current,
    detail: `rolled back ${id} from revision ${pick.current ?? '?'} to revision ${pick.revision}`,
  };
}

/** ControllerRevisions the DaemonSet controls, oldest revision first. */
export function daemonSetHistory(ds: WireDaemonSet, revisions: readonly WireControllerRevision[]): WireControllerRevision[] {
  return revisions.filter((r) => isControlledBy(r, ds, 'DaemonSet')).sort((a, b) => Number(a.revision) - Number(b.revision));
}

/** kubectl's findHistory(): the revision to roll back to. */
export function pickDaemonSetRevision(
  ds: WireDaemonSet,
  revisions: readonly WireControllerRevision[],
  toRevision: number | undefined,
): { cr: WireControllerRevision; revision: number; current: number | undefined } | { error: string } {
  const history = daemonSetHistory(ds, revisions);
  const current = history.at(-1)?.revision;
  if (toRevision === undefined) {
    if (history.length <= 1) return { error: 'no last revision to roll back to' };
    const cr = history[history.length - 2] as WireControllerRevision;
    return { cr, revision: Number(cr.revision), current };
  }
  const cr = history.find((h) => Number(h.revision) === toRevision);
  return cr ? { cr, revision: toRevision, current } : { error: `revision ${toRevision} not found in the rollout history` };
}

/** The ControllerRevision's data as an object (it is stored inline JSON, but tolerate a string). */
export function revisionData(cr: WireControllerRevision): Record<string, unknown> | undefined {
  let d = cr.data;
  if (typeof d === 'string') {
    try {
      d = JSON.parse(d) as unknown;
    } catch {
      return undefined;
    }
  }
  return isRecord(d) ? d : undefined;
}

/** The template a DaemonSet ControllerRevision records (its patch minus the `$patch` directive). */
export function revisionTemplate(cr: WireControllerRevision): PodTemplate | undefined {
  const spec = revisionData(cr)?.spec;
  const t = isRecord(spec) ? spec.template : undefined;
  if (!isRecord(t)) return undefined;
  const c = clone(t);
  delete c.$patch;
  return c;
}

export function planDaemonSetRollback(
  ds: WireDaemonSet,
  revisions: readonly WireControllerRevision[],
  decision: Decision,
  now: number,
): RollbackPlan<StrategicMergePatch> {
  const start = beginRollback('daemonset', ds, decision);
  if ('plan' in start) return start.plan;
  const { id, wanted } = start;
  const pick = pickDaemonSetRevision(ds, revisions, wanted);
  if ('error' in pick) return { type: 'refuse', code: 'NOT_FOUND', detail: `${id}: ${pick.error}; refusing to roll back` };
  const data = revisionData(pick.cr);
  const template = revisionTemplate(pick.cr);
  if (data === undefined || template === undefined) {
    return { type: 'refuse', code: 'REQUEST_INVALID', detail: `${id}: ControllerRevision ${pick.cr.metadata?.name ?? '?'} holds no pod template` };
  }
  if (jsonEqual(template, ds.spec?.template ?? {})) {
    return { type: 'noop', toRevision: pick.revision, detail: `${id}: skipped rollback (current template already matches revision ${pick.revision})` };
  }
  const rv = ds.metadata?.resourceVersion;
  const patch: StrategicMergePatch = {
    ...clone(data),
    metadata: { ...(rv === undefined ? {} : { resourceVersion: rv }), annotations: nwAnnotations(decision, pick.revision, now) },
  };
  return {
    type: 'patch',
    patch,
    toRevision: pick.revision,
    fromRevision: pick.current,
    detail: `rolled back ${id} from revision ${pick.current ?? '?'} to revision ${pick.revision}`,
  };
}
