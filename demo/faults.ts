/**
 * Fault injection for the demo, at rates drawn from published fleet data:
 * Meta's Llama 3 405B pre-training report (54 days on 16,384 H100 GPUs in
 * 2,048 hosts; 419 unexpected interruptions, by root cause). Each cause maps
 * to the node-level signal nodewarden would actually see — or to none: silent
 * data corruption, a switch or a NIC failure is invisible to a node agent,
 * and a crashed host is seen only as a node that went silent. The demo says
 * so instead of pretending.
 *
 * Everything is drawn from one seeded generator and advanced in virtual time,
 * so a seed reproduces the same faults whatever the wall clock does.
 */
import type { EventEnvelope, EventType } from '../core/envelope.js';
import type { FleetNode } from './fleet.js';
import { rng } from './fleet.js';

/** What a node agent observes of a cause. */
export type CauseSignal =
  /** kernel-log Xid lines */
  | { kind: 'xid'; codes: number[] }
  /** containerd stops answering (full or failing disk, broken dependency) */
  | { kind: 'containerd' }
  /** DCGM thermal violation counters */
  | { kind: 'thermal' }
  /** the host goes down: NotReady, its agent falls silent; the cause itself is not visible */
  | { kind: 'host-down' };

export interface Cause {
  cause: string;
  /** interruptions in the Llama 3 54-day window */
  count: number;
  /** what a node agent observes; null = nothing node-level (the job sees it, the node looks healthy) */
  signal: CauseSignal | null;
}

/** Llama 3 report (Dubey et al. 2024, table 5): unexpected interruptions by root cause. */
export const LLAMA3_CAUSES: readonly Cause[] = [
  { cause: 'Faulty GPU', count: 148, signal: { kind: 'xid', codes: [79, 79, 62, 74, 140] } },
  { cause: 'GPU HBM3 memory', count: 72, signal: { kind: 'xid', codes: [48, 95, 64] } },
  { cause: 'Software bug', count: 54, signal: { kind: 'xid', codes: [13, 31, 43] } },
  { cause: 'Network switch/cable', count: 35, signal: null },
  { cause: 'Host maintenance', count: 32, signal: { kind: 'host-down' } },
  { cause: 'GPU SRAM memory', count: 19, signal: { kind: 'xid', codes: [95, 48] } },
  { cause: 'GPU system processor', count: 17, signal: { kind: 'xid', codes: [119, 120] } },
  { cause: 'NIC', count: 7, signal: null },
  { cause: 'NCCL watchdog timeouts', count: 7, signal: null },
  { cause: 'Silent data corruption', count: 6, signal: null },
  { cause: 'GPU thermal interface + sensor', count: 6, signal: { kind: 'thermal' } },
  { cause: 'SSD', count: 3, signal: { kind: 'containerd' } },
  { cause: 'Power supply', count: 3, signal: { kind: 'xid', codes: [79] } },
  { cause: 'Server chassis', count: 2, signal: { kind: 'host-down' } },
  { cause: 'IO expansion board', count: 2, signal: { kind: 'xid', codes: [79] } },
  { cause: 'Dependency', count: 2, signal: { kind: 'containerd' } },
  { cause: 'CPU', count: 2, signal: { kind: 'host-down' } },
  { cause: 'System memory', count: 2, signal: { kind: 'host-down' } },
];

export const LLAMA3_WINDOW_DAYS = 54;
export const LLAMA3_HOSTS = 2048;
export const LLAMA3_TOTAL = LLAMA3_CAUSES.reduce((s, c) => s + c.count, 0);

/** Xid codes the default pack treats as application faults (never cordon). */
export const APPLICATION_XIDS: ReadonlySet<number> = new Set([13, 31, 43, 45, 68, 69]);

