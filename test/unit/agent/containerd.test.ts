/**
 * The containerd collector against a REAL gRPC server on a unix socket in a
 * temp dir (grpc-js serving grpc.health.v1.Health and a CRI
 * runtime.v1.RuntimeService/Status stub), plus a raw `net` server that
 * accepts connections and never answers (a wedged containerd).
 */
import { expect } from 'chai';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createContainerdCollector, decodeCriStatusResponse, decodeHealthCheckResponse, probeContainerd, protoDir, resolveContainerdTarget } from '../../../agent/collectors/containerd.js';
import { createCollectorContext } from '../../../agent/agent.js';
import type { EventEnvelope } from '../../../core/envelope.js';
import { envelopeProblems } from '../../../core/envelope.js';
import { systemClock } from '../../../core/clock.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../agent/metrics.js';

interface FakeRuntime {
  health: 'SERVING' | 'NOT_SERVING';
  runtimeReady: boolean;
  networkReady: boolean;
  statusCalls: number;
}

function loadServices(): { health: grpc.ServiceDefinition; cri: grpc.ServiceDefinition } {
  const def = protoLoader.loadSync([path.join(protoDir(), 'health.proto'), path.join(protoDir(), 'cri-api.proto')], { enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    grpc: { health: { v1: { Health: { service: grpc.ServiceDefinition } } } };
    runtime: { v1: { RuntimeService: { service: grpc.ServiceDefinition } } };
  };
  return { health: pkg.grpc.health.v1.Health.service, cri: pkg.runtime.v1.RuntimeService.service };
}

async function startFakeContainerd(sock: string, rt: FakeRuntime, opts: { withHealth?: boolean } = {}): Promise<grpc.Server> {
  const { health, cri } = loadServices();
  const server = new grpc.Server();
  if (opts.withHealth !== false)
    server.addService(health, {
    Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: rt.health }),
  });
  server.addService(cri, {
    Status: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      rt.statusCalls++;
      cb(null, {
        status: {
          conditions: [
            { type: 'RuntimeReady', status: rt.runtimeReady, reason: rt.runtimeReady ? '' : 'ContainerdNotReady', message: rt.runtimeReady ? '' : 'runtime is down' },
            { type: 'NetworkReady', status: rt.networkReady, reason: rt.networkReady ? '' : 'NetworkPluginNotReady', message: '' },
          ],
        },
        info: {},
      });
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  return server;
}

function shutdown(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => server.tryShutdown(() => resolve()));
}

