/**
 * Fault injection for the demo, at rates drawn from published fleet data:
 * Meta's Llama 3 405B pre-training report (54 days on 16,384 H100 GPUs in
 * 2,048 hosts; 419 unexpected interruptions, by root cause). Each cause maps
 * to the node-level signal nodewarden would actually see — or to none: silent
 * data corruption or a switch failure is invisible to a node agent, and the
 * demo says so instead of pretending.
 */
import type { EventEnvelope, EventType } from '../core/envelope.js';
import { UlidFactory } from '../core/ids.js';
import type { FleetNode } from './fleet.js';

export interface Cause {
  cause: string;
  /** interruptions in the Llama 3 54-day window */
  count: number;
  /** what a node agent observes; null = not observable by node signals */
  signal: null | { kind: 'xid'; codes: number[] } | { kind: 'containerd' } | { kind: 'thermal' };
}

/** Llama 3 report, table of unexpected interruptions by root cause. */
export const LLAMA3_CAUSES: readonly Cause[] = [
  { cause: 'Faulty GPU', count: 148, signal: { kind: 'xid', codes: [79, 79, 62, 74, 140] } },
  { cause: 'GPU HBM3 memory', count: 72, signal: { kind: 'xid', codes: [48, 95, 64] } },
  { cause: 'Software bug', count: 54, signal: { kind: 'xid', codes: [13, 31, 43] } },
  { cause: 'Network switch/cable', count: 35, signal: null },
  { cause: 'Host maintenance', count: 32, signal: null },
  { cause: 'GPU SRAM memory', count: 19, signal: { kind: 'xid', codes: [95, 48] } },
  { cause: 'GPU system processor', count: 17, signal: { kind: 'xid', codes: [119, 120] } },
  { cause: 'NIC', count: 7, signal: null },
  { cause: 'NCCL watchdog timeouts', count: 7, signal: { kind: 'xid', codes: [43] } },
  { cause: 'Silent data corruption', count: 6, signal: null },
  { cause: 'GPU thermal interface + sensor', count: 6, signal: { kind: 'thermal' } },
  { cause: 'SSD', count: 3, signal: { kind: 'containerd' } },
  { cause: 'Power supply', count: 3, signal: { kind: 'xid', codes: [79] } },
  { cause: 'Server chassis', count: 2, signal: null },
  { cause: 'IO expansion board', count: 2, signal: { kind: 'xid', codes: [79] } },
  { cause: 'Dependency', count: 2, signal: { kind: 'containerd' } },
  { cause: 'CPU', count: 2, signal: null },
  { cause: 'System memory', count: 2, signal: null },
];

export const LLAMA3_WINDOW_DAYS = 54;
export const LLAMA3_HOSTS = 2048;

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
  groupLabel?: string;
}

export interface Injected {
  events: EventEnvelope[];
  /** Causes that happened this step (for the demo's summary), incl. unobservable ones. */
  causes: string[];
}

/**
 * Poisson arrivals per cause over the fleet in virtual time, plus the
 * background a real fleet produces: heartbeats, conntrack samples, the odd
 * kube-proxy OOM restart.
 */
export class FaultInjector {
  private readonly ids = new UlidFactory();
  private last: number | undefined;
  private readonly conntrack = new Map<string, { insert_failed: number; drop: number; found: number; count: number }>();
  private readonly restarts = new Map<string, number>();
  private readonly containerdDownUntil = new Map<string, number>();
  private nextHeartbeat = 0;
  private nextConntrack = 0;
  private nextContainerd = 0;
  private readonly perHostPerMs: number;

  constructor(private readonly opts: InjectorOptions) {
    const total = LLAMA3_CAUSES.reduce((s, c) => s + c.count, 0);
    this.perHostPerMs = total / (LLAMA3_WINDOW_DAYS * 86_400_000 * LLAMA3_HOSTS);
  }

  /** Expected interruptions per virtual hour over this fleet, before amplification. */
  publishedRatePerHour(): number {
    return this.perHostPerMs * 3_600_000 * this.opts.nodes.length;
  }

