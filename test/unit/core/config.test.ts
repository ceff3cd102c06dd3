import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import { budgetFor } from '../../../remediations/guard/policy.js';
import { loadConfig, readSecret } from '../../../adapters/config-file.js';
import { PoisonInputError } from '../../../core/errors.js';

function file(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'nw-cfg-'));
  const p = join(dir, 'config.yaml');
  writeFileSync(p, text);
  return p;
}

function problemsOf(fn: () => unknown): Array<{ path: string; message: string }> {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(PoisonInputError);
    return (err as PoisonInputError).problems;
  }
  throw new Error('expected a PoisonInputError');
}

describe('config loading', () => {
  it('returns the shipped defaults when nothing is given', () => {
    const cfg = loadConfig();
    expect(cfg).to.deep.equal(DEFAULT_CONFIG);
    expect(cfg.guard.maxUnavailable).to.equal('5%');
  });

  it('merges file, then environment, then flags (later wins) and keeps untouched defaults', () => {
    const p = file('kafka:\n  brokers: ["file:9092"]\nguard:\n  maxUnavailable: "3%"\n  dryRun: false\n');
    const cfg = loadConfig({
      file: p,
      env: { NODEWARDEN_KAFKA_BROKERS: 'env-a:9092, env-b:9092', NODEWARDEN_DRY_RUN: 'true' },
      flags: { 'guard.maxUnavailable': '2', 'agent.node': 'gpu-1' },
    });
    expect(cfg.kafka.brokers).to.deep.equal(['env-a:9092', 'env-b:9092']);
    expect(cfg.guard.dryRun).to.equal(true);
    expect(cfg.guard.maxUnavailable).to.equal('2');
    expect(cfg.agent.node).to.equal('gpu-1');
    expect(cfg.guard.targetCooldown).to.equal(DEFAULT_CONFIG.guard.targetCooldown);
    expect(cfg.kafka.topics).to.deep.equal(DEFAULT_CONFIG.kafka.topics);
  });

  it('reports every problem with its field path, naming the file', () => {
    const p = file(
      'guard:\n  maxUnavailabel: 5%\n  targetCooldown: 10 minutes\n  rateLimits:\n    cordon: { count: -1, per: 1m }\nkafka:\n  brokers: []\nagent:\n  http: { port: 70000 }\n',
    );
    let message = '';
    try {
      loadConfig({ file: p });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).to.include(p);
    const problems = problemsOf(() => loadConfig({ file: p }));
    const byPath = Object.fromEntries(problems.map((x) => [x.path, x.message]));
    expect(byPath['/guard/maxUnavailabel']).to.equal('unknown setting');
    expect(byPath['/guard/targetCooldown']).to.match(/duration/);
    expect(byPath['/guard/rateLimits/cordon/count']).to.match(/>= 0/);
    expect(byPath['/kafka/brokers']).to.match(/at least 1/);
    expect(byPath['/agent/http/port']).to.match(/<= 65535/);
    expect(problems).to.have.length(5);
  });

  it('rejects malformed YAML, a non-mapping document and an unreadable file clearly', () => {
    expect(problemsOf(() => loadConfig({ file: file('guard: [unclosed\n') }))[0]?.message).to.be.a('string');
    expect(problemsOf(() => loadConfig({ file: file('- a\n- b\n') }))[0]?.message).to.match(/mapping/);
    expect(problemsOf(() => loadConfig({ file: '/nonexistent/nodewarden.yaml' }))[0]?.message).to.match(/cannot read/);
  });

  it('takes rule paths as one path or a list (the pack plus site rules), never an empty list', () => {
    expect(loadConfig({ file: file('engine:\n  rulesPath: [/app/rules/pack, /etc/nodewarden/rules]\n') }).engine.rulesPath).to.deep.equal(['/app/rules/pack', '/etc/nodewarden/rules']);
    expect(loadConfig({ file: file('engine:\n  rulesPath: /etc/rules\n') }).engine.rulesPath).to.equal('/etc/rules');
    expect(problemsOf(() => loadConfig({ file: file('engine:\n  rulesPath: []\n') }))[0]?.path).to.equal('/engine/rulesPath');
  });

  it('rejects malformed environment values instead of guessing', () => {
    expect(problemsOf(() => loadConfig({ env: { NODEWARDEN_DRY_RUN: 'yes' } }))[0]?.message).to.match(/true or false/);
    expect(problemsOf(() => loadConfig({ env: { NODEWARDEN_AGENT_PORT: '9x' } }))[0]?.message).to.match(/integer/);
  });

  it('reads secrets from a file or an environment variable, never from config', () => {
    const p = file('  s3cret-key\n');
    expect(readSecret(p, 'X', {})).to.equal('s3cret-key');
    expect(readSecret(null, 'NW_KEY', { NW_KEY: ' k ' })).to.equal('k');
    expect(readSecret(null, 'NW_KEY', {})).to.equal(null);
  });

  it('computes budgets as a percentage (at least 1 of a non-empty fleet) or a count', () => {
    expect(budgetFor('5%', 100)).to.equal(5);
    expect(budgetFor('5%', 10)).to.equal(1);
    expect(budgetFor('5%', 0)).to.equal(0);
    expect(budgetFor('5%', 1000)).to.equal(50);
    expect(budgetFor('3', 1000)).to.equal(3);
  });

  it('accepts taint (a GPU taint that really runs as one) in incidents.approvals.requiredFor, nothing outside the list', () => {
    const cfg = loadConfig({ file: file('incidents:\n  approvals:\n    requiredFor: [taint, rollback]\n') });
    expect(cfg.incidents.approvals.requiredFor).to.deep.equal(['taint', 'rollback']);
    const problems = problemsOf(() => loadConfig({ file: file('incidents:\n  approvals:\n    requiredFor: [reboot]\n') }));
    expect(problems.map((x) => x.path).join(' ')).to.include('/incidents/approvals/requiredFor');
  });
});
