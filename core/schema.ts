/**
 * A small validator for the JSON-schema subset nodewarden's own schemas use
 * (type, properties, required, additionalProperties, items, minItems, enum,
 * pattern, minLength, minimum, maximum, anyOf). It reports every problem with its
 * instance path. Why not ajv: ajv compiles schemas to code at start-up and
 * costs the agent ~15 MiB of its 64 MiB budget; these schemas are tiny. Why not
 * TypeBox: it cost the agent +1.9 MiB RSS (ADR 0037).
 *
 * One schema per input: write it `as const` (objects with `strictObject`) and
 * derive its TypeScript type with `Infer<typeof SCHEMA>` — the type is never
 * written by hand next to the schema, so the two cannot drift. `Infer` is a
 * type only: it adds no code to any import graph.
 */
import type { InputProblem } from './errors.js';

export interface Schema {
  type?: string | readonly string[];
  properties?: Readonly<Record<string, Schema>>;
  required?: readonly string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  minItems?: number;
  enum?: readonly unknown[];
  pattern?: string;
  minLength?: number;
  minimum?: number;
  maximum?: number;
  anyOf?: readonly Schema[];
  /** Message used instead of the generic one when `pattern` fails. */
  patternHint?: string;
}

/** The JSON type names of `type` as TypeScript types. */
type Primitive<T> = T extends 'string'
  ? string
  : T extends 'integer' | 'number'
    ? number
    : T extends 'boolean'
      ? boolean
      : T extends 'null'
        ? null
        : T extends 'array'
          ? unknown[]
          : T extends 'object'
            ? Record<string, unknown>
            : unknown;

type PropsOf<S> = S extends { readonly properties: infer P } ? P : object;
type RequiredOf<S> = S extends { readonly required: readonly (infer R)[] } ? R : never;
type ExtraOf<S> = S extends { readonly additionalProperties: false }
  ? object
  : S extends { readonly additionalProperties: infer A extends Schema }
    ? Record<string, Infer<A>>
    : Record<string, unknown>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type InferObject<S, P = PropsOf<S>> = Simplify<
  { -readonly [K in keyof P as K extends RequiredOf<S> ? K : never]: Infer<P[K]> } & {
    -readonly [K in keyof P as K extends RequiredOf<S> ? never : K]?: Infer<P[K]>;
  } & ExtraOf<S>
>;

/**
 * The TypeScript type of the values a schema (written `as const`) accepts:
 * `enum` → its members, `anyOf` → the union of its branches, arrays of `items`,
 * objects with their `required` keys required and the others optional (plus an
 * index signature unless `additionalProperties: false`). Bounds and patterns
 * narrow nothing at the type level.
 */
export type Infer<S> = S extends { readonly enum: readonly (infer E)[] }
  ? E
  : S extends { readonly anyOf: readonly (infer B)[] }
    ? B extends unknown
      ? Infer<B>
      : never
    : S extends { readonly type: 'array'; readonly items: infer I }
      ? Infer<I>[]
      : S extends { readonly type: 'object' }
        ? InferObject<S>
        : S extends { readonly type: infer T }
          ? T extends readonly (infer U)[]
            ? Primitive<U>
            : Primitive<T>
          : unknown;

/** An object schema with exactly these properties (an unknown key is a problem), all required unless `required` says which. */
export function strictObject<const P extends Readonly<Record<string, Schema>>, const R extends readonly (keyof P & string)[] = readonly (keyof P & string)[]>(
  properties: P,
  required?: R,
): { readonly type: 'object'; readonly additionalProperties: false; readonly properties: P; readonly required: R } {
  return { type: 'object', additionalProperties: false, properties, required: required ?? (Object.keys(properties) as unknown as R) };
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(want: string, v: unknown): boolean {
  const t = typeOf(v);
  return want === t || (want === 'number' && t === 'integer');
}

const patternCache = new Map<string, RegExp>();

/** Every problem of `value` against `schema`; empty when valid. */
export function validateSchema(schema: Schema, value: unknown, path = ''): InputProblem[] {
  const out: InputProblem[] = [];
  check(schema, value, path, out);
  return out;
}

function check(s: Schema, v: unknown, path: string, out: InputProblem[]): void {
  if (s.anyOf) {
    const branches = s.anyOf.map((b) => validateSchema(b, v, path));
    if (branches.some((p) => p.length === 0)) return;
    // Explain against the branch meant for this kind of value (an object is not
    // "meant" to be null), then the one that got furthest.
    const meant = s.anyOf.map((b, i) => ({ b, p: branches[i] ?? [] })).filter(({ b }) => b.type === undefined || typeMatches(typeof b.type === 'string' ? b.type : (b.type[0] ?? ''), v));
    const pool = meant.length > 0 ? meant.map((m) => m.p) : branches;
    const best = pool.reduce((a, b) => (b.length < a.length ? b : a));
    out.push(...(best.length > 0 ? best : [{ path, message: 'matches no allowed form' }]));
    return;
  }
  if (s.type !== undefined) {
    const types = typeof s.type === 'string' ? [s.type] : s.type;
    if (!types.some((t) => typeMatches(t, v))) {
      out.push({ path, message: `must be ${types.join(' or ')}` });
      return;
    }
  }
  if (s.enum && !s.enum.includes(v)) {
    out.push({ path, message: `must be one of ${s.enum.map((e) => JSON.stringify(e)).join(', ')}` });
    return;
  }
  if (typeof v === 'string' && s.minLength !== undefined && v.length < s.minLength) out.push({ path, message: `must have at least ${s.minLength} character(s)` });
  if (typeof v === 'string' && s.pattern !== undefined) {
    let re = patternCache.get(s.pattern);
    if (!re) patternCache.set(s.pattern, (re = new RegExp(s.pattern)));
    if (!re.test(v)) out.push({ path, message: s.patternHint ?? `must match ${s.pattern}` });
  }
  if (typeof v === 'number') {
    if (s.minimum !== undefined && v < s.minimum) out.push({ path, message: `must be >= ${s.minimum}` });
    if (s.maximum !== undefined && v > s.maximum) out.push({ path, message: `must be <= ${s.maximum}` });
  }
  if (Array.isArray(v)) {
    if (s.minItems !== undefined && v.length < s.minItems) out.push({ path, message: `must have at least ${s.minItems} item(s)` });
    if (s.items) v.forEach((item, i) => check(s.items as Schema, item, `${path}/${i}`, out));
  }
  if (typeOf(v) === 'object') {
    const obj = v as Record<string, unknown>;
    // Own keys only: `constructor` or `toString` is neither a known property
    // nor a present one because every object inherits it.
    for (const r of s.required ?? []) if (!Object.hasOwn(obj, r)) out.push({ path: `${path}/${r}`, message: 'is required' });
    for (const [k, child] of Object.entries(obj)) {
      const ps = s.properties && Object.hasOwn(s.properties, k) ? s.properties[k] : undefined;
      if (k === '__proto__') out.push({ path: `${path}/${k}`, message: 'is not allowed (a prototype key)' });
      else if (ps) check(ps, child, `${path}/${k}`, out);
      else if (s.additionalProperties === false) out.push({ path: `${path}/${k}`, message: 'unknown setting' });
      else if (typeof s.additionalProperties === 'object') check(s.additionalProperties, child, `${path}/${k}`, out);
    }
  }
}
