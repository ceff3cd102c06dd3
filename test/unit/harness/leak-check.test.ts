/**
 * The suites' leaked-handle check (test/harness/leak-check.ts): a mocha run
 * whose tests all pass but leave a ref'd timer, a retry loop, a server with a
 * connected socket and a child process fails (exit 1), naming each with its
 * address, command line or callback (and the operation a retry timer closes
 * over) and the test it came from; unref'd handles do not
 * count, and a clean run ends by itself with exit 0.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const here = path.dirname(fileURLToPath(import.meta.url));
const leakCheck = path.resolve(here, '../../harness/leak-check.js');
const mochaBin = fileURLToPath(new URL('../../../../node_modules/mocha/bin/mocha.js', import.meta.url));

const LEAKY = `
import net from 'node:net';
import { spawn } from 'node:child_process';
describe('leaky', () => {
  it('leaves an interval', () => {
    setInterval(function leakyTick() { return 1; }, 1000);
    setTimeout(() => undefined, 60_000).unref();
  });
  it('leaves a server and a client socket', async () => {
    const server = net.createServer(() => undefined).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const sock = net.connect(server.address().port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const quiet = net.connect(server.address().port, '127.0.0.1');
    await new Promise((r) => quiet.once('connect', r));
    quiet.unref();
    process.stdout.write('PORT=' + server.address().port + '\\n');
  });
  it('leaves a retry loop', () => {
    function retrier(fn) {
      const retry = (ms) => fn().catch(() => { setTimeout(() => retry(ms), ms); });
      return retry(1500);
    }
    return retrier(async function pollTheThing() { throw new Error('down'); });
  });
  it('leaves a child process', () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    process.stdout.write('PID=' + child.pid + '\\n');
  });
});
`;

const CLEAN = `
import net from 'node:net';
describe('clean', () => {
  it('closes what it opens', async () => {
    const server = net.createServer((s) => s.end()).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const t = setInterval(() => undefined, 1000);
    clearInterval(t);
    setTimeout(() => undefined, 60_000).unref();
    await new Promise((r) => server.close(r));
  });
});
`;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function runMocha(dir: string, source: string): Promise<Run> {
  const file = path.join(dir, 'fixture.test.mjs');
  fs.writeFileSync(file, source);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [mochaBin, '--timeout', '5000', '--require', leakCheck, file], {
      env: { ...process.env, NODEWARDEN_LEAK_GRACE_MS: '300' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

describe('test harness: leaked-handle check', function () {
  this.timeout(20_000);
  let dir: string;
  let leakedPid: number | undefined;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nw-leak-'));
    leakedPid = undefined;
  });
  afterEach(() => {
    if (leakedPid !== undefined) {
      try {
        process.kill(leakedPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('fails a passing run that leaves ref\'d handles, naming each and the test it came from', async () => {
    const run = await runMocha(dir, LEAKY);
    const pid = /PID=(\d+)/.exec(run.stdout)?.[1];
    if (pid) leakedPid = Number(pid);
    const port = /PORT=(\d+)/.exec(run.stdout)?.[1];
    expect(run.stdout).to.match(/4 passing/);
    expect(run.code, run.stderr).to.equal(1);
    expect(run.stderr).to.include('leaked handles:');
    const lines = run.stderr.split('\n').filter((l) => l.startsWith('  - '));
    expect(lines.find((l) => l.includes('Timeout every 1000 ms') && l.includes('leakyTick')), run.stderr).to.include('"leaky leaves an interval"');
    expect(lines.find((l) => l.includes(`Server listening on`) && l.includes(`"port":${String(port)}`)), run.stderr).to.include('"leaky leaves a server and a client socket"');
    expect(lines.filter((l) => l.includes(`-> 127.0.0.1:${String(port)}`)), run.stderr).to.have.length(1); // the unref'd one is not listed
    expect(lines.find((l) => l.includes(`ChildProcess pid ${String(pid)}: sleep 30`)), run.stderr).to.include('"leaky leaves a child process"');
    // a timer re-armed from a promise chain: its callback says little, the operation it closes over names it
    expect(lines.find((l) => l.includes('Timeout after 1500 ms: () => retry(ms)')), run.stderr).to.include('fn = async function pollTheThing()');
    expect(lines.filter((l) => l.includes('after 60000 ms')), 'the unref\'d timer').to.have.length(0);
  });

  it('lets a clean run end by itself with exit 0', async () => {
    const run = await runMocha(dir, CLEAN);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.match(/1 passing/);
    expect(run.stderr).not.to.include('leaked handles');
  });
});
