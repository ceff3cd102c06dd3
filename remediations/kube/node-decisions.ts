/**
 * Pure cordon/uncordon decisions over a Node in wire shape: who owns the
 * cordon, what to patch, or why nothing should change. No I/O here; the
 * executor reads the Node, asks these functions, and writes the patch.
 *
 * Ownership rule (brief §4): nodewarden only ever undoes what it did itself.
 * A node counts as cordoned by nodewarden when it is unschedulable, carries
 * `nodewarden.io/cordoned-by: nodewarden`, and — when the server tracks field
 * ownership (managedFields) — the last writer of `spec.unschedulable` is
 * nodewarden. The last check catches a human who uncordoned and re-cordoned
 * the node by hand while our stale annotation stayed behind.
 */
import { DEFAULT_GPU_COUNT_LABEL, NW, type NodeInfo } from '../../core/cluster.js';
import { gpuCountOf } from '../../core/gpu.js';
import type { Decision } from '../../core/decision.js';
import type { MergePatch } from './kube-api.js';
import { annotationsOf, isRecord, type Taint, type WireNode } from './wire.js';

/** The field manager nodewarden's writes are recorded under. */
export const FIELD_MANAGER = 'nodewarden';
export const CORDONED_BY_VALUE = 'nodewarden';
/** Annotation values are capped so a verbose rule reason cannot bloat the Node object. */
const MAX_ANNOTATION_CHARS = 1024;

export const NW_TAINT: Taint = { key: NW.taintKey, value: 'true', effect: 'NoSchedule' };

const NW_ANNOTATIONS = [NW.annCordonedBy, NW.annRule, NW.annReason, NW.annTime, NW.annDecision] as const;

export type NodePlan =
  /** Nothing to write. `owned` says whether nodewarden owns the node's cordon afterwards. */
  | { type: 'noop'; detail: string; owned: boolean }
  /** Write `patch` (a merge patch with a resourceVersion precondition). */
  | { type: 'patch'; patch: MergePatch; detail: string }
  /** Refuse: acting would break the ownership rule. */
  | { type: 'refuse'; detail: string };

function hasNwTaint(node: WireNode): boolean {
  return (node.spec?.taints ?? []).some((t) => t.key === NW.taintKey && t.effect === NW_TAINT.effect);
}

function withoutNwTaint(node: WireNode): Taint[] {
  return (node.spec?.taints ?? []).filter((t) => t.key !== NW.taintKey);
}

/**
 * Who last set `spec.unschedulable`, from managedFields; undefined when the
 * object carries no field-ownership data (e.g. a `kubectl get -o yaml` dump).
 */
export function unschedulableManager(node: WireNode): string | undefined {
  const entries = node.metadata?.managedFields;
  if (!Array.isArray(entries)) return undefined;
  let owner: string | undefined;
  for (const e of entries) {
    if (!isRecord(e)) continue;
    const f = e.fieldsV1;
    const spec = isRecord(f) ? f['f:spec'] : undefined;
    if (isRecord(spec) && 'f:unschedulable' in spec && typeof e.manager === 'string') owner = e.manager;
  }
  return owner;
}

/** True when the node is unschedulable because nodewarden made it so (see the module comment). */
export function isCordonedByNodewarden(node: WireNode): boolean {
  if (node.spec?.unschedulable !== true) return false;
  if (annotationsOf(node)[NW.annCordonedBy] !== CORDONED_BY_VALUE) return false;
  const manager = unschedulableManager(node);
  return manager === undefined || manager === FIELD_MANAGER;
}

