/**
 * GPUs tainted by others (issue 11, docs/gpu-scope.md "GPUs tainted by others",
 * ADR 0035) — pure.
 *
 * The live cluster view watches every DeviceTaintRule and the ResourceSlices of
 * the GPU driver; this module keeps only their projections and maps each rule
 * that is NOT nodewarden's (effect NoSchedule/NoExecute) to the GPUs it selects,
 * per node, so the guard budgets them like its own. Devices a driver publishes
 * with a taint of its own (`device.taints` in the slice) count too.
 *
 * What a rule's selector may hold (all criteria ANDed, as the API defines):
 * - `driver`, `pool`, `device`: exact, over the slices in view;
 * - CEL `selectors` (1.33/1.34) within this grammar, evaluated exactly:
 *
 *     expr  := term ( "&&" term )*
 *     term  := attr "==" str | str "==" attr | str "in" map | "device.driver" "==" str
 *     attr  := map "." ident | map "[" str "]"
 *     map   := "device.attributes[" str "]"
 *     str   := a double-quoted string without `"` or `\`
 *
 *   with CEL's three-valued `&&` (an error, e.g. a missing attribute compared
 *   without an `in` guard, makes the rule unplaceable unless another term is false);
 * - anything else (other CEL, `deviceClassName`): the rule cannot be evaluated.
 *   When it names a pool or a device, all the devices those select are counted
 *   (an upper bound: safe); otherwise the rule is *unplaced*.
 *
 * A rule is also unplaced when it names a pool or device of the GPU driver that
 * the view cannot find for sure (pool unpublished, or incomplete and the device
 * missing). The guard denies new cordons/taints while any rule is unplaced
 * (guard `unplacedDeviceTaint`); recovery is never blocked.
 *
 * Effect `None` (1.35+: shown, no effect) takes no capacity and is not counted.
 */
import { isGpuPci } from '../../core/gpu.js';

/** Bounds of what one watch object may contribute (the API's own limits, or below). */
export const VIEW_LIMITS = {
  /** Devices kept per slice (API: 128). */
  devicesPerSlice: 128,
  /** Attributes kept per device (API: 32). */
  attributesPerDevice: 32,
  /** Characters of a kept string (attribute values: API 64; names: 253). */
  string: 253,
  /** CEL selectors per rule evaluated; more makes the rule unplaceable. */
  selectorsPerRule: 32,
  /** Characters of one CEL expression we try to read (API: 10 240). */
  expression: 10_240,
  /** Terms of one `&&` chain. */
  terms: 64,
  /** Tainted GPU ids listed per node (beyond it the node counts whole anyway: ≥ any real GPU count). */
  gpusPerNode: 256,
  /** Unplaced rules listed (the guard shows the first; the count is exact). */
  unplacedListed: 20,
} as const;

export type AttrValue = string | number | boolean;

export interface DeviceProjection {
  name: string;
  /** The node the device is on (slice `nodeName`, or per-device `nodeName`); null: not node-local. */
  node: string | null;
  /** Qualified attribute name (`gpu.nvidia.com/uuid`; short names qualified with the driver) → value. */
  attrs: Record<string, AttrValue>;
  /** The driver published the device tainted (NoSchedule/NoExecute). */
  driverTainted: boolean;
}

export interface SliceProjection {
  name: string;
  driver: string;
  pool: string;
  generation: number;
  sliceCount: number;
  devices: DeviceProjection[];
}

export interface RuleProjection {
  name: string;
  /** nodewarden's own rule (label app.kubernetes.io/managed-by=nodewarden). */
  own: boolean;
  /** Own rules: the node and GPU id named in the labels/annotations (for aliasing ids). */
  ownRef: { node: string; gpu: string } | null;
  effect: string;
  driver: string | null;
  pool: string | null;
  device: string | null;
  deviceClassName: string | null;
  /** CEL expressions; null when there were too many or one was too long (unevaluable). */
  selectors: string[] | null;
}

export interface DeviceViewConfig {
  driver: string;
  uuidAttribute: string;
  pciAttribute: string | null;
}

export interface UnplacedRule {
  rule: string;
  reason: string;
}

export interface DeviceTaintViewResult {
  /** node → GPU ids tainted by others (sorted, bounded). */
  otherTainted: Map<string, string[]>;
  /** Foreign rules the view cannot place (first {@link VIEW_LIMITS.unplacedListed}). */
  unplaced: UnplacedRule[];
  unplacedCount: number;
}

// ---------- projections (bounded, from untrusted wire objects)

function rec(v: unknown): Record<string, unknown> | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}
function str(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 && v.length <= VIEW_LIMITS.string ? v : null;
}

