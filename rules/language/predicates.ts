/**
 * Predicates on one event: `{ <field>: { eq|ne|in|notIn|gt|gte|lt|lte|regex|exists: ... } }`
 * (a bare scalar means `eq`). Validated and compiled at load into one closure
 * per field so matching is a few comparisons, with no parsing or allocation.
 */
import type { EventEnvelope } from '../../core/envelope.js';
import type { InputProblem } from '../../core/errors.js';
import { compileField, fieldProblem } from './fields.js';
import { isRecord } from '../../core/records.js';
import { compileSafeRegex, isSafeRegex } from './regex.js';

export type Predicate = (e: EventEnvelope) => boolean;

export const OPERATORS = ['eq', 'ne', 'in', 'notIn', 'gt', 'gte', 'lt', 'lte', 'regex', 'notRegex', 'exists'] as const;
const OP_SET: ReadonlySet<string> = new Set(OPERATORS);

type Scalar = string | number | boolean | null;
const isScalar = (v: unknown): v is Scalar => v === null || ['string', 'number', 'boolean'].includes(typeof v);

export const TRUE: Predicate = () => true;

/**
 * Validates a `where` mapping and compiles it. Problems are pushed with paths
 * relative to `path`; on any problem the returned predicate is never used.
 */
export function compileWhere(raw: unknown, path: string, problems: InputProblem[]): Predicate {
  if (raw === undefined || raw === null) return TRUE;
  if (!isRecord(raw)) {
    problems.push({ path, message: 'must be a mapping of field -> condition' });
    return TRUE;
  }
  const preds: Predicate[] = [];
  for (const [field, cond] of Object.entries(raw)) {
    const fp = `${path}/${field}`;
    const fprob = fieldProblem(field);
    if (fprob) {
      problems.push({ path: fp, message: fprob });
      continue;
    }
    const get = compileField(field);
    const ops: Record<string, unknown> = isRecord(cond) ? cond : { eq: cond };
    if (!isRecord(cond) && !isScalar(cond)) {
      problems.push({ path: fp, message: 'must be a scalar (equality) or a mapping of operators' });
      continue;
    }
    if (Object.keys(ops).length === 0) problems.push({ path: fp, message: `needs at least one operator (${OPERATORS.join(', ')})` });
    for (const [op, arg] of Object.entries(ops)) {
      const p = compileOp(op, arg, `${fp}/${op}`, problems);
      if (p) preds.push((e) => p(get(e)));
    }
  }
  if (preds.length === 0) return TRUE;
  if (preds.length === 1) return preds[0] as Predicate;
  if (preds.length === 2) {
    const [a, b] = preds as [Predicate, Predicate];
    return (e) => a(e) && b(e);
  }
  return (e) => {
    for (const p of preds) if (!p(e)) return false;
    return true;
  };
}

function compileOp(op: string, arg: unknown, path: string, problems: InputProblem[]): ((v: unknown) => boolean) | null {
  if (!OP_SET.has(op)) {
    problems.push({ path, message: `unknown operator "${op}" (expected one of ${OPERATORS.join(', ')})` });
    return null;
  }
  switch (op) {
    case 'eq':
    case 'ne': {
      if (!isScalar(arg)) {
        problems.push({ path, message: 'must be a scalar' });
        return null;
      }
      return op === 'eq' ? (v) => v === arg : (v) => v !== arg;
    }
    case 'in':
    case 'notIn': {
      if (!Array.isArray(arg) || arg.length === 0 || !arg.every(isScalar)) {
        problems.push({ path, message: 'must be a non-empty list of scalars' });
        return null;
      }
      const set: ReadonlySet<unknown> = new Set(arg);
      return op === 'in' ? (v) => set.has(v) : (v) => v !== undefined && !set.has(v);
    }
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      if (typeof arg !== 'number' || !Number.isFinite(arg)) {
        problems.push({ path, message: 'must be a finite number' });
        return null;
      }
      const n = arg;
      if (op === 'gt') return (v) => typeof v === 'number' && v > n;
      if (op === 'gte') return (v) => typeof v === 'number' && v >= n;
      if (op === 'lt') return (v) => typeof v === 'number' && v < n;
      return (v) => typeof v === 'number' && v <= n;
    }
    case 'regex':
    case 'notRegex': {
      if (typeof arg !== 'string') {
        problems.push({ path, message: 'must be a regular expression string' });
        return null;
      }
      const re = compileSafeRegex(arg);
      if (!isSafeRegex(re)) {
        problems.push({ path, message: re.error });
        return null;
      }
      // notRegex: a string the pattern does not match (RE2 has no negative lookahead).
      return op === 'regex' ? (v) => typeof v === 'string' && re.test(v) : (v) => typeof v === 'string' && !re.test(v);
    }
    default: {
      // exists
      if (typeof arg !== 'boolean') {
        problems.push({ path, message: 'must be true or false' });
        return null;
      }
      return arg ? (v) => v !== undefined && v !== null : (v) => v === undefined || v === null;
    }
  }
}
