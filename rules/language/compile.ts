/**
 * Validates one parsed rule document and compiles it. Every problem is
 * collected (never just the first) with a path `<file>#<ruleId>/<field path>`;
 * the caller refuses the whole load when any problem exists.
 */
import type { WorkloadRef } from '../../core/cluster.js';
import type { Severity } from '../../core/decision.js';
import { SEVERITIES } from '../../core/decision.js';
import { parseDuration, isDuration } from '../../core/duration.js';
import { EVENT_TYPES } from '../../core/envelope.js';
import type { EventType } from '../../core/envelope.js';
import type { InputProblem } from '../../core/errors.js';
import { compileField, fieldProblem } from './fields.js';
import { compileWhere } from './predicates.js';
import type { Predicate } from './predicates.js';
import { compileTemplate } from './template.js';
import type { ClearSpec, CompiledAction, CompiledRule, Condition, LeafCondition, Matcher, ScopeSpec } from './types.js';
import { isRecord } from '../../core/records.js';

export const API_VERSION = 'nodewarden.io/v1';
const ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
const TYPE_SET: ReadonlySet<string> = new Set(EVENT_TYPES);

const RULE_KEYS = ['id', 'description', 'severity', 'enabled', 'runbook', 'incident', 'match', 'scope', 'condition', 'clear', 'cooldown', 'actions', 'summary'];
const CONDITION_KINDS = ['count', 'distinctNodes', 'increase', 'rate', 'sustained', 'absent', 'allOf', 'anyOf', 'sequence', 'changedWithin'];
const ACTION_TYPES = ['cordon', 'uncordon', 'rollback', 'page', 'resolve', 'taint'];
const DEFAULT_COOLDOWN = 10 * 60_000;

class Ctx {
  slot = 0;
  readonly leaves: LeafCondition[] = [];
  readonly types = new Set<EventType>();
  constructor(
    readonly base: string,
    readonly problems: InputProblem[],
  ) {}
  err(path: string, message: string): void {
    this.problems.push({ path: `${this.base}${path}`, message });
  }
  /** Problems from helpers that take a path prefix. */
  sink(): InputProblem[] {
    return this.problems;
  }
}

function unknownKeys(ctx: Ctx, obj: Record<string, unknown>, allowed: readonly string[], path: string): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) ctx.err(`${path}/${k}`, `unknown field (allowed: ${allowed.join(', ')})`);
}

function duration(ctx: Ctx, v: unknown, path: string, required = true): number {
  if (v === undefined && !required) return -1;
  if (typeof v !== 'string' || !isDuration(v)) {
    ctx.err(path, 'must be a duration like 30s, 15m, 2h');
    return 0;
  }
  return parseDuration(v);
}

function positive(ctx: Ctx, v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    ctx.err(path, 'must be a number ≥ 0');
    return 0;
  }
  return v;
}

function compileMatcher(ctx: Ctx, raw: unknown, path: string): Matcher {
  const byType = new Map<EventType, Predicate>();
  const isAny = isRecord(raw) && raw.anyOf !== undefined;
  if (isAny) {
    unknownKeys(ctx, raw, ['anyOf'], path);
    if (!Array.isArray(raw.anyOf) || raw.anyOf.length === 0) ctx.err(`${path}/anyOf`, 'must be a non-empty list of matches');
  }
  const alts: unknown[] = isAny ? (Array.isArray(raw.anyOf) ? (raw.anyOf as unknown[]) : []) : [raw];
  alts.forEach((alt, i) => {
    const p = isAny ? `${path}/anyOf/${i}` : path;
    if (!isRecord(alt)) {
      ctx.err(p, 'must be a mapping with `type` and optional `where`');
      return;
    }
    unknownKeys(ctx, alt, ['type', 'where'], p);
    const types = Array.isArray(alt.type) ? alt.type : [alt.type];
    if (types.length === 0) ctx.err(`${p}/type`, 'must name at least one event type');
    const where = compileWhere(alt.where, `${ctx.base}${p}/where`, ctx.sink());
    for (const t of types) {
      if (typeof t !== 'string' || !TYPE_SET.has(t)) {
        ctx.err(`${p}/type`, `unknown event type ${JSON.stringify(t)} (expected one of ${EVENT_TYPES.join(', ')})`);
        continue;
      }
      const et = t as EventType;
      ctx.types.add(et);
      const prev = byType.get(et);
      byType.set(et, prev ? (e) => prev(e) || where(e) : where);
    }
  });
  return { byType };
}

