/**
 * The Xid catalogue: for each Xid, NVIDIA's published immediate action and the
 * class of action nodewarden takes (docs/xid-catalogue.md). The data ships as
 * rules/pack/xid-catalogue.yaml (`kind: XidCatalogue`) and is validated by the
 * rule loader with every other pack file; this module is the pure part: types,
 * validation of the parsed document, and classification of one Xid event.
 */
import type { InputProblem } from '../../core/errors.js';
import { isRecord } from '../../core/records.js';
import { gpuLevelRecoveryAction, nvlinkNonfatal, recoveryActionRequired } from './recovery.js';

export const XID_CATALOGUE_KIND = 'XidCatalogue';

/** NVIDIA's "Resolution Bucket (Immediate Action)" values, as the Xid catalog names them. */
export const NVIDIA_ACTIONS = [
  'RESTART_APP',
  'RESET_GPU',
  'RESTART_BM',
  'RESTART_VM',
  'IGNORE',
  'CONTACT_SUPPORT',
  'CHECK_MECHANICALS',
  'CHECK_UVM',
  'UPDATE_SWFW',
  'WORKFLOW_XID_45',
  'WORKFLOW_XID_48',
  'WORKFLOW_NVLINK_ERR',
  'WORKFLOW_NVLINK5_ERR',
  'XID_154',
] as const;
export type NvidiaAction = (typeof NVIDIA_ACTIONS)[number];

/**
 * Our action class: hardware = cordon + critical page; application = warning
 * page on repeats on one GPU (and a "run diagnostics" page when they keep coming
 * across job restarts); informational = ledger + info page, never cordons.
 */
export const XID_CLASSES = ['hardware', 'application', 'informational'] as const;
export type XidClass = (typeof XID_CLASSES)[number];
/** Entries whose class is read from the Xid's own text. */
export const XID_DECODERS = ['recovery-action', 'nvlink5'] as const;
export type XidDecoder = (typeof XID_DECODERS)[number];

export interface XidSource {
  title: string;
  url: string;
}

export interface XidEntry {
  code: number;
  mnemonic: string;
  name: string;
  nvidia: NvidiaAction;
  /** 'decoded': the class comes from `decoder` reading the message. */
  class: XidClass | 'decoded';
  decoder: XidDecoder | null;
  source: string;
  note: string | null;
}

/** A driver message that matters without (or whatever) its code, e.g. "GPU has fallen off the bus". */
export interface XidMessageEntry {
  id: string;
  pattern: string;
  name: string;
  nvidia: NvidiaAction;
  class: XidClass;
  source: string;
}

export interface XidCatalogue {
  entries: ReadonlyMap<number, XidEntry>;
  messages: readonly XidMessageEntry[];
  sources: ReadonlyMap<string, XidSource>;
}

const MAX_ENTRIES = 1000;
const MAX_TEXT = 400;
const ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
const MNEMONIC_RE = /^[A-Z0-9_ /]{1,80}$/;

function oneOf<T extends string>(list: readonly T[], v: unknown): v is T {
  return typeof v === 'string' && (list as readonly string[]).includes(v);
}

function unknownKeys(obj: Record<string, unknown>, allowed: readonly string[], path: string, problems: InputProblem[]): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) problems.push({ path: `${path}/${k}`, message: `unknown field (allowed: ${allowed.join(', ')})` });
}

function text(v: unknown, path: string, problems: InputProblem[], optional = false): string | null {
  if (v === undefined && optional) return null;
  if (typeof v !== 'string' || v.trim() === '' || v.length > MAX_TEXT) {
    problems.push({ path, message: `must be a non-empty string of at most ${MAX_TEXT} characters` });
    return null;
  }
  return v;
}

function parseSources(raw: unknown, base: string, problems: InputProblem[]): Map<string, XidSource> {
  const out = new Map<string, XidSource>();
  if (!isRecord(raw) || Object.keys(raw).length === 0) {
    problems.push({ path: `${base}/sources`, message: 'must be a non-empty mapping of source id -> {title, url}' });
    return out;
  }
  for (const [id, s] of Object.entries(raw)) {
    const p = `${base}/sources/${id}`;
    if (!ID_RE.test(id)) problems.push({ path: p, message: 'source id must be lowercase letters, digits and dashes' });
    if (!isRecord(s)) {
      problems.push({ path: p, message: 'must be {title, url}' });
      continue;
    }
    unknownKeys(s, ['title', 'url'], p, problems);
    const title = text(s.title, `${p}/title`, problems);
    const url = text(s.url, `${p}/url`, problems);
    if (url !== null && !/^https:\/\/\S+$/.test(url)) problems.push({ path: `${p}/url`, message: 'must be an https:// URL' });
    if (title !== null && url !== null) out.set(id, { title, url });
  }
  return out;
}

