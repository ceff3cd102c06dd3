/**
 * Which events may be dropped first when the spool is full. Routine samples
 * are superseded by the next one (a heartbeat, a counter snapshot, a health
 * poll); alarms are one-off facts the engine acts on (an Xid, a containerd
 * outage, a kube-proxy restart, a full conntrack table) and are kept for as
 * long as there is anything routine left to drop instead.
 */
import type { EventEnvelope } from '../../core/envelope.js';

export type EventPriority = 'alarm' | 'routine';

/** Classifies one event. Pure. */
export function eventPriority(e: EventEnvelope): EventPriority {
  const d = e.data;
  switch (e.type) {
    case 'agent.heartbeat':
    case 'kubeproxy.health':
      return 'routine';
    case 'net.conntrack':
      // Periodic counter snapshots are routine; the kernel's "table full, dropping packet" is an alarm.
      return d['tableFull'] === true ? 'alarm' : 'routine';
    case 'gpu.health':
      // Counter samples that rise under load are routine; hardware faults are alarms.
      return isDcgmAlarm(d) ? 'alarm' : 'routine';
    case 'gpu.xid':
    case 'runtime.containerd':
    case 'kubeproxy.restart':
    case 'workload.revision':
    default:
      return 'alarm';
  }
}

/**
 * dcgm-exporter changes (agent/parsers/dcgm.ts `GpuHealthData.kind`): Xid,
 * double-bit ECC, row-remap failures, retired pages and NVLink errors are
 * hardware facts; PCIe replays and thermal/power violation time grow under
 * ordinary load and the next sample carries the new total, so they go first.
 */
const DCGM_ROUTINE_KINDS: ReadonlySet<string> = new Set(['pcie_replay', 'thermal_violation', 'power_violation']);

function isDcgmAlarm(d: Record<string, unknown>): boolean {
  if (d['sample'] === true) return false;
  return !(typeof d['kind'] === 'string' && DCGM_ROUTINE_KINDS.has(d['kind']));
}
