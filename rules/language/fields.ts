/**
 * Field references used by predicates, scopes, counters and templates:
 * `node`, `source`, `type`, `labels.<name>`, `data.<a>.<b>`, a fallback
 * chain `data.gpu ?? data.pci`, and a ratio `data.count / data.max` (for
 * conntrack fill level). Compiled once at load into a getter so the hot path
 * never parses a path.
 */
import type { EventEnvelope } from '../../core/envelope.js';

export type FieldGetter = (e: EventEnvelope) => unknown;

const PATH_RE = /^(node|source|type|id|labels\.[A-Za-z0-9_./-]+|data(\.[A-Za-z0-9_-]+)+)$/;

/** Returns an error message, or null when the reference is well-formed. */
export function fieldProblem(ref: string): string | null {
  const parts = splitRef(ref);
  if (parts.kind === 'ratio') {
    for (const p of [parts.num, parts.den]) if (!PATH_RE.test(p) || inheritedKey(p) !== undefined) return `invalid field "${p}" in ratio "${ref}"`;
    return null;
  }
  for (const p of parts.paths) {
    if (!PATH_RE.test(p)) return `invalid field "${p}" (expected node, source, labels.<name> or data.<path>)`;
    const k = inheritedKey(p);
    if (k !== undefined) return `invalid field "${p}" ("${k}" is a name every object inherits, never an event's field)`;
  }
  return null;
}

/** A key of `labels.<name>` / `data.<a>.<b>` that every object inherits (`constructor`, `__proto__`, `toString`…): the getter would read the prototype. */
function inheritedKey(path: string): string | undefined {
  const keys = path.startsWith('labels.') ? [path.slice('labels.'.length)] : path.startsWith('data.') ? path.split('.').slice(1) : [];
  return keys.find((k) => k in Object.prototype);
}

type Split = { kind: 'ratio'; num: string; den: string } | { kind: 'chain'; paths: string[] };

function splitRef(ref: string): Split {
  if (ref.includes('/') && !ref.startsWith('labels.')) {
    const [num = '', den = ''] = ref.split('/').map((s) => s.trim());
    return { kind: 'ratio', num, den };
  }
  return { kind: 'chain', paths: ref.split('??').map((s) => s.trim()) };
}

function pathGetter(path: string): FieldGetter {
  if (path === 'node') return (e) => e.node;
  if (path === 'source') return (e) => e.source;
  if (path === 'type') return (e) => e.type;
  if (path === 'id') return (e) => e.id;
  if (path.startsWith('labels.')) {
    const k = path.slice('labels.'.length);
    return (e) => e.labels[k];
  }
  const keys = path.split('.').slice(1);
  if (keys.length === 1) {
    const k0 = keys[0] as string;
    return (e) => (e.data)[k0];
  }
  if (keys.length === 2) {
    const k0 = keys[0] as string;
    const k1 = keys[1] as string;
    return (e) => {
      const o = (e.data)[k0];
      return typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[k1] : undefined;
    };
  }
  return (e) => {
    let cur: unknown = e.data;
    for (const k of keys) {
      if (typeof cur !== 'object' || cur === null) return undefined;
      cur = (cur as Record<string, unknown>)[k];
    }
    return cur;
  };
}

/** Compiles a (validated) field reference into a getter; missing values are `undefined`. */
export function compileField(ref: string): FieldGetter {
  const parts = splitRef(ref);
  if (parts.kind === 'ratio') {
    const n = pathGetter(parts.num);
    const d = pathGetter(parts.den);
    return (e) => {
      const a = n(e);
      const b = d(e);
      return typeof a === 'number' && typeof b === 'number' && b > 0 ? a / b : undefined;
    };
  }
  const getters = parts.paths.map(pathGetter);
  if (getters.length === 1) return getters[0] as FieldGetter;
  return (e) => {
    for (const g of getters) {
      const v = g(e);
      if (v !== undefined && v !== null) return v;
    }
    return undefined;
  };
}
