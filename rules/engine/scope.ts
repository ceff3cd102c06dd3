/**
 * Scope keys: the identity of "where" a rule is evaluated, as one string that
 * names state keys and index members and can be decoded on tick (when no event
 * is at hand). `n:<node>[|<by>...]`, `g:<label>=<value>`, `f`.
 */
import type { EventEnvelope } from '../../core/envelope.js';
import type { ScopeSpec } from '../language/types.js';

function scalarText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v) ?? '';
}

export function scopeKey(spec: ScopeSpec, e: EventEnvelope): string | null {
  switch (spec.kind) {
    case 'node': {
      if (spec.by.length === 0) return `n:${e.node}`;
      let k = `n:${e.node}`;
      for (const g of spec.by) {
        const v = g(e);
        k += `|${v === undefined || v === null ? '' : encodeURIComponent(scalarText(v))}`;
      }
      return k;
    }
    case 'group': {
      const v = e.labels[spec.label];
      return v === undefined || v === '' ? null : `g:${spec.label}=${encodeURIComponent(v)}`;
    }
    default:
      return 'f';
  }
}

/** The node of a node scope (`n:<node>[|…]`), or null (a group or fleet scope, or no node). */
export function nodeOfScope(key: string): string | null {
  if (!key.startsWith('n:')) return null;
  const bar = key.indexOf('|', 2);
  const node = bar < 0 ? key.slice(2) : key.slice(2, bar);
  return node.length > 0 ? node : null;
}

export interface DecodedScope {
  node: string | null;
  /** Extra `by` values (node scope). */
  by: string[];
  groupLabel: string | null;
  group: string | null;
}

export function decodeScope(key: string): DecodedScope {
  if (key.startsWith('n:')) {
    const [node = '', ...by] = key.slice(2).split('|');
    return { node, by: by.map(decodeURIComponent), groupLabel: null, group: null };
  }
  if (key.startsWith('g:')) {
    const body = key.slice(2);
    const eq = body.indexOf('=');
    return { node: null, by: [], groupLabel: body.slice(0, eq), group: decodeURIComponent(body.slice(eq + 1)) };
  }
  return { node: null, by: [], groupLabel: null, group: null };
}

/** Human form for reasons and dedup keys: `gpu-worker-042`, `gpu-worker-042/0000:3b:00`, `pool=h100`, `fleet`. */
export function scopeLabel(key: string): string {
  const d = decodeScope(key);
  if (d.node !== null) return d.by.length ? `${d.node}/${d.by.join('/')}` : d.node;
  if (d.group !== null) return `${d.groupLabel}=${d.group}`;
  return 'fleet';
}