/** `nvidia` is one of NVIDIA's actions and `source` names a declared source. */
function actionAndSource(raw: Record<string, unknown>, p: string, sources: ReadonlyMap<string, XidSource>, problems: InputProblem[]): void {
  if (!oneOf(NVIDIA_ACTIONS, raw.nvidia)) problems.push({ path: `${p}/nvidia`, message: `must be one of ${NVIDIA_ACTIONS.join(', ')}` });
  if (typeof raw.source !== 'string' || !sources.has(raw.source)) problems.push({ path: `${p}/source`, message: `must name one of the sources (${[...sources.keys()].join(', ')})` });
}

function parseEntry(raw: unknown, p: string, sources: ReadonlyMap<string, XidSource>, problems: InputProblem[]): XidEntry | null {
  if (!isRecord(raw)) {
    problems.push({ path: p, message: 'must be a mapping {code, mnemonic, name, nvidia, class, source}' });
    return null;
  }
  unknownKeys(raw, ['code', 'mnemonic', 'name', 'nvidia', 'class', 'decoder', 'source', 'note'], p, problems);
  const before = problems.length;
  const code = raw.code;
  if (typeof code !== 'number' || !Number.isInteger(code) || code < 1 || code > 999) problems.push({ path: `${p}/code`, message: 'must be an integer Xid code 1-999' });
  if (typeof raw.mnemonic !== 'string' || !MNEMONIC_RE.test(raw.mnemonic)) problems.push({ path: `${p}/mnemonic`, message: "must be NVIDIA's mnemonic (A-Z, 0-9, _, space, /; at most 80)" });
  const name = text(raw.name, `${p}/name`, problems);
  actionAndSource(raw, p, sources, problems);
  const cls = raw.class;
  if (!oneOf([...XID_CLASSES, 'decoded'], cls)) problems.push({ path: `${p}/class`, message: `must be one of ${XID_CLASSES.join(', ')}, decoded` });
  let decoder: XidDecoder | null = null;
  if (cls === 'decoded') {
    if (!oneOf(XID_DECODERS, raw.decoder)) problems.push({ path: `${p}/decoder`, message: `a decoded entry needs decoder: one of ${XID_DECODERS.join(', ')}` });
    else decoder = raw.decoder;
  } else if (raw.decoder !== undefined) problems.push({ path: `${p}/decoder`, message: 'only a class: decoded entry has a decoder' });
  const note = text(raw.note, `${p}/note`, problems, true);
  if (problems.length > before || name === null) return null;
  return {
    code: code as number,
    mnemonic: raw.mnemonic as string,
    name,
    nvidia: raw.nvidia as NvidiaAction,
    class: cls as XidClass | 'decoded',
    decoder,
    source: raw.source as string,
    note,
  };
}

function parseMessage(raw: unknown, p: string, sources: ReadonlyMap<string, XidSource>, problems: InputProblem[]): XidMessageEntry | null {
  if (!isRecord(raw)) {
    problems.push({ path: p, message: 'must be a mapping {id, pattern, name, nvidia, class, source}' });
    return null;
  }
  unknownKeys(raw, ['id', 'pattern', 'name', 'nvidia', 'class', 'source'], p, problems);
  const before = problems.length;
  if (typeof raw.id !== 'string' || !ID_RE.test(raw.id)) problems.push({ path: `${p}/id`, message: 'must be lowercase letters, digits and dashes' });
  const pattern = text(raw.pattern, `${p}/pattern`, problems);
  if (pattern !== null) {
    try {
      new RegExp(pattern);
    } catch (err) {
      problems.push({ path: `${p}/pattern`, message: `invalid regular expression: ${(err as Error).message}` });
    }
  }
  const name = text(raw.name, `${p}/name`, problems);
  actionAndSource(raw, p, sources, problems);
  if (!oneOf(XID_CLASSES, raw.class)) problems.push({ path: `${p}/class`, message: `must be one of ${XID_CLASSES.join(', ')}` });
  if (problems.length > before || pattern === null || name === null) return null;
  return { id: raw.id as string, pattern, name, nvidia: raw.nvidia as NvidiaAction, class: raw.class as XidClass, source: raw.source as string };
}

