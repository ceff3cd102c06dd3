/**
 * Unit tests for rules, in the spirit of `promtool test rules`: a YAML file
 * names rule files, an optional cluster, and test cases of input events (at
 * offsets from a start time) with the ledger records expected by an eval
 * time. Each case runs the real engine through replay (virtual time) with a
 * fresh memory store.
 *
 * ```yaml
 * rule_files: [../../rules/pack]      # default: the shipped pack
 * start: 2026-11-21T10:00:00Z         # default 2026-01-01T00:00:00Z
 * cluster:                            # optional (also per test)
 *   file: cluster.yaml                # kubectl -o yaml dump, relative to this file
 *   nodes: [{ name: n1, labels: { nodewarden.io/pool: a } }]
 *   groups: { a: 10 }                 # 10 synthetic nodes in pool a
 *   workloads: [{ kind: DaemonSet, namespace: ns, name: ds, revisions: [{ revision: 2, at: -30m }] }]
 * tests:
 *   - name: fatal xid cordons
 *     config: { guard: { autoUncordon: true } }
 *     disabled: [some-rule]
 *     input_events:
 *       - { at: +30s, node: n1, type: gpu.xid, labels: { pool: a }, data: { code: 79, ... } }
 *       - { at: +0s, repeat: 5, every: 15s, node: n1, type: runtime.containerd, data: { state: timeout } }
 *     eval_time: 10m
 *     expected:
 *       - { rule: gpu-xid-fatal, action: cordon, target: n1, outcome: executed, severity: critical, reason: "Xid 79" }
 * ```
 */
import { dirname, resolve } from 'node:path';
import type { NodeInfo, WorkloadRevision } from '../../core/cluster.js';
import type { NodewardenConfig } from '../../core/config.js';
import { DEFAULT_CONFIG, configProblems, deepMerge } from '../../core/config.js';
import type { LedgerRecord } from '../../core/decision.js';
import { parseDuration } from '../../core/duration.js';
import type { EventEnvelope } from '../../core/envelope.js';
import { parseEnvelope } from '../../core/envelope.js';
import type { InputProblem } from '../../core/errors.js';
import { PoisonInputError } from '../../core/errors.js';
import { parseYamlDocuments } from '../../core/yaml.js';
import { readTextFile } from '../../adapters/text-file.js';
import { defaultRulesPath, loadRules } from '../language/load.js';
import type { SafeRegex } from '../language/regex.js';
import { compileSafeRegex, isSafeRegex } from '../language/regex.js';
import type { RuleSet } from '../language/types.js';
import { replay } from '../replay/replay.js';
import type { StateStore } from '../store/state-store.js';
import type { MutableClusterView } from '../replay/standin.js';
import { createStandinRemediator, createStaticCluster, loadClusterFile } from '../replay/standin.js';
import { isRecord } from '../../core/records.js';

type Obj = Record<string, unknown>;
const DEFAULT_START = '2026-01-01T00:00:00.000Z';

export interface ExpectedRecord {
  rule?: string;
  action?: string;
  target?: { kind?: string; name?: string; namespace?: string };
  outcome?: string;
  severity?: string;
  dedupKey?: string;
  toRevision?: number;
  /** Regular expression the reason must match. */
  reason?: SafeRegex;
  /** Offset from start the record's ts must equal. */
  at?: number;
}

export interface RuleTestCase {
  file: string;
  name: string;
  rules: RuleSet;
  start: number;
  clusterSpec: unknown;
  config: NodewardenConfig;
  disabled: string[];
  events: EventEnvelope[];
  evalTime: number;
  expected: ExpectedRecord[];
  dryRun: boolean;
}

export interface RuleTestResult {
  file: string;
  name: string;
  ok: boolean;
  /** Diff lines: `- missing ...`, `+ unexpected ...`. */
  diff: string[];
  records: LedgerRecord[];
}

function offset(v: unknown, path: string, problems: InputProblem[]): number {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') {
    problems.push({ path, message: 'must be an offset like +30s, 5m or -2h' });
    return 0;
  }
  const s = v.trim();
  const neg = s.startsWith('-');
  try {
    const ms = parseDuration(s.replace(/^[+-]/, ''));
    return neg ? -ms : ms;
  } catch {
    problems.push({ path, message: `invalid offset "${v}" (expected e.g. +30s, 5m, -2h)` });
    return 0;
  }
}

function timeOrOffset(v: unknown, start: number, path: string, problems: InputProblem[]): number {
  if (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(v)) return Date.parse(v);
  return start + offset(v, path, problems);
}

