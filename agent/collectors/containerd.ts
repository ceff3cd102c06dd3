/**
 * `runtime.containerd`: is the container runtime answering? Two unary gRPC
 * calls on containerd's socket under one short deadline:
 * `grpc.health.v1.Health/Check` and CRI `runtime.v1.RuntimeService/Status`
 * (conditions RuntimeReady / NetworkReady).
 *
 * States: `serving`; `not_serving` (health says so, or RuntimeReady=false);
 * `unreachable` (no socket, connection refused); `timeout` (a wedged
 * containerd accepts the connection and never answers — the failure that
 * kubelet reports as "PLEG is not healthy" minutes later).
 *
 * Every probe opens a fresh HTTP/2 connection and closes it, so a recovered
 * containerd is seen at the next probe. The gRPC client is the minimal one in
 * `grpc-unary.ts` (node:http2, hand-decoded protobuf), not grpc-js: see ADR 0016.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Collector, CollectorContext, CollectResult, Emit } from '../collector.js';
import type { ContainerdData, ContainerdState } from '../../core/envelope.js';
import { packageRoot } from '../../adapters/paths.js';
import { errorMessage } from '../../core/errors.js';
import { GrpcCode, GrpcError, openUnaryChannel, protoFields } from './grpc-unary.js';
import { probeLoopCollector } from './periodic.js';

export const DEFAULT_CONTAINERD_SOCKET = 'unix:///run/containerd/containerd.sock';

export interface ContainerdOptions {
  /** gRPC target, `unix:///run/containerd/containerd.sock` by default. */
  socket: string;
  /** Deadline for both calls together. */
  deadlineMs: number;
  /** How often to probe. */
  intervalMs: number;
  /** Re-emit an unchanged state at least this often, so the engine can tell "still down" from "silent". Default 30 s. */
  resendMs?: number;
}

/** The outcome of one probe; `socket` says where it looked. */
export type ContainerdProbe = ContainerdData & { socket: string };

/**
 * Resolves the socket under the host root: the default socket lives on the
 * host, so in the DaemonSet it is read under `/host`; an explicitly
 * configured socket is taken as given.
 */
export function resolveContainerdTarget(socket: string, hostRoot: string): { target: string; path: string | null } {
  if (socket === DEFAULT_CONTAINERD_SOCKET && hostRoot !== '/' && hostRoot !== '') {
    const path = join(hostRoot, 'run/containerd/containerd.sock');
    return { target: `unix://${path}`, path };
  }
  if (socket.startsWith('unix://')) return { target: socket, path: socket.slice('unix://'.length) };
  if (socket.startsWith('unix:')) return { target: socket, path: socket.slice('unix:'.length) };
  if (socket.startsWith('/')) return { target: `unix://${socket}`, path: socket };
  return { target: socket, path: null };
}

// ------------------------------------------------------------- gRPC plumbing

/** The proto folder (the wire contract this probe hand-decodes; the test server loads it). */
export function protoDir(): string {
  return join(packageRoot(), 'agent', 'proto');
}

const HEALTH_CHECK = '/grpc.health.v1.Health/Check';
const CRI_STATUS = '/runtime.v1.RuntimeService/Status';
/** HealthCheckResponse.ServingStatus. */
const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

interface GrpcFailure {
  code: number;
  details: string;
}

interface CriCondition {
  type?: string;
  status?: boolean;
  reason?: string;
  message?: string;
}

/** HealthCheckResponse { ServingStatus status = 1; } → the enum name. */
export function decodeHealthCheckResponse(buf: Buffer): string {
  let status = 0;
  for (const f of protoFields(buf)) if (f.no === 1 && f.varint !== null) status = f.varint;
  return SERVING_STATUS[status] ?? String(status);
}

/** StatusResponse { RuntimeStatus status = 1; } → RuntimeStatus { repeated RuntimeCondition conditions = 1; }. */
export function decodeCriStatusResponse(buf: Buffer): CriCondition[] {
  const conds: CriCondition[] = [];
  for (const f of protoFields(buf)) {
    if (f.no !== 1 || f.bytes === null) continue;
    for (const g of protoFields(f.bytes)) {
      if (g.no !== 1 || g.bytes === null) continue;
      const c: CriCondition = { status: false };
      for (const h of protoFields(g.bytes)) {
        if (h.no === 2 && h.varint !== null) c.status = h.varint !== 0;
        else if (h.bytes !== null) {
          const text = h.bytes.toString('utf8');
          if (h.no === 1) c.type = text;
          else if (h.no === 3) c.reason = text;
          else if (h.no === 4) c.message = text;
        }
      }
      conds.push(c);
    }
  }
  return conds;
}

/**
 * One probe of containerd. Never rejects: every failure is a state.
 * Exported for tests and for `--once`.
 */
