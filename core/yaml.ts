/**
 * Every YAML file a user hands nodewarden (rules, rule tests, config, cluster
 * dumps) is parsed here, with bounds: a size limit before parsing, and a cap on
 * alias expansion so a "billion laughs" file is a clear error, never a stack
 * trace or an exhausted heap.
 *
 * JSON is YAML: a text that is plain JSON (one value, no repeated key in any
 * object) is read with `JSON.parse`, which gives the value the yaml package
 * would, and the yaml package is loaded only for a text that is not. The agent's
 * config, rendered as JSON by the chart and the Kustomize base, never loads it
 * (its modules cost the agent ~1 MiB of its memory budget; ADR 0043).
 */
import { createRequire } from 'node:module';
import type * as YamlPackage from 'yaml';
import type { InputProblem } from './errors.js';

let yamlPackage: typeof YamlPackage | undefined;

/**
 * The yaml package, loaded on first use. `require` and not `import()`: every
 * reader of these files is synchronous (config resolution, the rule loader), and
 * the package's Node entry is CommonJS either way (one instance for both).
 */
function yaml(): typeof YamlPackage {
  return (yamlPackage ??= createRequire(import.meta.url)('yaml') as typeof YamlPackage);
}

/** Deeper JSON is left to the yaml package, which reported it before (its recursion limit) and still does. */
const JSON_MAX_DEPTH = 100;

/**
 * Scans a text `JSON.parse` accepted: its object members (every `:` outside a
 * string separates one member's key from its value) and its nesting depth.
 */
function jsonShape(text: string): { members: number; depth: number } {
  let members = 0;
  let depth = 0;
  let maxDepth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x3a) members++;
    else if (c === 0x5b || c === 0x7b) maxDepth = Math.max(maxDepth, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return { members, depth: maxDepth };
}

/** The keys of every object in a parsed JSON value (iterative: nesting depth is bounded only by the file size). */
function keyCount(root: unknown): number {
  let n = 0;
  const todo: unknown[] = [root];
  while (todo.length > 0) {
    const v = todo.pop();
    if (v === null || typeof v !== 'object') continue;
    const children = Array.isArray(v) ? (v as unknown[]) : Object.values(v);
    if (!Array.isArray(v)) n += children.length;
    for (const c of children) todo.push(c);
  }
  return n;
}

/**
 * The value of `text` when it is plain JSON the yaml package would read the same
 * way; `undefined` otherwise: not JSON, nested deeper than JSON_MAX_DEPTH, or an
 * object repeats a key (JSON.parse keeps the last, YAML refuses it: the YAML
 * parser reports it, as before).
 */
function asJson(text: string): { value: unknown } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const shape = jsonShape(text);
  return shape.depth <= JSON_MAX_DEPTH && shape.members === keyCount(value) ? { value } : undefined;
}

/** Aliases (`*a`) resolved per document; the yaml library's own default. */
export const YAML_MAX_ALIAS_COUNT = 100;
/** Default size bound for rule, rule-test and config files. */
export const YAML_MAX_BYTES = 4 * 1024 * 1024;
/** Cluster dumps: a kubectl dump of a 10,000-node fleet is tens of MiB; far larger is not a dump. */
export const CLUSTER_DUMP_MAX_BYTES = 512 * 1024 * 1024;

export interface YamlLimits {
  maxBytes?: number;
  maxAliasCount?: number;
  /** Where a problem in document `i` of `n` is reported. */
  pathOf?: (i: number, n: number) => string;
}

/**
 * The documents of `text` as plain values (empty documents skipped). Every
 * problem (syntax, size, alias bomb) is pushed to `problems` with its document's
 * path; a failed document is left out.
 */
export function parseYamlDocuments(text: string, problems: InputProblem[], limits: YamlLimits = {}): unknown[] {
  const maxBytes = limits.maxBytes ?? YAML_MAX_BYTES;
  const pathOf = limits.pathOf ?? ((i: number, n: number) => (n > 1 ? `/${i}` : '/'));
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) {
    problems.push({ path: pathOf(0, 1), message: `file is ${bytes} bytes; the limit is ${maxBytes}` });
    return [];
  }
  const json = asJson(text);
  if (json) return json.value === null ? [] : [json.value];
  const docs = yaml().parseAllDocuments(text, { prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: unknown[] = [];
  list.forEach((d, i) => {
    const path = pathOf(i, list.length);
    if (d.errors.length > 0) {
      for (const e of d.errors) problems.push({ path, message: `YAML: ${oneLine(e.message)}` });
      return;
    }
    try {
      const js: unknown = d.toJS({ maxAliasCount: limits.maxAliasCount ?? YAML_MAX_ALIAS_COUNT });
      if (js !== null && js !== undefined) out.push(js);
    } catch (err) {
      problems.push({ path, message: `YAML: ${oneLine((err as Error).message)} (at most ${limits.maxAliasCount ?? YAML_MAX_ALIAS_COUNT} alias expansions)` });
    }
  });
  return out;
}

/** A message on one line (YAML errors quote the source over several lines). */
export function oneLine(s: string): string {
  return s.split(/\r?\n/)[0]!.trim();
}

