/**
 * Benchmark plumbing shared by the bench/*.ts scripts: flag parsing with
 * defaults, run-N-times, a machine description, and the JSON summary a run
 * can write (`--json FILE`) so docs/performance.md figures can be traced back
 * to a file.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { cpuTicks } from './proc-sampler.js';

/** `--name value` as a number, else the default. Exits with a message on a non-number. */
export function numFlag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v)) {
    process.stderr.write(`--${name} needs a number, got "${process.argv[i + 1] ?? ''}"\n`);
    process.exit(2);
  }
  return v;
}

export function strFlag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

export function boolFlag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memGiB: number;
  node: string;
  /** 1-minute load average when the run started: other work on a shared box. */
  loadAvg1: number;
}

export function machine(): MachineInfo {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    loadAvg1: Number((os.loadavg()[0] ?? 0).toFixed(2)),
  };
}

export function describeMachine(m: MachineInfo = machine()): string {
  return `${m.cpus} cores (${m.cpuModel}), ${m.memGiB} GiB, Node ${m.node}, load average ${m.loadAvg1} at start`;
}

/** Writes `{ bench, machine, at, ...summary }` to `--json FILE` when given. */
export function writeJsonSummary(bench: string, summary: Record<string, unknown>, m: MachineInfo = machine()): void {
  const file = strFlag('json');
  if (!file) return;
  writeFileSync(file, JSON.stringify({ bench, at: new Date().toISOString(), machine: m, ...summary }, null, 2) + '\n');
  process.stdout.write(`summary written to ${file}\n`);
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Ends the process with the bench's outcome; errors are printed, not thrown into the void. */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}

/** Pid of the first process whose command line contains `needle` (Linux /proc), e.g. a broker's server.properties path. */
export function findPid(needle: string): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle)) return Number(d);
    } catch {
      // the process went away
    }
  }
  return undefined;
}

/** CPU seconds (user + system) a process has used so far; NaN when it is gone. */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    return cpuTicks(readFileSync(`/proc/${pid}/stat`, 'utf8')) / 100;
  } catch {
    return NaN;
  }
}