export async function probeContainerd(target: string, socketPath: string | null, deadlineMs: number, now: () => number = Date.now): Promise<ContainerdProbe> {
  if (socketPath !== null && !existsSync(socketPath)) {
    return { state: 'unreachable', socket: target, runtimeReady: null, networkReady: null, error: `no socket at ${socketPath}` };
  }
  const started = now();
  // One attempt per probe on a fresh connection; the probe interval is the retry policy.
  const channel = openUnaryChannel(target, Date.now() + deadlineMs);
  const empty = new Uint8Array(0); // HealthCheckRequest{service:""} and StatusRequest{verbose:false} encode to nothing
  try {
    const [health, status] = await Promise.allSettled([
      channel.call(HEALTH_CHECK, empty).then(decodeHealthCheckResponse),
      channel.call(CRI_STATUS, empty).then(decodeCriStatusResponse),
    ]);
    const latencyMs = now() - started;
    const failureOf = (r: PromiseSettledResult<unknown>): GrpcFailure | null =>
      r.status === 'rejected' ? { code: r.reason instanceof GrpcError ? r.reason.code : GrpcCode.UNKNOWN, details: errorMessage(r.reason) } : null;
    const hf = failureOf(health);
    const sf = failureOf(status);
    const codes = GrpcCode;

    // A deadline on either call means the runtime is wedged, whatever the other said.
    const timedOut = [hf, sf].find((f) => f?.code === codes.DEADLINE_EXCEEDED);
    if (timedOut) return { state: 'timeout', socket: target, latencyMs, runtimeReady: null, networkReady: null, error: `no answer within ${deadlineMs} ms` };
    const refused = hf?.code === codes.UNAVAILABLE ? hf : sf?.code === codes.UNAVAILABLE && hf !== null ? sf : null;
    if (refused) return { state: 'unreachable', socket: target, latencyMs, runtimeReady: null, networkReady: null, error: refused.details };

    let runtimeReady: boolean | null = null;
    let networkReady: boolean | null = null;
    let runtimeWhy = '';
    if (status.status === 'fulfilled') {
      for (const c of status.value) {
        if (c.type === 'RuntimeReady') {
          runtimeReady = c.status === true;
          if (!runtimeReady) runtimeWhy = [c.reason, c.message].filter(Boolean).join(': ');
        } else if (c.type === 'NetworkReady') networkReady = c.status === true;
      }
    }

    let state: ContainerdState;
    let error: string | undefined;
    if (health.status === 'fulfilled') {
      const hs = health.value;
      state = hs === 'SERVING' ? 'serving' : 'not_serving';
      if (state === 'not_serving') error = `health status ${hs}`;
    } else if (hf?.code === codes.UNIMPLEMENTED && status.status === 'fulfilled') {
      // Runtimes without the health service: the CRI answer alone decides.
      state = 'serving';
    } else {
      state = 'not_serving';
      error = `health check failed: ${hf?.details ?? 'unknown'}`;
    }
    if (state === 'serving' && runtimeReady === false) {
      state = 'not_serving';
      error = `RuntimeReady=false${runtimeWhy ? ` (${runtimeWhy})` : ''}`;
    }
    if (sf && sf.code !== codes.UNIMPLEMENTED && error === undefined) error = `CRI Status failed: ${sf.details}`;
    const out: ContainerdProbe = { state, socket: target, latencyMs, runtimeReady, networkReady };
    if (error !== undefined) out.error = error;
    return out;
  } finally {
    channel.close();
  }
}

// ------------------------------------------------------------- collector

/** What changes a state: the state and the two readiness conditions, not latency. */
function stateKey(p: ContainerdProbe): string {
  return `${p.state}|${String(p.runtimeReady)}|${String(p.networkReady)}`;
}

export function createContainerdCollector(ctx: CollectorContext, opts: ContainerdOptions): Collector {
  const { target, path } = resolveContainerdTarget(opts.socket, ctx.hostRoot);
  const resendMs = opts.resendMs ?? 30_000;
  const log = ctx.logger.child({ collector: 'runtime.containerd' });
  let lastKey: string | null = null;
  let lastEmitAt = 0;

  const toEvent = (p: ContainerdProbe, at: number) => ctx.newEvent('runtime.containerd', 'cri', p, at);

  async function round(emit: Emit, running: () => boolean): Promise<void> {
    const at = ctx.clock.now();
    const p = await probeContainerd(target, path, opts.deadlineMs);
    if (!running()) return;
    const key = stateKey(p);
    const now = ctx.clock.now();
    if (key !== lastKey || now - lastEmitAt >= resendMs) {
      if (key !== lastKey) log.info({ state: p.state, runtimeReady: p.runtimeReady, networkReady: p.networkReady, error: p.error }, 'containerd state');
      lastKey = key;
      lastEmitAt = now;
      emit([toEvent(p, at)]);
    }
  }

  return probeLoopCollector({
    name: 'runtime.containerd',
    intervalMs: opts.intervalMs,
    round,
    onError: (err: unknown) => log.warn({ err: errorMessage(err) }, 'containerd probe failed'),
    async collectOnce(): Promise<CollectResult> {
      if (path !== null && !existsSync(path)) return { events: [], skipped: `no containerd socket at ${path}` };
      const at = ctx.clock.now();
      return { events: [toEvent(await probeContainerd(target, path, opts.deadlineMs), at)] };
    },
  });
}
