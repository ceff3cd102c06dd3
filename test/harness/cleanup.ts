/**
 * Releasing what a test opened even when it fails half-way. The suites run
 * without mocha's `exit: true` (test/harness/leak-check.ts): a client, server
 * or child process left open by a test that threw before its last line keeps
 * the process alive and fails the run.
 */

export interface Releases {
  /** Run `release` after the current test, even if it failed; returns the resource. */
  track<T>(resource: T, release: (resource: T) => unknown): T;
  /** Run `fn` after the current test, even if it failed. */
  defer(fn: () => unknown): void;
}

async function releaseAll(fns: Array<() => unknown>): Promise<void> {
  const errors: unknown[] = [];
  // last opened, first released: a client goes before the server it talks to
  for (const fn of fns.reverse()) {
    try {
      await fn();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} releases failed`);
}

function releases(hook: (fn: () => Promise<void>) => void): Releases {
  const pending: Array<() => unknown> = [];
  hook(() => releaseAll(pending.splice(0)));
  return {
    track(resource, release) {
      pending.push(() => release(resource));
      return resource;
    },
    defer(fn) {
      pending.push(fn);
    },
  };
}

/** Call inside a `describe`: what is tracked during a test is released in an `afterEach`, last first. */
export function releaseAfterEach(): Releases {
  return releases((fn) => afterEach(fn));
}

/**
 * Start several things one after the other; if one fails to start, stop the
 * ones already started (last first) and throw its error.
 */
export async function startAll<T>(starters: ReadonlyArray<() => Promise<T>>, stop: (started: T) => unknown): Promise<T[]> {
  const started: T[] = [];
  try {
    for (const start of starters) started.push(await start());
    return started;
  } catch (err) {
    await releaseAll(started.map((s) => () => stop(s))).catch(() => undefined);
    throw err;
  }
}

/** Await `ready`; if it rejects, `kill` what was being waited for and rethrow (a child that never got ready must not outlive the test). */
export async function killUnlessReady<T>(ready: Promise<T>, kill: () => unknown): Promise<T> {
  try {
    return await ready;
  } catch (err) {
    try {
      await kill();
    } catch {
      // the readiness error is the one to report
    }
    throw err;
  }
}
