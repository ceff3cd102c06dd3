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
 * Every probe opens a fresh channel and closes it: grpc-js would otherwise
 * apply its reconnect back-off to a channel that saw a refused connection and
 * report a recovered containerd as unreachable for up to two minutes.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Collector, CollectorContext, CollectResult, Emit } from '../collector.js';
import type { ContainerdData, ContainerdState } from '../../core/envelope.js';
import { packageRoot } from '../../core/paths.js';
import { errorMessage } from '../../core/errors.js';
import type * as GrpcJs from '@grpc/grpc-js';

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

type GrpcModule = typeof GrpcJs;

interface Method {
  path: string;
  requestSerialize: (v: unknown) => Buffer;
  responseDeserialize: (b: Buffer) => unknown;
}
interface Loaded {
  grpc: GrpcModule;
  healthCheck: Method;
  criStatus: Method;
}

let loaded: Promise<Loaded> | undefined;

/** The proto folder: .proto files are not compiled by tsc, so they are read from the source tree. */
export function protoDir(): string {
  return join(packageRoot(), 'agent', 'proto');
}

/** Loads grpc-js and the two protos once per process, lazily: an agent without containerd never pays for them. */
function loadGrpc(): Promise<Loaded> {
  loaded ??= (async () => {
    const [grpc, protoLoader] = await Promise.all([import('@grpc/grpc-js'), import('@grpc/proto-loader')]);
    const dir = protoDir();
    const def = protoLoader.loadSync([join(dir, 'health.proto'), join(dir, 'cri-api.proto')], {
      keepCase: false,
      enums: String,
      defaults: true,
      longs: Number,
    });
    const method = (service: string, name: string): Method => {
      const svc = def[service] as unknown as Record<string, Method> | undefined;
      const m = svc?.[name];
      if (!m) throw new Error(`containerd collector: ${service}/${name} missing from ${dir}`);
      return m;
    };
    return { grpc, healthCheck: method('grpc.health.v1.Health', 'Check'), criStatus: method('runtime.v1.RuntimeService', 'Status') };
  })();
  loaded.catch(() => {
    loaded = undefined;
  });
  return loaded;
}

interface GrpcFailure {
  code: GrpcJs.status;
  details: string;
}

function unary(client: GrpcJs.Client, m: Method, req: unknown, deadline: Date): Promise<unknown> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, req, { deadline }, (err, value) => {
      if (err) reject(err);
      else resolve(value);
    });
  });
}

interface CriCondition {
  type?: string;
  status?: boolean;
  reason?: string;
  message?: string;
}

/**
 * One probe of containerd. Never rejects: every failure is a state.
 * Exported for tests and for `--once`.
 */
export async function probeContainerd(target: string, socketPath: string | null, deadlineMs: number, now: () => number = Date.now): Promise<ContainerdProbe> {
  if (socketPath !== null && !existsSync(socketPath)) {
    return { state: 'unreachable', socket: target, runtimeReady: null, networkReady: null, error: `no socket at ${socketPath}` };
  }
  const { grpc, healthCheck, criStatus } = await loadGrpc();
  const started = now();
  const deadline = new Date(Date.now() + deadlineMs);
  const client = new grpc.Client(target, grpc.credentials.createInsecure(), {
    // One attempt per probe; the probe interval is the retry policy.
    'grpc.enable_retries': 0,
    'grpc.initial_reconnect_backoff_ms': 100,
  });
  try {
    const [health, status] = await Promise.allSettled([
      unary(client, healthCheck, { service: '' }, deadline),
      unary(client, criStatus, { verbose: false }, deadline),
    ]);
    const latencyMs = now() - started;
    const codes = grpc.status;
    const failureOf = (r: PromiseSettledResult<unknown>): GrpcFailure | null =>
      r.status === 'rejected' ? { code: (r.reason as { code?: GrpcJs.status }).code ?? codes.UNKNOWN, details: errorMessage(r.reason) } : null;
    const hf = failureOf(health);
    const sf = failureOf(status);

    // A deadline on either call means the runtime is wedged, whatever the other said.
    const timedOut = [hf, sf].find((f) => f?.code === codes.DEADLINE_EXCEEDED);
    if (timedOut) return { state: 'timeout', socket: target, latencyMs, runtimeReady: null, networkReady: null, error: `no answer within ${deadlineMs} ms` };
    const refused = hf?.code === codes.UNAVAILABLE ? hf : sf?.code === codes.UNAVAILABLE && hf !== null ? sf : null;
    if (refused) return { state: 'unreachable', socket: target, latencyMs, runtimeReady: null, networkReady: null, error: refused.details };

    let runtimeReady: boolean | null = null;
    let networkReady: boolean | null = null;
    let runtimeWhy = '';
    if (status.status === 'fulfilled') {
      const conds = ((status.value as { status?: { conditions?: CriCondition[] } }).status?.conditions ?? []);
      for (const c of conds) {
        if (c.type === 'RuntimeReady') {
          runtimeReady = c.status === true;
          if (!runtimeReady) runtimeWhy = [c.reason, c.message].filter(Boolean).join(': ');
        } else if (c.type === 'NetworkReady') networkReady = c.status === true;
      }
    }

    let state: ContainerdState;
    let error: string | undefined;
    if (health.status === 'fulfilled') {
      const hs = (health.value as { status?: string }).status;
      state = hs === 'SERVING' ? 'serving' : 'not_serving';
      if (state === 'not_serving') error = `health status ${hs ?? 'UNKNOWN'}`;
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
    client.close();
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
  let timer: NodeJS.Timeout | undefined;
  let stopped = true;
  let lastKey: string | null = null;
  let lastEmitAt = 0;

  const toEvent = (p: ContainerdProbe, at: number) => ctx.newEvent('runtime.containerd', 'cri', p, at);

  async function tick(emit: Emit): Promise<void> {
    const at = ctx.clock.now();
    const p = await probeContainerd(target, path, opts.deadlineMs);
    if (stopped) return;
    const key = stateKey(p);
    const now = ctx.clock.now();
    if (key !== lastKey || now - lastEmitAt >= resendMs) {
      if (key !== lastKey) log.info({ state: p.state, runtimeReady: p.runtimeReady, networkReady: p.networkReady, error: p.error }, 'containerd state');
      lastKey = key;
      lastEmitAt = now;
      emit([toEvent(p, at)]);
    }
  }

  function schedule(emit: Emit, delay: number): void {
    if (stopped) return;
    timer = setTimeout(() => {
      tick(emit)
        .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'containerd probe failed'))
        .finally(() => schedule(emit, opts.intervalMs));
    }, delay);
  }

  return {
    name: 'runtime.containerd',
    async start(emit: Emit): Promise<void> {
      if (!stopped) return;
      stopped = false;
      await loadGrpc();
      schedule(emit, 0);
    },
    stop(): Promise<void> {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      return Promise.resolve();
    },
    async collectOnce(): Promise<CollectResult> {
      if (path !== null && !existsSync(path)) return { events: [], skipped: `no containerd socket at ${path}` };
      const at = ctx.clock.now();
      return { events: [toEvent(await probeContainerd(target, path, opts.deadlineMs), at)] };
    },
  };
}
