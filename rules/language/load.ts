/**
 * Loading rule files: a file or a directory of `*.yaml`/`*.yml`, all
 * validated before anything is returned. One problem anywhere fails the whole
 * load (a bad file never half-loads), and the error lists every problem.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { InputProblem } from '../../core/errors.js';
import { PoisonInputError } from '../../core/errors.js';
import { packageRoot } from '../../adapters/paths.js';
import { parseYamlDocuments } from '../../core/yaml.js';
import { readTextFile } from '../../adapters/text-file.js';
import { isRecord } from '../../core/records.js';
import type { XidCatalogue } from '../xid/catalogue.js';
import { XID_CATALOGUE_KIND, parseXidCatalogue } from '../xid/catalogue.js';
import { API_VERSION, compileDocument } from './compile.js';
import type { CompiledRule, RuleSet } from './types.js';

export type { RuleSet } from './types.js';

/** The shipped default rule pack. */
export function defaultRulesPath(): string {
  return join(packageRoot(), 'rules', 'pack');
}

/** Expands files and directories (non-recursive, `*.yaml`/`*.yml`, sorted) into rule file paths. */
export function ruleFiles(pathOrPaths: string | string[], problems: InputProblem[] = []): string[] {
  const out: string[] = [];
  for (const p of Array.isArray(pathOrPaths) ? pathOrPaths : [pathOrPaths]) {
    let st;
    try {
      st = statSync(p);
    } catch (err) {
      problems.push({ path: p, message: `cannot read: ${(err as Error).message}` });
      continue;
    }
    if (st.isDirectory()) {
      const files = readdirSync(p)
        .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
        .sort();
      if (files.length === 0) problems.push({ path: p, message: 'directory holds no *.yaml rule files' });
      for (const f of files) out.push(join(p, f));
    } else out.push(p);
  }
  return out;
}

/** A pack file may also hold the Xid catalogue (`kind: XidCatalogue`, at most one per load). */
function parseInto(text: string, source: string, problems: InputProblem[], catalogues: XidCatalogue[]): CompiledRule[] {
  const out: CompiledRule[] = [];
  for (const js of parseYamlDocuments(text, problems, { pathOf: () => `${source}#` })) {
    if (isRecord(js) && js.kind === XID_CATALOGUE_KIND) {
      if (js.apiVersion !== API_VERSION) problems.push({ path: `${source}#/apiVersion`, message: `must be ${API_VERSION}` });
      const cat = parseXidCatalogue(js, source, problems);
      if (cat !== null) catalogues.push(cat);
      continue;
    }
    out.push(...compileDocument(js, source, problems));
  }
  return out;
}

function build(rules: CompiledRule[], catalogues: XidCatalogue[], problems: InputProblem[], where: string): RuleSet {
  const byId = new Map<string, CompiledRule>();
  for (const r of rules) {
    const prev = byId.get(r.id);
    if (prev) problems.push({ path: `${r.source}#${r.id}/id`, message: `duplicate rule id (also in ${prev.source})` });
    else byId.set(r.id, r);
  }
  if (catalogues.length > 1) problems.push({ path: where, message: `${catalogues.length} Xid catalogues loaded; at most one is allowed` });
  if (problems.length > 0) throw new PoisonInputError('RULE_INVALID', where, problems);
  const xidCatalogue = catalogues[0];
  return xidCatalogue === undefined ? { rules, byId } : { rules, byId, xidCatalogue };
}

/** Parses rule text (one or more YAML documents). Throws PoisonInputError(RULE_INVALID) listing every problem. */
export function parseRules(text: string, source: string): RuleSet {
  const problems: InputProblem[] = [];
  const catalogues: XidCatalogue[] = [];
  return build(parseInto(text, source, problems, catalogues), catalogues, problems, source);
}

/** Loads a file, a directory of rule files, or a list of either; all or nothing. */
export function loadRules(pathOrPaths: string | string[]): RuleSet {
  const problems: InputProblem[] = [];
  const files = ruleFiles(pathOrPaths, problems);
  const rules: CompiledRule[] = [];
  const catalogues: XidCatalogue[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readTextFile(f);
    } catch (err) {
      problems.push({ path: f, message: `cannot read: ${(err as Error).message}` });
      continue;
    }
    rules.push(...parseInto(text, f, problems, catalogues));
  }
  return build(rules, catalogues, problems, Array.isArray(pathOrPaths) ? pathOrPaths.join(', ') : pathOrPaths);
}
