/**
 * `{{name}}` templates for reasons, summaries and dedup keys. Deliberately
 * tiny: only known variables (checked at load), no expressions, no code;
 * values are stringified, stripped of control characters and truncated, so an
 * event's data can never inject anything into a page or a ledger line.
 */
import type { InputProblem } from '../../core/errors.js';
import type { EventEnvelope } from '../../core/envelope.js';
import { compileField, fieldProblem } from './fields.js';
import type { FieldGetter } from './fields.js';

/** Values known when a decision is made (an event may be absent for time-driven firings). */
export interface TemplateContext {
  rule: string;
  scope: string;
  node: string;
  group: string;
  count: number | null;
  value: number | null;
  window: string;
  nodes: string;
  event: EventEnvelope | null;
}

type Part = string | ((c: TemplateContext) => unknown);
export type Template = (c: TemplateContext) => string;

const VARS: Record<string, (c: TemplateContext) => unknown> = {
  rule: (c) => c.rule,
  scope: (c) => c.scope,
  node: (c) => c.node,
  group: (c) => c.group,
  count: (c) => c.count,
  value: (c) => c.value,
  window: (c) => c.window,
  nodes: (c) => c.nodes,
};

const MAX_VALUE = 200;

function clean(v: unknown): string {
  if (v === undefined || v === null) return '?';
  const s = typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3).replace(/0+$/, '')) : typeof v === 'string' ? v : JSON.stringify(v);
  // eslint-disable-next-line no-control-regex
  const t = s.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return t.length > MAX_VALUE ? `${t.slice(0, MAX_VALUE)}…` : t;
}

export function compileTemplate(text: string, path: string, problems: InputProblem[]): Template {
  const parts: Part[] = [];
  const re = /\{\{\s*([^}]*?)\s*\}\}/g;
  let last = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index > last) parts.push(text.slice(last, m.index));
    last = m.index + m[0].length;
    const name = m[1] ?? '';
    // Own keys only: `{{constructor}}` would otherwise render the whole context.
    const v = Object.hasOwn(VARS, name) ? VARS[name] : undefined;
    if (v) {
      parts.push(v);
      continue;
    }
    if (name.startsWith('data.') || name.startsWith('labels.')) {
      const prob = fieldProblem(name);
      if (prob) {
        problems.push({ path, message: `template: ${prob}` });
        continue;
      }
      const get: FieldGetter = compileField(name);
      parts.push((c) => (c.event ? get(c.event) : undefined));
      continue;
    }
    problems.push({ path, message: `template: unknown variable "{{${name}}}" (known: ${Object.keys(VARS).join(', ')}, data.*, labels.*)` });
  }
  if (last < text.length) parts.push(text.slice(last));
  if (parts.every((p) => typeof p === 'string')) {
    const s = parts.join('');
    return () => s;
  }
  return (c) => {
    let out = '';
    for (const p of parts) out += typeof p === 'string' ? p : clean(p(c));
    return out;
  };
}