function threshold(ctx: Ctx, o: Record<string, unknown>, path: string): number {
  if (o.gte === undefined) {
    ctx.err(`${path}/gte`, 'required: the threshold (≥)');
    return 0;
  }
  return positive(ctx, o.gte, `${path}/gte`);
}

function workloadRef(ctx: Ctx, raw: unknown, path: string): WorkloadRef | null {
  if (!isRecord(raw)) {
    ctx.err(path, 'must be {kind: DaemonSet|Deployment, namespace, name}');
    return null;
  }
  unknownKeys(ctx, raw, ['kind', 'namespace', 'name'], path);
  if (raw.kind !== 'DaemonSet' && raw.kind !== 'Deployment') ctx.err(`${path}/kind`, 'must be DaemonSet or Deployment');
  if (typeof raw.namespace !== 'string' || !raw.namespace) ctx.err(`${path}/namespace`, 'must be a non-empty string');
  if (typeof raw.name !== 'string' || !raw.name) ctx.err(`${path}/name`, 'must be a non-empty string');
  return { kind: raw.kind as WorkloadRef['kind'], namespace: String(raw.namespace), name: String(raw.name) };
}

function compileCondition(ctx: Ctx, raw: unknown, path: string, ruleMatch: Matcher | null, inheritedWithin: number, nested: boolean): Condition {
  const fallback: Condition = { kind: 'allOf', of: [], within: 0 };
  if (!isRecord(raw) || Object.keys(raw).length !== 1) {
    ctx.err(path, `must be a mapping with exactly one of: ${CONDITION_KINDS.join(', ')}`);
    return fallback;
  }
  const [kind, body] = Object.entries(raw)[0] as [string, unknown];
  const p = `${path}/${kind}`;
  if (!CONDITION_KINDS.includes(kind)) {
    ctx.err(p, `unknown condition (expected one of ${CONDITION_KINDS.join(', ')})`);
    return fallback;
  }
  if (!isRecord(body)) {
    ctx.err(p, 'must be a mapping');
    return fallback;
  }
  const within = (): number => {
    if (body.within === undefined && inheritedWithin > 0) return inheritedWithin;
    const w = duration(ctx, body.within, `${p}/within`);
    if (w <= 0 && body.within !== undefined) ctx.err(`${p}/within`, 'must be > 0');
    return w;
  };
  const match = (): Matcher => {
    if (body.match !== undefined) return compileMatcher(ctx, body.match, `${p}/match`);
    if (!ruleMatch) {
      ctx.err(`${p}/match`, 'required (the rule has no top-level match)');
      return { byType: new Map() };
    }
    return ruleMatch;
  };
  const slot = (): number => ctx.slot++;
  let leaf: LeafCondition;
  switch (kind) {
    case 'count':
      unknownKeys(ctx, body, ['gte', 'within', 'match'], p);
      leaf = { kind: 'count', slot: slot(), match: match(), min: threshold(ctx, body, p), within: within() };
      break;
    case 'distinctNodes': {
      unknownKeys(ctx, body, ['gte', 'gtePercent', 'within', 'match'], p);
      const hasAbs = body.gte !== undefined;
      const hasPct = body.gtePercent !== undefined;
      if (hasAbs === hasPct) ctx.err(p, 'needs exactly one of gte (nodes) or gtePercent (% of the group)');
      const pct = hasPct ? positive(ctx, body.gtePercent, `${p}/gtePercent`) : null;
      if (pct !== null && (pct <= 0 || pct > 100)) ctx.err(`${p}/gtePercent`, 'must be in (0, 100]');
      leaf = { kind: 'distinctNodes', slot: slot(), match: match(), min: hasAbs ? positive(ctx, body.gte, `${p}/gte`) : null, minPercent: pct, within: within() };
      break;
    }
    case 'increase':
    case 'rate': {
      unknownKeys(ctx, body, ['counter', 'gte', 'within', 'match'], p);
      const ref = typeof body.counter === 'string' ? body.counter : '';
      const prob = typeof body.counter === 'string' ? fieldProblem(ref) : 'must be a field like data.counters.drop';
      if (prob) ctx.err(`${p}/counter`, prob);
      leaf = { kind, slot: slot(), match: match(), counter: compileField(prob ? 'node' : ref), counterRef: ref, min: threshold(ctx, body, p), within: within() };
      break;
    }
    case 'sustained':
      unknownKeys(ctx, body, ['for', 'while', 'match'], p);
      if (body.while === undefined) ctx.err(`${p}/while`, 'required: the predicate that must hold');
      leaf = { kind: 'sustained', slot: slot(), match: match(), holds: compileWhere(body.while, `${ctx.base}${p}/while`, ctx.sink()), forMs: duration(ctx, body.for, `${p}/for`) };
      break;
    case 'absent':
      unknownKeys(ctx, body, ['for', 'match'], p);
      if (nested) ctx.err(p, 'absent must be the top-level condition (it fires on time, not on an event)');
      leaf = { kind: 'absent', slot: slot(), match: match(), forMs: duration(ctx, body.for, `${p}/for`) };
      break;
    case 'sequence': {
      unknownKeys(ctx, body, ['steps', 'within'], p);
      const steps = Array.isArray(body.steps) ? body.steps : [];
      if (steps.length < 2) ctx.err(`${p}/steps`, 'must list at least two steps (matches), in order');
      leaf = { kind: 'sequence', slot: slot(), steps: steps.map((s, i) => compileMatcher(ctx, s, `${p}/steps/${i}`)), within: within() };
      break;
    }
    case 'changedWithin': {
      unknownKeys(ctx, body, ['within', 'workload', 'match'], p);
      const wl = body.workload === undefined ? null : workloadRef(ctx, body.workload, `${p}/workload`);
      const m = body.match === undefined ? null : compileMatcher(ctx, body.match, `${p}/match`);
      // workload.revision events feed this leaf even without an explicit match
      ctx.types.add('workload.revision');
      leaf = { kind: 'changedWithin', slot: slot(), match: m, workloads: wl ? [wl] : null, within: within() };
      break;
    }
    default: {
      unknownKeys(ctx, body, ['of', 'within'], p);
      const w = body.within === undefined ? inheritedWithin : within();
      const of = Array.isArray(body.of) ? body.of : [];
      if (of.length < 2) ctx.err(`${p}/of`, 'must list at least two conditions');
      return { kind: kind as 'allOf' | 'anyOf', of: of.map((c, i) => compileCondition(ctx, c, `${p}/of/${i}`, ruleMatch, w, true)), within: w };
    }
  }
  ctx.leaves.push(leaf);
  return leaf;
}

