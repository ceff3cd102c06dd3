/**
 * The control API's model: what the HTTP layer asks of the running engine
 * (`ControlBackend`), and pure validation of every request body and query.
 * Validation reports every problem with its field path, so a malformed
 * request gets one precise 400 answer.
 */
import { controlCharProblem } from '../core/text.js';
import { OUTCOMES } from '../core/decision.js';
import type { Outcome, Severity } from '../core/decision.js';
import type { InputProblem } from '../core/errors.js';
import { parseDuration, isDuration } from '../core/duration.js';
import type { GuardStatus } from '../remediations/ports.js';
import type { LedgerEntry, LedgerQuery } from '../remediations/ledger/entry.js';
import type { RuleToggle } from '../rules/toggles/port.js';
import { isRecord } from '../core/records.js';
import type { NodeView } from './nodes.js';

/** One rule as the API shows it. */
export interface RuleView {
  id: string;
  description: string;
  severity: Severity;
  source: string;
  /** `enabled` as written in the rule file. */
  fileEnabled: boolean;
  /** The unexpired runtime toggle, if any. */
  toggle: RuleToggle | null;
  /** What the engine does right now. */
  effective: boolean;
}

/** What the control API operates; the engine command wires it to toggles, guard and ledger. */
export interface ControlBackend {
  listRules(): RuleView[];
  hasRule(id: string): boolean;
  setRule(id: string, enabled: boolean, change: { reason: string; by: string; ttlMs: number | null }): Promise<RuleToggle>;
  pause(reason: string, by: string): Promise<void>;
  resume(by: string, reason?: string | null): Promise<void>;
  guard(): Promise<GuardStatus>;
  ledger(q: LedgerQuery): Promise<LedgerEntry[]>;
  /** Every node with its state and last decision (the console's fleet strip); absent: GET /api/v1/nodes answers 404. */
  nodes?(): Promise<NodeView[]>;
  /** The engine decides and records but never acts (`guard.dryRun`); shown by GET /api/v1/guard. */
  dryRun?: boolean;
}

export const MAX_TTL_MS = 30 * 86_400_000;
export const MAX_REASON = 1000;
export const DEFAULT_LEDGER_LIMIT = 100;
export const MAX_LEDGER_LIMIT = 1000;

function unknownFields(body: Record<string, unknown>, allowed: readonly string[], problems: InputProblem[]): void {
  for (const k of Object.keys(body)) if (!allowed.includes(k)) problems.push({ path: `/${k}`, message: 'unknown field' });
}

function reasonOf(body: Record<string, unknown>, problems: InputProblem[], required: boolean): string | undefined {
  const r = body.reason;
  if (r === undefined) {
    if (required) problems.push({ path: '/reason', message: 'is required' });
    return undefined;
  }
  if (typeof r !== 'string' || r.trim().length === 0) problems.push({ path: '/reason', message: 'must be a non-empty string' });
  else if (r.length > MAX_REASON) problems.push({ path: '/reason', message: `must be at most ${MAX_REASON} characters` });
  else if (controlCharProblem(r.trim())) problems.push({ path: '/reason', message: controlCharProblem(r.trim()) ?? '' });
  else return r.trim();
  return undefined;
}

/** Body of POST /api/v1/rules/{id}/disable|enable: `{reason, ttl?}`. */
export function validateToggleBody(body: unknown): { value?: { reason: string; ttlMs: number | null }; problems: InputProblem[] } {
  const problems: InputProblem[] = [];
  if (!isRecord(body)) return { problems: [{ path: '', message: 'body must be a JSON object like {"reason": "...", "ttl": "1h"}' }] };
  unknownFields(body, ['reason', 'ttl'], problems);
  const reason = reasonOf(body, problems, true);
  let ttlMs: number | null = null;
  if (body.ttl !== undefined && body.ttl !== null) {
    if (typeof body.ttl !== 'string' || !isDuration(body.ttl)) problems.push({ path: '/ttl', message: 'must be a duration like 30s, 15m, 1h, 1h30m' });
    else {
      ttlMs = parseDuration(body.ttl);
      if (ttlMs <= 0) problems.push({ path: '/ttl', message: 'must be greater than zero' });
      else if (ttlMs > MAX_TTL_MS) problems.push({ path: '/ttl', message: 'must be at most 30d' });
    }
  }
  if (problems.length > 0 || reason === undefined) return { problems };
  return { value: { reason, ttlMs }, problems };
}