function attrsOf(raw: unknown, driver: string): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  const m = rec(raw);
  if (!m) return out;
  let n = 0;
  for (const [k, v] of Object.entries(m)) {
    if (n++ >= VIEW_LIMITS.attributesPerDevice || k.length > VIEW_LIMITS.string) break;
    const a = rec(v);
    if (!a) continue;
    const value = typeof a.string === 'string' ? a.string.slice(0, VIEW_LIMITS.string) : typeof a.version === 'string' ? a.version.slice(0, VIEW_LIMITS.string) : typeof a.int === 'number' ? a.int : typeof a.bool === 'boolean' ? a.bool : undefined;
    if (value === undefined) continue;
    out[k.includes('/') ? k : `${driver}/${k}`] = value;
  }
  return out;
}

const COUNTED_EFFECTS = new Set(['NoSchedule', 'NoExecute']);

/** The slice's projection, or null when it is not one of `gpuDriver`'s (only the GPU driver's slices are kept). */
export function projectSlice(obj: unknown, gpuDriver: string): SliceProjection | null {
  const o = rec(obj);
  const spec = rec(o?.spec);
  const name = str(rec(o?.metadata)?.name) ?? '';
  if (!spec || spec.driver !== gpuDriver) return null;
  const pool = rec(spec.pool);
  const poolName = str(pool?.name);
  if (!poolName) return null;
  const sliceNode = str(spec.nodeName);
  const devices: DeviceProjection[] = [];
  const raw = Array.isArray(spec.devices) ? (spec.devices as unknown[]) : [];
  for (const d of raw.slice(0, VIEW_LIMITS.devicesPerSlice)) {
    const dev = rec(d);
    const devName = str(dev?.name);
    if (!dev || !devName) continue;
    const basic = rec(dev.basic); // v1beta1 nests the device's fields under `basic`
    const src = basic ?? dev;
    const taints = Array.isArray(src.taints) ? (src.taints as unknown[]) : [];
    devices.push({
      name: devName,
      node: sliceNode ?? str(src.nodeName),
      attrs: attrsOf(src.attributes, gpuDriver),
      driverTainted: taints.slice(0, 16).some((t) => COUNTED_EFFECTS.has(String(rec(t)?.effect))),
    });
  }
  const num = (v: unknown, dflt: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : dflt);
  return { name, driver: gpuDriver, pool: poolName, generation: num(pool?.generation, 0), sliceCount: Math.max(1, num(pool?.resourceSliceCount, 1)), devices };
}

/** The rule's projection (never null: a rule we cannot read is kept, to be reported). */
export function projectRule(obj: unknown): RuleProjection {
  const o = rec(obj);
  const meta = rec(o?.metadata);
  const labels = rec(meta?.labels);
  const ann = rec(meta?.annotations);
  const spec = rec(o?.spec);
  const sel = rec(spec?.deviceSelector);
  const own = labels?.['app.kubernetes.io/managed-by'] === 'nodewarden';
  const ownNode = str(ann?.['nodewarden.io/node']);
  const ownGpu = str(ann?.['nodewarden.io/gpu']);
  let selectors: string[] | null = [];
  const rawSel = sel?.selectors;
  if (Array.isArray(rawSel)) {
    if (rawSel.length > VIEW_LIMITS.selectorsPerRule) selectors = null;
    else
      for (const s of rawSel as unknown[]) {
        const e = rec(rec(s)?.cel)?.expression;
        if (typeof e !== 'string' || e.length > VIEW_LIMITS.expression) {
          selectors = null;
          break;
        }
        selectors.push(e);
      }
  }
  const effect = rec(spec?.taint)?.effect;
  return {
    name: (str(meta?.name) ?? '?').slice(0, VIEW_LIMITS.string),
    own,
    ownRef: own && ownNode && ownGpu ? { node: ownNode, gpu: ownGpu } : null,
    effect: typeof effect === 'string' ? effect.slice(0, 64) : '',
    driver: str(sel?.driver),
    pool: str(sel?.pool),
    device: str(sel?.device),
    deviceClassName: str(sel?.deviceClassName),
    selectors,
  };
}

// ---------- the CEL subset

type Term =
  | { kind: 'eq'; domain: string; attr: string; value: string }
  | { kind: 'has'; domain: string; attr: string }
  | { kind: 'driver'; value: string };

