/**
 * The patch semantics the simulated API server needs to apply exactly what
 * the executors send to a real one: RFC 7386 merge patch (+ the strategic
 * `$patch: replace` directive, which is all a DaemonSet ControllerRevision
 * uses), RFC 6902 JSON patch, and label selectors for lists.
 */
import { NodewardenError } from '../../core/errors.js';
import { clone, isRecord, jsonEqual } from '../kube/wire.js';
import type { JsonPatchOp } from '../kube/kube-api.js';

/** RFC 7386 merge patch; a map carrying `"$patch": "replace"` replaces the target map wholesale. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return clone(patch);
  const replace = patch.$patch === 'replace';
  const out: Record<string, unknown> = !replace && isRecord(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch') continue;
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(replace ? undefined : out[k], v);
  }
  return out;
}

function invalid(msg: string): NodewardenError {
  return new NodewardenError('REQUEST_INVALID', `json patch: ${msg}`);
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw invalid(`bad path ${path}`);
  return path
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** RFC 6902 JSON patch (add, remove, replace, test) on a copy of `doc`. */
export function applyJsonPatch<T>(doc: T, ops: readonly JsonPatchOp[]): T {
  const root = { v: clone(doc) as unknown };
  for (const op of ops) {
    const parts = pointer(op.path);
    if (parts.length === 0) {
      if (op.op === 'test') {
        if (!jsonEqual(root.v, op.value)) throw invalid(`test failed at ${op.path}`);
      } else root.v = clone(op.value);
      continue;
    }
    let parent: unknown = root.v;
    for (const p of parts.slice(0, -1)) {
      if (Array.isArray(parent)) parent = parent[Number(p)];
      else if (isRecord(parent)) parent = parent[p];
      else throw invalid(`path ${op.path} does not exist`);
    }
    const last = parts[parts.length - 1] as string;
    if (Array.isArray(parent)) {
      const idx = last === '-' ? parent.length : Number(last);
      if (!Number.isInteger(idx) || idx < 0 || idx > parent.length) throw invalid(`bad index in ${op.path}`);
      if (op.op === 'add') parent.splice(idx, 0, clone(op.value));
      else if (idx >= parent.length) throw invalid(`path ${op.path} does not exist`);
      else if (op.op === 'remove') parent.splice(idx, 1);
      else if (op.op === 'replace') parent[idx] = clone(op.value);
      else if (!jsonEqual(parent[idx], op.value)) throw invalid(`test failed at ${op.path}`);
    } else if (isRecord(parent)) {
      const exists = Object.prototype.hasOwnProperty.call(parent, last);
      if (op.op === 'add') parent[last] = clone(op.value);
      else if (!exists) throw invalid(`path ${op.path} does not exist`);
      else if (op.op === 'remove') delete parent[last];
      else if (op.op === 'replace') parent[last] = clone(op.value);
      else if (!jsonEqual(parent[last], op.value)) throw invalid(`test failed at ${op.path}`);
    } else {
      throw invalid(`path ${op.path} does not exist`);
    }
  }
  return root.v as T;
}

/** Label selector in list-API syntax (`a=b,a!=b,a in (x,y),a notin (x),a,!a`) → predicate. */
export function labelSelectorMatcher(selector: string | undefined): (labels: Record<string, string>) => boolean {
  if (selector === undefined || selector.trim() === '') return () => true;
  // Split on commas not inside parentheses.
  const terms: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      terms.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim() !== '') terms.push(cur.trim());
  const preds = terms.map((t): ((l: Record<string, string>) => boolean) => {
    let m = /^(\S+)\s+(in|notin)\s+\((.*)\)$/.exec(t);
    if (m) {
      const [, key = '', op, vals = ''] = m;
      const set = new Set(vals.split(',').map((v) => v.trim()));
      return op === 'in' ? (l) => l[key] !== undefined && set.has(l[key]) : (l) => l[key] === undefined || !set.has(l[key]);
    }
    m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(t);
    if (m) {
      const [, key = '', op, val] = m;
      return op === '!=' ? (l) => l[key] !== val : (l) => l[key] === val;
    }
    if (t.startsWith('!')) return (l) => l[t.slice(1)] === undefined;
    return (l) => l[t] !== undefined;
  });
  return (labels) => preds.every((p) => p(labels));
}
