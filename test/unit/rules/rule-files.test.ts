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
  it('gives every input event of a case its own id, whatever the length of the case name', function () {
    // a name longer than the id bound once cut the index off: every event of the case had one id (deduplicated)
    const long = files.flatMap((f) => loadRuleTestFile(join(dir, f))).filter((c) => c.name.length > 120 && c.events.length > 1);
    expect(long.length).to.be.greaterThan(0);
    for (const c of long) expect(new Set(c.events.map((e) => e.id)).size, c.name).to.equal(c.events.length);
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