function compileScope(ctx: Ctx, raw: unknown): ScopeSpec {
  if (raw === undefined || raw === 'node') return { kind: 'node', by: [], byRefs: [] };
  if (raw === 'fleet') return { kind: 'fleet' };
  if (isRecord(raw)) {
    if (raw.group !== undefined) {
      unknownKeys(ctx, raw, ['group'], '/scope');
      if (typeof raw.group !== 'string' || !raw.group || raw.group in Object.prototype) ctx.err('/scope/group', 'must be a label name such as pool or zone');
      return { kind: 'group', label: typeof raw.group === 'string' ? raw.group : '' };
    }
    if (raw.node !== undefined) {
      unknownKeys(ctx, raw, ['node', 'by'], '/scope');
      if (raw.node !== true) ctx.err('/scope/node', 'must be true');
      const by = Array.isArray(raw.by) ? raw.by : raw.by === undefined ? [] : [raw.by];
      const refs: string[] = [];
      by.forEach((b, i) => {
        const prob = typeof b === 'string' ? fieldProblem(b) : 'must be a field reference';
        if (prob) ctx.err(`/scope/by/${i}`, prob);
        else refs.push(b as string);
      });
      return { kind: 'node', by: refs.map(compileField), byRefs: refs };
    }
  }
  ctx.err('/scope', 'must be node, fleet, {group: <label>} or {node: true, by: [<field>...]}');
  return { kind: 'node', by: [], byRefs: [] };
}

function compileClear(ctx: Ctx, raw: unknown, condition: Condition, ruleMatch: Matcher | null): ClearSpec {
  if (raw === undefined) return condition.kind === 'absent' ? { kind: 'onMatch' } : { kind: 'none' };
  if (!isRecord(raw)) {
    ctx.err('/clear', 'must be {after: T} or {sustained: {for: T, while: {...}}}');
    return { kind: 'none' };
  }
  unknownKeys(ctx, raw, ['after', 'sustained'], '/clear');
  if ((raw.after === undefined) === (raw.sustained === undefined)) {
    ctx.err('/clear', 'needs exactly one of after or sustained');
    return { kind: 'none' };
  }
  if (raw.after !== undefined) return { kind: 'after', ms: duration(ctx, raw.after, '/clear/after') };
  const s = raw.sustained;
  if (!isRecord(s)) {
    ctx.err('/clear/sustained', 'must be {for: T, while: {...}, match?}');
    return { kind: 'none' };
  }
  unknownKeys(ctx, s, ['for', 'while', 'match'], '/clear/sustained');
  if (s.while === undefined) ctx.err('/clear/sustained/while', 'required: the predicate that means recovered');
  let m = ruleMatch;
  if (s.match !== undefined) m = compileMatcher(ctx, s.match, '/clear/sustained/match');
  if (!m) {
    ctx.err('/clear/sustained/match', 'required (the rule has no top-level match)');
    m = { byType: new Map() };
  }
  const slot = ctx.slot++;
  return { kind: 'sustained', slot, match: m, holds: compileWhere(s.while, `${ctx.base}/clear/sustained/while`, ctx.sink()), forMs: duration(ctx, s.for, '/clear/sustained/for') };
}

