/**
 * `nodewarden rules check PATH...`: validates rule files; prints OK per file
 * or every problem with file, rule id and field path; exit 2 on errors.
 * `nodewarden rules test FILE...`: runs rule unit tests; prints pass/fail per
 * test with a diff; exit 1 on a failure (2 on an invalid test file).
 */
import { escapeControl } from '../../core/text.js';
import { parseFlags } from '../args.js';
import { PoisonInputError } from '../../core/errors.js';
import type { InputProblem } from '../../core/errors.js';
import { loadRules, ruleFiles } from '../../rules/language/load.js';
import { loadRuleTestFile, runRuleTestCase } from '../../rules/testing/run-rule-tests.js';

const HELP = `usage: nodewarden rules check PATH...
       nodewarden rules test FILE...
`;

function check(paths: string[]): number {
  const listProblems: InputProblem[] = [];
  const files = ruleFiles(paths, listProblems);
  let bad = listProblems.length;
  for (const p of listProblems) process.stdout.write(`ERROR ${escapeControl(p.path)}: ${escapeControl(p.message)}\n`);
  for (const f of files) {
    try {
      const rs = loadRules(f);
      const cat = rs.xidCatalogue === undefined ? '' : `, Xid catalogue: ${rs.xidCatalogue.entries.size} Xids`;
      process.stdout.write(`OK    ${f} (${rs.rules.length} rule${rs.rules.length === 1 ? '' : 's'}${cat})\n`);
    } catch (err) {
      if (!(err instanceof PoisonInputError)) throw err;
      bad++;
      process.stdout.write(`FAIL  ${f}\n`);
      for (const p of err.problems) process.stdout.write(`  ${escapeControl(p.path)}: ${escapeControl(p.message)}\n`);
    }
  }
  // Cross-file problems (duplicate ids) only show when loading everything together.
  if (bad === 0 && files.length > 1) {
    try {
      loadRules(files);
    } catch (err) {
      if (!(err instanceof PoisonInputError)) throw err;
      bad++;
      for (const p of err.problems) process.stdout.write(`ERROR ${escapeControl(p.path)}: ${escapeControl(p.message)}\n`);
    }
  }
  return bad > 0 ? 2 : 0;
}

async function test(files: string[]): Promise<number> {
  let failed = 0;
  let passed = 0;
  let invalid = 0;
  for (const f of files) {
    let cases;
    try {
      cases = loadRuleTestFile(f);
    } catch (err) {
      if (!(err instanceof PoisonInputError)) throw err;
      invalid++;
      process.stdout.write(`INVALID ${f}\n`);
      for (const p of err.problems) process.stdout.write(`  ${escapeControl(p.path || '/')}: ${escapeControl(p.message)}\n`);
      continue;
    }
    for (const c of cases) {
      const r = await runRuleTestCase(c);
      if (r.ok) {
        passed++;
        process.stdout.write(`PASS  ${f}: ${escapeControl(r.name)}\n`);
      } else {
        failed++;
        process.stdout.write(`FAIL  ${f}: ${escapeControl(r.name)}\n`);
        for (const d of r.diff) process.stdout.write(`    ${escapeControl(d)}\n`);
      }
    }
  }
  process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
  if (invalid > 0) return 2;
  return failed > 0 ? 1 : 0;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('rules', argv, { help: { type: 'boolean', short: 'h' } });
  const [sub, ...rest] = positionals;
  if (values.help || !sub) {
    process.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  if (rest.length === 0) {
    process.stderr.write(`nodewarden rules ${sub}: at least one path is required\n\n${HELP}`);
    return 2;
  }
  if (sub === 'check') return check(rest);
  if (sub === 'test') return test(rest);
  process.stderr.write(`nodewarden rules: unknown subcommand "${sub}"\n\n${HELP}`);
  return 2;
}
