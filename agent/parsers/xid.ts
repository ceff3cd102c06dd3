/**
 * Turns kernel-log records into NVIDIA Xid events (`gpu.xid` data).
 *
 * Every driver era prints the same core, `NVRM: Xid (<where>): <code>, <rest>`:
 *
 *   NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU has fallen off the bus.
 *   NVRM: Xid (PCI:0000:07:00): 48, pid='<unknown>', name=<unknown>, An uncorrectable double bit error …
 *   NVRM: Xid (PCI:0000:cb:00): 48, An uncorrectable double bit error …            (no process)
 *   NVRM: Xid (PCI:0000:01:00 GPU-I:05): 94, pid=7194, Contained: CE User Channel  (MIG, pid without name)
 *   NVRM: Xid (PCI:0000:01:00 GPU-I:01 GPU-CI:00): 13, pid=9, name=a, …            (MIG compute instance)
 *   NVRM: Xid (0000:01:00): 16, Head 00000000 Count 00000000                        (pre-R3xx: no "PCI:")
 *
 * Besides Xid lines the parser:
 * - learns PCI → GPU UUID from `NVRM: GPU at PCI:0000:3b:00: GPU-5f1c…` (also the
 *   old `NVRM: GPU at 0000:01:00: GPU-…`) and attaches it to later events;
 * - reports the driver's "fallen off the bus" messages that carry no Xid as code 79:
 *   the multi-line `NVRM: The NVIDIA GPU 0000:b3:00.0` / `NVRM: (PCI ID: 10de:20b2)
 *   installed in this system has` / `NVRM: fallen off the bus and is not responding
 *   to commands.`, and the single lines `NVRM: GPU at PCI:0000:3b:00: GPU has fallen
 *   off the bus.` / `NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus.`;
 * - folds those companions into the Xid 79 printed next to them (one failure, one
 *   event), within {@link FALLEN_OFF_WINDOW_MS} or {@link FALLEN_OFF_WINDOW_RECORDS}.
 *
 * Stateful (UUID map, pending multi-line message) but pure: no I/O, no clock.
 */
import { boundedInt, truncateField } from '../bounds.js';
import type { GpuXidData } from '../../core/envelope.js';
import type { KernelLogRecord } from './kernel-log.js';

/** A companion "fallen off the bus" message within this much log time of an Xid 79 is the same failure. */
export const FALLEN_OFF_WINDOW_MS = 60_000;
/** …or, when records carry no time, within this many records. */
export const FALLEN_OFF_WINDOW_RECORDS = 64;
/** The multi-line message must complete within this many records. */
const MULTILINE_MAX_RECORDS = 4;

const PCI = '([0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2})(?:\\.[0-7])?';
const XID_RE = new RegExp(`NVRM: Xid \\((?:PCI:)?${PCI}((?:\\s+GPU-C?I:\\d+)*)\\):\\s*(\\d+)(?:,\\s*(.*))?$`);
const GPU_AT_UUID_RE = new RegExp(`NVRM: GPU at (?:PCI:)?${PCI}:\\s*(GPU-[0-9a-fA-F-]+)\\s*$`);
const FALLEN_SINGLE_RE = new RegExp(`NVRM: GPU (?:at )?(?:PCI:)?${PCI}:\\s*(GPU has fallen off the bus.*)$`);
const FALLEN_MULTI_START_RE = new RegExp(`NVRM: The NVIDIA GPU (?:PCI:)?${PCI}\\s*$`);
const FALLEN_MULTI_END_RE = /fallen off the bus and is not responding to commands\.?/;
const GPU_I_RE = /GPU-I:(\d+)/;
const GPU_CI_RE = /GPU-CI:(\d+)/;

/**
 * `0000:3B:00`, `0000:3b:00.0`, `00000000:3B:00.0` (NVML/DCGM 8-digit domain)
 * → `0000:3b:00` (domain:bus:device, lower case).
 */
export function normalizePci(raw: string): string | null {
  const m = /^(?:PCI:)?([0-9a-fA-F]{1,8}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})(?:\.[0-7])?$/.exec(raw.trim());
  if (!m) return null;
  const domain = (m[1] ?? '').toLowerCase().padStart(4, '0').slice(-4);
  const bus = (m[2] ?? '').toLowerCase().padStart(2, '0');
  const dev = (m[3] ?? '').toLowerCase().padStart(2, '0');
  return `${domain}:${bus}:${dev}`;
}

/** Splits the text after `CODE,` into pid/process and the driver's message. */
function splitProcess(rest: string): { pid: number | null; process: string | null; message: string } {
  let s = rest;
  let pid: number | null = null;
  let process: string | null = null;
  const pm = /^pid=('?<unknown>'?|\d+)(?:,\s*|$)/.exec(s);
  if (pm) {
    const v = pm[1] ?? '';
    pid = /^\d+$/.test(v) ? boundedInt(v, 0, PID_MAX_LIMIT) : null;
    s = s.slice(pm[0].length);
    // name= runs to the next ", " (process names like `nvc:[driver]` hold colons and brackets).
    const nm = /^name=(.*?)(?:,\s+|,$|$)/.exec(s);
    if (nm) {
      const n = (nm[1] ?? '').trim();
      process = n === '' || n === '<unknown>' ? null : truncateField(n, 256);
      s = s.slice(nm[0].length);
    }
  }
  return { pid, process, message: truncateField(s.trim()) };
}

