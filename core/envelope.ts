/**
 * Event envelope v1 — the contract between agent, bus and engine
 * (design brief §2). One JSON object per Kafka message (key = node name) and
 * one per line in JSONL files.
 */
import type { InputProblem } from './errors.js';
import { PoisonInputError } from './errors.js';
import { isGpuPci, MAX_GPU_ID } from './gpu.js';
import { isRecord } from './records.js';

export const EVENT_TYPES = [
  'gpu.xid',
  'gpu.health',
  'net.conntrack',
  'runtime.containerd',
  'kubeproxy.restart',
  'kubeproxy.health',
  'agent.heartbeat',
  'workload.revision',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface GpuXidData {
  code: number;
  pci: string | null;
  gpu?: string | null;
  pid?: number | null;
  process?: string | null;
  message: string;
  /** MIG GPU instance / compute instance, when the line names them. */
  gpuInstance?: number | null;
  computeInstance?: number | null;
}

export interface ConntrackData {
  count: number | null;
  max: number | null;
  /** Cumulative counters summed over CPUs, keyed by the kernel's column names. */
  counters: Record<string, number>;
  /** Set on the kernel-log "table full, dropping packet" signal. */
  tableFull?: boolean;
}

export type ContainerdState = 'serving' | 'not_serving' | 'unreachable' | 'timeout';
export interface ContainerdData {
  state: ContainerdState;
  latencyMs?: number;
  runtimeReady?: boolean | null;
  networkReady?: boolean | null;
  error?: string;
}

export interface KubeProxyRestartData {
  pod: string;
  restartCount: number;
  reason?: string | null;
  exitCode?: number | null;
}

export interface EventLabels {
  pool?: string;
  zone?: string;
  [k: string]: string | undefined;
}

export interface EventEnvelope<D = Record<string, unknown>> {
  v: 1;
  id: string;
  /** RFC 3339 with milliseconds: when the node observed it. */
  ts: string;
  node: string;
  type: EventType;
  source: string;
  labels: EventLabels;
  data: D;
}

const TYPE_SET: ReadonlySet<string> = new Set(EVENT_TYPES);
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
/** Longest event id and node name an envelope (or an internal record on the events topic) may carry. */
export const MAX_ID = 128;
export const MAX_NODE = 253;

/** Milliseconds of an RFC 3339 time with an explicit offset (the envelope's `ts` grammar), NaN for anything else. */
export function rfc3339Ms(ts: unknown): number {
  return typeof ts === 'string' && RFC3339.test(ts) ? Date.parse(ts) : Number.NaN;
}

/** One JSON text from the events topic or a JSONL line, or a PoisonInputError naming `source` (never a stack trace). */
export function parseJsonInput(text: string, source?: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new PoisonInputError('EVENT_INVALID', source, [{ path: '', message: `not JSON: ${(err as Error).message}` }], err);
  }
}
/** data.gpu: the agent truncates the UUID label to 128 (agent/parsers/xid.ts); a GPU's UUID is 40. */
const MAX_GPU_FIELD = 128;
const GPU_FIELD_RE = /^[A-Za-z0-9][A-Za-z0-9:._-]{0,127}$/;

/** The time `envelopeProblems` parsed last (valid only right after it found none). */
let lastTime = Number.NaN;

/** Filled by `decodeEnvelope` / `parseEnvelope` with the accepted envelope's time. */
export interface EnvelopeTime {
  /** `Date.parse(ts)`, in milliseconds: parsed once by the validation (Date.parse costs ~0.4 µs, and the engine's path needs the time three times per event). */
  ms: number;
}

/** Returns every problem found (empty = valid). Pure and allocation-light: it is on the engine's hot path. */
export function envelopeProblems(v: unknown): InputProblem[] {
  const problems: InputProblem[] = [];
  if (!isRecord(v)) return [{ path: '', message: 'event must be a JSON object' }];
  if (v.v !== 1) problems.push({ path: '/v', message: `unsupported envelope version ${JSON.stringify(v.v)} (expected 1)` });
  if (typeof v.id !== 'string' || v.id.length === 0 || v.id.length > MAX_ID)
    problems.push({ path: '/id', message: `must be a non-empty string of at most ${MAX_ID} characters` });
  const t = rfc3339Ms(v.ts);
  if (Number.isNaN(t)) problems.push({ path: '/ts', message: 'must be an RFC 3339 timestamp' });
  else lastTime = t;
  if (typeof v.node !== 'string' || v.node.length === 0 || v.node.length > MAX_NODE)
    problems.push({ path: '/node', message: 'must be a non-empty node name' });
  if (typeof v.type !== 'string' || !TYPE_SET.has(v.type))
    problems.push({ path: '/type', message: `unknown event type ${JSON.stringify(v.type)}` });
  if (typeof v.source !== 'string') problems.push({ path: '/source', message: 'must be a string' });
  if (!isRecord(v.labels)) problems.push({ path: '/labels', message: 'must be an object of strings' });
  else
    for (const [k, lv] of Object.entries(v.labels))
      if (typeof lv !== 'string') problems.push({ path: `/labels/${k}`, message: 'must be a string' });
  if (!isRecord(v.data)) problems.push({ path: '/data', message: 'must be an object' });
  else if (typeof v.type === 'string') dataProblems(v.type, v.data, problems);
  return problems;
}

