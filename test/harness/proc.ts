/**
 * Small helpers for running test servers as child processes:
 * spawn with output to a log file, wait for readiness with a timeout (tailing
 * the log on failure), stop with SIGTERM → SIGKILL, and never leave orphans:
 * every child is SIGKILLed when this process exits, and on Linux each child
 * also gets a parent-death signal (util-linux `setpriv --pdeathsig`) so it
 * dies even if this process is SIGKILLed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface SpawnOptions {
  /** Short name for error messages, e.g. "kafka". */
  name: string;
  /** stdout and stderr are appended to this file. */
  logFile: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly child: ChildProcess;
  /** True once the process has exited (or failed to spawn). */
  exited(): boolean;
  /** Exit description, e.g. "code 1" or "signal SIGKILL", or undefined while running. */
  exitStatus(): string | undefined;
  /** Resolves when the process has exited. */
  waitExit(): Promise<void>;
  /** SIGTERM, wait up to graceMs (default 15 s), then SIGKILL. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
}

// ---------------------------------------------------------------- exit cleanup

const liveChildren = new Set<ChildProcess>();
const exitCleanups: Array<() => void> = [];
let hooksInstalled = false;

function killAllNow(): void {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  liveChildren.clear();
  for (const fn of exitCleanups.splice(0)) {
    try {
      fn();
    } catch {
      /* best effort */
    }
  }
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAllNow();
      // If nobody else handles the signal, re-raise it for the default action.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
}

/** Run fn synchronously when this process exits (after children are killed). */
export function onExit(fn: () => void): void {
  installExitHooks();
  exitCleanups.push(fn);
}

// ---------------------------------------------------------------- files

/** A fresh temp dir, removed when the process exits unless NODEWARDEN_KEEP_TMP is set (or a per-run dir owns it). */
export function makeTempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `nodewarden-${prefix}-`));
  // Under a per-run dir (test/harness/secrets.ts), whoever owns the run dir removes it after scanning the logs.
  if (!process.env['NODEWARDEN_KEEP_TMP'] && !process.env['NODEWARDEN_TEST_RUN_DIR']) {
    onExit(() => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return dir;
}

/** Last `lines` lines of a file ('' if it does not exist). Reads at most 64 KiB. */
export function tailFile(file: string, lines = 40): string {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const len = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    return buf.toString('utf8').split('\n').slice(-lines - 1).join('\n').trimEnd();
  } catch {
    return '';
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Absolute path of an executable: from env var `envVar` if set (must exist),
 * else the first `name` on PATH (plus /usr/sbin, /usr/local/sbin). Throws a
 * clear error naming `hint` (how to install it) if not found.
 */
export function resolveBinary(envVar: string, name: string, hint: string): string {
  const fromEnv = process.env[envVar];
  if (fromEnv) {
    if (!isExecutable(fromEnv)) {
      throw new Error(`${envVar}=${fromEnv} is not an executable file. ${hint}`);
    }
    return fromEnv;
  }
  const dirs = (process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean);
  dirs.push('/usr/local/sbin', '/usr/sbin', '/sbin');
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  throw new Error(`${name} not found on PATH and ${envVar} is not set. ${hint}`);
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

let setprivPath: string | null | undefined;
function pdeathsigWrapper(): string | null {
  if (setprivPath === undefined) {
    setprivPath = null;
    if (process.platform === 'linux') {
      for (const p of ['/usr/bin/setpriv', '/bin/setpriv']) {
        if (isExecutable(p)) {
          setprivPath = p;
          break;
        }
      }
    }
  }
  return setprivPath;
}

// ---------------------------------------------------------------- spawning

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Spawn `cmd args` with stdout/stderr appended to opts.logFile. */
export function spawnLogged(cmd: string, args: readonly string[], opts: SpawnOptions): ManagedProcess {
  installExitHooks();
  fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
  const fd = fs.openSync(opts.logFile, 'a');
  fs.writeSync(fd, `\n==== ${new Date().toISOString()} ${cmd} ${args.join(' ')}\n`);

  const wrapper = pdeathsigWrapper();
  const [file, argv] = wrapper ? [wrapper, ['--pdeathsig', 'SIGKILL', '--', cmd, ...args]] : [cmd, [...args]];
  const child = spawn(file, argv, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', fd, fd],
  });
  fs.closeSync(fd); // the child has its own copy
  // Do not keep the event loop alive just for the child; the exit hook kills it.
  child.unref();
  liveChildren.add(child);

  let status: string | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      status = signal ? `signal ${signal}` : `code ${String(code)}`;
      liveChildren.delete(child);
      resolve();
    });
    child.once('error', (err) => {
      status = `spawn error: ${err.message}`;
      liveChildren.delete(child);
      resolve();
    });
  });

  const waitExit = (): Promise<void> => exitPromise;
  const exited = (): boolean => status !== undefined;

  async function waitExitWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((r) => {
      timer = setTimeout(() => r(false), ms);
    });
    const done = await Promise.race([exitPromise.then(() => true as const), timeout]);
    if (timer) clearTimeout(timer);
    return done;
  }

  return {
    name: opts.name,
    pid: child.pid ?? -1,
    logFile: opts.logFile,
    child,
    exited,
    exitStatus: () => status,
    waitExit,
    async stop(graceMs = 15_000): Promise<void> {
      if (exited()) return;
      child.kill('SIGTERM');
      if (await waitExitWithin(graceMs)) return;
      child.kill('SIGKILL');
      await waitExitWithin(10_000);
    },
    async kill(): Promise<void> {
      if (exited()) return;
      child.kill('SIGKILL');
      await waitExitWithin(10_000);
    },
  };
}

export interface WaitOptions {
  /** What we are waiting for, for the error message. */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  /** Fail early if this process exits; its log tail goes into the error. */
  proc?: ManagedProcess;
  /** Extra log files whose tails go into the error. */
  logFiles?: string[];
}

/**
 * Poll `check` until it returns true. Throws (with log tails) on timeout or
 * if `opts.proc` exits first. Exceptions from `check` count as "not yet".
 */
export async function waitUntil(check: () => Promise<boolean>, opts: WaitOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  const interval = opts.intervalMs ?? 250;
  let lastError: unknown;
  for (;;) {
    if (opts.proc?.exited()) {
      throw new Error(failureMessage(`${opts.what}: process exited (${opts.proc.exitStatus() ?? '?'})`, opts, lastError));
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      throw new Error(failureMessage(`${opts.what}: timed out after ${opts.timeoutMs} ms`, opts, lastError));
    }
    await sleep(interval);
  }
}

function failureMessage(head: string, opts: WaitOptions, lastError: unknown): string {
  const parts = [head];
  if (lastError !== undefined) {
    parts.push(`last check error: ${lastError instanceof Error ? lastError.message : JSON.stringify(lastError)}`);
  }
  const files = [...(opts.proc ? [opts.proc.logFile] : []), ...(opts.logFiles ?? [])];
  for (const f of new Set(files)) {
    const tail = tailFile(f);
    parts.push(`--- tail of ${f} ---\n${tail || '(empty)'}`);
  }
  return parts.join('\n');
}
