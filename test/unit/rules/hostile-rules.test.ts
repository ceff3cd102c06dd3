import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { EventEnvelope } from '../../../core/envelope.js';
import { PoisonInputError } from '../../../core/errors.js';
import type { InputProblem } from '../../../core/errors.js';
import { loadRules, parseRules } from '../../../rules/language/load.js';
import { compileWhere } from '../../../rules/language/predicates.js';
import { loadRuleTestFile } from '../../../rules/testing/run-rule-tests.js';

const HEAD = 'apiVersion: nodewarden.io/v1\nkind: RuleSet\nrules:\n';
const rule = (where: string): string => `${HEAD}  - id: evil
    description: a pattern from a hostile author
    severity: warning
    match: { type: gpu.xid, where: { data.message: { regex: ${where} } } }
    condition: { count: { gte: 1, within: 1m } }
    actions: [{ type: page }]
`;

function xid(message: string): EventEnvelope {
  return { v: 1, id: 'e1', ts: '2026-11-21T10:00:00.000Z', node: 'n1', type: 'gpu.xid', source: 'kmsg', labels: {}, data: { code: 13, pci: null, message } };
}

describe('hostile rules: regular expressions run in linear time (RE2)', function () {
  it('evaluates (a+)+$ on hostile input at once instead of hanging', function () {
    // With backtracking RegExp 25 characters take ~10 s and 34 take hours.
    this.timeout(30_000);
    const problems: InputProblem[] = [];
    const p = compileWhere({ 'data.message': { regex: '(a+)+$' } }, '/w', problems);
    expect(problems).to.deep.equal([]);
    const t0 = Date.now();
    expect(p(xid(`${'a'.repeat(25)}!`))).to.equal(false);
    expect(Date.now() - t0).to.be.lessThan(1000);
    expect(p(xid(`${'a'.repeat(100_000)}!`))).to.equal(false);
    expect(p(xid('xaaa'))).to.equal(true);
    expect(Date.now() - t0).to.be.lessThan(2000);
  });

  it('rejects backreferences and lookaround at load, naming file#rule/field', function () {
    for (const pat of ['"(a)\\\\1"', '"(?=a)b"', '"(?<!x)y"']) {
      let err: unknown;
      try {
        parseRules(rule(pat), 'evil.yaml');
      } catch (e) {
        err = e;
      }
      expect(err, pat).to.be.instanceOf(PoisonInputError);
      const p = (err as PoisonInputError).problems[0]!;
      expect(p.path).to.equal('evil.yaml#evil/match/where/data.message/regex');
      expect(p.message).to.match(/RE2/);
    }
  });

  it('refuses a rule file over 4 MiB before reading it', function () {
    const f = join(mkdtempSync(join(tmpdir(), 'nw-big-rules-')), 'big.yaml');
    writeFileSync(f, `# ${'x'.repeat(5 * 1024 * 1024)}\n`);
    expect(() => loadRules(f)).to.throw(PoisonInputError, /big\.yaml: cannot read: file is \d+ bytes; the limit is 4194304/);
  });

  it('rejects an overlong pattern at load', function () {
    expect(() => parseRules(rule(`"${'a'.repeat(5000)}"`), 'long.yaml')).to.throw(PoisonInputError, /longer than 1024/);
  });
});

describe('hostile rule test files (`rules test`)', function () {
  const dir = mkdtempSync(join(tmpdir(), 'nw-rules-test-'));
  function problems(yaml: string): InputProblem[] {
    const f = join(dir, `t${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(f, yaml);
    try {
      loadRuleTestFile(f);
    } catch (err) {
      expect(err).to.be.instanceOf(PoisonInputError);
      return (err as PoisonInputError).problems;
    }
    throw new Error('expected the file to be rejected');
  }
  const EV = '{ node: n1, type: gpu.xid, data: { code: 79, pci: null, message: x } }';

  it('rejects input_events / expected of the wrong type', function () {
    const ps = problems(`tests:\n  - name: a\n    input_events: { node: n1 }\n    expected: "cordon"\n`);
    expect(ps.map((p) => p.path)).to.include.members(['/tests/0/input_events', '/tests/0/expected']);
  });

  it('rejects unknown keys at every level', function () {
    const ps = problems(`startt: 2026-11-21T10:00:00Z\ntests:\n  - name: a\n    expect: []\n    input_events:\n      - { at: 0s, nod: n1, node: n1, type: gpu.xid, data: { code: 79, pci: null, message: x } }\n`);
    expect(ps.map((p) => p.path)).to.include.members(['/startt', '/tests/0/expect', '/tests/0/input_events/0/nod']);
  });

  it('rejects a negative, fractional or huge repeat, at once and without expanding it', function () {
    const t0 = Date.now();
    for (const r of ['-1', '0', '1.5', '"3"', '1000000000']) {
      const ps = problems(`tests:\n  - name: a\n    input_events:\n      - { at: 0s, repeat: ${r}, every: 1s, node: n1, type: gpu.xid, data: { code: 79, pci: null, message: x } }\n`);
      expect(ps.map((p) => p.path), r).to.deep.equal(['/tests/0/input_events/0/repeat']);
      expect(ps[0]!.message).to.match(/whole number from 1 to 10000/);
    }
    expect(Date.now() - t0).to.be.lessThan(5000);
  });

  it('bounds the total number of expanded events per file', function () {
    const many = Array.from({ length: 11 }, () => `      - { at: 0s, repeat: 10000, every: 1s, ${EV.slice(2)}`).join('\n');
    const ps = problems(`tests:\n  - name: a\n    input_events:\n${many}\n`);
    expect(ps).to.deep.equal([{ path: '/tests/0/input_events/10/repeat', message: 'the file expands to more than 100000 input events' }]);
  });

  it('validates a test config override like a config file (bounds included)', function () {
    const ps = problems(`tests:\n  - name: a\n    config: { guard: { maxUnavailable: "150%" } }\n    input_events: []\n`);
    expect(ps.map((p) => p.path)).to.deep.equal(['/tests/0/config/guard/maxUnavailable']);
  });
});