const XID_TEXT: Record<number, string> = {
  13: 'Graphics SM Warp Exception on (GPC 0, TPC 1, SM 0): Illegal Instruction Encoding',
  31: 'Ch 00000010, intr 10000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f2a_3c000000. Fault is of type FAULT_PDE ACCESS_TYPE_READ',
  43: 'pid=24711, name=python3, Ch 00000008',
  48: 'An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.',
  62: 'Internal micro-controller halt (non-fatal)',
  64: 'Failed to persist row remap',
  74: 'NVLink: fatal error detected on link 4(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)',
  79: 'GPU has fallen off the bus.',
  95: 'Uncontained: FBHUB. RST: Yes, D-RST: No',
  119: 'Timeout after 6s of waiting for RPC response from GPU0 GSP! Expected function 76 (GSP_RM_CONTROL) (0x20802a02 0x8).',
  120: 'GSP task exception: Fatal error',
  140: 'Unrecovered ECC Error: uncorrectable in the GPU memory',
};

export interface InjectorOptions {
  nodes: FleetNode[];
  rand: () => number;
  /** Multiplies the published rates so a short demo shows activity. */
  amplification: number;
  /** Periodic heartbeats, conntrack samples and containerd checks of every node (default true). */
  background?: boolean;
  /** Seed of event ids (default: drawn from `rand` once). */
  idSeed?: number;
  /** kube-proxy OOM restart loops per node-day before amplification (no published rate; default 0.0003). */
  kubeProxyLoopsPerNodeDay?: number;
}

/** A node taken down by a host-level cause: NotReady and silent until `until`. */
export interface HostDown {
  node: string;
  cause: string;
  at: number;
  until: number;
}

export interface Injected {
  /** Events observed in (last, now], plus follow-ups that the scheduler must hold until their `ts`. */
  events: EventEnvelope[];
  /** Causes that happened this step (for the demo's summary), incl. unobservable ones. */
  causes: string[];
  /** Hosts that went down this step (the runner marks them NotReady in the cluster). */
  hostsDown: HostDown[];
}

const ENCODING = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * Poisson arrivals per cause over the fleet in virtual time, plus the
 * background a real fleet produces: heartbeats, conntrack samples, containerd
 * checks, and the odd kube-proxy OOM restart loop with conntrack inserts failing.
 */
export class FaultInjector {
  private readonly idRand: () => number;
  private last: number | undefined;
  private readonly conntrack = new Map<string, { insert_failed: number; drop: number; found: number; count: number }>();
  private readonly restarts = new Map<string, number>();
  private readonly containerdDownUntil = new Map<string, number>();
  /** Recovered nodes that report `serving` at the fast cadence for a while (so recovery is seen quickly). */
  private readonly containerdRecovering = new Map<string, number>();
  private readonly silentUntil = new Map<string, number>();
  private readonly byName = new Map<string, FleetNode>();
  private nextHeartbeat = 0;
  private nextConntrack = 0;
  private nextContainerd = 0;
  private nextContainerdAll = 0;
  private readonly perHostPerMs: number;

  constructor(private readonly opts: InjectorOptions) {
    this.perHostPerMs = LLAMA3_TOTAL / (LLAMA3_WINDOW_DAYS * 86_400_000 * LLAMA3_HOSTS);
    this.idRand = rng(opts.idSeed ?? Math.floor(opts.rand() * 2 ** 32));
    for (const n of opts.nodes) this.byName.set(n.name, n);
  }

  /** Expected interruptions per virtual hour over this fleet, before amplification. */
  publishedRatePerHour(): number {
    return this.perHostPerMs * 3_600_000 * this.opts.nodes.length;
  }

  /** Expected interruptions per virtual hour over this fleet, as injected. */
  injectedRatePerHour(): number {
    return this.publishedRatePerHour() * this.opts.amplification;
  }

  /** Deterministic ULID-shaped id: time part from `at`, the rest from the seeded generator. */
  private id(at: number): string {
    let t = Math.max(0, Math.floor(at));
    let time = '';
    for (let i = 0; i < 10; i++) {
      time = ENCODING[t % 32] + time;
      t = Math.floor(t / 32);
    }
    let rest = '';
    for (let i = 0; i < 16; i++) rest += ENCODING[Math.floor(this.idRand() * 32)];
    return time + rest;
  }

  private event(type: EventType, node: FleetNode, at: number, source: string, data: Record<string, unknown>): EventEnvelope {
    return {
      v: 1,
      id: this.id(at),
      ts: new Date(at).toISOString(),
      node: node.name,
      type,
      source,
      labels: { pool: node.pool, zone: node.zone },
      data,
    };
  }

