/**
 * dcgm-exporter `/metrics` → per-GPU health samples → `gpu.health` events.
 *
 * Label names differ by exporter version and configuration: `UUID` (1.x–4.x)
 * or `uuid`, `Hostname` or `hostname`, `pci_bus_id` only since 3.3 (8-digit
 * NVML domain: `00000000:3B:00.0`), MIG series repeat device fields once per
 * `GPU_I_ID`. DCGM writes "blank" sentinels instead of values when a field is
 * not supported or not yet sampled (dcgm_structs.h): int64 ≥
 * 0x7ffffffffffffff0 (9223372036854775792), int32 ≥ 0x7ffffff0
 * (2147483632) and fp64 ≥ 2^47 (140737488355328); those read as "missing".
 *
 * `DCGM_FI_DEV_XID_ERRORS` is a gauge holding the *last* Xid code seen (0 when
 * none), not a count; since exporter 3.3.6 it also carries `err_code` and
 * `err_msg` labels. The tracker therefore reports an Xid when that value
 * changes to a non-zero code (or is non-zero the first time a GPU is seen):
 * the same code twice in a row is invisible here by construction (the kernel
 * log collector sees every line).
 */
import { normalizePci } from './xid.js';
import type { PromSample } from './prometheus-text.js';
import { parsePrometheusText } from './prometheus-text.js';

/** Counter-like fields the tracker watches for increases. */
export type DcgmCounterField =
  | 'eccDbeVol'
  | 'eccDbeAgg'
  | 'eccSbeVol'
  | 'eccSbeAgg'
  | 'uncorrectableRemappedRows'
  | 'correctableRemappedRows'
  | 'retiredSbe'
  | 'retiredDbe'
  | 'retiredPending'
  | 'pcieReplay'
  | 'thermalViolation'
  | 'powerViolation';

export interface DcgmGpuSample {
  /** Stable key: UUID, else `gpu:<index>`. */
  key: string;
  gpu: string | null;
  index: string | null;
  pci: string | null;
  model: string | null;
  device: string | null;
  hostname: string | null;
  /** Last Xid code (0 = none), null when missing. */
  xid: number | null;
  xidMessage: string | null;
  rowRemapFailure: number | null;
  gpuTemp: number | null;
  memoryTemp: number | null;
  counters: Partial<Record<DcgmCounterField, number>>;
  /** NVLink error counters by DCGM field name (`DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL` …). */
  nvlink: Record<string, number>;
}

const COUNTER_FIELDS: Record<string, DcgmCounterField> = {
  DCGM_FI_DEV_ECC_DBE_VOL_TOTAL: 'eccDbeVol',
  DCGM_FI_DEV_ECC_DBE_AGG_TOTAL: 'eccDbeAgg',
  DCGM_FI_DEV_ECC_SBE_VOL_TOTAL: 'eccSbeVol',
  DCGM_FI_DEV_ECC_SBE_AGG_TOTAL: 'eccSbeAgg',
  DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS: 'uncorrectableRemappedRows',
  DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS: 'correctableRemappedRows',
  DCGM_FI_DEV_RETIRED_SBE: 'retiredSbe',
  DCGM_FI_DEV_RETIRED_DBE: 'retiredDbe',
  DCGM_FI_DEV_RETIRED_PENDING: 'retiredPending',
  DCGM_FI_DEV_PCIE_REPLAY_COUNTER: 'pcieReplay',
  DCGM_FI_DEV_THERMAL_VIOLATION: 'thermalViolation',
  DCGM_FI_DEV_POWER_VIOLATION: 'powerViolation',
};
const NVLINK_ERR_RE = /^DCGM_FI_DEV_NVLINK_\w+_ERROR_COUNT_TOTAL$/;

const INT64_BLANK = 9223372036854775792n;
const INT32_BLANK = 2147483632;
const INT32_MAX = 2147483647;
const FP64_BLANK = 140737488355328;

/** True when `valueText` is a DCGM blank/not-supported sentinel, NaN or infinite. */
export function isDcgmBlank(valueText: string, value: number): boolean {
  if (!Number.isFinite(value)) return true;
  if (/^\d{19,}$/.test(valueText)) return BigInt(valueText) >= INT64_BLANK;
  if (value >= 9.2233720368547748e18) return true; // sentinel printed as a float (9.223372036854776e+18)
  if (value >= INT32_BLANK && value <= INT32_MAX) return true;
  if (value >= FP64_BLANK && value <= FP64_BLANK + 4) return true;
  return false;
}