function num(d: Record<string, unknown>, k: string, problems: InputProblem[], opts: { nullable?: boolean; optional?: boolean } = {}): void {
  const x = d[k];
  if (x === undefined && opts.optional) return;
  if (x === null && opts.nullable) return;
  if (typeof x !== 'number' || !Number.isFinite(x)) problems.push({ path: `/data/${k}`, message: 'must be a finite number' });
}

/**
 * The GPU fields of gpu.xid / gpu.health (issue 11): optional and nullable, so
 * events of older agents stay valid; when present they must be a GPU UUID and
 * a PCI bus id, bounded, because decisions and DeviceTaintRules are named after them.
 */
function gpuFieldProblems(d: Record<string, unknown>, problems: InputProblem[]): void {
  if (d.pci !== null && d.pci !== undefined && !isGpuPci(d.pci))
    problems.push({ path: '/data/pci', message: `must be a PCI bus id like 0000:3b:00 (at most ${MAX_GPU_ID} characters) or null` });
  if (d.gpu !== null && d.gpu !== undefined && !(typeof d.gpu === 'string' && GPU_FIELD_RE.test(d.gpu)))
    problems.push({ path: '/data/gpu', message: `must be a GPU id like GPU-5f1c0b7e-… (letters, digits, ':._-', at most ${MAX_GPU_FIELD} characters) or null` });
}

function dataProblems(type: string, d: Record<string, unknown>, problems: InputProblem[]): void {
  switch (type) {
    case 'gpu.xid':
      num(d, 'code', problems);
      if (typeof d.message !== 'string') problems.push({ path: '/data/message', message: 'must be a string' });
      gpuFieldProblems(d, problems);
      break;
    case 'gpu.health':
      gpuFieldProblems(d, problems);
      break;
    case 'net.conntrack':
      num(d, 'count', problems, { nullable: true, optional: true });
      num(d, 'max', problems, { nullable: true, optional: true });
      if (d.counters !== undefined) {
        if (!isRecord(d.counters)) problems.push({ path: '/data/counters', message: 'must be an object of numbers' });
        else
          for (const [k, c] of Object.entries(d.counters))
            if (typeof c !== 'number' || !Number.isFinite(c)) problems.push({ path: `/data/counters/${k}`, message: 'must be a number' });
      }
      break;
    case 'runtime.containerd':
      if (!['serving', 'not_serving', 'unreachable', 'timeout'].includes(d.state as string))
        problems.push({ path: '/data/state', message: 'must be one of serving, not_serving, unreachable, timeout' });
      break;
    case 'kubeproxy.restart':
      if (typeof d.pod !== 'string') problems.push({ path: '/data/pod', message: 'must be a string' });
      num(d, 'restartCount', problems);
      break;
    case 'workload.revision':
      if (d.kind !== 'DaemonSet' && d.kind !== 'Deployment') problems.push({ path: '/data/kind', message: 'must be DaemonSet or Deployment' });
      if (typeof d.namespace !== 'string') problems.push({ path: '/data/namespace', message: 'must be a string' });
      if (typeof d.name !== 'string') problems.push({ path: '/data/name', message: 'must be a string' });
      num(d, 'revision', problems);
      break;
    default:
      break;
  }
}

/** Validates and returns the typed envelope, or throws a PoisonInputError listing every problem. `time` receives its time. */
export function parseEnvelope(input: unknown, source?: string, time?: EnvelopeTime): EventEnvelope {
  const problems = envelopeProblems(input);
  if (problems.length > 0) throw new PoisonInputError('EVENT_INVALID', source, problems);
  if (time) time.ms = lastTime;
  return input as EventEnvelope;
}

/** Parses one JSON text (a Kafka message value or a JSONL line) into a valid envelope. */
export function decodeEnvelope(text: string, source?: string, time?: EnvelopeTime): EventEnvelope {
  return parseEnvelope(parseJsonInput(text, source), source, time);
}
