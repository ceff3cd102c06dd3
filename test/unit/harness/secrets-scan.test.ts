/** The suite's own log scan (test/harness/secrets.ts) finds a leaked secret, names file and line, and redacts it. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { formatLeaks, scanForSecrets } from '../../harness/secrets.js';

describe('test harness: secret scan of the run logs', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nw-scan-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const secrets = [
    { label: 'admin token', value: 'tok-0123456789abcdef' },
    { label: 'slack webhook URL', value: 'http://127.0.0.1:4000/services/T0/B0/XXXX' },
  ];

  it('reports each leaking line of each log file, redacted', () => {
    fs.mkdirSync(path.join(dir, 'nw-engine-1'));
    fs.writeFileSync(path.join(dir, 'nw-engine-1', 'engine.log'), `{"msg":"ok"}\n{"msg":"call","authorization":"Bearer tok-0123456789abcdef"}\n`);
    fs.writeFileSync(path.join(dir, 'stdout.log'), `posting to http://127.0.0.1:4000/services/T0/B0/XXXX failed\n`);
    const { leaks, filesScanned } = scanForSecrets(dir, secrets);
    expect(filesScanned).to.equal(2);
    expect(leaks.map((l) => [path.relative(dir, l.file), l.line, l.label])).to.have.deep.members([
      ['nw-engine-1/engine.log', 2, 'admin token'],
      ['stdout.log', 1, 'slack webhook URL'],
    ]);
    const text = formatLeaks(leaks);
    expect(text).to.contain('"authorization":"Bearer <admin token>"');
    for (const s of secrets) expect(text).not.to.contain(s.value);
  });

  it('skips server data dirs and non-log inputs that hold secrets on purpose', () => {
    fs.mkdirSync(path.join(dir, 'data'));
    fs.writeFileSync(path.join(dir, 'data', '00000000000000000000.log'), 'tok-0123456789abcdef');
    fs.writeFileSync(path.join(dir, 'tokens'), 'tok-0123456789abcdef admin alice\n');
    fs.writeFileSync(path.join(dir, 'user-1.kubeconfig'), 'token: tok-0123456789abcdef\n');
    fs.writeFileSync(path.join(dir, 'redis.log'), 'clean\n');
    const { leaks, filesScanned } = scanForSecrets(dir, secrets);
    expect(filesScanned).to.equal(1);
    expect(leaks).to.deep.equal([]);
  });
});
