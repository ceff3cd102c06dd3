import { expect } from 'chai';
import type { EventEnvelope } from '../../../core/envelope.js';
import { PoisonInputError } from '../../../core/errors.js';
import type { InputProblem } from '../../../core/errors.js';
import { parseRules } from '../../../rules/language/load.js';
import { compileWhere } from '../../../rules/language/predicates.js';

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

  it('rejects an overlong pattern at load', function () {
    expect(() => parseRules(rule(`"${'a'.repeat(5000)}"`), 'long.yaml')).to.throw(PoisonInputError, /longer than 1024/);
  });
});