function label(l: Record<string, string>, ...names: string[]): string | null {
  for (const n of names) {
    const v = l[n];
    if (v !== undefined && v !== '') return v;
  }
  return null;
}

function newSample(key: string, s: PromSample): DcgmGpuSample {
  const l = s.labels;
  const busId = label(l, 'pci_bus_id', 'PCI_BUS_ID', 'pciBusID');
  return {
    key,
    gpu: label(l, 'UUID', 'uuid'),
    index: label(l, 'gpu'),
    pci: busId === null ? null : normalizePci(busId),
    model: label(l, 'modelName', 'model_name'),
    device: label(l, 'device'),
    hostname: label(l, 'Hostname', 'hostname'),
    xid: null,
    xidMessage: null,
    rowRemapFailure: null,
    gpuTemp: null,
    memoryTemp: null,
    counters: {},
    nvlink: {},
  };
}

/** Keeps the larger of two readings: MIG series repeat device-level fields per GPU instance. */
function maxOf(a: number | null | undefined, b: number): number {
  return a === null || a === undefined ? b : Math.max(a, b);
}

/** Groups dcgm-exporter samples per physical GPU; ignores non-DCGM series. */
export function dcgmSamplesFromMetrics(samples: PromSample[]): DcgmGpuSample[] {
  const byKey = new Map<string, DcgmGpuSample>();
  for (const s of samples) {
    if (!s.name.startsWith('DCGM_FI_')) continue;
    const uuid = label(s.labels, 'UUID', 'uuid');
    const idx = label(s.labels, 'gpu');
    if (uuid === null && idx === null) continue;
    const key = uuid ?? `gpu:${idx ?? ''}`;
    let g = byKey.get(key);
    if (g === undefined) {
      g = newSample(key, s);
      byKey.set(key, g);
    }
    if (g.pci === null) {
      const busId = label(s.labels, 'pci_bus_id');
      if (busId !== null) g.pci = normalizePci(busId);
    }
    if (s.name === 'DCGM_FI_DEV_XID_ERRORS') {
      const codeLabel = label(s.labels, 'err_code');
      const blank = isDcgmBlank(s.valueText, s.value);
      const v = blank ? (codeLabel !== null && /^\d+$/.test(codeLabel) ? Number(codeLabel) : null) : s.value;
      if (v !== null && (g.xid === null || v > g.xid)) {
        g.xid = v;
        g.xidMessage = label(s.labels, 'err_msg');
      }
      continue;
    }
    if (isDcgmBlank(s.valueText, s.value)) continue;
    const field = COUNTER_FIELDS[s.name];
    if (field !== undefined) {
      g.counters[field] = maxOf(g.counters[field], s.value);
    } else if (NVLINK_ERR_RE.test(s.name)) {
      g.nvlink[s.name] = maxOf(g.nvlink[s.name], s.value);
    } else if (s.name === 'DCGM_FI_DEV_ROW_REMAP_FAILURE') {
      g.rowRemapFailure = maxOf(g.rowRemapFailure, s.value);
    } else if (s.name === 'DCGM_FI_DEV_GPU_TEMP') {
      g.gpuTemp = maxOf(g.gpuTemp, s.value);
    } else if (s.name === 'DCGM_FI_DEV_MEMORY_TEMP') {
      g.memoryTemp = maxOf(g.memoryTemp, s.value);
    }
  }
  return [...byKey.values()];
}

/** Parses a dcgm-exporter `/metrics` body into per-GPU samples. */
export function parseDcgmMetrics(text: string): DcgmGpuSample[] {
  return dcgmSamplesFromMetrics(parsePrometheusText(text).samples);
}

export type DcgmHealthKind =
  | 'xid'
  | 'ecc_dbe'
  | 'row_remap_failure'
  | 'uncorrectable_remapped_rows'
  | 'retired_pages'
  | 'pcie_replay'
  | 'nvlink_errors'
  | 'thermal_violation'
  | 'power_violation';

/** `gpu.health` event data. */
export interface GpuHealthData {
  kind: DcgmHealthKind;
  gpu: string | null;
  pci: string | null;
  index: string | null;
  model: string | null;
  /** Xid code (kind `xid`). */
  code?: number;
  message?: string | null;
  /** DCGM field the change was seen on. */
  field?: string;
  /** Increase since the previous scrape, and the current total. */
  delta?: number;
  total?: number;
}

interface GpuState {
  xid: number | null;
  rowRemapFailure: number | null;
  counters: Partial<Record<DcgmCounterField, number>>;
  nvlink: Record<string, number>;
}

