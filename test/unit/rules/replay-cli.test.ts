/**
 * `nodewarden replay` end to end: spawns ./bin/nodewarden over the incident
 * fixture (events + a kubectl -o yaml cluster dump) and compares the ledger
 * with the expected file byte for byte, twice.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { packageRoot } from '../../../adapters/paths.js';

const root = packageRoot();
const bin = join(root, 'bin', 'nodewarden');
const inc = (f: string): string => join(root, 'test', 'fixtures', 'incidents', f);

function nodewarden(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('nodewarden replay (CLI)', function () {
  this.timeout(120_000);
  const args = ['replay', '--cluster', inc('driver-rollout-regression.cluster.yaml'), inc('driver-rollout-regression.jsonl')];

  it('replays the driver-rollout incident to the expected ledger, byte-identical across runs', function () {
    const expected = readFileSync(inc('driver-rollout-regression.ledger.jsonl'), 'utf8');
    const a = nodewarden(args);
    const b = nodewarden(args);
    expect(a.code, a.stderr).to.equal(0);
    expect(a.stdout).to.equal(expected);
    expect(b.stdout).to.equal(a.stdout);
    const recs = a.stdout.trim().split('\n').map((l) => JSON.parse(l) as { rule: string; action: string; outcome: string; guard: string | null; toRevision?: number; target: { name: string } });
    // rollbacks need a person's approval by default: with nobody in a replay it waits, then the timeout denies it (and pages)
    const rbs = recs.filter((r) => r.action === 'rollback');
    expect(rbs.map((r) => [r.outcome, r.guard])).to.deep.equal([
      ['pending-approval', null],
      ['denied', 'approvalTimeout'],
    ]);
    expect(rbs[0]).to.include({ rule: 'gpu-driver-rollout-regression', toRevision: 5 });
    // the real guard runs over the simulated cluster: 5 % of 60 nodes = 3 cordons, the 4th is denied
    const cordons = recs.filter((r) => r.action === 'cordon');
    expect(cordons.map((r) => `${r.target.name}:${r.outcome}`)).to.deep.equal([
      'gpu-worker-042:executed',
      'gpu-worker-017:executed',
      'gpu-worker-105:executed',
      'gpu-worker-200:denied',
    ]);
    expect(cordons[3]!.guard).to.equal('maxUnavailable');
    // invalid lines are reported with their line numbers, not fatal
    expect(a.stderr).to.match(/driver-rollout-regression\.jsonl:101: skipped invalid event/);
    expect(a.stderr).to.match(/driver-rollout-regression\.jsonl:201: skipped invalid event: \/node/);
  });

  it('--dry-run records dry-run outcomes and --disable switches a rule off', function () {
    const r = nodewarden(['replay', '--dry-run', '--disable', 'gpu-xid-fatal', ...args.slice(1)]);
    expect(r.code, r.stderr).to.equal(0);
    const recs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { rule: string; action: string; outcome: string; guard: string | null; target: { name: string } });
    expect(recs.length).to.be.greaterThan(5);
    // every action is dry-run; the one exception is a page that joins the incident already open (sent in its next update, as without --dry-run)
    expect(recs.filter((x) => x.outcome !== 'dry-run').map((x) => `${x.rule}:${x.action}:${x.target.name}:${x.outcome}:${x.guard}`)).to.deep.equal(['gpu-xid-node-fatal:page:gpu-worker-105:suppressed:incidentOpen']);
    expect(recs.some((x) => x.rule === 'gpu-xid-fatal')).to.equal(false);
  });

  it('rejects an unknown --disable rule and a missing file with exit 2', function () {
    expect(nodewarden(['replay', '--disable', 'no-such-rule', inc('driver-rollout-regression.jsonl')]).code).to.equal(2);
    expect(nodewarden(['replay']).code).to.equal(2);
  });

  it('without --cluster there is no change to correlate: no rollback', function () {
    const r = nodewarden(['replay', inc('driver-rollout-regression.jsonl')]);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.not.match(/"action":"rollback"/);
    expect(r.stdout).to.match(/"rule":"gpu-xid-fatal","action":"cordon"/);
  });
});

describe('nodewarden rules check / test (CLI)', function () {
  this.timeout(120_000);

  it('check: OK for the shipped pack; every error with file, rule id and field path and exit 2 for a bad file', function () {
    const ok = nodewarden(['rules', 'check', join(root, 'rules', 'pack')]);
    expect(ok.code, ok.stdout + ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(/^OK {4}.*gpu-xid\.yaml \(6 rules\)$/m);
    expect(ok.stdout).to.match(/^OK {4}.*xid-catalogue\.yaml \(0 rules, Xid catalogue: \d+ Xids\)$/m);
    const dir = mkdtempSync(join(tmpdir(), 'nw-check-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'apiVersion: nodewarden.io/v1\nkind: RuleSet\nrules:\n  - id: r1\n    description: d\n    severity: loud\n    match: { type: gpu.xid }\n    condition: { count: { gte: 1, within: soon } }\n    actions: [{ type: page }]\n');
    const r = nodewarden(['rules', 'check', bad]);
    expect(r.code).to.equal(2);
    expect(r.stdout).to.include(`${bad}#r1/severity`);
    expect(r.stdout).to.include(`${bad}#r1/condition/count/within`);
  });

  it('test: passes the shipped rule tests, and a failing expectation exits 1 with a diff', function () {
    const ok = nodewarden(['rules', 'test', join(root, 'test', 'rules', 'gpu-xid.yaml')]);
    expect(ok.code, ok.stdout).to.equal(0);
    expect(ok.stdout).to.match(/passed, 0 failed/);
    const dir = mkdtempSync(join(tmpdir(), 'nw-rtest-'));
    const f = join(dir, 't.yaml');
    writeFileSync(
      f,
      'tests:\n  - name: wrong expectation\n    input_events:\n      - { at: +0s, node: n1, type: gpu.xid, data: { code: 79, message: x } }\n    eval_time: 1m\n    expected:\n      - { rule: gpu-xid-fatal, action: rollback }\n',
    );
    const r = nodewarden(['rules', 'test', f]);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.match(/FAIL .*wrong expectation/);
    expect(r.stdout).to.match(/- missing: +\{"rule":"gpu-xid-fatal","action":"rollback"\}/);
    expect(r.stdout).to.match(/\+ unexpected: .*"action":"cordon"/);
  });
});