  private pick<T>(xs: readonly T[]): T {
    const x = xs[Math.floor(this.opts.rand() * xs.length)];
    if (x === undefined) throw new Error('empty choice');
    return x;
  }

  /** Makes a node's agent silent until `until` (a host that is down sends nothing). */
  silence(node: string, until: number): void {
    this.silentUntil.set(node, until);
  }

  /** True while a host is down (its agent sends nothing). */
  isSilent(node: string, at: number): boolean {
    const until = this.silentUntil.get(node);
    return until !== undefined && at < until;
  }

  /** An Xid on one GPU of a node, as the kernel-log collector reports it. */
  xid(node: FleetNode, code: number, at: number, gpu: FleetNode['gpus'][number] = this.pick(node.gpus)): EventEnvelope {
    const app = code === 43 || code === 13;
    return this.event('gpu.xid', node, at, 'kmsg', {
      code,
      pci: gpu.pci,
      gpu: gpu.uuid,
      pid: app ? 24711 : null,
      process: app ? 'python3' : null,
      message: XID_TEXT[code] ?? 'Xid error',
    });
  }

  /** Everything that happens in (last, now]. */
  step(now: number): Injected {
    const events: EventEnvelope[] = [];
    const causes: string[] = [];
    const hostsDown: HostDown[] = [];
    const from = this.last ?? now;
    this.last = now;
    const dt = now - from;
    if (dt > 0) {
      const lambda = this.perHostPerMs * this.opts.amplification * this.opts.nodes.length * dt;
      let n = poisson(lambda, this.opts.rand);
      while (n-- > 0) {
        let r = this.opts.rand() * LLAMA3_TOTAL;
        const cause = LLAMA3_CAUSES.find((c) => (r -= c.count) < 0) ?? LLAMA3_CAUSES[0];
        if (!cause) break;
        causes.push(cause.cause);
        const node = this.pick(this.opts.nodes);
        const at = from + 1 + Math.floor(this.opts.rand() * (dt - 1));
        if (!cause.signal || this.isSilent(node.name, at)) continue;
        switch (cause.signal.kind) {
          case 'xid': {
            const code = this.pick(cause.signal.codes);
            const gpu = this.pick(node.gpus);
            events.push(this.xid(node, code, at, gpu));
            // an application fault recurs on the same GPU while the job restarts from its checkpoint
            if (APPLICATION_XIDS.has(code)) for (let k = 1; k <= 3; k++) events.push(this.xid(node, code, at + k * 90_000, gpu));
            break;
          }
          case 'thermal': {
            const gpu = this.pick(node.gpus);
            events.push(this.event('gpu.health', node, at, 'dcgm', { kind: 'thermal_violation', gpu: gpu.uuid, pci: gpu.pci, delta: 1_500_000, total: 1_500_000 }));
            break;
          }
          case 'containerd':
            this.containerdDownUntil.set(node.name, at + (4 + Math.floor(this.opts.rand() * 6)) * 60_000);
            break;
          case 'host-down': {
            const until = at + (20 + Math.floor(this.opts.rand() * 40)) * 60_000;
            this.silentUntil.set(node.name, until);
            hostsDown.push({ node: node.name, cause: cause.cause, at, until });
            break;
          }
        }
      }
    }
    for (const [name, until] of this.silentUntil) if (now >= until) this.silentUntil.delete(name);
    if (this.opts.background ?? true) this.background(now, dt, events);
    events.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
    return { events, causes, hostsDown };
  }