const S = String.raw`"([^"\\]*)"`;
const MAP = String.raw`device\.attributes\[${S}\]`;
const ATTR = String.raw`${MAP}(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[${S}\])`;
const TERMS: ReadonlyArray<{ re: RegExp; make: (m: RegExpExecArray) => Term }> = [
  { re: new RegExp(String.raw`^${ATTR}\s*==\s*${S}`, 'y'), make: (m) => ({ kind: 'eq', domain: m[1] ?? '', attr: m[2] ?? m[3] ?? '', value: m[4] ?? '' }) },
  { re: new RegExp(String.raw`^${S}\s*==\s*${ATTR}`, 'y'), make: (m) => ({ kind: 'eq', domain: m[2] ?? '', attr: m[3] ?? m[4] ?? '', value: m[1] ?? '' }) },
  { re: new RegExp(String.raw`^${S}\s+in\s+${MAP}`, 'y'), make: (m) => ({ kind: 'has', domain: m[2] ?? '', attr: m[1] ?? '' }) },
  { re: new RegExp(String.raw`^device\.driver\s*==\s*${S}`, 'y'), make: (m) => ({ kind: 'driver', value: m[1] ?? '' }) },
];

/** The terms of a CEL expression within the supported grammar, or null. */
export function parseSelector(expression: string): Term[] | null {
  if (expression.length > VIEW_LIMITS.expression) return null;
  const terms: Term[] = [];
  let rest = expression.trim();
  for (;;) {
    if (terms.length >= VIEW_LIMITS.terms) return null;
    let matched: Term | null = null;
    for (const t of TERMS) {
      t.re.lastIndex = 0;
      const m = t.re.exec(rest);
      if (m) {
        matched = t.make(m);
        rest = rest.slice(m[0].length).trimStart();
        break;
      }
    }
    if (!matched) return null;
    terms.push(matched);
    if (rest === '') return terms;
    if (!rest.startsWith('&&')) return null;
    rest = rest.slice(2).trimStart();
  }
}

/** CEL's `&&` over three values: false wins, then error. */
function evalTerms(terms: readonly Term[], dev: DeviceProjection, driver: string): boolean | 'error' {
  let err = false;
  for (const t of terms) {
    let v: boolean | 'error';
    if (t.kind === 'driver') v = t.value === driver;
    else {
      const a = dev.attrs[`${t.domain}/${t.attr}`];
      if (t.kind === 'has') v = a !== undefined;
      else v = a === undefined ? 'error' : typeof a === 'string' ? a === t.value : 'error';
    }
    if (v === false) return false;
    if (v === 'error') err = true;
  }
  return err ? 'error' : true;
}

// ---------- the mapping

interface Pool {
  devices: DeviceProjection[];
  complete: boolean;
}

/** The pools of the GPU driver: the slices of each pool's newest generation. */
function poolsOf(slices: Iterable<SliceProjection>): Map<string, Pool> {
  const byPool = new Map<string, SliceProjection[]>();
  for (const s of slices) {
    const l = byPool.get(s.pool);
    if (l) l.push(s);
    else byPool.set(s.pool, [s]);
  }
  const out = new Map<string, Pool>();
  for (const [name, list] of byPool) {
    const gen = Math.max(...list.map((s) => s.generation));
    const current = list.filter((s) => s.generation === gen);
    const count = Math.max(...current.map((s) => s.sliceCount));
    out.set(name, { devices: current.flatMap((s) => s.devices), complete: current.length >= count });
  }
  return out;
}

function normPci(s: string): string | null {
  const m = /^0*([0-9a-f]{1,4}):([0-9a-f]{2}):([0-9a-f]{2})(?:\.[0-7])?$/i.exec(s);
  return m ? `${(m[1] ?? '').padStart(4, '0')}:${m[2] ?? ''}:${m[3] ?? ''}`.toLowerCase() : null;
}

/** The id a Device target would use for this device: the UUID attribute, else the PCI id, else `<pool>/<device>`. */
function gpuIdOf(dev: DeviceProjection, pool: string, cfg: DeviceViewConfig): string {
  const uuid = dev.attrs[`${cfg.driver}/${cfg.uuidAttribute}`];
  if (typeof uuid === 'string' && uuid !== '') return uuid;
  const pci = cfg.pciAttribute === null ? undefined : dev.attrs[`${cfg.driver}/${cfg.pciAttribute}`];
  if (typeof pci === 'string' && normPci(pci)) return normPci(pci) ?? pci;
  return `${pool}/${dev.name}`;
}

type Placement = { devices: Array<{ pool: string; dev: DeviceProjection }> } | { unplaced: string };

