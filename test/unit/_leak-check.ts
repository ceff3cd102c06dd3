/**
 * Mocha root hook of the unit and fuzz runs, which run without `exit: true`:
 * once the last test is done the process has to end by itself. A handle a
 * test left open (a ref'd timer, a server, a socket, a child process, a
 * client) keeps it alive; GRACE_MS after the last test this fails the run,
 * naming what is still open, instead of hanging or being cut off silently.
 */
const GRACE_MS = 10_000;

interface HandleLike {
  constructor?: { name?: string };
  hasRef?: () => boolean;
  _onTimeout?: unknown;
  _idleTimeout?: number;
}

function openHandles(): string[] {
  const p = process as unknown as { _getActiveHandles?: () => HandleLike[] };
  const handles = p._getActiveHandles?.() ?? [];
  return handles
    .filter((h) => (h as unknown) !== process.stdout && (h as unknown) !== process.stderr && (h as unknown) !== process.stdin)
    .filter((h) => h.hasRef?.() !== false)
    .map((h) => {
      const name = h.constructor?.name ?? 'handle';
      return typeof h._onTimeout === 'function' ? `${name} every/after ${h._idleTimeout ?? '?'} ms: ${String(h._onTimeout).replace(/\s+/g, ' ').slice(0, 160)}` : name;
    });
}

export const mochaHooks = {
  afterAll(): void {
    setTimeout(() => {
      process.stderr.write(
        `leaked handles: the test process is still alive ${GRACE_MS} ms after the last test, held by ${JSON.stringify(process.getActiveResourcesInfo())}:\n` +
          openHandles().map((h) => `  - ${h}\n`).join(''),
      );
      // after mocha's own exit listener, which sets the exit code to the number of failed tests
      process.on('exit', () => {
        process.exitCode = 1;
      });
      process.exit(1);
    }, GRACE_MS).unref();
  },
};