describe('agent/collectors/containerd (real gRPC server on a unix socket)', function () {
  this.timeout(15_000);
  let dir: string;
  let sock: string;
  let server: grpc.Server | null = null;
  let raw: net.Server | null = null;
  const rawSockets: net.Socket[] = [];

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nw-containerd-'));
    sock = path.join(dir, 'containerd.sock');
  });
  afterEach(async () => {
    if (server) await shutdown(server);
    server = null;
    for (const s of rawSockets.splice(0)) s.destroy();
    if (raw) await new Promise<void>((r) => raw?.close(() => r()));
    raw = null;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serving: health SERVING and RuntimeReady/NetworkReady true', async () => {
    const rt: FakeRuntime = { health: 'SERVING', runtimeReady: true, networkReady: true, statusCalls: 0 };
    server = await startFakeContainerd(sock, rt);
    const p = await probeContainerd(`unix://${sock}`, sock, 2000);
    expect(p.state).to.equal('serving');
    expect(p.runtimeReady).to.equal(true);
    expect(p.networkReady).to.equal(true);
    expect(p.latencyMs).to.be.a('number').and.lessThan(2000);
    expect(p.error).to.equal(undefined);
    expect(rt.statusCalls).to.equal(1);
  });

  it('a runtime without the health service (UNIMPLEMENTED): the CRI answer alone decides', async () => {
    const rt: FakeRuntime = { health: 'SERVING', runtimeReady: true, networkReady: true, statusCalls: 0 };
    server = await startFakeContainerd(sock, rt, { withHealth: false });
    const p = await probeContainerd(`unix://${sock}`, sock, 2000);
    expect(p.state).to.equal('serving');
    expect(p.runtimeReady).to.equal(true);
    expect(p.error).to.equal(undefined);
    rt.runtimeReady = false;
    const q = await probeContainerd(`unix://${sock}`, sock, 2000);
    expect(q.state).to.equal('not_serving');
    expect(q.error).to.match(/RuntimeReady=false/);
  });

  it('not_serving: health NOT_SERVING', async () => {
    server = await startFakeContainerd(sock, { health: 'NOT_SERVING', runtimeReady: true, networkReady: true, statusCalls: 0 });
    const p = await probeContainerd(`unix://${sock}`, sock, 2000);
    expect(p.state).to.equal('not_serving');
    expect(p.error).to.match(/NOT_SERVING/);
  });

  it('RuntimeReady=false makes the runtime not_serving and keeps the CRI reason; NetworkReady=false alone does not', async () => {
    const rt: FakeRuntime = { health: 'SERVING', runtimeReady: false, networkReady: true, statusCalls: 0 };
    server = await startFakeContainerd(sock, rt);
    const p = await probeContainerd(`unix://${sock}`, sock, 2000);
    expect(p.state).to.equal('not_serving');
    expect(p.runtimeReady).to.equal(false);
    expect(p.networkReady).to.equal(true);
    expect(p.error).to.match(/RuntimeReady=false \(ContainerdNotReady: runtime is down\)/);

    rt.runtimeReady = true;
    rt.networkReady = false;
    const q = await probeContainerd(`unix://${sock}`, sock, 2000);
    expect(q.state).to.equal('serving');
    expect(q.networkReady).to.equal(false);
  });

  it('no socket → unreachable', async () => {
    const p = await probeContainerd(`unix://${sock}`, sock, 2000);
    expect(p.state).to.equal('unreachable');
    expect(p.error).to.match(/no socket/);
  });

  it('a socket path with nothing listening (connection refused) → unreachable', async () => {
    // A leftover non-socket file at the path: connect() fails with ECONNREFUSED, as with a dead containerd's stale socket.
    fs.writeFileSync(sock, '');
    const p = await probeContainerd(`unix://${sock}`, sock, 2000);
    expect(p.state).to.equal('unreachable');
    expect(p.error).to.be.a('string');
  });

  it('a wedged containerd (accepts, never answers) → timeout within the deadline', async () => {
    raw = net.createServer((s) => {
      rawSockets.push(s);
      s.on('error', () => undefined);
      // Read and ignore everything: no HTTP/2 SETTINGS, no response.
      s.resume();
    });
    await new Promise<void>((r) => raw?.listen(sock, r));
    const deadlineMs = 500;
    const t0 = Date.now();
    const p = await probeContainerd(`unix://${sock}`, sock, deadlineMs);
    const took = Date.now() - t0;
    expect(p.state).to.equal('timeout');
    expect(p.error).to.match(/no answer within 500 ms/);
    expect(took).to.be.within(deadlineMs - 50, deadlineMs + 1500);
    expect(rawSockets.length).to.be.greaterThan(0);
  });

  it('the collector emits on start, on every state change, and re-emits an unchanged state periodically', async () => {
    const rt: FakeRuntime = { health: 'SERVING', runtimeReady: true, networkReady: true, statusCalls: 0 };
    server = await startFakeContainerd(sock, rt);
    const ctx = createCollectorContext({ node: 'n1', labels: { pool: 'p' }, hostRoot: '/', clock: systemClock, logger: silentLogger, registry: createRegistry('t') });
    const c = createContainerdCollector(ctx, { socket: `unix://${sock}`, deadlineMs: 1000, intervalMs: 50, resendMs: 400 });
    const got: EventEnvelope[] = [];
    await c.start((es) => got.push(...es));
    const waitFor = async (pred: () => boolean, what: string) => {
      const until = Date.now() + 5000;
      while (!pred()) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await waitFor(() => got.length >= 1, 'first event');
      const first = got[0] as EventEnvelope;
      expect(envelopeProblems(first)).to.deep.equal([]);
      expect(first.type).to.equal('runtime.containerd');
      expect(first.data['state']).to.equal('serving');
      expect(first.labels).to.deep.equal({ pool: 'p' });
      // Several probes pass with no change: no new event before the resend period.
      await waitFor(() => rt.statusCalls >= 4, 'more probes');
      expect(got.length).to.equal(1);
      rt.health = 'NOT_SERVING';
      await waitFor(() => got.some((e) => e.data['state'] === 'not_serving'), 'not_serving event');
      const n = got.length;
      await waitFor(() => got.length > n, 'periodic re-emit');
      expect((got[got.length - 1] as EventEnvelope).data['state']).to.equal('not_serving');
      // Server goes away → unreachable.
      await shutdown(server);
      server = null;
      await waitFor(() => got.some((e) => e.data['state'] === 'unreachable'), 'unreachable event');
    } finally {
      await c.stop();
    }
  });

  it('decodes the two answers by hand, skips unknown fields, and refuses truncated input', () => {
    expect(decodeHealthCheckResponse(Buffer.from([0x08, 0x02]))).to.equal('NOT_SERVING');
    expect(decodeHealthCheckResponse(Buffer.alloc(0))).to.equal('UNKNOWN'); // proto3 default
    // StatusResponse{status{conditions[{type:"RuntimeReady",status:true}]}, info{…} as an unknown-to-us field 2}
    const cond = Buffer.concat([Buffer.from([0x0a, 12]), Buffer.from('RuntimeReady'), Buffer.from([0x10, 0x01])]);
    const rs = Buffer.concat([Buffer.from([0x0a, cond.length]), cond]);
    const msg = Buffer.concat([Buffer.from([0x0a, rs.length]), rs, Buffer.from([0x12, 0x02, 0x0a, 0x00, 0x1d, 1, 2, 3, 4])]);
    expect(decodeCriStatusResponse(msg)).to.deep.equal([{ type: 'RuntimeReady', status: true }]);
    expect(() => decodeCriStatusResponse(Buffer.from([0x0a, 0x05, 0x0a]))).to.throw(/truncated/);
    expect(() => decodeHealthCheckResponse(Buffer.from([0x08, 0x80]))).to.throw(/truncated varint/);
  });

  it('resolves the default socket under the host root, explicit sockets as given', () => {
    expect(resolveContainerdTarget('unix:///run/containerd/containerd.sock', '/host')).to.deep.equal({
      target: 'unix:///host/run/containerd/containerd.sock',
      path: '/host/run/containerd/containerd.sock',
    });
    expect(resolveContainerdTarget('unix:///run/containerd/containerd.sock', '/').path).to.equal('/run/containerd/containerd.sock');
    expect(resolveContainerdTarget('unix:///var/run/k3s/containerd.sock', '/host').path).to.equal('/var/run/k3s/containerd.sock');
  });
});