/** One event per scrape per kind and GPU; `fields` are tried in order and the first present one is used. */
const COUNTER_EVENTS: Array<{ kind: DcgmHealthKind; fields: DcgmCounterField[]; names: string[] }> = [
  { kind: 'ecc_dbe', fields: ['eccDbeVol', 'eccDbeAgg'], names: ['DCGM_FI_DEV_ECC_DBE_VOL_TOTAL', 'DCGM_FI_DEV_ECC_DBE_AGG_TOTAL'] },
  { kind: 'uncorrectable_remapped_rows', fields: ['uncorrectableRemappedRows'], names: ['DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS'] },
  { kind: 'pcie_replay', fields: ['pcieReplay'], names: ['DCGM_FI_DEV_PCIE_REPLAY_COUNTER'] },
  { kind: 'thermal_violation', fields: ['thermalViolation'], names: ['DCGM_FI_DEV_THERMAL_VIOLATION'] },
  { kind: 'power_violation', fields: ['powerViolation'], names: ['DCGM_FI_DEV_POWER_VIOLATION'] },
];
const RETIRED: Array<{ field: DcgmCounterField; name: string }> = [
  { field: 'retiredDbe', name: 'DCGM_FI_DEV_RETIRED_DBE' },
  { field: 'retiredSbe', name: 'DCGM_FI_DEV_RETIRED_SBE' },
  { field: 'retiredPending', name: 'DCGM_FI_DEV_RETIRED_PENDING' },
];

/**
 * Turns successive scrapes into health events. Pure and stateful: the first
 * scrape of a GPU sets the counter baselines (no event, so an agent restart
 * does not re-report old history) and reports state-like signals that are
 * already bad (a non-zero Xid gauge, a row-remap failure). Later scrapes
 * report increases; a counter that goes down (driver reload) re-baselines.
 * A healthy GPU produces nothing.
 */
export class DcgmTracker {
  private readonly state = new Map<string, GpuState>();

  update(samples: DcgmGpuSample[]): GpuHealthData[] {
    const out: GpuHealthData[] = [];
    for (const g of samples) {
      const prev = this.state.get(g.key);
      const base = { gpu: g.gpu, pci: g.pci, index: g.index, model: g.model };
      // Xid gauge: report a change to a non-zero code, and a non-zero first sight.
      if (g.xid !== null && g.xid !== 0 && (prev === undefined || prev.xid !== g.xid)) {
        out.push({ kind: 'xid', ...base, code: g.xid, message: g.xidMessage, field: 'DCGM_FI_DEV_XID_ERRORS' });
      }
      if (g.rowRemapFailure !== null && g.rowRemapFailure > 0 && (prev === undefined || !(prev.rowRemapFailure !== null && prev.rowRemapFailure > 0))) {
        out.push({ kind: 'row_remap_failure', ...base, field: 'DCGM_FI_DEV_ROW_REMAP_FAILURE', total: g.rowRemapFailure });
      }
      if (prev !== undefined) {
        for (const spec of COUNTER_EVENTS) {
          for (let i = 0; i < spec.fields.length; i += 1) {
            const f = spec.fields[i] as DcgmCounterField;
            const cur = g.counters[f];
            if (cur === undefined) continue;
            const before = prev.counters[f];
            if (before !== undefined && cur > before) {
              out.push({ kind: spec.kind, ...base, field: spec.names[i], delta: cur - before, total: cur });
            }
            break; // the first present field speaks for the kind (VOL and AGG count the same errors)
          }
        }
        for (const r of RETIRED) {
          const cur = g.counters[r.field];
          const before = prev.counters[r.field];
          if (cur !== undefined && before !== undefined && cur > before) {
            out.push({ kind: 'retired_pages', ...base, field: r.name, delta: cur - before, total: cur });
          }
        }
        for (const [name, cur] of Object.entries(g.nvlink)) {
          const before = prev.nvlink[name];
          if (before !== undefined && cur > before) {
            out.push({ kind: 'nvlink_errors', ...base, field: name, delta: cur - before, total: cur });
          }
        }
      }
      // Missing readings keep their previous baseline so a blank scrape cannot fake an increase later.
      const counters: Partial<Record<DcgmCounterField, number>> = { ...(prev?.counters ?? {}), ...g.counters };
      const nvlink: Record<string, number> = { ...(prev?.nvlink ?? {}), ...g.nvlink };
      this.state.set(g.key, {
        xid: g.xid ?? prev?.xid ?? null,
        rowRemapFailure: g.rowRemapFailure ?? prev?.rowRemapFailure ?? null,
        counters,
        nvlink,
      });
    }
    return out;
  }
}
