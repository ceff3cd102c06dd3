/**
 * DeviceTaintRule objects for one GPU (KEP-5055, resource.k8s.io; pure).
 *
 * Selection assumption (docs/gpu-scope.md): the GPUs are published by a DRA
 * driver (default `gpu.nvidia.com`, NVIDIA's k8s-dra-driver-gpu) whose devices
 * carry the GPU UUID in a string attribute (default `uuid`) and, optionally,
 * the PCI bus id (default `pciBusID`), and whose pool for a node's GPUs is named
 * after the node. A UUID is unique in the fleet, so the rule selects by the
 * driver + UUID attribute alone; a PCI bus id is unique only within a node, so
 * it also names the pool (the node). The CEL expressions test that the
 * attribute exists first: a device without it is simply not selected.
 *
 * One rule per GPU, with a deterministic name, so a replayed decision finds
 * (AlreadyExists) the rule it made, and the untaint knows what to delete
 * without a list. Labels mark it as nodewarden's, for the guard's view, the
 * least-privilege RBAC (label-free: create/get/delete/list) and for people.
 */
import { createHash } from 'node:crypto';
import { NW } from '../../core/cluster.js';
import type { DeviceTaintsConfig } from '../../core/config.js';
import type { Decision } from '../../core/decision.js';
import { isGpuPci, isGpuUuid } from '../../core/gpu.js';
import type { KubeObject } from './wire.js';

export const DEVICE_TAINT_GROUP = 'resource.k8s.io';
/** Versions that serve DeviceTaintRule, newest first (1.33/1.34: v1alpha3 behind DRADeviceTaints; later: also v1beta2/v1). */
export const DEVICE_TAINT_VERSIONS = ['v1', 'v1beta2', 'v1alpha3'] as const;
export const DEVICE_TAINT_KIND = 'DeviceTaintRule';
export const DEVICE_TAINT_RESOURCE = 'devicetaintrules';

/** `None` (dry-run: visible, no effect) exists from Kubernetes 1.35 on; 1.33/1.34 know only NoSchedule/NoExecute. */
export type DeviceTaintEffect = 'NoSchedule' | 'None';

export interface WireDeviceTaintRule extends KubeObject {
  spec?: {
    deviceSelector?: { driver?: string; pool?: string; device?: string; deviceClassName?: string; selectors?: Array<{ cel?: { expression: string } }> };
    taint?: { key: string; value?: string; effect: string; timeAdded?: string };
  };
}

/** The GPU a Device target names and the node it is in. */
export interface GpuRef {
  node: string;
  gpu: string;
}

export function gpuRefOf(decision: Decision): GpuRef | null {
  const t = decision.target;
  if (t.kind !== 'Device' || !t.node) return null;
  return { node: t.node, gpu: t.name };
}

const LABEL_VALUE_MAX = 63;

/** A label value from any string: allowed characters only, bounded, with a hash suffix when shortened. */
export function labelValue(s: string): string {
  const clean = s.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  if (clean.length <= LABEL_VALUE_MAX && clean === s) return clean;
  const h = createHash('sha256').update(s).digest('hex').slice(0, 8);
  return `${clean.slice(0, LABEL_VALUE_MAX - 9).replace(/[^A-Za-z0-9]+$/, '')}-${h}`;
}

/** Deterministic object name of the rule for one GPU of one node (DNS subdomain, ≤ 253). */
export function deviceTaintRuleName(ref: GpuRef): string {
  const h = createHash('sha256').update(`${ref.node}/${ref.gpu}`).digest('hex').slice(0, 10);
  const node = ref.node.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 60).replace(/^-+|-+$/g, '');
  return `nodewarden-gpu-${node}-${h}`;
}

/** The device selector for one GPU, or null when the id cannot be selected with the configured attributes. */
export function deviceSelectorFor(ref: GpuRef, cfg: DeviceTaintsConfig): NonNullable<WireDeviceTaintRule['spec']>['deviceSelector'] | null {
  const attrs = `device.attributes["${cfg.driver}"]`;
  if (isGpuUuid(ref.gpu)) {
    const a = cfg.uuidAttribute;
    return { driver: cfg.driver, selectors: [{ cel: { expression: `"${a}" in ${attrs} && ${attrs}.${a} == "${ref.gpu}"` } }] };
  }
  const pci = ref.gpu;
  if (isGpuPci(pci) && cfg.pciAttribute !== null) {
    const a = cfg.pciAttribute;
    // events carry `0000:3b:00`; drivers print `0000:3b:00.0` or NVML's `00000000:3B:00.0`
    const [domain, bus, dev] = pci.toLowerCase().split(/[:.]/);
    const re = `(?i)^0*${(domain ?? '').replace(/^0+/, '') || '0'}:${bus ?? ''}:${dev ?? ''}([.][0-7])?$`;
    return { driver: cfg.driver, pool: ref.node, selectors: [{ cel: { expression: `"${a}" in ${attrs} && ${attrs}.${a}.matches("${re}")` } }] };
  }
  return null;
}

/** True when a Device target can be tainted with this config (else the node is cordoned). */
export function isSelectable(ref: GpuRef, cfg: DeviceTaintsConfig): boolean {
  return deviceSelectorFor(ref, cfg) !== null;
}

const ANNOTATION_MAX = 1024;

/** The DeviceTaintRule for a taint decision, or null when the GPU cannot be selected. */
export function buildDeviceTaintRule(decision: Decision, apiVersion: string, effect: DeviceTaintEffect, cfg: DeviceTaintsConfig, now: number): WireDeviceTaintRule | null {
  const ref = gpuRefOf(decision);
  if (!ref) return null;
  const deviceSelector = deviceSelectorFor(ref, cfg);
  if (!deviceSelector) return null;
  return {
    apiVersion,
    kind: DEVICE_TAINT_KIND,
    metadata: {
      name: deviceTaintRuleName(ref),
      labels: {
        [NW.labelManagedBy]: 'nodewarden',
        [NW.labelTaintNode]: labelValue(ref.node),
        [NW.labelTaintGpu]: labelValue(ref.gpu),
      },
      annotations: {
        [NW.annCordonedBy]: 'nodewarden',
        [NW.annRule]: decision.rule,
        [NW.annReason]: decision.reason.slice(0, ANNOTATION_MAX),
        [NW.annTime]: new Date(now).toISOString(),
        [NW.annDecision]: decision.id,
        'nodewarden.io/gpu': ref.gpu,
        'nodewarden.io/node': ref.node,
      },
    },
    spec: { deviceSelector, taint: { key: cfg.key, value: labelValue(decision.rule), effect } },
  };
}

/** True when the rule is one nodewarden made (never delete another's). */
export function isOwnDeviceTaintRule(rule: WireDeviceTaintRule): boolean {
  return rule.metadata?.labels?.[NW.labelManagedBy] === 'nodewarden';
}
