import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { PoisonInputError } from '../../../core/errors.js';
import { packageRoot } from '../../../adapters/paths.js';
import { defaultRulesPath, loadRules, parseRules } from '../../../rules/language/load.js';

const HEAD = 'apiVersion: nodewarden.io/v1\nkind: RuleSet\nrules:\n';
const GOOD = `${HEAD}  - id: ok-rule
    description: fine
    severity: warning
    match: { type: gpu.xid, where: { data.code: { in: [79] } } }
    condition: { count: { gte: 1, within: 1m } }
    actions: [{ type: page }]
`;

function problemsOf(fn: () => unknown): Array<{ path: string; message: string }> {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(PoisonInputError);
    expect((err as PoisonInputError).code).to.equal('RULE_INVALID');
    return (err as PoisonInputError).problems;
  }
  throw new Error('expected the load to fail');
}

describe('rules language: loading and validation', function () {
  it('loads the shipped default pack with every brief rule and a runbook for each', function () {
    expect(defaultRulesPath()).to.match(/rules[/\\]pack$/);
    const rs = loadRules(defaultRulesPath());
    for (const id of [
      'gpu-xid-fatal',
      'gpu-xid-node-fatal',
      'gpu-xid-application-repeated',
      'gpu-xid-informational',
      'gpu-driver-rollout-regression',
      'containerd-unresponsive',
      'kubeproxy-restart-loop',
      'kubeproxy-conntrack-failing',
      'conntrack-table-near-full',
      'conntrack-dropping',
    ])
      expect(rs.byId.has(id), id).to.equal(true);
    for (const r of rs.rules) {
      expect(r.runbook, r.id).to.equal(`docs/runbooks/${r.id}.md`);
      expect(existsSync(join(packageRoot(), r.runbook as string)), r.runbook).to.equal(true);
      expect(r.enabled).to.equal(true);
      expect(r.description.length).to.be.greaterThan(10);
    }
    // never cordon for application/informational Xids or network signals
    for (const id of ['gpu-xid-application-repeated', 'gpu-xid-informational', 'kubeproxy-restart-loop', 'kubeproxy-conntrack-failing', 'conntrack-table-near-full', 'conntrack-dropping'])
      expect(rs.byId.get(id)!.actions.map((a) => a.type)).to.not.include('cordon');
  });

  it('incident: names the incident a rule\'s pages join (the shipped rollout rule joins the node-fault storm)', function () {
    expect(loadRules(defaultRulesPath()).byId.get('gpu-driver-rollout-regression')?.incident).to.equal('gpu-xid-fatal');
    expect(parseRules(GOOD.replace('severity: warning', 'severity: warning\n    incident: gpu-xid-fatal'), 'i.yaml').rules[0]?.incident).to.equal('gpu-xid-fatal');
    // its own id is the default: not recorded
    expect(parseRules(GOOD.replace('severity: warning', 'severity: warning\n    incident: ok-rule'), 'i.yaml').rules[0]?.incident).to.equal(undefined);
    for (const bad of ['Not_An_Id', '""', '[a]'])
      expect(problemsOf(() => parseRules(GOOD.replace('severity: warning', `severity: warning\n    incident: ${bad}`), 'i.yaml')).map((p) => p.path)).to.deep.equal(['i.yaml#ok-rule/incident']);
  });

  it('reports EVERY problem with <file>#<rule id>/<field path>', function () {
    const text = `${HEAD}  - id: bad-one
    description: several mistakes
    severity: urgent
    colour: blue
    match: { type: gpu.xyz, where: { data.code: { between: [1, 2] }, data.msg: { regex: "(" } } }
    condition: { count: { gte: 1, within: 5 minutes } }
    summary: "{{nodename}}"
    actions: [{ type: reboot }]
  - id: bad-two
    description: missing condition and actions
    severity: info
    match: { type: gpu.xid }
  - description: no id
    severity: info
`;
    const problems = problemsOf(() => parseRules(text, 'bad.yaml'));
    const paths = problems.map((p) => p.path);
    expect(paths).to.include.members([
      'bad.yaml#bad-one/severity',
      'bad.yaml#bad-one/colour',
      'bad.yaml#bad-one/match/type',
      'bad.yaml#bad-one/match/where/data.code/between',
      'bad.yaml#bad-one/match/where/data.msg/regex',
      'bad.yaml#bad-one/condition/count/within',
      'bad.yaml#bad-one/summary',
      'bad.yaml#bad-one/actions/0/type',
      'bad.yaml#bad-two/condition',
      'bad.yaml#bad-two/actions',
      'bad.yaml#rules[2]/id',
    ]);
    expect(problems.find((p) => p.path === 'bad.yaml#bad-one/condition/count/within')!.message).to.match(/duration/);
    expect(problems.find((p) => p.path === 'bad.yaml#bad-one/summary')!.message).to.match(/unknown variable/);
  });

  it('validates construct-specific fields', function () {
    const text = `${HEAD}  - id: c1
    description: constructs
    severity: info
    match: { type: net.conntrack }
    scope: { group: "" }
    condition:
      allOf:
        of:
          - distinctNodes: { gte: 3, gtePercent: 10, within: 1m }
          - increase: { counter: "bogus.path", gte: 1, within: 1m }
          - absent: { for: 1m }
          - sequence: { within: 1m, steps: [{ type: gpu.xid }] }
    clear: { after: 1m, sustained: { for: 1m, while: {} } }
    actions: [{ type: page, severity: loud }, { type: rollback, workload: { kind: StatefulSet, namespace: a, name: b } }]
`;
    const paths = problemsOf(() => parseRules(text, 'c.yaml')).map((p) => p.path);
    expect(paths).to.include.members([
      'c.yaml#c1/scope/group',
      'c.yaml#c1/condition/allOf/of/0/distinctNodes',
      'c.yaml#c1/condition/allOf/of/1/increase/counter',
      'c.yaml#c1/condition/allOf/of/2/absent',
      'c.yaml#c1/condition/allOf/of/3/sequence/steps',
      'c.yaml#c1/clear',
      'c.yaml#c1/actions/0/severity',
      'c.yaml#c1/actions/1/workload/kind',
    ]);
  });

  it('refuses a fleet-scoped cordon and a group cordon without distinctNodes', function () {
    const text = `${HEAD}  - id: fleet-cordon
    description: unsafe
    severity: critical
    match: { type: gpu.xid }
    scope: fleet
    condition: { count: { gte: 1, within: 1m } }
    actions: [{ type: cordon }]
  - id: group-cordon
    description: unsafe too
    severity: critical
    match: { type: gpu.xid }
    scope: { group: pool }
    condition: { count: { gte: 1, within: 1m } }
    actions: [{ type: cordon }]
`;
    const paths = problemsOf(() => parseRules(text, 'f.yaml')).map((p) => p.path);
    expect(paths).to.include.members(['f.yaml#fleet-cordon/actions/0', 'f.yaml#group-cordon/actions/0']);
  });

  it('names every object inherits (constructor, __proto__, toString) are neither template variables, fields nor group labels', function () {
    // Before: `{{constructor}}` loaded and rendered the whole template context
    // (Object(c)) into pages; `data.constructor` read Object's constructor, so
    // `exists: true` always held; `scope: {group: constructor}` grouped every
    // event under the text of a function.
    const rule = (over: string): string => GOOD.replace('    actions: [{ type: page }]\n', `${over}    actions: [{ type: page }]\n`);
    const cases: Array<[string, string, RegExp]> = [
      [rule('    summary: "{{constructor}}"\n'), 'x.yaml#ok-rule/summary', /unknown variable "\{\{constructor\}\}"/],
      [rule('    summary: "{{toString}} on {{node}}"\n'), 'x.yaml#ok-rule/summary', /unknown variable "\{\{toString\}\}"/],
      [rule('    summary: "{{data.constructor}}"\n'), 'x.yaml#ok-rule/summary', /"constructor" is a name every object inherits/],
      [GOOD.replace('data.code: { in: [79] }', 'data.constructor: { exists: true }'), 'x.yaml#ok-rule/match/where/data.constructor', /inherits/],
      [GOOD.replace('data.code: { in: [79] }', 'labels.__proto__: { exists: true }'), 'x.yaml#ok-rule/match/where/labels.__proto__', /inherits/],
      [GOOD.replace('data.code: { in: [79] }', 'data.gpu.hasOwnProperty: x'), 'x.yaml#ok-rule/match/where/data.gpu.hasOwnProperty', /inherits/],
      [rule('    scope: { group: constructor }\n'), 'x.yaml#ok-rule/scope/group', /label name/],
    ];
    for (const [text, path, message] of cases) {
      const problems = problemsOf(() => parseRules(text, 'x.yaml'));
      expect(problems.map((p) => p.path), text).to.include(path);
      expect(problems.find((p) => p.path === path)?.message, text).to.match(message);
    }
    expect(parseRules(rule('    summary: "{{node}} {{data.code}}"\n'), 'x.yaml').rules).to.have.length(1);
  });

  it('a directory with one bad file never half-loads', function () {
    const dir = mkdtempSync(join(tmpdir(), 'nw-rules-'));
    writeFileSync(join(dir, 'a-good.yaml'), GOOD);
    writeFileSync(join(dir, 'b-bad.yaml'), `${HEAD}  - id: x\n    severity: nope\n`);
    const problems = problemsOf(() => loadRules(dir));
    expect(problems.every((p) => p.path.startsWith(join(dir, 'b-bad.yaml')))).to.equal(true);
    expect(loadRules(join(dir, 'a-good.yaml')).rules).to.have.length(1);
  });

  it('rejects duplicate rule ids across files, YAML syntax errors and a wrong apiVersion', function () {
    const dir = mkdtempSync(join(tmpdir(), 'nw-rules-'));
    writeFileSync(join(dir, 'a.yaml'), GOOD);
    writeFileSync(join(dir, 'b.yaml'), GOOD);
    expect(problemsOf(() => loadRules(dir)).map((p) => p.message).join()).to.match(/duplicate rule id/);
    expect(problemsOf(() => parseRules('rules: [\n', 'y.yaml'))[0]!.message).to.match(/YAML/);
    expect(problemsOf(() => parseRules(GOOD.replace('nodewarden.io/v1', 'v2'), 'v.yaml')).map((p) => p.path)).to.include('v.yaml#/apiVersion');
    expect(problemsOf(() => loadRules(join(dir, 'missing.yaml')))[0]!.message).to.match(/cannot read/);
  });

  it('parses multi-document text and keeps file order', function () {
    const rs = parseRules(`${GOOD}---\n${GOOD.replace('ok-rule', 'ok-two')}`, 'multi.yaml');
    expect(rs.rules.map((r) => r.id)).to.deep.equal(['ok-rule', 'ok-two']);
    expect(rs.byId.get('ok-two')!.source).to.equal('multi.yaml');
  });
});
