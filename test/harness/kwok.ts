/**
 * KWOK (sigs.k8s.io/kwok) against a harness control plane (test/harness/kube.ts):
 * it keeps the Nodes annotated `kwok.x-k8s.io/node: fake` Ready, heartbeating
 * through Leases, so that kube-controller-manager's node lifecycle controller
 * (enabled for these clusters) leaves them Ready, as kubelets would.
 *
 * The binary and its node stages come from `NODEWARDEN_KWOK_BIN` /
 * `NODEWARDEN_KWOK_STAGES` or the cache filled by scripts/provision/kwok.sh
 * (only checked here: a first build takes minutes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, run, type KubeCluster, type StartKubeOptions } from './kube.js';

/** The annotation KWOK selects its nodes by (as kwokctl sets it up). */
export const KWOK_ANNOTATION = 'kwok.x-k8s.io/node';

/**
 * Node lease duration KWOK renews with (every quarter of it). Kubelets use
 * 40 s; 300 s keeps 10,000 simulated nodes at ~133 lease writes/s instead of
 * 1,000 on a 2-core machine, and the controller manager's grace period below
 * is set to match.
 */
export const KWOK_LEASE_SECONDS = 300;

/** startKube options for a cluster whose nodes KWOK keeps: node lifecycle controller on. */
export function kwokKubeOptions(): StartKubeOptions {
  return {
    controllers: ['*'],
    controllerManagerArgs: [`--node-monitor-grace-period=${KWOK_LEASE_SECONDS + 60}s`, '--kube-api-qps=100', '--kube-api-burst=200'],
    timeoutMs: 180_000,
  };
}

export interface KwokProcess {
  child: ChildProcess;
  logPath: string;
  stop(): Promise<void>;
}

async function resolveKwok(): Promise<{ bin: string; stages: string }> {
  let bin = process.env['NODEWARDEN_KWOK_BIN'] ?? '';
  let stages = process.env['NODEWARDEN_KWOK_STAGES'] ?? '';
  if (bin === '' || stages === '') {
    const script = path.join(repoRoot(), 'scripts', 'provision', 'kwok.sh');
    const res = await run('bash', [script, '--check']);
    const kv = new Map(res.stdout.split('\n').map((l) => l.split('=', 2) as [string, string | undefined]));
    bin ||= kv.get('KWOK_BIN') ?? '';
    stages ||= kv.get('KWOK_STAGES') ?? '';
    if (res.code !== 0 || bin === '' || stages === '') {
      throw new Error(`KWOK is not available (${script} --check exited ${res.code}). Build it once with: bash scripts/provision/kwok.sh   (or set NODEWARDEN_KWOK_BIN and NODEWARDEN_KWOK_STAGES)\n${res.stderr.trim()}`);
    }
  }
  for (const f of [bin, stages]) if (!existsSync(f)) throw new Error(`KWOK file missing: ${f} (run: bash scripts/provision/kwok.sh)`);
  return { bin, stages };
}

/** Starts KWOK on `cluster` (admin kubeconfig); resolves once it runs. Logs go to the cluster's dir. */
export async function startKwok(cluster: KubeCluster): Promise<KwokProcess> {
  const { bin, stages } = await resolveKwok();
  const logPath = path.join(cluster.dir, 'kwok.log');
  // KWOK plays 4 node stages and 4 leases at a time by default: ~50 writes/s, 10 min for 10,000 nodes here
  const options = path.join(cluster.dir, 'kwok-options.yaml');
  writeFileSync(options, 'apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions:\n  nodePlayStageParallelism: 16\n  nodeLeaseParallelism: 16\n');
  const fd = openSync(logPath, 'a');
  const child = spawn(
    bin,
    [
      `--config=${stages}`,
      `--config=${options}`,
      `--kubeconfig=${cluster.kubeconfigPath}`,
      `--manage-nodes-with-annotation-selector=${KWOK_ANNOTATION}=fake`,
      `--node-lease-duration-seconds=${KWOK_LEASE_SECONDS}`,
      '--node-ip=10.0.0.1',
      // one INFO line per node patch and lease costs CPU that the engine should have
      '--v=WARN',
    ],
    { stdio: ['ignore', fd, fd], cwd: cluster.dir },
  );
  closeSync(fd);
  let exited = false;
  const gone = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  // Give it a moment to fail on bad flags or credentials.
  await Promise.race([gone, new Promise((r) => setTimeout(r, 1500))]);
  if (exited) throw new Error(`kwok exited at start; last lines of ${logPath}:\n${readFileSync(logPath, 'utf8').split('\n').slice(-20).join('\n')}`);
  const onExit = (): void => {
    if (!exited) child.kill('SIGKILL');
  };
  process.once('exit', onExit);
  return {
    child,
    logPath,
    async stop() {
      process.off('exit', onExit);
      if (exited) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    },
  };
}