/**
 * Validates one parsed `kind: XidCatalogue` document. Every problem is pushed
 * (path `<file>#/entries/<i>/<field>`); returns null when there is any.
 */
export function parseXidCatalogue(doc: unknown, file: string, problems: InputProblem[]): XidCatalogue | null {
  const base = `${file}#`;
  const before = problems.length;
  if (!isRecord(doc)) {
    problems.push({ path: base, message: 'an Xid catalogue must be a mapping with apiVersion, kind, sources, entries, messages' });
    return null;
  }
  unknownKeys(doc, ['apiVersion', 'kind', 'sources', 'entries', 'messages'], base, problems);
  const sources = parseSources(doc.sources, base, problems);
  const entries = new Map<number, XidEntry>();
  if (!Array.isArray(doc.entries) || doc.entries.length === 0 || doc.entries.length > MAX_ENTRIES) {
    problems.push({ path: `${base}/entries`, message: `must be a list of 1-${MAX_ENTRIES} entries` });
  } else {
    doc.entries.forEach((raw, i) => {
      const e = parseEntry(raw, `${base}/entries/${i}`, sources, problems);
      if (e === null) return;
      if (entries.has(e.code)) problems.push({ path: `${base}/entries/${i}/code`, message: `duplicate Xid ${e.code}` });
      else entries.set(e.code, e);
    });
  }
  const messages: XidMessageEntry[] = [];
  if (doc.messages !== undefined) {
    if (!Array.isArray(doc.messages) || doc.messages.length > MAX_ENTRIES) problems.push({ path: `${base}/messages`, message: `must be a list of at most ${MAX_ENTRIES} entries` });
    else
      doc.messages.forEach((raw, i) => {
        const m = parseMessage(raw, `${base}/messages/${i}`, sources, problems);
        if (m !== null) messages.push(m);
      });
  }
  if (problems.length > before) return null;
  return { entries, messages, sources };
}

/**
 * The class of one Xid event: a catalogue message that matches wins (the
 * fallen-off-the-bus text isolates whatever code it carries), then the code's
 * entry, decoded from the text where the entry says so. Null: not catalogued.
 */
export function classifyXid(cat: XidCatalogue, code: number, message: string): XidClass | null {
  for (const m of cat.messages) if (new RegExp(m.pattern).test(message)) return m.class;
  const e = cat.entries.get(code);
  if (e === undefined) return null;
  if (e.class !== 'decoded') return e.class;
  if (e.decoder === 'recovery-action') return recoveryActionRequired(message) ? 'hardware' : 'informational';
  return nvlinkNonfatal(message) ? 'informational' : 'hardware';
}

/** Where a hardware-class fault is isolated: the one GPU (a DRA device taint, else the node cordon) or the whole node. */
export type IsolationScope = 'gpu' | 'node';

/**
 * The isolation scope of a hardware-class Xid event (docs/gpu-scope.md, "Which
 * faults taint one GPU"); null when the event is not hardware-class. NVIDIA's
 * immediate action decides: RESTART_BM (Xid 79, the fallen-off-the-bus message)
 * needs the node rebooted, so the node is cordoned; Xid 154 is node-level unless
 * the recovery action it names is the GPU's own (reset, drain P2P, drain and
 * reset); every other hardware action (RESET_GPU, the ECC/NVLink workflows,
 * CONTACT_SUPPORT) concerns the GPU that reported it.
 */
export function isolationScopeOf(cat: XidCatalogue, code: number, message: string): IsolationScope | null {
  if (classifyXid(cat, code, message) !== 'hardware') return null;
  const m = cat.messages.find((x) => new RegExp(x.pattern).test(message));
  const nvidia = m?.nvidia ?? cat.entries.get(code)?.nvidia;
  if (nvidia === 'RESTART_BM') return 'node';
  if (nvidia === 'XID_154') return gpuLevelRecoveryAction(message) ? 'gpu' : 'node';
  return 'gpu';
}