function buildCluster(spec: unknown, file: string, start: number, config: NodewardenConfig, path: string, problems: InputProblem[]): MutableClusterView {
  if (spec === undefined || spec === null) return createStaticCluster([], []);
  if (!isRecord(spec)) {
    problems.push({ path, message: 'must be a mapping (file, nodes, groups, workloads)' });
    return createStaticCluster([], []);
  }
  if (typeof spec.file === 'string') return loadClusterFile(resolve(dirname(file), spec.file));
  const nodes: NodeInfo[] = [];
  if (Array.isArray(spec.nodes))
    spec.nodes.forEach((n, i) => {
      if (!isRecord(n) || typeof n.name !== 'string') problems.push({ path: `${path}/nodes/${i}`, message: 'needs a name' });
      else
        nodes.push({
          name: n.name,
          labels: (isRecord(n.labels) ? n.labels : {}) as Record<string, string>,
          unschedulable: n.unschedulable === true,
          ready: n.ready !== false,
          cordonedByNodewarden: n.cordonedByNodewarden === true,
        });
    });
  if (isRecord(spec.groups))
    for (const [g, size] of Object.entries(spec.groups)) {
      if (typeof size !== 'number') problems.push({ path: `${path}/groups/${g}`, message: 'must be a node count' });
      else for (let i = 0; i < size; i++) nodes.push({ name: `${g}-node-${i}`, labels: { [config.labels.group]: g }, unschedulable: false, ready: true, cordonedByNodewarden: false });
    }
  const revisions: WorkloadRevision[] = [];
  if (Array.isArray(spec.workloads))
    spec.workloads.forEach((w, i) => {
      const p = `${path}/workloads/${i}`;
      if (!isRecord(w) || (w.kind !== 'DaemonSet' && w.kind !== 'Deployment') || typeof w.namespace !== 'string' || typeof w.name !== 'string' || !Array.isArray(w.revisions)) {
        problems.push({ path: p, message: 'needs kind (DaemonSet|Deployment), namespace, name, revisions' });
        return;
      }
      const kind = w.kind;
      const namespace = w.namespace;
      const name = w.name;
      w.revisions.forEach((r, j) => {
        if (!isRecord(r) || typeof r.revision !== 'number') problems.push({ path: `${p}/revisions/${j}`, message: 'needs revision and at' });
        else revisions.push({ kind, namespace, name, revision: r.revision, createdAt: timeOrOffset(r.at ?? '-30d', start, `${p}/revisions/${j}/at`, problems) });
      });
    });
  return createStaticCluster(nodes, revisions);
}

function parseExpected(raw: unknown, path: string, problems: InputProblem[], start: number): ExpectedRecord {
  if (!isRecord(raw)) {
    problems.push({ path, message: 'must be a mapping of ledger fields' });
    return {};
  }
  const e: ExpectedRecord = {};
  for (const [k, v] of Object.entries(raw)) {
    switch (k) {
      case 'rule':
      case 'action':
      case 'outcome':
      case 'severity':
      case 'dedupKey':
        if (typeof v !== 'string') problems.push({ path: `${path}/${k}`, message: 'must be a string' });
        else e[k] = v;
        break;
      case 'toRevision':
        if (typeof v !== 'number') problems.push({ path: `${path}/${k}`, message: 'must be a number' });
        else e.toRevision = v;
        break;
      case 'target':
        if (typeof v === 'string') e.target = { name: v };
        else if (isRecord(v)) e.target = v;
        else problems.push({ path: `${path}/target`, message: 'must be a node name or {kind, name, namespace}' });
        break;
      case 'reason':
        {
          const re = typeof v === 'string' ? compileSafeRegex(v) : { error: 'must be a regular expression string' };
          if (isSafeRegex(re)) e.reason = re;
          else problems.push({ path: `${path}/reason`, message: re.error });
        }
        break;
      case 'at':
        e.at = timeOrOffset(v, start, `${path}/at`, problems);
        break;
      default:
        problems.push({ path: `${path}/${k}`, message: 'unknown field (rule, action, target, outcome, severity, dedupKey, toRevision, reason, at)' });
    }
  }
  return e;
}

/** Bounds: one input event repeats at most this often, and a file expands to at most this many events. */
export const MAX_REPEAT = 10_000;
export const MAX_EVENTS_PER_FILE = 100_000;
const FILE_KEYS = ['rule_files', 'start', 'cluster', 'tests'];
const TEST_KEYS = ['name', 'config', 'disabled', 'cluster', 'input_events', 'eval_time', 'expected', 'dry_run'];
const INPUT_EVENT_KEYS = ['at', 'ts', 'repeat', 'every', 'v', 'id', 'node', 'type', 'source', 'labels', 'data'];

function unknownKeys(o: Obj, allowed: readonly string[], path: string, problems: InputProblem[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) problems.push({ path: `${path}/${k}`, message: `unknown key (expected one of ${allowed.join(', ')})` });
}