function compileActions(ctx: Ctx, raw: unknown, severity: Severity, scope: ScopeSpec): CompiledAction[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    ctx.err('/actions', 'must be a non-empty list of actions');
    return [];
  }
  const out: CompiledAction[] = [];
  raw.forEach((a, i) => {
    const p = `/actions/${i}`;
    if (!isRecord(a) || typeof a.type !== 'string' || !ACTION_TYPES.includes(a.type)) {
      ctx.err(`${p}/type`, `must be one of ${ACTION_TYPES.join(', ')}`);
      return;
    }
    const summary = typeof a.summary === 'string' ? compileTemplate(a.summary, `${ctx.base}${p}/summary`, ctx.sink()) : null;
    if (a.summary !== undefined && typeof a.summary !== 'string') ctx.err(`${p}/summary`, 'must be a string template');
    const dedup = (): ReturnType<typeof compileTemplate> => {
      if (a.dedupKey !== undefined && typeof a.dedupKey !== 'string') ctx.err(`${p}/dedupKey`, 'must be a string template');
      return compileTemplate(typeof a.dedupKey === 'string' ? a.dedupKey : 'nodewarden/{{rule}}/{{scope}}', `${ctx.base}${p}/dedupKey`, ctx.sink());
    };
    const approval = (): { approval?: 'required' | 'none' } => {
      if (a.approval === undefined) return {};
      if (a.approval !== 'required' && a.approval !== 'none') ctx.err(`${p}/approval`, 'must be required or none');
      return a.approval === 'required' || a.approval === 'none' ? { approval: a.approval } : {};
    };
    switch (a.type) {
      case 'cordon':
        unknownKeys(ctx, a, ['type', 'summary', 'uncordonOnClear', 'approval'], p);
        if (a.uncordonOnClear !== undefined && typeof a.uncordonOnClear !== 'boolean') ctx.err(`${p}/uncordonOnClear`, 'must be true or false');
        if (scope.kind === 'fleet') ctx.err(p, 'cordon needs a node or group scope (a fleet-wide cordon is never safe)');
        out.push({ type: 'cordon', uncordonOnClear: a.uncordonOnClear === true, summary, ...approval() });
        break;
      case 'uncordon':
        unknownKeys(ctx, a, ['type', 'summary', 'approval'], p);
        out.push({ type: 'uncordon', summary, ...approval() });
        break;
      case 'taint':
        // the GPU of the firing event (data.gpu, else data.pci); the node is cordoned where a GPU cannot be tainted
        unknownKeys(ctx, a, ['type', 'summary', 'approval'], p);
        if (scope.kind !== 'node') ctx.err(p, 'taint needs a node scope (it taints the GPU named by the event that fired)');
        out.push({ type: 'taint', summary, ...approval() });
        break;
      case 'rollback':
        unknownKeys(ctx, a, ['type', 'summary', 'workload', 'approval'], p);
        out.push({ type: 'rollback', workload: a.workload === undefined ? null : workloadRef(ctx, a.workload, `${p}/workload`), summary, ...approval() });
        break;
      case 'page': {
        unknownKeys(ctx, a, ['type', 'summary', 'severity', 'dedupKey'], p);
        if (a.severity !== undefined && !SEVERITIES.includes(a.severity as Severity)) ctx.err(`${p}/severity`, `must be one of ${SEVERITIES.join(', ')}`);
        out.push({ type: 'page', severity: (a.severity as Severity | undefined) ?? severity, dedupKey: dedup(), summary });
        break;
      }
      default:
        unknownKeys(ctx, a, ['type', 'summary', 'dedupKey'], p);
        out.push({ type: 'resolve', dedupKey: dedup(), summary });
    }
  });
  return out;
}