  private event(type: EventType, node: FleetNode, at: number, source: string, data: Record<string, unknown>): EventEnvelope {
    return {
      v: 1,
      id: this.ids.next(at),
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

  /** An Xid on one GPU of a node, as the kernel-log collector reports it. */
  xid(node: FleetNode, code: number, at: number): EventEnvelope {
    const gpu = this.pick(node.gpus);
    const message = XID_TEXT[code] ?? 'Xid error';
    return this.event('gpu.xid', node, at, 'kmsg', {
      code,
      pci: gpu.pci,
      gpu: gpu.uuid,
      pid: code === 43 || code === 13 ? 24711 : null,
      process: code === 43 || code === 13 ? 'python3' : null,
      message,
    });
  }

  /** Everything that happens in (last, now]. */
  step(now: number): Injected {
    const events: EventEnvelope[] = [];
    const causes: string[] = [];
    const from = this.last ?? now;
    this.last = now;
    const dt = now - from;
    if (dt > 0) {
      const lambda = this.perHostPerMs * this.opts.amplification * this.opts.nodes.length * dt;
      const total = LLAMA3_CAUSES.reduce((s, c) => s + c.count, 0);
      let n = poisson(lambda, this.opts.rand);
      while (n-- > 0) {
        let r = this.opts.rand() * total;
        const cause = LLAMA3_CAUSES.find((c) => (r -= c.count) < 0) ?? LLAMA3_CAUSES[0];
        if (!cause) break;
        causes.push(cause.cause);
        const node = this.pick(this.opts.nodes);
        const at = from + Math.floor(this.opts.rand() * dt);
        if (!cause.signal) continue;
        if (cause.signal.kind === 'xid') {
          const code = this.pick(cause.signal.codes);
          events.push(this.xid(node, code, at));
          // application faults recur on the same GPU while the job retries
          if (code === 13 || code === 31 || code === 43) events.push(this.xid(node, code, at + 20_000));
        } else if (cause.signal.kind === 'thermal') {
          const gpu = this.pick(node.gpus);
          events.push(this.event('gpu.health', node, at, 'dcgm', { kind: 'thermal_violation', gpu: gpu.uuid, pci: gpu.pci, delta: 1_500_000, total: 1_500_000 }));
        } else {
          this.containerdDownUntil.set(node.name, at + 5 * 60_000);
        }
      }
    }
    if (now >= this.nextContainerd) {
      this.nextContainerd = now + 10_000;
      for (const [name, until] of this.containerdDownUntil) {
        const node = this.opts.nodes.find((x) => x.name === name);
        if (!node) continue;
        const down = now < until;
        events.push(this.event('runtime.containerd', node, now, 'grpc', down ? { state: 'timeout', error: 'deadline exceeded after 2000ms' } : { state: 'serving', latencyMs: 3, runtimeReady: true, networkReady: true }));
        if (!down) this.containerdDownUntil.delete(name);
      }
    }
    if (now >= this.nextHeartbeat) {
      this.nextHeartbeat = now + 30_000;
      for (const node of this.opts.nodes) events.push(this.event('agent.heartbeat', node, now, 'agent', { version: '0.1.0' }));
    }
    if (now >= this.nextConntrack) {
      this.nextConntrack = now + 15_000;
      for (const node of this.opts.nodes) {
        const c = this.conntrack.get(node.name) ?? { insert_failed: 0, drop: 0, found: 1000, count: 20_000 + Math.floor(this.opts.rand() * 20_000) };
        c.found += Math.floor(this.opts.rand() * 500);
        c.count = Math.max(1000, c.count + Math.floor((this.opts.rand() - 0.5) * 2000));
        this.conntrack.set(node.name, c);
        events.push(this.event('net.conntrack', node, now, 'procfs', { count: c.count, max: 262_144, counters: { found: c.found, insert_failed: c.insert_failed, drop: c.drop, early_drop: 0, invalid: 12, insert: c.found, search_restart: 0 } }));
      }
    }
    // kube-proxy OOM restarts: rare, in bursts on one node, with conntrack inserts failing
    if (dt > 0 && this.opts.rand() < 0.002 * (dt / 1000)) {
      const node = this.pick(this.opts.nodes);
      const c = this.conntrack.get(node.name);
      for (let k = 0; k < 3; k++) {
        const count = (this.restarts.get(node.name) ?? 0) + 1;
        this.restarts.set(node.name, count);
        events.push(this.event('kubeproxy.restart', node, now + k * 60_000, 'kube-api', { pod: `kube-proxy-${node.name.slice(-3)}x`, restartCount: count, reason: 'OOMKilled', exitCode: 137 }));
      }
      if (c) {
        c.insert_failed += 250;
        c.drop += 40;
      }
    }
    events.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
    return { events, causes };
  }

  /** A bad driver rollout: hardware-class Xids on many nodes of one pool within minutes. */
  storm(pool: string, nodes: number, at: number): EventEnvelope[] {
    const victims = this.opts.nodes.filter((n) => n.pool === pool).slice(0, nodes);
    return victims.map((n, i) => this.xid(n, i % 3 === 0 ? 119 : 79, at + i * 15_000));
  }
}

function poisson(lambda: number, rand: () => number): number {
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
