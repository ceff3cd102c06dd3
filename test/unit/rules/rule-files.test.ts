/**
 * Runs every rule unit-test file under test/rules/ (one mocha test per case),
 * the same runner as `nodewarden rules test`.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { packageRoot } from '../../../adapters/paths.js';
import { loadRuleTestFile, runRuleTestCase } from '../../../rules/testing/run-rule-tests.js';

const dir = join(packageRoot(), 'test', 'rules');
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

describe('rule unit tests (test/rules/*.yaml)', function () {
  it('finds the rule test files', function () {
    expect(files.length).to.be.greaterThan(4);
  });
  for (const f of files) {
    describe(f, function () {
      for (const c of loadRuleTestFile(join(dir, f))) {
        it(c.name, async function () {
          const r = await runRuleTestCase(c);
          expect(r.ok, `${c.name}\n${r.diff.join('\n')}`).to.equal(true);
        });
      }
    });
  }
});