  private background(now: number, dt: number, events: EventEnvelope[]): void {
    const live = (n: FleetNode): boolean => !this.isSilent(n.name, now);
    if (now >= this.nextContainerd) {
      this.nextContainerd = now + 10_000;
      for (const [name, until] of this.containerdDownUntil) {
        const node = this.byName.get(name);
        if (!node || !live(node)) continue;
        if (now < until) {
          events.push(this.event('runtime.containerd', node, now, 'grpc', { state: 'timeout', error: 'context deadline exceeded after 2000ms (Health/Check)' }));
        } else {
          this.containerdDownUntil.delete(name);
          this.containerdRecovering.set(name, now + 90_000);
        }
      }
      for (const [name, until] of this.containerdRecovering) {
        const node = this.byName.get(name);
        if (node && live(node)) events.push(this.event('runtime.containerd', node, now, 'grpc', { state: 'serving', latencyMs: 3, runtimeReady: true, networkReady: true }));
        if (now >= until) this.containerdRecovering.delete(name);
      }
    }
    if (now >= this.nextContainerdAll) {
      // the collector also reports periodically when nothing changed
      this.nextContainerdAll = now + 60_000;
      for (const node of this.opts.nodes) {
        if (!live(node) || this.containerdDownUntil.has(node.name) || this.containerdRecovering.has(node.name)) continue;
        events.push(this.event('runtime.containerd', node, now, 'grpc', { state: 'serving', latencyMs: 2 + Math.floor(this.opts.rand() * 4), runtimeReady: true, networkReady: true }));
      }
    }
    if (now >= this.nextHeartbeat) {
      this.nextHeartbeat = now + 30_000;
      for (const node of this.opts.nodes) if (live(node)) events.push(this.event('agent.heartbeat', node, now, 'agent', { version: '0.1.0' }));
    }
    // kube-proxy OOM restart loop: three restarts a minute apart, conntrack inserts failing meanwhile
    const loops = (this.opts.kubeProxyLoopsPerNodeDay ?? 0.0003) * this.opts.amplification * this.opts.nodes.length * (dt / 86_400_000);
    if (dt > 0 && this.opts.rand() < loops) {
      const node = this.pick(this.opts.nodes);
      if (live(node)) {
        for (let k = 0; k < 3; k++) {
          const count = (this.restarts.get(node.name) ?? 0) + 1;
          this.restarts.set(node.name, count);
          events.push(this.event('kubeproxy.restart', node, now + k * 60_000, 'kube-api', { pod: `kube-proxy-${node.name.slice(-3)}x7k`, restartCount: count, reason: 'OOMKilled', exitCode: 137 }));
        }
        const c = this.conntrack.get(node.name);
        if (c) {
          c.insert_failed += 250 + Math.floor(this.opts.rand() * 500);
          c.drop += 20 + Math.floor(this.opts.rand() * 60);
        }
      }
    }
    if (now >= this.nextConntrack) {
      this.nextConntrack = now + 15_000;
      for (const node of this.opts.nodes) {
        const c = this.conntrack.get(node.name) ?? { insert_failed: 0, drop: 0, found: 1000, count: 20_000 + Math.floor(this.opts.rand() * 20_000) };
        c.found += Math.floor(this.opts.rand() * 500);
        c.count = Math.max(1000, c.count + Math.floor((this.opts.rand() - 0.5) * 2000));
        this.conntrack.set(node.name, c);
        if (!live(node)) continue;
        events.push(
          this.event('net.conntrack', node, now, 'procfs', {
            count: c.count,
            max: 262_144,
            counters: { found: c.found, insert_failed: c.insert_failed, drop: c.drop, early_drop: 0, invalid: 12, insert: c.found, search_restart: 0 },
          }),
        );
      }
    }
  }

  /**
   * A bad driver rollout: hardware-class Xids (79 and 119, the GSP timeout
   * typical of a driver regression) on `count` nodes of one pool — of one
   * zone too when given, as a rollout reaches one zone first — one node every
   * `spacingMs`, starting at `at`.
   */
  storm(pool: string, count: number, at: number, opts: { zone?: string; spacingMs?: number; exclude?: ReadonlySet<string> } = {}): EventEnvelope[] {
    const spacing = opts.spacingMs ?? 15_000;
    const victims = this.opts.nodes
      .filter((n) => n.pool === pool && (opts.zone === undefined || n.zone === opts.zone) && !opts.exclude?.has(n.name) && !this.isSilent(n.name, at))
      .slice(0, count);
    return victims.map((n, i) => this.xid(n, i % 3 === 2 ? 119 : 79, at + i * spacing));
  }
}

/** Poisson-distributed count with mean `lambda` (normal approximation above 30). */
export function poisson(lambda: number, rand: () => number): number {
  if (lambda <= 0) return 0;
  if (lambda > 30) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * gaussian(rand)));
  const l = Math.exp(-lambda);
  let k = 0;
  let p = 1;
  do {
    k++;
    p *= rand();
  } while (p > l);
  return k - 1;
}

function gaussian(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}
