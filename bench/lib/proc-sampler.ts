/**
 * Samples a process's resident memory and CPU time from /proc (Linux):
 * `/proc/<pid>/status` VmRSS and `/proc/<pid>/stat` utime+stime. CPU % is of
 * one core over each sampling interval.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface ProcSample {
  /** ms since the sampler started. */
  t: number;
  rssMiB: number;
  /** % of one core since the previous sample (null for the first). */
  cpuPct: number | null;
}

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** utime + stime in clock ticks; the comm field may hold spaces, so split after the last ')'. */
export function cpuTicks(statText: string): number {
  const rest = statText.slice(statText.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  return Number(rest[11]) + Number(rest[12]);
}

export function rssKiB(statusText: string): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(statusText);
  return m ? Number(m[1]) : NaN;
}

export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lastTicks: number | null = null;
  private lastAt = 0;
  private readonly started = Date.now();

  constructor(readonly pid: number, private readonly intervalMs = 1000) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private sample(): void {
    let stat: string;
    let status: string;
    try {
      stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    } catch {
      return; // the process is gone
    }
    const now = Date.now();
    const ticks = cpuTicks(stat);
    const cpuPct = this.lastTicks === null ? null : ((ticks - this.lastTicks) / ticksPerSecond() / ((now - this.lastAt) / 1000)) * 100;
    this.lastTicks = ticks;
    this.lastAt = now;
    this.samples.push({ t: now - this.started, rssMiB: rssKiB(status) / 1024, cpuPct });
  }
}

/** CPU % over a whole window from first and last cumulative readings is steadier than a median of 1 s deltas (ticks are 10 ms). */
export function meanCpu(samples: ProcSample[]): number {
  const xs = samples.map((s) => s.cpuPct).filter((x): x is number => x !== null);
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}
