/**
 * The agent's process metrics, named as prom-client's default metrics with
 * the agent's prefix (`nodewarden_agent_process_resident_memory_bytes`, …),
 * so dashboards and alerts keep working without prom-client (ADR 0039).
 * Read on scrape only; the event-loop delay is sampled by perf_hooks at a
 * 1 s resolution (the agent's CPU budget is 0.5 % of a core) and reset after
 * each scrape, as prom-client does.
 */
import fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge } from './metrics.js';
import type { Registry } from './metrics.js';

const PAGE_SIZE = 4096;

/** RSS and virtual size from /proc/self/statm (Linux), else process.memoryUsage(). */
function memory(): { rss: number; vsize: number | null } {
  try {
    const [size, resident] = fs.readFileSync('/proc/self/statm', 'utf8').split(' ');
    const vsize = Number(size) * PAGE_SIZE;
    const rss = Number(resident) * PAGE_SIZE;
    if (Number.isFinite(vsize) && Number.isFinite(rss)) return { rss, vsize };
  } catch {
    /* not Linux */
  }
  return { rss: process.memoryUsage.rss(), vsize: null };
}

function openFds(): number | null {
  try {
    return fs.readdirSync('/proc/self/fd').length - 1; // minus the fd readdir itself opened
  } catch {
    return null;
  }
}

function maxFds(): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return m?.[1] ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Registers the process and Node.js metrics on `registry`; returns a stop function (the event-loop monitor). */
export function registerProcessMetrics(registry: Registry, prefix: string): () => void {
  const startSeconds = Math.round(Date.now() / 1000 - process.uptime());
  const lag = monitorEventLoopDelay({ resolution: 1000 });
  lag.enable();
  // CPU counters mirror process.cpuUsage(): each advances by the difference since its last read.
  const cpuCounter = (name: string, help: string, read: (u: NodeJS.CpuUsage) => number) => {
    let seen = 0;
    new Counter({
      name: `${prefix}${name}`,
      help,
      registers: [registry],
      collect() {
        const now = read(process.cpuUsage()) / 1e6;
        this.inc(Math.max(0, now - seen));
        seen = Math.max(seen, now);
      },
    });
  };
  cpuCounter('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', (u) => u.user);
  cpuCounter('process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.', (u) => u.system);
  cpuCounter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', (u) => u.user + u.system);
  new Gauge({ name: `${prefix}process_start_time_seconds`, help: 'Start time of the process since unix epoch in seconds.', registers: [registry], collect() { this.set(startSeconds); } });
  new Gauge({ name: `${prefix}process_resident_memory_bytes`, help: 'Resident memory size in bytes.', registers: [registry], collect() { this.set(memory().rss); } });
  new Gauge({ name: `${prefix}process_virtual_memory_bytes`, help: 'Virtual memory size in bytes.', registers: [registry], collect() { this.set(memory().vsize ?? 0); } });
  new Gauge({ name: `${prefix}process_heap_bytes`, help: 'Process heap size in bytes.', registers: [registry], collect() { const m = process.memoryUsage(); this.set(m.heapTotal + m.external); } });
  new Gauge({ name: `${prefix}process_open_fds`, help: 'Number of open file descriptors.', registers: [registry], collect() { this.set(openFds() ?? 0); } });
  const limit = maxFds();
  if (limit !== null) new Gauge({ name: `${prefix}process_max_fds`, help: 'Maximum number of open file descriptors.', registers: [registry] }).set(limit);
  new Gauge({ name: `${prefix}nodejs_heap_size_total_bytes`, help: 'Process heap size from Node.js in bytes.', registers: [registry], collect() { this.set(process.memoryUsage().heapTotal); } });
  new Gauge({ name: `${prefix}nodejs_heap_size_used_bytes`, help: 'Process heap size used from Node.js in bytes.', registers: [registry], collect() { this.set(process.memoryUsage().heapUsed); } });
  new Gauge({ name: `${prefix}nodejs_external_memory_bytes`, help: 'Node.js external memory size in bytes.', registers: [registry], collect() { this.set(process.memoryUsage().external); } });
  new Gauge({ name: `${prefix}nodejs_active_resources_total`, help: 'Total number of active resources.', registers: [registry], collect() { this.set(process.getActiveResourcesInfo().length); } });
  const lagGauge = (name: string, help: string, read: () => number) =>
    new Gauge({ name: `${prefix}nodejs_eventloop_lag_${name}_seconds`, help, registers: [registry], collect() { const v = read(); this.set(Number.isFinite(v) ? v / 1e9 : 0); } });
  lagGauge('p50', 'The 50th percentile of the recorded event loop delays.', () => lag.percentile(50));
  lagGauge('p99', 'The 99th percentile of the recorded event loop delays.', () => lag.percentile(99));
  // Like prom-client, each scrape reports the delays since the previous one: the last of the three resets.
  lagGauge('max', 'The maximum recorded event loop delay.', () => {
    const max = lag.max;
    lag.reset();
    return max;
  });
  const [major = '', minor = '', patch = ''] = process.versions.node.split('.');
  new Gauge({ name: `${prefix}nodejs_version_info`, help: 'Node.js version info.', labelNames: ['version', 'major', 'minor', 'patch'], registers: [registry] }).set(
    { version: process.version, major, minor, patch },
    1,
  );
  return () => lag.disable();
}