export function isReady(node: WireNode): boolean {
  return (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** The ClusterView projection of a Node (shared by the live and the simulated cluster). */
export function nodeInfoOf(node: WireNode, gpuCountLabel: string = DEFAULT_GPU_COUNT_LABEL): NodeInfo {
  const labels = { ...(node.metadata?.labels ?? {}) };
  const capacity = node.status?.capacity;
  const info: NodeInfo = {
    name: node.metadata?.name ?? '',
    labels,
    unschedulable: node.spec?.unschedulable === true,
    ready: isReady(node),
    cordonedByNodewarden: isCordonedByNodewarden(node),
  };
  const gpus = gpuCountOf(isStringRecord(capacity) ? capacity : undefined, labels, gpuCountLabel);
  if (gpus !== null) info.gpus = gpus;
  return info;
}

/**
 * The part of a Node that planCordon / planUncordon read, kept by the
 * watch-fed view so that a cordon can patch without a GET first (ADR 0041):
 * name, resourceVersion, nodewarden's annotations, spec.unschedulable, every
 * taint, and who last set spec.unschedulable (one managedFields entry).
 * Every plan on it gives the same answer as on the whole Node.
 */
export function planNodeOf(node: WireNode): WireNode {
  const ann = annotationsOf(node);
  const annotations: Record<string, string> = {};
  for (const k of NW_ANNOTATIONS) if (typeof ann[k] === 'string') annotations[k] = ann[k];
  const manager = unschedulableManager(node);
  const meta = node.metadata;
  return {
    metadata: {
      ...(meta?.name === undefined ? {} : { name: meta.name }),
      ...(meta?.resourceVersion === undefined ? {} : { resourceVersion: meta.resourceVersion }),
      annotations,
      ...(manager === undefined ? {} : { managedFields: [{ manager, fieldsV1: { 'f:spec': { 'f:unschedulable': {} } } }] }),
    },
    spec: {
      ...(node.spec?.unschedulable === undefined ? {} : { unschedulable: node.spec.unschedulable }),
      ...(node.spec?.taints === undefined ? {} : { taints: node.spec.taints.map((t) => ({ ...t })) }),
    },
  };
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && Object.values(v).every((x) => typeof x === 'string');
}

function cap(s: string): string {
  return s.length <= MAX_ANNOTATION_CHARS ? s : `${s.slice(0, MAX_ANNOTATION_CHARS - 1)}…`;
}

function precondition(node: WireNode): Record<string, unknown> {
  const rv = node.metadata?.resourceVersion;
  return rv === undefined ? {} : { resourceVersion: rv };
}

/**
 * Decide how to cordon `node` for `decision` at time `now` (ms).
 * Never drains: running pods keep running.
 */
export function planCordon(node: WireNode, decision: Decision, now: number): NodePlan {
  const name = node.metadata?.name ?? decision.target.name;
  const ann = annotationsOf(node);
  const unschedulable = node.spec?.unschedulable === true;

  if (unschedulable && isCordonedByNodewarden(node)) {
    const by = ann[NW.annDecision];
    if (!hasNwTaint(node)) {
      // Our cordon lost its taint (someone removed it): put it back, keep the original attribution.
      return {
        type: 'patch',
        patch: { metadata: precondition(node), spec: { taints: [...withoutNwTaint(node), NW_TAINT] } },
        detail: `node ${name} already cordoned by nodewarden (decision ${by ?? '?'}); restored taint ${NW.taintKey}`,
      };
    }
    const same = by === decision.id;
    return {
      type: 'noop',
      owned: true,
      detail: same
        ? `node ${name} already cordoned by nodewarden for this decision`
        : `node ${name} already cordoned by nodewarden (rule ${ann[NW.annRule] ?? '?'}, decision ${by ?? '?'})`,
    };
  }
  if (unschedulable) {
    return {
      type: 'noop',
      owned: false,
      detail: `node ${name} is already unschedulable, cordoned by someone else; nodewarden leaves it and does not take ownership`,
    };
  }
  return {
    type: 'patch',
    patch: {
      metadata: {
        ...precondition(node),
        annotations: {
          [NW.annCordonedBy]: CORDONED_BY_VALUE,
          [NW.annRule]: cap(decision.rule),
          [NW.annReason]: cap(decision.reason),
          [NW.annTime]: new Date(now).toISOString(),
          [NW.annDecision]: cap(decision.id),
        },
      },
      spec: { unschedulable: true, taints: [...withoutNwTaint(node), NW_TAINT] },
    },
    detail: `cordoned node ${name} (spec.unschedulable=true, taint ${NW.taintKey}:NoSchedule); not drained`,
  };
}

/** Patch removing every trace of nodewarden's cordon; `uncordon` also clears spec.unschedulable. */
function cleanupPatch(node: WireNode, uncordon: boolean): MergePatch {
  const annotations: Record<string, null> = {};
  const ann = annotationsOf(node);
  for (const k of NW_ANNOTATIONS) if (k in ann) annotations[k] = null;
  const taints = withoutNwTaint(node);
  const spec: Record<string, unknown> = {};
  if (hasNwTaint(node) || taints.length !== (node.spec?.taints ?? []).length) spec.taints = taints.length > 0 ? taints : null;
  // null deletes the field, exactly what `kubectl uncordon` leaves behind (unschedulable is omitempty).
  if (uncordon) spec.unschedulable = null;
  return { metadata: { ...precondition(node), annotations }, spec };
}

/** Decide how to uncordon `node`: only ever a node nodewarden cordoned itself. */
export function planUncordon(node: WireNode, _decision: Decision): NodePlan {
  const name = node.metadata?.name ?? _decision.target.name;
  const ann = annotationsOf(node);
  const annotated = ann[NW.annCordonedBy] === CORDONED_BY_VALUE;
  const unschedulable = node.spec?.unschedulable === true;

  if (!annotated && unschedulable) {
    return {
      type: 'refuse',
      detail: `node ${name} was cordoned by someone else (no ${NW.annCordonedBy} annotation); nodewarden never uncordons it`,
    };
  }
  if (!annotated) return { type: 'noop', owned: false, detail: `node ${name} is schedulable and was not cordoned by nodewarden; nothing to do` };
  if (unschedulable && !isCordonedByNodewarden(node)) {
    return {
      type: 'refuse',
      detail: `node ${name} carries nodewarden's annotation but spec.unschedulable was last set by ${unschedulableManager(node) ?? 'someone else'}; nodewarden never uncordons it`,
    };
  }
  if (!unschedulable) {
    // Someone already uncordoned it; drop our stale taint/annotations so the node is really back.
    return { type: 'patch', patch: cleanupPatch(node, false), detail: `node ${name} was already schedulable; removed nodewarden's taint and annotations` };
  }
  return { type: 'patch', patch: cleanupPatch(node, true), detail: `uncordoned node ${name} (cordoned by nodewarden, decision ${ann[NW.annDecision] ?? '?'})` };
}
