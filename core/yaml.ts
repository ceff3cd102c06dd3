/**
 * Every YAML file a user hands nodewarden (rules, rule tests, config, cluster
 * dumps) is parsed here, with bounds: a size limit before parsing, and a cap on
 * alias expansion so a "billion laughs" file is a clear error, never a stack
 * trace or an exhausted heap.
 */
import { parseAllDocuments } from 'yaml';
import type { InputProblem } from './errors.js';

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
  const docs = parseAllDocuments(text, { prettyErrors: true });
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

