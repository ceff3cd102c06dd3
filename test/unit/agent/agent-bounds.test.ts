/**
 * Agent bounds (issue 10): a kernel-log device that never stops, a 5 MB Xid
 * message, numbers beyond the safe range, a slow-drip HTTP endpoint.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { createCollectorContext } from '../../../agent/agent.js';
import { MAX_FIELD_CHARS } from '../../../agent/bounds.js';
import { createKernelLogCollector } from '../../../agent/collectors/kernel-log.js';
import { httpGetText } from '../../../agent/collectors/http-get.js';
import { parseConntrackStat } from '../../../agent/parsers/conntrack.js';
import { systemClock } from '../../../core/clock.js';
import { envelopeProblems } from '../../../core/envelope.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../agent/metrics.js';
import { packageRoot } from '../../../adapters/paths.js';

function hostRoot(kmsg: string | { symlinkTo: string }): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'nw-agent-bounds-'));
  mkdirSync(path.join(root, 'dev'));
  if (typeof kmsg === 'string') writeFileSync(path.join(root, 'dev', 'kmsg'), kmsg);
  else symlinkSync(kmsg.symlinkTo, path.join(root, 'dev', 'kmsg'));
  return root;
}

async function once(root: string) {
  const ctx = createCollectorContext({ node: 'n1', labels: {}, hostRoot: root, clock: systemClock, logger: silentLogger, registry: createRegistry('agent') });
  return createKernelLogCollector(ctx, { pollMs: 50 }).collectOnce();
}

describe('agent bounds', function () {
  this.timeout(60_000);

  it('`agent --once` ends when dev/kmsg is a device that keeps returning data', function () {
    const root = hostRoot({ symlinkTo: '/dev/zero' });
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [path.join(packageRoot(), 'bin', 'nodewarden'), 'agent', '--once', '--host-root', root, '--dcgm-url', 'http://127.0.0.1:1/metrics'], {
      encoding: 'utf8',
      timeout: 45_000,
      env: { ...process.env, HOME: root, KUBECONFIG: '' },
    });
    expect(r.signal, 'killed by the test timeout: --once never ended').to.equal(null);
    expect(r.status, r.stderr).to.equal(0);
    expect(Date.now() - t0).to.be.lessThan(40_000);
  });

  it('a 5 MB Xid message is emitted truncated with a marker', async function () {
    const huge = 'A'.repeat(5 * 1024 * 1024);
    const r = await once(hostRoot(`[  100.000001] NVRM: Xid (PCI:0000:3b:00): 13, pid=1234, name=python, Graphics Exception: ${huge}\n`));
    expect(r.events).to.have.length(1);
    const data = r.events[0]!.data as { code: number; message: string; pid: number };
    expect(data.code).to.equal(13);
    expect(data.pid).to.equal(1234);
    expect(data.message.length).to.be.lessThan(MAX_FIELD_CHARS + 64);
    expect(data.message).to.match(/…\[truncated \d+ chars\]$/);
    expect(envelopeProblems(r.events[0])).to.deep.equal([]);
  });

  it('numbers beyond their range never become 1e+23', async function () {
    const r = await once(
      hostRoot(
        [
          '[  100.000001] NVRM: Xid (PCI:0000:3b:00): 100000000000000000000000, pid=1, name=x, bogus code',
          '[  100.000002] NVRM: Xid (PCI:0000:3b:00): 31, pid=100000000000000000000000, name=x, huge pid',
          '[  100.000003] NVRM: Xid (PCI:0000:3b:00 GPU-I:99999999999999999999): 43, pid=2, name=x, huge GPU instance',
          '',
        ].join('\n'),
      ),
    );
    const json = JSON.stringify(r.events);
    expect(json).to.not.match(/e\+\d/);
    expect(r.events.map((e) => (e.data as { code: number }).code)).to.deep.equal([31, 43]);
    expect((r.events[0]!.data as { pid: unknown }).pid).to.equal(null);
    expect((r.events[1]!.data as { gpuInstance: unknown }).gpuInstance).to.equal(null);
    const ct = parseConntrackStat('entries  searched found\n00000010 ffffffffffffffff 00000001\n00000010 ffffffffffffffff 00000002\n');
    expect(ct?.counters).to.deep.equal({ found: 3 });
    expect(JSON.stringify(ct)).to.not.match(/e\+\d/);
  });

  it('an HTTP endpoint that drips its body never outlives the timeout', async function () {
    const server = http.createServer((_req, res) => {
      res.writeHead(200);
      const t = setInterval(() => res.write('#'), 50);
      res.on('close', () => clearInterval(t));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
    const t0 = Date.now();
    try {
      await httpGetText(url, { timeoutMs: 500 }).then(
        () => expect.fail('expected a timeout'),
        (err: Error) => expect(err.message).to.match(/not complete within 500 ms/),
      );
      expect(Date.now() - t0).to.be.lessThan(3000);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
