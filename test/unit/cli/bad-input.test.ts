/**
 * Every CLI command, given bad input, answers with ONE clear line on stderr and
 * exit code 2 — never a stack trace (issue 10). Spawns ./bin/nodewarden.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { packageRoot } from '../../../adapters/paths.js';

const root = packageRoot();
const bin = join(root, 'bin', 'nodewarden');
const dir = mkdtempSync(join(tmpdir(), 'nw-bad-input-'));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

/** A "billion laughs" document: 9^7 strings from a few hundred bytes. */
export const ALIAS_BOMB = [
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
  'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
  'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
  'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
  'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
  'g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]',
  '',
].join('\n');

function nodewarden(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const base = { ...process.env };
  delete base.KUBECONFIG;
  delete base.NODEWARDEN_DEBUG;
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', timeout: 30_000, env: { ...base, HOME: dir, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectOneLine(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  expect(r.code, r.stderr).to.equal(2);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, r.stderr).to.have.length(1);
  expect(r.stderr).to.not.match(/\n\s+at /);
  expect(lines[0]).to.match(pattern);
  expect(lines[0]).to.not.match(/nodewarden \w+: nodewarden/);
}

describe('CLI: bad input gives one clear line, never a stack trace', function () {
  this.timeout(60_000);
  const bomb = file('bomb.yaml', ALIAS_BOMB);
  const events = file('events.jsonl', '');

  it('rules check: a YAML alias bomb is a rule error naming the file', function () {
    const r = nodewarden(['rules', 'check', bomb]);
    expect(r.code).to.equal(2);
    expect(r.stdout).to.match(/bomb\.yaml#: YAML: Excessive alias count/);
    expect(`${r.stdout}${r.stderr}`).to.not.match(/\n\s+at /);
  });

  it('rules test: a YAML alias bomb in a test file', function () {
    const r = nodewarden(['rules', 'test', bomb]);
    expect(r.code).to.equal(2);
    expect(`${r.stdout}${r.stderr}`).to.match(/Excessive alias count/);
    expect(`${r.stdout}${r.stderr}`).to.not.match(/\n\s+at /);
  });

  it('replay: a missing --cluster file', function () {
    expectOneLine(nodewarden(['replay', '--cluster', join(dir, 'missing.yaml'), events]), /^nodewarden replay: .*missing\.yaml: .*cannot read: ENOENT/);
  });

  it('replay: a YAML alias bomb as --cluster and as --config', function () {
    expectOneLine(nodewarden(['replay', '--cluster', bomb, events]), /^nodewarden replay: .*bomb\.yaml: \/: YAML: Excessive alias count/);
    expectOneLine(nodewarden(['replay', '--config', bomb, events]), /^nodewarden replay: .*bomb\.yaml: \/: YAML: Excessive alias count/);
  });

  it('replay: a missing events file', function () {
    expectOneLine(nodewarden(['replay', join(dir, 'nope.jsonl')]), /^nodewarden replay: .*nope\.jsonl: .*cannot read: ENOENT/);
  });

  it('engine: no kubeconfig anywhere (and a kubeconfig path that does not exist)', function () {
    expectOneLine(nodewarden(['engine', '--store', 'memory']), /^nodewarden engine: no kubeconfig found \(set KUBECONFIG/);
    expectOneLine(nodewarden(['engine', '--store', 'memory'], { KUBECONFIG: join(dir, 'nope') }), /^nodewarden engine: cannot load the kubeconfig: ENOENT/);
  });

  it('engine: an alias bomb as --config', function () {
    expectOneLine(nodewarden(['engine', '--config', bomb]), /^nodewarden engine: .*bomb\.yaml: \/: YAML: Excessive alias count/);
  });

  it('agent: a broken config file, JSON or YAML, is one line naming the file and where', function () {
    expectOneLine(nodewarden(['agent', '--config', file('broken.json', '{"kafka": {"brokers": ["k:9092"]}')]), /^nodewarden agent: .*broken\.json: \/: YAML: Flow map must end with a \} at line 1, column \d+/);
    expectOneLine(nodewarden(['agent', '--config', file('repeated.json', '{"kafka": {}, "kafka": {}}')]), /^nodewarden agent: .*repeated\.json: \/: YAML: Map keys must be unique at line 1/);
    expectOneLine(nodewarden(['agent', '--config', file('unknown.json', '{"kafka": {"brokerz": ["k:9092"]}}')]), /^nodewarden agent: .*unknown\.json: \/kafka\/brokerz: unknown setting$/);
    expectOneLine(nodewarden(['agent', '--config', file('broken.yaml', 'kafka:\n  brokers: [k:9092\n')]), /^nodewarden agent: .*broken\.yaml: \/: YAML: Flow sequence in block collection must be sufficiently indented and end with a \]/);
    expectOneLine(nodewarden(['agent', '--config', file('unknown.yaml', 'kafka:\n  brokerz: [k:9092]\n')]), /^nodewarden agent: .*unknown\.yaml: \/kafka\/brokerz: unknown setting$/);
  });

  it('agent, demo, engine, replay: an unknown option', function () {
    for (const cmd of ['agent', 'demo', 'engine', 'replay']) expectOneLine(nodewarden([cmd, '--bogus']), new RegExp(`^nodewarden ${cmd}: Unknown option '--bogus'`));
  });

  it('ctl: a missing token file and a bad --server', function () {
    expectOneLine(nodewarden(['ctl', '--token-file', join(dir, 'nope'), 'rules', 'list']), /^nodewarden ctl: cannot read token file/);
    expectOneLine(nodewarden(['ctl', '--server', 'not-a-url', 'guard']), /^nodewarden ctl: --server must be an http\(s\) URL/);
  });
});
