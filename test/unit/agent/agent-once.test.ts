/**
 * `nodewarden agent --once` end to end: spawns ./bin/nodewarden (the compiled
 * CLI; `npx tsc` first) over the fixture host roots and this machine's `/`,
 * and checks every stdout line is a valid envelope v1 and the expected
 * events are there. A temp host root with a real gRPC "containerd" on its
 * socket, a local dcgm-exporter and a local kube-proxy /healthz cover the
 * network collectors.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoDir } from '../../../agent/collectors/containerd.js';
import type { EventEnvelope } from '../../../core/envelope.js';
import { envelopeProblems } from '../../../core/envelope.js';
import { packageRoot } from '../../../adapters/paths.js';

const ROOT = packageRoot();
const BIN = path.join(ROOT, 'bin', 'nodewarden');
const HOSTROOTS = path.join(ROOT, 'test', 'fixtures', 'hostroots');

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  events: EventEnvelope[];
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'nw-home-')) };
  return env;
}

function runCli(args: string[], timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nodewarden ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(t);
      const events: EventEnvelope[] = [];
      const lines = args.includes('--once') ? stdout.split('\n').filter(Boolean) : [];
      for (const line of lines) {
        const parsed = JSON.parse(line) as unknown;
        const problems = envelopeProblems(parsed);
        if (problems.length > 0) {
          reject(new Error(`invalid line: ${line}\n${JSON.stringify(problems)}`));
          return;
        }
        events.push(parsed as EventEnvelope);
      }
      resolve({ code, stdout, stderr, events });
    });
  });
}

const ofType = (r: RunResult, t: string) => r.events.filter((e) => e.type === t);

/** A loopback port nothing listens on (bound once to find it, then closed): connecting is refused. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

describe('nodewarden agent --once (spawned CLI)', function () {
  this.timeout(60_000);

  before(() => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/cli/main.js missing: run `npx tsc -p tsconfig.json` first');
    for (const h of ['h100-xid79', 'a100-mixed', 'empty'])
      if (!fs.existsSync(path.join(HOSTROOTS, h))) throw new Error(`fixture host root ${h} missing under ${HOSTROOTS}`);
  });

  it('h100-xid79: the Xid 79 with PCI → GPU UUID, conntrack counters, a heartbeat; labels from --label', async () => {
    const r = await runCli(['agent', '--once', '--host-root', path.join(HOSTROOTS, 'h100-xid79'), '--node', 'gpu-worker-042', '--label', 'pool=h100-train', '--label', 'topology.kubernetes.io/zone=us-west-2c', '--output', 'jsonl']);
    expect(r.code, r.stderr).to.equal(0);
    const xids = ofType(r, 'gpu.xid');
    expect(xids.map((e) => e.data['code'])).to.include(79);
    const x79 = xids.find((e) => e.data['code'] === 79) as EventEnvelope;
    expect(x79.data['gpu']).to.match(/^GPU-[0-9a-f-]+$/);
    expect(x79.data['pci']).to.match(/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}/);
    expect(ofType(r, 'net.conntrack').some((e) => typeof e.data['count'] === 'number')).to.equal(true);
    expect(ofType(r, 'agent.heartbeat')).to.have.length(1);
    for (const e of r.events) {
      expect(e.node).to.equal('gpu-worker-042');
      expect(e.labels).to.deep.equal({ pool: 'h100-train', zone: 'us-west-2c' });
    }
    expect(new Set(r.events.map((e) => e.id)).size).to.equal(r.events.length);
    // Collectors with nothing to read are notes on stderr, not failures.
    expect(r.stderr).to.match(/containerd: skipped: no containerd socket/);
    expect(r.stderr).to.match(/kubeproxy-restart: skipped: no Kubernetes API/);
  });

  it('a100-mixed: hardware Xids 48/64/79 and the conntrack table-full kernel line', async () => {
    const r = await runCli(['agent', '--once', '--host-root', path.join(HOSTROOTS, 'a100-mixed'), '--node', 'a100-7']);
    expect(r.code, r.stderr).to.equal(0);
    const codes = ofType(r, 'gpu.xid').map((e) => e.data['code']);
    expect(codes).to.include.members([48, 64, 79]);
    expect(ofType(r, 'net.conntrack').some((e) => e.data['tableFull'] === true)).to.equal(true);
    expect(r.events.every((e) => e.node === 'a100-7' && JSON.stringify(e.labels) === '{}')).to.equal(true);
  });

  it('empty host root: only the heartbeat, every other collector skipped with a note, exit 0', async () => {
    // Nothing may listen at the network endpoints either: the defaults
    // (127.0.0.1:10256, :9400) are whatever this machine runs there (a node
    // test's kube-proxy serves 127.0.0.1:10256), so point them at a closed port.
    const closed = await closedPort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nw-empty-'));
    const configFile = path.join(dir, 'agent.yaml');
    fs.writeFileSync(configFile, `agent:\n  kubeProxyHealthUrl: http://127.0.0.1:${closed}/healthz\n`);
    const r = await runCli(['agent', '--once', '--config', configFile, '--host-root', path.join(HOSTROOTS, 'empty'), '--node', 'n0', '--dcgm-url', `http://127.0.0.1:${closed}/metrics`]);
    fs.rmSync(dir, { recursive: true, force: true });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.events.map((e) => e.type)).to.deep.equal(['agent.heartbeat']);
    for (const c of ['kernel-log', 'conntrack', 'containerd', 'kubeproxy-restart', 'dcgm']) expect(r.stderr).to.match(new RegExp(`${c}: skipped`));
  });

  it('this real machine (--host-root /): every line validates, exit 0', async () => {
    const r = await runCli(['agent', '--once', '--host-root', '/']);
    expect(r.code, r.stderr).to.equal(0);
    expect(ofType(r, 'agent.heartbeat')).to.have.length(1);
    expect(r.events.length).to.be.greaterThan(0);
  });

  describe('with live endpoints: containerd socket under the host root, dcgm-exporter, kube-proxy /healthz', () => {
    let hostRoot: string;
    let grpcServer: grpc.Server;
    let httpServer: http.Server;
    let base: string;
    let configFile: string;

    before(async () => {
      hostRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'nw-hostroot-'));
      fs.mkdirSync(path.join(hostRoot, 'run', 'containerd'), { recursive: true });
      const def = protoLoader.loadSync([path.join(protoDir(), 'health.proto'), path.join(protoDir(), 'cri-api.proto')], { enums: String, defaults: true });
      const pkg = grpc.loadPackageDefinition(def) as unknown as {
        grpc: { health: { v1: { Health: { service: grpc.ServiceDefinition } } } };
        runtime: { v1: { RuntimeService: { service: grpc.ServiceDefinition } } };
      };
      grpcServer = new grpc.Server();
      grpcServer.addService(pkg.grpc.health.v1.Health.service, {
        Check: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: 'SERVING' }),
      });
      grpcServer.addService(pkg.runtime.v1.RuntimeService.service, {
        Status: (_c: unknown, cb: grpc.sendUnaryData<unknown>) =>
          cb(null, { status: { conditions: [{ type: 'RuntimeReady', status: true }, { type: 'NetworkReady', status: false, reason: 'NetworkPluginNotReady' }] } }),
      });
      const sock = path.join(hostRoot, 'run', 'containerd', 'containerd.sock');
      await new Promise<void>((res, rej) => grpcServer.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())));

      const dcgmBody = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'dcgm', 'SYNTHESIZED-h100-scrape-3-faults.prom'), 'utf8');
      httpServer = http.createServer((req, res) => {
        if (req.url === '/metrics') res.writeHead(200, { 'content-type': 'text/plain' }).end(dcgmBody);
        else if (req.url === '/healthz')
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"lastUpdated": "2026-11-21 10:15:23.1 +0000 UTC m=+1.0","currentTime": "2026-11-21 10:15:23.1 +0000 UTC m=+1.0", "nodeEligible": true}');
        else res.writeHead(404).end();
      });
      await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
      configFile = path.join(hostRoot, 'agent.yaml');
      fs.writeFileSync(configFile, `agent:\n  kubeProxyHealthUrl: ${base}/healthz\n  containerdDeadline: 2s\n`);
    });
    after(async () => {
      await new Promise<void>((r) => grpcServer.tryShutdown(() => r()));
      await new Promise<void>((r) => httpServer.close(() => r()));
      fs.rmSync(hostRoot, { recursive: true, force: true });
    });

    it('prints runtime.containerd, gpu.health and kubeproxy.health events', async () => {
      const r = await runCli(['agent', '--once', '--config', configFile, '--host-root', hostRoot, '--dcgm-url', `${base}/metrics`, '--node', 'n1']);
      expect(r.code, r.stderr).to.equal(0);
      const cd = ofType(r, 'runtime.containerd');
      expect(cd).to.have.length(1);
      expect(cd[0]?.data).to.include({ state: 'serving', runtimeReady: true, networkReady: false });
      expect(ofType(r, 'gpu.health').length).to.be.greaterThan(0);
      const kp = ofType(r, 'kubeproxy.health');
      expect(kp).to.have.length(1);
      expect(kp[0]?.data).to.include({ healthy: true, lastUpdatedAgeMs: 0 });
      expect(r.stderr).not.to.match(/containerd: skipped|dcgm: skipped|kubeproxy-health: skipped/);
    });
  });

  it('--help prints usage; a bad flag exits 2 with a clear message', async () => {
    const h = await runCli(['agent', '--help']);
    expect(h.code).to.equal(0);
    expect(h.stdout).to.match(/usage: nodewarden agent/);
    expect(h.stdout).to.match(/--host-root DIR/);
    const bad = await runCli(['agent', '--once', '--bogus']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/bogus/);
    const out = await runCli(['agent', '--once', '--output', 'yaml']);
    expect(out.code).to.equal(2);
    expect(out.stderr).to.match(/only jsonl/);
  });
});
