/**
 * Reading what an Xid's own text says about recovery: Xid 154's "GPU recovery
 * action changed from 0x0 (None) to 0x1 (GPU Reset Required)" and the NVLink5
 * Xids 144-150 ("SAW_MVB Fatal XC0 i0 Link 00 (0x... 0x...)"). Pure, never
 * throws, bounded: only the first MAX_TEXT characters are read, every field is
 * length-capped. docs/xid-catalogue.md ("Decoding 154 and 144-150") has the
 * sources for the enumeration and the message shapes.
 *
 * The *_PATTERN strings are the single definition the shipped pack's rules use
 * (rules/pack/gpu-xid.yaml carries the same strings; a unit test checks they
 * are identical), so the engine and this module classify a text the same way.
 */

/** Longest text read by the structured parsers. */
export const MAX_TEXT = 4096;
const MAX_LABEL = 64;

/** nvmlGpuRecoveryAction_t, as NVML enumerates it (the value in Xid 154's text). */
export const RECOVERY_ACTIONS = ['none', 'gpu-reset', 'node-reboot', 'drain-p2p', 'drain-and-reset', 'recover-imex-domain', 'bus-reset', 'system-reboot'] as const;
export type RecoveryAction = (typeof RECOVERY_ACTIONS)[number] | 'unknown';

export interface RecoveryActionChange {
  from: number;
  to: number;
  /** The driver's own words in the parentheses, capped at 64 characters. */
  fromLabel: string;
  toLabel: string;
  /** Decoded from the number (NVML's enumeration), not from the label. */
  action: RecoveryAction;
}

const HEX = '[0-9A-Fa-f]{1,8}';
const LABEL = `[^()]{0,${MAX_LABEL}}`;
const CHANGE_RE = new RegExp(`GPU recovery action changed from 0x(${HEX}) \\((${LABEL})\\) to 0x(${HEX}) \\((${LABEL})\\)`);

/** A 1-8 digit hex number that is not zero, spelled without lookahead (rule patterns run on RE2, ADR 0015). */
const NONZERO_HEX = `(?:${Array.from({ length: 8 }, (_, k) => `0{0,${7 - k}}[1-9A-Fa-f]${k > 0 ? `[0-9A-Fa-f]{${k}}` : ''}`).join('|')})`;
/**
 * Xid 154 text whose new recovery action is not None (0): the GPU needs a reset,
 * a reboot or a drain before it can be trusted again. Same shape as
 * parseRecoveryAction's; its complement is the rule language's `notRegex`.
 */
export const RECOVERY_ACTION_REQUIRED_PATTERN = `GPU recovery action changed from 0x${HEX} \\(${LABEL}\\) to 0x${NONZERO_HEX} \\(${LABEL}\\)`;
const REQUIRED_RE = new RegExp(RECOVERY_ACTION_REQUIRED_PATTERN);
/**
 * Xid 154 text whose new recovery action concerns the one GPU: 0x1 GPU reset,
 * 0x3 drain P2P, 0x4 drain and reset (NVML's values; the repair ladder resets
 * the GPU for them). Every other non-zero action (node or system reboot, bus
 * reset, IMEX domain recovery, an unknown value) is node-level: the pack cordons
 * the node for those (docs/gpu-scope.md, "Which faults taint one GPU").
 */
export const GPU_LEVEL_RECOVERY_PATTERN = `GPU recovery action changed from 0x${HEX} \\(${LABEL}\\) to 0x0{0,7}[134] \\(${LABEL}\\)`;
const GPU_LEVEL_RE = new RegExp(GPU_LEVEL_RECOVERY_PATTERN);

/** The first MAX_TEXT characters of a string, matched; null for anything else. */
function execBounded(re: RegExp, text: unknown): RegExpExecArray | null {
  return typeof text === 'string' ? re.exec(text.slice(0, MAX_TEXT)) : null;
}

/** Parses Xid 154's text; null when the text does not have that shape. */
export function parseRecoveryAction(text: unknown): RecoveryActionChange | null {
  const m = execBounded(CHANGE_RE, text);
  if (!m) return null;
  const from = parseInt(m[1] ?? '0', 16);
  const to = parseInt(m[3] ?? '0', 16);
  return { from, to, fromLabel: (m[2] ?? '').trim(), toLabel: (m[4] ?? '').trim(), action: RECOVERY_ACTIONS[to] ?? 'unknown' };
}

/** True when an Xid 154 text says the GPU needs an action (the pack's rules test the same pattern). */
export function recoveryActionRequired(text: unknown): boolean {
  return typeof text === 'string' && REQUIRED_RE.test(text);
}

/** True when an Xid 154 text names a recovery action of the GPU alone (reset, drain P2P, drain and reset). */
export function gpuLevelRecoveryAction(text: unknown): boolean {
  return typeof text === 'string' && GPU_LEVEL_RE.test(text);
}

export interface NvlinkDecode {
  /** The unit the driver names (SAW_MVB, RLW_REMAP, NETIR_LINK_EVT/NETIR_LINK_DOWN, MSE Degraded, ...). */
  unit: string;
  fatal: boolean;
  /** XC<n> i<n>: the NVLink controller and instance. */
  controller: number;
  instance: number;
  /** -1 when the driver reports no single link. */
  link: number;
  /** The first two words of the hex tuple: interrupt info and error status, when present. */
  intrInfo: number | null;
  errorStatus: number | null;
}

const NVL_HEAD = `([A-Z][A-Z0-9_/]{0,63}(?: [A-Z][a-z]{1,15})?) {1,8}(Fatal|Nonfatal) {1,8}XC(\\d{1,3}) {1,8}i(\\d{1,3}) {1,8}Link {1,8}(-?\\d{1,3})`;
const NVL_RE = new RegExp(`${NVL_HEAD}(?: {1,8}\\(0x(${HEX})(?: 0x(${HEX}))?)?`);

/** NVLink5 text the driver marks Nonfatal (NVIDIA's decode sheet: IGNORE or "evaluate the Xid 154 that follows"). */
export const NVLINK_NONFATAL_PATTERN = 'Nonfatal {1,8}XC\\d{1,3} {1,8}i\\d{1,3} {1,8}Link';
// Its complement (marked Fatal, or a text we cannot read: the safe side, isolate) is `notRegex` in the pack.
const NONFATAL_RE = new RegExp(NVLINK_NONFATAL_PATTERN);

/** Decodes an Xid 144-150 text; null when it does not have the driver's shape. */
export function parseNvlinkError(text: unknown): NvlinkDecode | null {
  const m = execBounded(NVL_RE, text);
  if (!m) return null;
  const hex = (s: string | undefined): number | null => (s === undefined ? null : parseInt(s, 16));
  return {
    unit: m[1] ?? '',
    fatal: m[2] === 'Fatal',
    controller: Number(m[3]),
    instance: Number(m[4]),
    link: Number(m[5]),
    intrInfo: hex(m[6]),
    errorStatus: hex(m[7]),
  };
}

/** True when an Xid 144-150 text is marked Nonfatal (the pack's rules test the same pattern). */
export function nvlinkNonfatal(text: unknown): boolean {
  return typeof text === 'string' && NONFATAL_RE.test(text);
}