/** Compiles one raw rule (index `i` in `file`); pushes problems and returns null when the rule is invalid. */
export function compileRule(raw: unknown, i: number, file: string, problems: InputProblem[]): CompiledRule | null {
  const before = problems.length;
  const idOk = isRecord(raw) && typeof raw.id === 'string' && ID_RE.test(raw.id);
  const ctx = new Ctx(`${file}#${idOk ? (raw.id as string) : `rules[${i}]`}`, problems);
  if (!isRecord(raw)) {
    ctx.err('', 'a rule must be a mapping');
    return null;
  }
  unknownKeys(ctx, raw, RULE_KEYS, '');
  if (!idOk) ctx.err('/id', 'required: lower-case letters, digits and dashes, at most 63 characters');
  if (typeof raw.description !== 'string' || !raw.description.trim()) ctx.err('/description', 'required: what the rule detects');
  if (!SEVERITIES.includes(raw.severity as Severity)) ctx.err('/severity', `must be one of ${SEVERITIES.join(', ')}`);
  if (raw.enabled !== undefined && typeof raw.enabled !== 'boolean') ctx.err('/enabled', 'must be true or false');
  if (raw.runbook !== undefined && (typeof raw.runbook !== 'string' || !raw.runbook)) ctx.err('/runbook', 'must be a path or URL');
  if (raw.incident !== undefined && (typeof raw.incident !== 'string' || !ID_RE.test(raw.incident)))
    ctx.err('/incident', 'must name the incident group its pages join (usually another rule id): lower-case letters, digits and dashes, at most 63 characters');
  const severity = (SEVERITIES.includes(raw.severity as Severity) ? raw.severity : 'warning') as Severity;
  const ruleMatch = raw.match === undefined ? null : compileMatcher(ctx, raw.match, '/match');
  const scope = compileScope(ctx, raw.scope);
  if (raw.condition === undefined) ctx.err('/condition', 'required');
  const condition = compileCondition(ctx, raw.condition, '/condition', ruleMatch, 0, false);
  const clear = compileClear(ctx, raw.clear, condition, ruleMatch);
  const cooldownMs = raw.cooldown === undefined ? DEFAULT_COOLDOWN : duration(ctx, raw.cooldown, '/cooldown');
  const actions = compileActions(ctx, raw.actions, severity, scope);
  if (raw.summary !== undefined && typeof raw.summary !== 'string') ctx.err('/summary', 'must be a string template');
  const summary = compileTemplate(typeof raw.summary === 'string' ? raw.summary : `{{rule}} on {{scope}}`, `${ctx.base}/summary`, problems);
  if (scope.kind === 'group' && !ctx.leaves.some((l) => l.kind === 'distinctNodes'))
    actions.forEach((a, i) => {
      if (a.type === 'cordon') ctx.err(`/actions/${i}`, 'a group-scoped cordon needs a distinctNodes condition (it cordons the nodes that contributed)');
    });
  if (clear.kind === 'none' && actions.some((a) => a.type === 'cordon' && a.uncordonOnClear))
    ctx.err('/clear', 'required when an action sets uncordonOnClear');
  if (problems.length > before) return null;
  return {
    id: raw.id as string,
    description: raw.description as string,
    severity,
    enabled: raw.enabled !== false,
    ...(typeof raw.runbook === 'string' ? { runbook: raw.runbook } : {}),
    ...(typeof raw.incident === 'string' && raw.incident !== raw.id ? { incident: raw.incident } : {}),
    source: file,
    scope,
    condition,
    clear,
    cooldownMs,
    actions,
    summary,
    leaves: ctx.leaves,
    eventTypes: ctx.types,
  };
}

/** Validates the document envelope (`apiVersion`, `kind`, `rules`) and compiles each rule. */
export function compileDocument(doc: unknown, file: string, problems: InputProblem[]): CompiledRule[] {
  if (!isRecord(doc)) {
    problems.push({ path: `${file}#`, message: 'a rule file must be a mapping with apiVersion, kind and rules' });
    return [];
  }
  for (const k of Object.keys(doc)) if (!['apiVersion', 'kind', 'rules'].includes(k)) problems.push({ path: `${file}#/${k}`, message: 'unknown field (allowed: apiVersion, kind, rules)' });
  if (doc.apiVersion !== API_VERSION) problems.push({ path: `${file}#/apiVersion`, message: `must be ${API_VERSION}` });
  if (doc.kind !== 'RuleSet') problems.push({ path: `${file}#/kind`, message: 'must be RuleSet' });
  if (!Array.isArray(doc.rules)) {
    problems.push({ path: `${file}#/rules`, message: 'must be a list of rules' });
    return [];
  }
  const out: CompiledRule[] = [];
  doc.rules.forEach((r, i) => {
    const c = compileRule(r, i, file, problems);
    if (c) out.push(c);
  });
  return out;
}
