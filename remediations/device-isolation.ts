/**
 * GPU-level isolation or the node cordon (issue 11, docs/gpu-scope.md).
 *
 * A `taint` decision (one GPU) runs as a DRA device taint only where that can
 * work: device taints enabled in the config, DeviceTaintRule served by the
 * cluster (discovered, cached), and the GPU selectable (a UUID, or a PCI bus
 * id with the PCI attribute configured). Otherwise it becomes a cordon of the
 * GPU's node, *before* the guard, so the guard budgets what really happens (a
 * whole node) and the ledger records the cordon with the GPU in its evidence.
 * Replay and the demo cordon by default (CORDON_ONLY); with `deviceTaints`
 * on, the simulated cluster taints the GPU itself (SIMULATED_DEVICE_TAINTS).
 */
import type { Decision } from '../core/decision.js';
import type { DeviceTaintsConfig } from '../core/config.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { gpuRefOf, isSelectable } from './kube/device-taint-rules.js';
import type { DeviceTaintDiscovery } from './kube/device-taints.js';

export interface DeviceIsolation {
  /** The decision to carry out for `d`: `d` itself, or the cordon of its node instead of a GPU taint. */
  route(d: Decision): Promise<Decision>;
}

const CORDON_INSTEAD = '-node';

/** The id of the taint decision a fallback cordon was derived from (the id itself when it is not one). */
export function taintOf(decisionId: string): string {
  return decisionId.endsWith(CORDON_INSTEAD) ? decisionId.slice(0, -CORDON_INSTEAD.length) : decisionId;
}

/** The fallback: cordon the node of a taint decision (same firing: a derived, stable id). */
export function cordonInstead(d: Decision, why: string): Decision {
  const node = d.target.kind === 'Device' ? d.target.node : d.target.kind === 'Node' ? d.target.name : undefined;
  const gpu = d.target.kind === 'Device' ? d.target.name : undefined;
  if (node === undefined) return d; // nothing to cordon: the executor reports the bad target
  return {
    ...d,
    id: `${d.id}${CORDON_INSTEAD}`,
    action: 'cordon',
    target: { kind: 'Node', name: node },
    reason: `${d.reason} (GPU ${gpu ?? '?'}: ${why}; cordoning the node)`,
    evidence: { ...d.evidence, gpu, isolation: 'node', isolationReason: why },
  };
}

/** Without a cluster that serves device taints (replay, demo, tests): every GPU taint is a node cordon. */
export const CORDON_ONLY: DeviceIsolation = {
  route: (d) => Promise.resolve(d.action === 'taint' ? cordonInstead(d, 'no DeviceTaintRule API here') : d),
};

/** The simulated cluster (replay, demo) taints GPUs itself: a taint with a GPU and its node is carried out as such. */
export const SIMULATED_DEVICE_TAINTS: DeviceIsolation = {
  route: (d) => Promise.resolve(d.action === 'taint' && !gpuRefOf(d) ? cordonInstead(d, 'no GPU named') : d),
};

export function createDeviceIsolation(o: { config: DeviceTaintsConfig; discovery: DeviceTaintDiscovery | null; logger?: Logger }): DeviceIsolation {
  const log = o.logger ?? silentLogger;
  return {
    async route(d: Decision): Promise<Decision> {
      if (d.action !== 'taint') return d;
      const ref = gpuRefOf(d);
      if (!o.config.enabled || o.discovery === null) return cordonInstead(d, 'device taints disabled (deviceTaints.enabled)');
      if (!ref) return cordonInstead(d, 'no GPU named');
      if (!isSelectable(ref, o.config)) return cordonInstead(d, 'the GPU has no UUID and no PCI attribute is configured (deviceTaints.pciAttribute)');
      const apiVersion = await o.discovery.apiVersion();
      if (apiVersion === null) {
        log.debug({ decisionId: d.id, node: ref.node, gpu: ref.gpu }, 'DeviceTaintRule not served: cordoning the node');
        return cordonInstead(d, 'DeviceTaintRule is not served by this cluster');
      }
      return d;
    },
  };
}
