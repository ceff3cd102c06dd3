/**
 * `nodewarden demo` end to end, as a user runs it: the real binary, no
 * servers, a short run with a fixed seed. While it runs, its /metrics and the
 * control API (through `nodewarden ctl`, with the printed token) answer.
 */
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { registerSecret } from '../harness/secrets.js';

const run = promisify(execFile);

interface Summary {
  kind: string;
  decisions: Record<string, Record<string, number>>;
  deniedBy: Record<string, number>;
  rollbacks: { executed: number; decided: number; toRevision: number | null };
  fleetLimit: number;
  maxCordonedByNodewarden: number;
  nodewardenUncordons: number;
  deadLetters: number;
}

describe('nodewarden demo (integration: the real CLI, nothing else)', function () {
  this.timeout(120_000);

  it('shows cordons, maxUnavailable denials and exactly one driver rollback, serves /metrics, exits 0', async () => {
    const child = spawn('./bin/nodewarden', ['demo', '--duration', '40s', '--no-tui', '--port', '0', '--seed', '7'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    let base: string | null = null;
    const baseFound = new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /metrics:\s+(http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(out);
        // the URL and the token lines may arrive in different chunks: wait for both
        if (m?.[1] && base === null && /token \(admin, this run only\): \S+\s/.test(out)) {
          base = m[1];
          resolve(base);
        }
      });
      child.once('exit', () => reject(new Error(`demo exited before printing its URL and token:\n${out}\n${err}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

    const url = await baseFound;
    const token = /token \(admin, this run only\): (\S+)/.exec(out)?.[1];
    expect(token, 'the admin token is printed').to.be.a('string');
    registerSecret('demo admin token', token!);
    // let the storyline get going, then look at it from outside
    await new Promise((r) => setTimeout(r, 30_000));
    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.status).to.equal(200);
    const text = await metrics.text();
    expect(text).to.match(/^nodewarden_engine_events_processed_total\{[^}]*\} [1-9]\d*/m);
    expect(text).to.include('nodewarden_demo_faults_injected_total');
    expect((await fetch(`${url}/readyz`)).status).to.equal(200);
    expect((await fetch(`${url}/api/v1/guard`)).status, 'control API needs the token').to.equal(401);
    const ctl = await run('./bin/nodewarden', ['ctl', '--server', url, '-o', 'json', 'guard'], { env: { ...process.env, NODEWARDEN_TOKEN: token } });
    const guard = JSON.parse(ctl.stdout) as { fleet: { limit: number; total: number } };
    expect(guard.fleet).to.include({ limit: 10, total: 200 });

    const code = await exited;
    expect(code, `stderr:\n${err}`).to.equal(0);
    const lines = out.split('\n');
    const ledger = lines.filter((l) => l.startsWith('ledger '));
    expect(ledger.filter((l) => / executed +cordon +Node\//.test(l)).length).to.be.greaterThan(0);
    expect(ledger.filter((l) => / denied +cordon +Node\/.*guard=maxUnavailable/.test(l)).length).to.be.greaterThan(0);
    expect(ledger.filter((l) => /rollback +DaemonSet\/gpu-operator\/nvidia-driver-daemonset/.test(l) && / executed /.test(l))).to.have.length(1);
    expect(ledger.some((l) => /page +Group\/pool=h100-train,zone=us-west-2a .*guard maxUnavailable stopped/.test(l)), 'one grouped denial page').to.equal(true);

    const summaryLine = lines.find((l) => l.startsWith('{"kind":"nodewarden.demo.summary"'));
    expect(summaryLine, 'a final JSON summary line').to.be.a('string');
    const s = JSON.parse(summaryLine ?? '{}') as Summary;
    expect(s.rollbacks.executed).to.equal(1);
    expect(s.decisions.cordon?.executed).to.be.greaterThan(0);
    expect(s.deniedBy.maxUnavailable).to.be.greaterThan(0);
    expect(s.fleetLimit).to.equal(10);
    expect(s.maxCordonedByNodewarden).to.be.at.most(s.fleetLimit);
    // the repair ladder is on in the demo: nodewarden uncordons only nodes whose repair it validated first
    const uncordoned = ledger.filter((l) => / executed +uncordon +Node\//.test(l)).map((l) => /uncordon +Node\/(\S+)/.exec(l)?.[1] ?? '');
    expect(s.nodewardenUncordons).to.equal(uncordoned.length);
    for (const n of uncordoned) {
      const at = (what: string): number => ledger.findIndex((l) => new RegExp(` executed +${what} +Node/${n} `).test(l));
      expect(at('validate'), `${n} uncordoned without a validation before`).to.be.within(0, at('uncordon') - 1);
      expect(at('cordon'), `${n} uncordoned but not cordoned by nodewarden before`).to.be.within(0, at('uncordon') - 1);
    }
    expect(s.deadLetters).to.equal(1);
  });
});
