/**
 * Leaked-handle check shared by the unit, fuzz and integration runs, which run
 * without mocha's `exit: true`: once the last test (and the global teardown)
 * is done, the process has to end by itself. A handle a test or the product
 * left open and ref'd (a timer, a server, a socket, a child process, a
 * reconnecting client) keeps it alive; GRACE_MS after the teardown this fails
 * the run (exit code 1), naming each handle that still keeps the event loop
 * alive — sockets with their addresses, servers with theirs, child processes
 * with their command line, timers with their period and callback — and the
 * test during or after which it was first seen, instead of hanging or being
 * cut off silently.
 *
 * Node does not list timers among the active handles, so the global
 * setTimeout/setInterval (and those of `node:timers`) are wrapped to remember
 * each timer and the test that created it. Unref'd handles do not hold the
 * process and are not reported.
 *
 * Used as a root hook plugin: the mocharc (or `--require`) loads this module
 * (unit, fuzz) or `test/integration/_hooks.ts`, which re-exports it and arms
 * it after stopping the shared servers.
 */
import { Session } from 'node:inspector';
import { createRequire, syncBuiltinESMExports } from 'node:module';

/** How long the process may outlive its teardown ($NODEWARDEN_LEAK_GRACE_MS, for the check's own test). */
export const GRACE_MS = Number(process.env['NODEWARDEN_LEAK_GRACE_MS'] ?? '') || 10_000;

// ------------------------------------------------------------- where from

/** The test running now (or the one just finished), for the origin of a new handle. */
let phase = 'before the first test (module load or a root hook)';
/** The test running now (or the one just finished), as the leak report names it. */
export const currentPhase = (): string => phase;
/** First moment each handle was seen: by object (sockets, servers, child processes, timers). */
const origins = new WeakMap<object, string>();

interface TimerLike {
  hasRef(): boolean;
  _destroyed?: boolean;
  _idleTimeout?: number;
  _repeat?: number | null;
  _onTimeout?: unknown;
}

/** Live timers created since this module loaded (pruned of fired/cleared ones as it goes). */
const timers = new Set<TimerLike>();
let createdSincePrune = 0;

function pruneTimers(): void {
  createdSincePrune = 0;
  for (const t of timers) if (t._destroyed !== false) timers.delete(t);
}

function remember(t: unknown): void {
  if (typeof t !== 'object' || t === null || typeof (t as TimerLike).hasRef !== 'function') return;
  timers.add(t as TimerLike);
  origins.set(t, phase);
  if (++createdSincePrune >= 10_000) pruneTimers();
}

type TimerFn = (...args: never[]) => unknown;

function wrapTimer<F extends TimerFn>(original: F): F {
  const wrapped = function (this: unknown, ...args: Parameters<F>): ReturnType<F> {
    const t = original.apply(this, args) as ReturnType<F>;
    remember(t);
    return t;
  };
  // keep util.promisify.custom and friends
  for (const key of Reflect.ownKeys(original)) {
    if (key === 'length' || key === 'name' || key === 'prototype') continue;
    const desc = Object.getOwnPropertyDescriptor(original, key);
    if (desc) Object.defineProperty(wrapped, key, desc);
  }
  Object.defineProperty(wrapped, 'name', { value: original.name });
  return wrapped as unknown as F;
}

const WRAPPED = Symbol.for('nodewarden.leak-check.wrapped');

function installTimerTracking(): void {
  const g = globalThis as unknown as Record<string | symbol, unknown>;
  if (g[WRAPPED]) return;
  g[WRAPPED] = true;
  const timersModule = createRequire(import.meta.url)('node:timers') as { setTimeout: typeof setTimeout; setInterval: typeof setInterval };
  const wrappedTimeout = wrapTimer(timersModule.setTimeout);
  const wrappedInterval = wrapTimer(timersModule.setInterval);
  timersModule.setTimeout = wrappedTimeout;
  timersModule.setInterval = wrappedInterval;
  syncBuiltinESMExports();
  globalThis.setTimeout = wrappedTimeout;
  globalThis.setInterval = wrappedInterval;
}

installTimerTracking();

// ------------------------------------------------------------- what is open

interface HandleLike {
  constructor?: { name?: string };
  hasRef?: () => boolean;
  _handle?: { hasRef?: () => boolean; fd?: number } | null;
  // net.Socket
  remoteAddress?: string;
  remotePort?: number;
  localAddress?: string;
  localPort?: number;
  connecting?: boolean;
  _host?: string | null;
  autoSelectFamilyAttemptedAddresses?: string[];
  // net.Server
  address?: () => unknown;
  // ChildProcess
  pid?: number;
  spawnargs?: string[];
}

function activeHandles(): HandleLike[] {
  const p = process as unknown as { _getActiveHandles?: () => HandleLike[] };
  return (p._getActiveHandles?.() ?? []).filter(
    (h) => (h as unknown) !== process.stdout && (h as unknown) !== process.stderr && (h as unknown) !== process.stdin,
  );
}

/** Does this handle keep the event loop alive? */
function isRefd(h: HandleLike): boolean {
  if (typeof h.hasRef === 'function') return h.hasRef();
  if (h._handle && typeof h._handle.hasRef === 'function') return h._handle.hasRef();
  return true;
}

