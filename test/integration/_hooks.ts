/**
 * Mocha root hooks for integration runs:
 * - before any test module runs, every temp dir and log of the run goes under
 *   one per-run directory (test/harness/secrets.ts);
 * - after the last test, every log of the run is scanned for every secret the
 *   tests registered (a leak fails the run with file and line, redacted);
 * - the global teardown stops the shared real servers, then arms the
 *   leaked-handle check (test/harness/leak-check.ts): the run has no mocha
 *   `exit: true`, so a handle still open GRACE_MS later fails it, named;
 * - before that, every kafkajs client the test process created
 *   (test/harness/kafka-clients.ts) must be disconnected and not about to
 *   restart: one that is fails the run, named with the test that created it,
 *   instead of showing up (or not) as a retry timer after the broker stopped.
 */
import fs from 'node:fs';
import { openKafkaClients } from '../harness/kafka-clients.js';
import { armLeakCheck, mochaHooks as leakHooks } from '../harness/leak-check.js';
import { onExit } from '../harness/proc.js';
import { formatLeaks, registeredSecrets, scanForSecrets, useRunDir } from '../harness/secrets.js';
import { stopSharedServers } from './servers.js';

const ownRunDir = process.env['NODEWARDEN_TEST_RUN_DIR'] === undefined;
const runDir = useRunDir();
let leaked = false;
if (ownRunDir && !process.env['NODEWARDEN_KEEP_TMP']) onExit(() => leaked || fs.rmSync(runDir, { recursive: true, force: true }));

export const mochaHooks = {
  ...leakHooks,
  afterAll(this: Mocha.Context): void {
    this.timeout(120_000);
    const secrets = registeredSecrets();
    const { leaks, filesScanned, bytesScanned } = scanForSecrets(runDir, secrets);
    process.stderr.write(`secret scan: ${secrets.length} registered secrets, ${filesScanned} log files (${(bytesScanned / 1048576).toFixed(1)} MiB) under ${runDir}, ${leaks.length} leaks\n`);
    leaked = leaks.length > 0;
    if (leaked) throw new Error(`secrets found in logs of this run (kept in ${runDir}):\n${formatLeaks(leaks)}`);
  },
};

/** Fails the run (exit code 1, after mocha's own listener) if a kafkajs client of this process is still live. */
function checkKafkaClients(): void {
  const open = openKafkaClients();
  if (open.length === 0) return;
  process.stderr.write(
    `leaked kafkajs clients: ${open.length} still connected or about to reconnect at the global teardown, before the shared broker stops:\n` +
      open.map((c) => `  - ${c}\n`).join(''),
  );
  process.on('exit', () => {
    process.exitCode = 1;
  });
}

export async function mochaGlobalTeardown(): Promise<void> {
  checkKafkaClients();
  try {
    await stopSharedServers();
  } finally {
    armLeakCheck();
  }
}