/** Body of POST /api/v1/pause: `{reason}`. */
export function validatePauseBody(body: unknown): { value?: { reason: string }; problems: InputProblem[] } {
  const problems: InputProblem[] = [];
  if (!isRecord(body)) return { problems: [{ path: '', message: 'body must be a JSON object like {"reason": "..."}' }] };
  unknownFields(body, ['reason'], problems);
  const reason = reasonOf(body, problems, true);
  if (problems.length > 0 || reason === undefined) return { problems };
  return { value: { reason }, problems };
}

/** Body of POST /api/v1/resume: empty, or `{reason?}`. */
export function validateResumeBody(body: unknown): { value?: { reason: string | null }; problems: InputProblem[] } {
  if (body === undefined) return { value: { reason: null }, problems: [] };
  const problems: InputProblem[] = [];
  if (!isRecord(body)) return { problems: [{ path: '', message: 'body must be empty or a JSON object like {"reason": "..."}' }] };
  unknownFields(body, ['reason'], problems);
  const reason = reasonOf(body, problems, false);
  if (problems.length > 0) return { problems };
  return { value: { reason: reason ?? null }, problems };
}

/** A time bound: a duration back from now (`1h`) or an RFC 3339 timestamp. */
function timeParam(name: string, raw: string, now: number, problems: InputProblem[]): number | undefined {
  if (isDuration(raw)) return now - parseDuration(raw);
  if (/^\d{4}-\d{2}-\d{2}T/.test(raw)) {
    const t = Date.parse(raw);
    if (!Number.isNaN(t)) return t;
  }
  problems.push({ path: `?${name}`, message: 'must be a duration back from now (e.g. 1h) or an RFC 3339 timestamp' });
  return undefined;
}

/** Query of GET /api/v1/ledger. */
export function validateLedgerQuery(params: URLSearchParams, now: number): { value?: LedgerQuery; problems: InputProblem[] } {
  const problems: InputProblem[] = [];
  const allowed = ['since', 'until', 'rule', 'node', 'outcome', 'limit'];
  const seen = new Set<string>();
  for (const k of params.keys()) {
    if (!allowed.includes(k)) problems.push({ path: `?${k}`, message: 'unknown parameter' });
    else if (seen.has(k)) problems.push({ path: `?${k}`, message: 'given more than once' });
    seen.add(k);
  }
  const q: LedgerQuery = { limit: DEFAULT_LEDGER_LIMIT };
  const since = params.get('since');
  if (since !== null) q.since = timeParam('since', since, now, problems);
  const until = params.get('until');
  if (until !== null) q.until = timeParam('until', until, now, problems);
  if (q.since !== undefined && q.until !== undefined && q.since > q.until) problems.push({ path: '?since', message: 'must not be after until' });
  for (const k of ['rule', 'node'] as const) {
    const v = params.get(k);
    if (v !== null) {
      if (v.length === 0 || v.length > 253) problems.push({ path: `?${k}`, message: 'must be a non-empty name' });
      else if (controlCharProblem(v)) problems.push({ path: `?${k}`, message: controlCharProblem(v) ?? '' });
      else q[k] = v;
    }
  }
  const outcome = params.get('outcome');
  if (outcome !== null) {
    if ((OUTCOMES as readonly string[]).includes(outcome)) q.outcome = outcome as Outcome;
    else problems.push({ path: '?outcome', message: `must be one of ${OUTCOMES.join(', ')}` });
  }
  const limit = params.get('limit');
  if (limit !== null) {
    const n = Number(limit);
    if (!/^\d+$/.test(limit) || n < 1 || n > MAX_LEDGER_LIMIT) problems.push({ path: '?limit', message: `must be an integer from 1 to ${MAX_LEDGER_LIMIT}` });
    else q.limit = n;
  }
  if (problems.length > 0) return { problems };
  return { value: q, problems };
}