/** Loads and validates a rule test file; throws PoisonInputError listing every problem. */
export function loadRuleTestFile(file: string): RuleTestCase[] {
  const problems: InputProblem[] = [];
  let text: string;
  try {
    text = readTextFile(file);
  } catch (err) {
    throw new PoisonInputError('REQUEST_INVALID', file, [{ path: '/', message: `cannot read: ${(err as Error).message}` }], err);
  }
  const yamlProblems: InputProblem[] = [];
  const docs = parseYamlDocuments(text, yamlProblems);
  if (yamlProblems.length > 0) throw new PoisonInputError('REQUEST_INVALID', file, yamlProblems);
  const doc = docs[0];
  if (docs.length > 1) throw new PoisonInputError('REQUEST_INVALID', file, [{ path: '/', message: 'a rule test file is one YAML document' }]);
  if (!isRecord(doc) || !Array.isArray(doc.tests)) throw new PoisonInputError('REQUEST_INVALID', file, [{ path: '/tests', message: 'a rule test file needs a list of tests' }]);
  unknownKeys(doc, FILE_KEYS, '', problems);
  if (doc.rule_files !== undefined && (!Array.isArray(doc.rule_files) || !doc.rule_files.every((f) => typeof f === 'string')))
    throw new PoisonInputError('REQUEST_INVALID', file, [{ path: '/rule_files', message: 'must be a list of paths' }]);
  if (doc.start !== undefined && typeof doc.start !== 'string' && !(doc.start instanceof Date)) problems.push({ path: '/start', message: 'must be an RFC 3339 time' });
  let totalEvents = 0;
  const ruleFiles = Array.isArray(doc.rule_files) ? doc.rule_files.map((f) => resolve(dirname(file), String(f))) : [defaultRulesPath()];
  const rules = loadRules(ruleFiles);
  const start = typeof doc.start === 'string' ? Date.parse(doc.start) : Date.parse(DEFAULT_START);
  if (Number.isNaN(start)) problems.push({ path: '/start', message: 'must be an RFC 3339 time' });
  const cases: RuleTestCase[] = [];
  doc.tests.forEach((t, i) => {
    const p = `/tests/${i}`;
    if (!isRecord(t) || typeof t.name !== 'string') {
      problems.push({ path: `${p}/name`, message: 'each test needs a name' });
      return;
    }
    unknownKeys(t, TEST_KEYS, p, problems);
    if (t.config !== undefined && !isRecord(t.config)) problems.push({ path: `${p}/config`, message: 'must be a mapping of config overrides' });
    const config = isRecord(t.config) ? deepMerge(structuredClone(DEFAULT_CONFIG), t.config) : structuredClone(DEFAULT_CONFIG);
    if (isRecord(t.config)) for (const pr of configProblems(config)) problems.push({ path: `${p}/config${pr.path}`, message: pr.message });
    for (const k of ['input_events', 'expected', 'disabled'] as const)
      if (t[k] !== undefined && !Array.isArray(t[k])) problems.push({ path: `${p}/${k}`, message: 'must be a list' });
    if (Array.isArray(t.disabled) && !t.disabled.every((d) => typeof d === 'string')) problems.push({ path: `${p}/disabled`, message: 'must be a list of rule ids' });
    if (t.dry_run !== undefined && typeof t.dry_run !== 'boolean') problems.push({ path: `${p}/dry_run`, message: 'must be true or false' });
    const events: EventEnvelope[] = [];
    const inputs = Array.isArray(t.input_events) ? t.input_events : [];
    inputs.forEach((raw, j) => {
      const ep = `${p}/input_events/${j}`;
      if (!isRecord(raw)) {
        problems.push({ path: ep, message: 'must be an event' });
        return;
      }
      unknownKeys(raw, INPUT_EVENT_KEYS, ep, problems);
      if (raw.repeat !== undefined && (typeof raw.repeat !== 'number' || !Number.isInteger(raw.repeat) || raw.repeat < 1 || raw.repeat > MAX_REPEAT)) {
        problems.push({ path: `${ep}/repeat`, message: `must be a whole number from 1 to ${MAX_REPEAT}` });
        return;
      }
      const repeat = typeof raw.repeat === 'number' ? raw.repeat : 1;
      totalEvents += repeat;
      if (totalEvents > MAX_EVENTS_PER_FILE) {
        if (totalEvents - repeat <= MAX_EVENTS_PER_FILE) problems.push({ path: `${ep}/repeat`, message: `the file expands to more than ${MAX_EVENTS_PER_FILE} input events` });
        return;
      }
      const every = raw.every === undefined ? 0 : offset(raw.every, `${ep}/every`, problems);
      const at = raw.ts === undefined ? timeOrOffset(raw.at ?? 0, start, `${ep}/at`, problems) : Date.parse(typeof raw.ts === 'string' ? raw.ts : '');
      for (let r = 0; r < repeat; r++) {
        const { at: _a, repeat: _r, every: _e, ...rest } = raw;
        const ev: Obj = {
          v: 1,
          // the index suffix is kept whole: a long test name cut at the end made every event of the case one id (deduplicated)
          id: `${(t.name as string).replace(/\s+/g, '-').slice(0, 90)}#${j}.${r}`,
          source: 'rule-test',
          labels: {},
          data: {},
          ...rest,
          ts: new Date(at + r * every).toISOString(),
        };
        try {
          events.push(parseEnvelope(ev, ep));
        } catch (err) {
          if (err instanceof PoisonInputError) for (const pr of err.problems) problems.push({ path: `${ep}${pr.path}`, message: pr.message });
          else throw err;
        }
      }
    });
    events.sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts));
    const evalTime = t.eval_time === undefined ? Math.max(start, ...events.map((e) => Date.parse(e.ts))) : timeOrOffset(t.eval_time, start, `${p}/eval_time`, problems);
    const expected = Array.isArray(t.expected) ? t.expected.map((x, k) => parseExpected(x, `${p}/expected/${k}`, problems, start)) : [];
    const disabled = Array.isArray(t.disabled) ? t.disabled.map(String) : [];
    for (const d of disabled) if (!rules.byId.has(d)) problems.push({ path: `${p}/disabled`, message: `unknown rule "${d}"` });
    cases.push({ file, name: t.name, rules, start, clusterSpec: t.cluster ?? doc.cluster, config, disabled, events, evalTime, expected, dryRun: t.dry_run === true });
  });
  if (problems.length) throw new PoisonInputError('REQUEST_INVALID', file, problems);
  return cases;
}

