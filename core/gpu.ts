/**
 * GPU identity in events, decisions and the guard (issue 11, per-GPU scope).
 * A GPU is named by its NVIDIA UUID (`GPU-5f1c…`, what NVML, DCGM and the DRA
 * driver's `uuid` attribute print), else by its PCI bus id (`0000:3b:00`, the
 * domain:bus:device the driver's Xid line prints). Both are bounded and
 * validated here, once, for the envelope, the rules engine and the executors.
 */

/**
 * `GPU-…` / `MIG-…` as the driver prints it. Deliberately loose on the hex
 * groups (older agents and simulators print short ids, and a strict pattern
 * would turn their events into dead letters), strict on length and characters:
 * the id goes into object names, label values and a CEL string literal.
 */
export const GPU_UUID_RE = /^(?:GPU|MIG)-[0-9a-fA-F][0-9a-fA-F-]{0,59}$/;
/** `dddd:bb:dd` (normalised by the agent: agent/parsers/xid.ts normalizePci), optionally `.f`, or the 8-digit-domain NVML form. */
export const GPU_PCI_RE = /^[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-7])?$/;
export const MAX_GPU_ID = 64;

export function isGpuUuid(s: unknown): boolean {
  return typeof s === 'string' && s.length <= MAX_GPU_ID && GPU_UUID_RE.test(s);
}

export function isGpuPci(s: unknown): boolean {
  return typeof s === 'string' && s.length <= MAX_GPU_ID && GPU_PCI_RE.test(s);
}

/** The GPU an event's data names: its UUID, else its PCI bus id, else null. */
export function gpuOf(data: Readonly<Record<string, unknown>> | undefined): string | null {
  if (!data) return null;
  const { gpu, pci } = data;
  if (typeof gpu === 'string' && isGpuUuid(gpu)) return gpu;
  if (typeof pci === 'string' && isGpuPci(pci)) return pci.toLowerCase();
  return null;
}

/** GPUs per node from capacity `nvidia.com/gpu`, else the count label; null when neither is a positive integer. */
export function gpuCountOf(capacity: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>>, countLabel: string): number | null {
  for (const raw of [capacity?.['nvidia.com/gpu'], labels[countLabel]]) {
    if (raw === undefined) continue;
    if (!/^\d{1,4}$/.test(raw.trim())) continue;
    const n = Number(raw.trim());
    if (n > 0) return n;
  }
  return null;
}