interface PendingMulti {
  pci: string;
  records: number;
  tsMs: number | undefined;
}

interface FallenMark {
  /** Record index and log time of the last code-79 signal on this PCI, and whether it was an Xid line. */
  index: number;
  tsMs: number | undefined;
  fromXid: boolean;
}

/** Largest Xid code accepted (drivers print codes below 200 today). */
const MAX_XID_CODE = 65_535;
/** Linux PID_MAX_LIMIT. */
const PID_MAX_LIMIT = 4_194_304;
/** PCI → UUID entries kept (a node has at most a few dozen GPUs). */
const MAX_GPUS = 256;

export class XidParser {
  private readonly uuids = new Map<string, string>();
  private readonly fallen = new Map<string, FallenMark>();
  private pending: PendingMulti | undefined;
  private index = 0;

  /** PCI (`dddd:bb:dd`) → GPU UUID learned so far. */
  gpuFor(pci: string): string | undefined {
    return this.uuids.get(pci);
  }

  /** Feeds one record; returns the Xid events it completes (usually zero or one). */
  feed(record: KernelLogRecord): GpuXidData[] {
    this.index += 1;
    const msg = record.message;
    if (!msg.includes('NVRM')) {
      this.agePending();
      return [];
    }

    const xm = XID_RE.exec(msg);
    if (xm) {
      this.pending = undefined;
      const pci = normalizePci(xm[1] ?? '');
      const attrs = xm[2] ?? '';
      const code = boundedInt(xm[3] ?? '', 0, MAX_XID_CODE);
      // A code no driver prints (24 digits would become 1e+23) is not an Xid.
      if (code === null) {
        this.agePending();
        return [];
      }
      const { pid, process, message } = splitProcess(xm[4] ?? '');
      if (code === 79 && pci !== null && this.isCompanion(pci, record, false)) return [];
      const gi = GPU_I_RE.exec(attrs);
      const ci = GPU_CI_RE.exec(attrs);
      const ev: GpuXidData = {
        code,
        pci,
        gpu: pci === null ? null : (this.uuids.get(pci) ?? null),
        pid,
        process,
        message,
      };
      if (gi) ev.gpuInstance = boundedInt(gi[1] ?? '', 0, 1024);
      if (ci) ev.computeInstance = boundedInt(ci[1] ?? '', 0, 1024);
      if (code === 79 && pci !== null) this.markFallen(pci, record, true);
      return [ev];
    }

    const um = GPU_AT_UUID_RE.exec(msg);
    if (um) {
      const pci = normalizePci(um[1] ?? '');
      if (pci !== null) {
        // A node has a handful of GPUs: a flood of distinct PCI ids must not grow the map without end.
        if (this.uuids.size >= MAX_GPUS && !this.uuids.has(pci)) this.uuids.delete(this.uuids.keys().next().value as string);
        this.uuids.set(pci, truncateField(um[2] ?? '', 128));
      }
      this.agePending();
      return [];
    }

    const fm = FALLEN_SINGLE_RE.exec(msg);
    if (fm) {
      this.pending = undefined;
      const pci = normalizePci(fm[1] ?? '');
      if (pci === null) return [];
      return this.fallenEvent(pci, record, (fm[2] ?? 'GPU has fallen off the bus.').trim());
    }

    const sm = FALLEN_MULTI_START_RE.exec(msg);
    if (sm) {
      const pci = normalizePci(sm[1] ?? '');
      this.pending = pci === null ? undefined : { pci, records: 0, tsMs: record.tsMs };
      return [];
    }

    if (this.pending !== undefined && FALLEN_MULTI_END_RE.test(msg)) {
      const pci = this.pending.pci;
      this.pending = undefined;
      return this.fallenEvent(pci, record, 'GPU has fallen off the bus and is not responding to commands.');
    }

    this.agePending();
    return [];
  }

  private fallenEvent(pci: string, record: KernelLogRecord, message: string): GpuXidData[] {
    if (this.isCompanion(pci, record, true)) return [];
    this.markFallen(pci, record, false);
    return [{ code: 79, pci, gpu: this.uuids.get(pci) ?? null, pid: null, process: null, message }];
  }

  /**
   * True when a code-79 signal of the other kind (Xid line vs. plain driver
   * message) was already reported for this PCI a moment ago: the driver prints
   * both for one failure, and one failure must be one event.
   */
  private isCompanion(pci: string, record: KernelLogRecord, isPlain: boolean): boolean {
    const mark = this.fallen.get(pci);
    if (mark === undefined) return false;
    if (mark.fromXid !== isPlain) return false;
    if (record.tsMs !== undefined && mark.tsMs !== undefined) return Math.abs(record.tsMs - mark.tsMs) <= FALLEN_OFF_WINDOW_MS;
    return this.index - mark.index <= FALLEN_OFF_WINDOW_RECORDS;
  }

  private markFallen(pci: string, record: KernelLogRecord, fromXid: boolean): void {
    if (this.fallen.size >= MAX_GPUS && !this.fallen.has(pci)) this.fallen.delete(this.fallen.keys().next().value as string);
    this.fallen.set(pci, { index: this.index, tsMs: record.tsMs, fromXid });
  }

  private agePending(): void {
    if (this.pending === undefined) return;
    this.pending.records += 1;
    if (this.pending.records > MULTILINE_MAX_RECORDS) this.pending = undefined;
  }
}