function matchesExpected(r: LedgerRecord, e: ExpectedRecord): boolean {
  if (e.rule !== undefined && r.rule !== e.rule) return false;
  if (e.action !== undefined && r.action !== e.action) return false;
  if (e.outcome !== undefined && r.outcome !== e.outcome) return false;
  if (e.severity !== undefined && r.severity !== e.severity) return false;
  if (e.dedupKey !== undefined && r.dedupKey !== e.dedupKey) return false;
  if (e.toRevision !== undefined && r.toRevision !== e.toRevision) return false;
  if (e.target) {
    if (e.target.kind !== undefined && r.target.kind !== e.target.kind) return false;
    if (e.target.name !== undefined && r.target.name !== e.target.name) return false;
    if (e.target.namespace !== undefined && r.target.namespace !== e.target.namespace) return false;
  }
  if (e.reason && !e.reason.test(r.reason)) return false;
  if (e.at !== undefined && Date.parse(r.ts) !== e.at) return false;
  return true;
}

function showExpected(e: ExpectedRecord): string {
  const o: Obj = { ...e };
  if (e.reason) o.reason = `/${e.reason.source}/`;
  if (e.at !== undefined) o.at = new Date(e.at).toISOString();
  return JSON.stringify(o);
}

/** Runs one case; `store` defaults to a fresh memory store (the Redis integration test passes a Redis one). */
export async function runRuleTestCase(c: RuleTestCase, opts: { store?: StateStore } = {}): Promise<RuleTestResult> {
  const problems: InputProblem[] = [];
  const cluster = buildCluster(c.clusterSpec, c.file, c.start, c.config, '/cluster', problems);
  if (problems.length) throw new PoisonInputError('REQUEST_INVALID', c.file, problems);
  const records: LedgerRecord[] = [];
  for await (const r of replay({
    events: c.events,
    rules: c.rules,
    cluster,
    remediator: createStandinRemediator({ cluster, dryRun: c.dryRun }),
    config: c.config,
    disabled: c.disabled,
    until: c.evalTime,
    ...(opts.store ? { store: opts.store } : {}),
  }))
    records.push(r);
  // Only what happened by eval_time counts (like promtool's eval_time).
  const seen = records.filter((r) => Date.parse(r.ts) <= c.evalTime);
  const used = new Array<boolean>(seen.length).fill(false);
  const diff: string[] = [];
  for (const e of c.expected) {
    const i = seen.findIndex((r, k) => !used[k] && matchesExpected(r, e));
    if (i < 0) diff.push(`- missing:    ${showExpected(e)}`);
    else used[i] = true;
  }
  seen.forEach((r, k) => {
    if (!used[k]) diff.push(`+ unexpected: ${JSON.stringify({ ts: r.ts, rule: r.rule, action: r.action, target: r.target, outcome: r.outcome, severity: r.severity, reason: r.reason })}`);
  });
  return { file: c.file, name: c.name, ok: diff.length === 0, diff, records: seen };
}