function place(rule: RuleProjection, pools: ReadonlyMap<string, Pool>, cfg: DeviceViewConfig): Placement {
  if (rule.driver !== null && rule.driver !== cfg.driver) return { devices: [] }; // another driver's devices: no GPU of ours
  // the candidates by the structured fields
  const names: string[] = rule.pool !== null ? [rule.pool] : [...pools.keys()];
  const cand: Array<{ pool: string; dev: DeviceProjection }> = [];
  for (const p of names) {
    const pool = pools.get(p);
    if (!pool) return { unplaced: `pool ${p} of ${cfg.driver} is not published in any ResourceSlice` };
    const devs = rule.device === null ? pool.devices : pool.devices.filter((d) => d.name === rule.device);
    if (rule.device !== null && devs.length === 0 && !pool.complete && rule.pool !== null) return { unplaced: `device ${rule.device} is not (yet) in pool ${p}, whose slices are incomplete` };
    for (const dev of devs) cand.push({ pool: p, dev });
  }
  if (rule.device !== null && rule.pool === null && cand.length === 0 && [...pools.values()].some((p) => !p.complete))
    return { unplaced: `device ${rule.device} is in no published pool of ${cfg.driver}, and some pools are incomplete` };
  const exprs = rule.selectors;
  const parsed = exprs === null ? null : exprs.map(parseSelector);
  const evaluable = rule.deviceClassName === null && parsed !== null && parsed.every((t) => t !== null);
  if (!evaluable) {
    const why = rule.deviceClassName !== null ? `deviceClassName ${rule.deviceClassName} (not evaluated)` : 'a CEL selector outside the supported subset';
    // bounded by a pool or device: count every device it could select (an upper bound)
    if (rule.pool !== null || rule.device !== null) return { devices: cand };
    return { unplaced: `${why}, not bounded by a pool or device` };
  }
  const terms = (parsed).flat();
  const out: Array<{ pool: string; dev: DeviceProjection }> = [];
  for (const c of cand) {
    const v = evalTerms(terms, c.dev, cfg.driver);
    if (v === 'error') return { unplaced: `its CEL selector fails on device ${c.pool}/${c.dev.name} (attribute missing or not a string)` };
    if (v) out.push(c);
  }
  return { devices: out };
}

/**
 * Maps the foreign rules (and the driver's own device taints) to the GPUs they
 * take, per node. A GPU that one of nodewarden's own rules also names is listed
 * under the id that rule uses, so the guard (view ∪ own records) counts it once.
 */
export function computeDeviceTaintView(rules: Iterable<RuleProjection>, slices: Iterable<SliceProjection>, cfg: DeviceViewConfig): DeviceTaintViewResult {
  const pools = poolsOf(slices);
  const ownIds = new Map<string, Set<string>>(); // node → GPU ids of own rules
  const foreign: RuleProjection[] = [];
  for (const r of rules) {
    if (r.own) {
      if (r.ownRef) {
        const s = ownIds.get(r.ownRef.node) ?? new Set<string>();
        s.add(r.ownRef.gpu);
        ownIds.set(r.ownRef.node, s);
      }
    } else if (r.effect !== 'None') foreign.push(r); // None: visible, no effect; any other effect counts (the safe side)
  }
  const sets = new Map<string, Set<string>>();
  const add = (pool: string, dev: DeviceProjection): void => {
    if (dev.node === null) return; // not a node's GPU
    let id = gpuIdOf(dev, pool, cfg);
    const own = ownIds.get(dev.node);
    if (own && !own.has(id) && cfg.pciAttribute !== null) {
      // own rule by PCI id for a device we list by UUID: use the own id
      const pci = dev.attrs[`${cfg.driver}/${cfg.pciAttribute}`];
      const p = typeof pci === 'string' ? normPci(pci) : null;
      for (const o of own) if (p !== null && isGpuPci(o) && normPci(o) === p) id = o;
    }
    const s = sets.get(dev.node) ?? new Set<string>();
    sets.set(dev.node, s);
    if (s.size < VIEW_LIMITS.gpusPerNode) s.add(id);
  };
  for (const [name, pool] of pools) for (const dev of pool.devices) if (dev.driverTainted) add(name, dev);
  const unplaced: UnplacedRule[] = [];
  let unplacedCount = 0;
  for (const r of foreign.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = place(r, pools, cfg);
    if ('unplaced' in p) {
      unplacedCount++;
      if (unplaced.length < VIEW_LIMITS.unplacedListed) unplaced.push({ rule: r.name, reason: p.unplaced });
      continue;
    }
    for (const c of p.devices) add(c.pool, c.dev);
  }
  const otherTainted = new Map<string, string[]>();
  for (const [node, s] of sets) if (s.size > 0) otherTainted.set(node, [...s].sort());
  return { otherTainted, unplaced, unplacedCount };
}