function describeHandle(h: HandleLike): string {
  const name = h.constructor?.name ?? 'handle';
  if (typeof h.spawnargs !== 'undefined') return `${name} pid ${String(h.pid)}: ${h.spawnargs.join(' ').slice(0, 200)}`;
  if (typeof h.address === 'function' && name.includes('Server')) {
    let addr: unknown;
    try {
      addr = h.address();
    } catch {
      addr = '?';
    }
    return `${name} listening on ${JSON.stringify(addr)}`;
  }
  if (h.remoteAddress !== undefined) {
    return `${name} ${h.localAddress ?? '?'}:${String(h.localPort)} -> ${h.remoteAddress}:${String(h.remotePort)}`;
  }
  if (h.connecting) {
    const tried = h.autoSelectFamilyAttemptedAddresses?.join(', ');
    return `${name} connecting to ${h._host ?? '?'}${tried ? ` (${tried})` : ''}`;
  }
  const fd = h._handle?.fd;
  return `${name}${typeof fd === 'number' && fd >= 0 ? ` fd ${fd}` : ''} (not connected: a pipe or a closed socket)`;
}

const oneLine = (text: string, max: number): string => text.replace(/\s+/g, ' ').slice(0, max);

interface RemoteObject {
  type?: string;
  description?: string;
  objectId?: string;
}
interface PropertyDescriptor {
  name: string;
  value?: RemoteObject;
}
interface Properties {
  result?: PropertyDescriptor[];
  internalProperties?: PropertyDescriptor[];
}

/**
 * The functions a callback closes over, through the inspector (its [[Scopes]]).
 * A retry timer's own callback (`() => retry(next, n + 1)`) says little; the
 * operation it retries, captured a scope or two up, names the client.
 */
function closedOverFunctions(fn: unknown): string[] {
  if (typeof fn !== 'function') return [];
  const session = new Session();
  const g = globalThis as unknown as Record<string, unknown>;
  try {
    session.connect();
    // same-thread sessions answer synchronously
    const post = <T>(method: string, params: object): T | undefined => {
      let out: T | undefined;
      session.post(method, params, (err, res) => {
        if (!err) out = res as T;
      });
      return out;
    };
    g['__nodewardenLeakFn'] = fn;
    const fnObj = post<{ result?: RemoteObject }>('Runtime.evaluate', { expression: 'globalThis.__nodewardenLeakFn', objectGroup: 'leak-check' })?.result;
    const scopesId = fnObj?.objectId ? post<Properties>('Runtime.getProperties', { objectId: fnObj.objectId, ownProperties: true })?.internalProperties?.find((p) => p.name === '[[Scopes]]')?.value?.objectId : undefined;
    const scopes = scopesId ? (post<Properties>('Runtime.getProperties', { objectId: scopesId, ownProperties: true })?.result ?? []) : [];
    const found: string[] = [];
    for (const scope of scopes.slice(0, 4)) {
      if (!scope.value?.objectId || !scope.value.description?.startsWith('Closure')) continue;
      for (const v of post<Properties>('Runtime.getProperties', { objectId: scope.value.objectId, ownProperties: true })?.result ?? []) {
        if (v.value?.type === 'function' && v.value.description && found.length < 4) found.push(`${v.name} = ${oneLine(v.value.description, 120)}`);
      }
    }
    post('Runtime.releaseObjectGroup', { objectGroup: 'leak-check' });
    return found;
  } catch {
    return [];
  } finally {
    delete g['__nodewardenLeakFn'];
    session.disconnect();
  }
}

function describeTimer(t: TimerLike): string {
  const fn = typeof t._onTimeout === 'function' ? oneLine(String(t._onTimeout), 160) : '?';
  const closed = closedOverFunctions(t._onTimeout);
  return `Timeout ${t._repeat ? 'every' : 'after'} ${String(t._idleTimeout ?? '?')} ms: ${fn}${closed.length > 0 ? ` (closes over: ${closed.join('; ')})` : ''}`;
}

/** Every handle and timer keeping the loop alive now, each with where it was first seen. */
export function openHandles(): string[] {
  const out: string[] = [];
  for (const h of activeHandles()) {
    if (!isRefd(h)) continue;
    out.push(`${describeHandle(h)} — first seen ${origins.get(h) ?? 'never (created between the last check and now)'}`);
  }
  pruneTimers();
  for (const t of timers) {
    if (!t.hasRef()) continue;
    out.push(`${describeTimer(t)} — created ${origins.get(t) ?? '?'}`);
  }
  return out;
}

function noteNewHandles(when: string): void {
  for (const h of activeHandles()) if (!origins.has(h)) origins.set(h, when);
}

interface TestLike {
  file?: string;
  fullTitle(): string;
}

function label(test: TestLike | undefined): string {
  if (!test) return '(unknown test)';
  return `"${test.fullTitle()}"${test.file ? ` (${test.file.replace(/^.*\/dist\//, '')})` : ''}`;
}

/** Report and fail the run if the process is still alive GRACE_MS from now. */
export function armLeakCheck(graceMs = GRACE_MS): void {
  phase = 'after the last test (root after hooks or global teardown)';
  setTimeout(() => {
    const open = openHandles();
    process.stderr.write(
      `leaked handles: the test process is still alive ${graceMs} ms after the last test and the teardown, ` +
        `held by ${JSON.stringify(process.getActiveResourcesInfo())}:\n` +
        (open.length > 0 ? open.map((h) => `  - ${h}\n`).join('') : '  (no ref\'d handle or tracked timer found)\n'),
    );
    // after mocha's own exit listener, which sets the exit code to the number of failed tests
    process.on('exit', () => {
      process.exitCode = 1;
    });
    process.exit(1);
  }, graceMs).unref();
}

export const mochaHooks = {
  beforeEach(this: Mocha.Context): void {
    noteNewHandles(`before ${label(this.currentTest)} (a before hook or the previous test's after hook)`);
    phase = `during ${label(this.currentTest)}`;
  },
  afterEach(this: Mocha.Context): void {
    noteNewHandles(`during ${label(this.currentTest)}`);
    phase = `after ${label(this.currentTest)} (an after hook)`;
  },
};

export function mochaGlobalTeardown(): void {
  armLeakCheck();
}
