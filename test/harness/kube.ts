/**
 * A real, throwaway Kubernetes control plane for integration tests:
 * etcd + kube-apiserver + kube-controller-manager, all on loopback, no kubelet.
 *
 * Binaries come from `NODEWARDEN_KUBE_BIN` or from the cache filled by
 * `scripts/provision/kube.sh` (which this module only *checks* by default: a
 * first build takes tens of minutes, far longer than any test hook).
 *
 * Nodes of the fleet are plain Node objects created through the API. The
 * node-lifecycle controller is disabled by default (see `controllers`) because
 * without kubelets it would flip every Node to Ready=Unknown and taint it
 * `node.kubernetes.io/unreachable` about 50 s after creation.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerSecret } from './secrets.js';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubectlOptions {
  /** Written to kubectl's stdin (e.g. for `apply -f -`). */
  input?: string;
  /** Kubeconfig to use instead of the admin one. */
  kubeconfig?: string;
  /** Kill kubectl after this many ms (default 60000). */
  timeoutMs?: number;
}

export interface ApiResponse {
  status: number;
  body: string;
  /** Parsed JSON body, or undefined when it is not JSON. */
  json: unknown;
}

export interface KubeCluster {
  /** https://127.0.0.1:PORT */
  server: string;
  /** Bearer token of an admin user (group system:masters). */
  adminToken: string;
  /** Kubeconfig for the admin user (insecure-skip-tls-verify). */
  kubeconfigPath: string;
  /** Directory holding etcd, kube-apiserver, kube-controller-manager, helm, kubectl. */
  binDir: string;
  /** Path of the kubectl binary used by `kubectl()`. */
  kubectlPath: string;
  /** Temp dir holding logs, keys, etcd data (removed by stop()). */
  dir: string;
  /** Run kubectl (admin kubeconfig unless opts.kubeconfig); never throws on a non-zero exit. */
  kubectl(args: string[], opts?: KubectlOptions): Promise<ExecResult>;
  /** A ServiceAccount token minted through the TokenRequest API (the SA must exist). */
  tokenFor(namespace: string, serviceAccount: string, expirationSeconds?: number): Promise<string>;
  /** Write a kubeconfig using `token` for this cluster; returns its path. */
  kubeconfigFor(token: string): Promise<string>;
  /** Raw API call as admin (or with `token`). */
  request(method: string, apiPath: string, body?: unknown, token?: string): Promise<ApiResponse>;
  /** Kill every process and remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface StartKubeOptions {
  /** Directory with the binaries; default env NODEWARDEN_KUBE_BIN, else the provision cache. */
  binDir?: string;
  /**
   * Run the full provision build if the cache is empty (can take 30+ minutes).
   * Default false: fail fast with a message telling how to provision.
   */
  build?: boolean;
  /** Overall start-up timeout in ms (default 150000). */
  timeoutMs?: number;
  /** kube-controller-manager --controllers (default `*,-nodelifecycle`). */
  controllers?: string[];
  /** Extra kube-apiserver flags. */
  apiserverArgs?: string[];
  /**
   * Serve the DRA device-taint API (KEP-5055 DeviceTaintRule): on Kubernetes
   * 1.33 resource.k8s.io/v1alpha3 behind the alpha feature gate DRADeviceTaints
   * (see {@link DEVICE_TAINT_APISERVER_ARGS}). Default false: the API is not served.
   */
  deviceTaints?: boolean;
  /** Extra kube-controller-manager flags. */
  controllerManagerArgs?: string[];
  /** --service-cluster-ip-range (default 10.96.0.0/16). */
  serviceClusterIpRange?: string;
  /**
   * Address kube-apiserver binds to and advertises (default 127.0.0.1). The
   * node harness uses its bridge address so that pods reach the apiserver
   * through the `kubernetes` Service.
   */
  address?: string;
}

interface ManagedProcess {
  name: string;
  child: ChildProcess;
  logPath: string;
  exited: boolean;
  exitCode: number | null;
  exitSignal: NodeJS.Signals | null;
}

const DEFAULT_CONTROLLERS = ['*', '-nodelifecycle'];
/**
 * kube-apiserver flags that serve DeviceTaintRule on Kubernetes 1.33 (alpha API + gate), and the
 * ResourceSlices (beta, off by default in 1.33) the cluster view maps the rules to devices with.
 */
export const DEVICE_TAINT_APISERVER_ARGS = ['--feature-gates=DRADeviceTaints=true', '--runtime-config=resource.k8s.io/v1alpha3=true,resource.k8s.io/v1beta1=true,resource.k8s.io/v1beta2=true'];
const SA_ISSUER = 'https://kubernetes.default.svc.cluster.local';

// ---------------------------------------------------------------------------
// Global cleanup: every live cluster is torn down when this process exits,
// and a detached watchdog covers the case where it is SIGKILLed.
// ---------------------------------------------------------------------------

interface LiveCluster {
  procs: ManagedProcess[];
  dir: string;
}

const live = new Set<LiveCluster>();
let exitHooksInstalled = false;

function killSync(entry: LiveCluster): void {
  for (const p of entry.procs) {
    if (!p.exited && p.child.pid !== undefined) {
      try {
        process.kill(p.child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  try {
    rmSync(entry.dir, { recursive: true, force: true });
  } catch {
    /* best effort */
  }
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', () => {
    for (const entry of live) killSync(entry);
    live.clear();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      for (const entry of live) killSync(entry);
      live.clear();
      // Only re-raise when nobody else (e.g. mocha) handles the signal.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.once(sig, handler);
  }
}

/** A detached shell that kills the cluster's processes if this process dies without cleaning up. */
function spawnWatchdog(dir: string): ChildProcess {
  const script = [
    'parent="$1"; dir="$2"',
    'while kill -0 "$parent" 2>/dev/null && [ -d "$dir" ]; do sleep 1; done',
    '[ -d "$dir" ] || exit 0',
    'pids=$(cat "$dir/pids" 2>/dev/null || true)',
    '[ -n "$pids" ] && kill -TERM $pids 2>/dev/null',
    'sleep 3',
    '[ -n "$pids" ] && kill -KILL $pids 2>/dev/null',
    'rm -rf "$dir"',
  ].join('\n');
  const child = spawn('bash', ['-c', script, 'nodewarden-kube-watchdog', String(process.pid), dir], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  return child;
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('could not determine a free port'));
        return;
      }
      const { port } = addr;
      srv.close(() => resolve(port));
    });
  });
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

function tail(file: string, lines = 40): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return `(no log at ${file})`;
  }
}

export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'scripts', 'provision', 'kube.sh'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find scripts/provision/kube.sh above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    }
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({
        code: code ?? 128,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: signal ? `${stderr}\n(killed by ${signal})` : stderr,
      });
    });
    child.stdin.on('error', () => {
      /* child may exit before reading stdin */
    });
    child.stdin.end(opts.input ?? '');
  });
}

async function resolveBinDir(opts: StartKubeOptions): Promise<string> {
  const explicit = opts.binDir ?? process.env['NODEWARDEN_KUBE_BIN'];
  if (explicit !== undefined && explicit !== '') return explicit;
  const script = path.join(repoRoot(), 'scripts', 'provision', 'kube.sh');
  const res = await run('bash', opts.build === true ? [script] : [script, '--check']);
  const last = res.stdout.trim().split('\n').pop()?.trim() ?? '';
  if (res.code !== 0 || last === '') {
    throw new Error(
      `Kubernetes test binaries are not available (${script}${opts.build === true ? '' : ' --check'} exited ${res.code}).\n` +
        `Build them once with: bash scripts/provision/kube.sh   (or set NODEWARDEN_KUBE_BIN)\n` +
        res.stderr.split('\n').slice(-20).join('\n'),
    );
  }
  return last;
}

function findKubectl(binDir: string): string {
  const candidates = [process.env['KUBECTL'], path.join(binDir, 'kubectl'), '/usr/bin/kubectl', '/usr/local/bin/kubectl'];
  for (const c of candidates) {
    if (c !== undefined && c !== '' && existsSync(c)) return c;
  }
  throw new Error(`no kubectl found (looked in ${candidates.filter(Boolean).join(', ')})`);
}

function httpGet(url: string, token?: string): Promise<ApiResponse> {
  return doRequest('GET', url, undefined, token);
}

function doRequest(method: string, url: string, body: unknown, token: string | undefined): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (token !== undefined) headers['Authorization'] = `Bearer ${token}`;
    if (payload !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    const reqOpts: https.RequestOptions = { method, headers, timeout: 10_000, rejectUnauthorized: false };
    const req = (u.protocol === 'https:' ? https : http).request(u, reqOpts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text) as unknown;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body: text, json });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

function kubeconfigYaml(server: string, user: string, token: string): string {
  // JSON is valid YAML; kubectl accepts it.
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'nodewarden-test', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: user, context: { cluster: 'nodewarden-test', user } }],
      'current-context': user,
      preferences: {},
    },
    null,
    2,
  );
}

// ---------------------------------------------------------------------------
// startKube
// ---------------------------------------------------------------------------

export async function startKube(opts: StartKubeOptions = {}): Promise<KubeCluster> {
  const timeoutMs = opts.timeoutMs ?? 150_000;
  const deadline = Date.now() + timeoutMs;
  const binDir = await resolveBinDir(opts);
  for (const b of ['etcd', 'kube-apiserver', 'kube-controller-manager']) {
    if (!existsSync(path.join(binDir, b))) {
      throw new Error(`missing ${path.join(binDir, b)}: run bash scripts/provision/kube.sh`);
    }
  }
  const kubectlPath = findKubectl(binDir);

  installExitHooks();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nodewarden-kube-'));
  const entry: LiveCluster = { procs: [], dir };
  live.add(entry);
  const watchdog = spawnWatchdog(dir);
  let stopped = false;

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // Reverse start order: controller-manager, apiserver, etcd.
    for (const p of [...entry.procs].reverse()) await stopProcess(p);
    live.delete(entry);
    try {
      if (watchdog.pid !== undefined) process.kill(watchdog.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    // Under a per-run dir (test/harness/secrets.ts) the logs stay for the end-of-run secret scan; the run dir goes at exit.
    if (!process.env['NODEWARDEN_TEST_RUN_DIR']) await rm(dir, { recursive: true, force: true });
  };

  const startProcess = async (name: string, bin: string, args: string[]): Promise<ManagedProcess> => {
    const logPath = path.join(dir, `${name}.log`);
    const fd = openSync(logPath, 'a');
    const child = spawn(path.join(binDir, bin), args, { stdio: ['ignore', fd, fd], cwd: dir });
    closeSync(fd);
    const mp: ManagedProcess = { name, child, logPath, exited: false, exitCode: null, exitSignal: null };
    child.on('exit', (code, signal) => {
      mp.exited = true;
      mp.exitCode = code;
      mp.exitSignal = signal;
    });
    child.on('error', (e) => {
      mp.exited = true;
      void writeFile(logPath, `\nspawn error: ${e.message}\n`, { flag: 'a' });
    });
    entry.procs.push(mp);
    await writeFile(
      path.join(dir, 'pids'),
      entry.procs.map((p) => p.child.pid).filter((p): p is number => p !== undefined).join(' ') + '\n',
    );
    return mp;
  };

  const failure = (p: ManagedProcess, what: string): Error => {
    const how = p.exited ? `exited (code ${String(p.exitCode)}, signal ${String(p.exitSignal)})` : 'is running';
    return new Error(`${what}: ${p.name} ${how}. Last lines of ${p.logPath}:\n${tail(p.logPath)}`);
  };

  /** Poll `check` until it returns true; fail if `proc` dies or the deadline passes. */
  const waitFor = async (proc: ManagedProcess, what: string, check: () => Promise<boolean>): Promise<void> => {
    let lastErr = '';
    for (;;) {
      if (proc.exited) throw failure(proc, `${what} failed`);
      try {
        if (await check()) return;
      } catch (e) {
        lastErr = e instanceof Error ? e.message : String(e);
      }
      if (Date.now() > deadline) {
        throw failure(proc, `timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${lastErr})` : ''}`);
      }
      await sleep(250);
    }
  };

  try {
    const [etcdClient, etcdPeer, apiPort, kcmPort] = (await distinctFreePorts(4)) as [number, number, number, number];
    const pki = path.join(dir, 'pki');
    await mkdir(pki, { recursive: true });

    // --- keys and tokens -----------------------------------------------
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const saKey = path.join(pki, 'sa.key');
    const saPub = path.join(pki, 'sa.pub');
    await writeFile(saKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await writeFile(saPub, publicKey.export({ type: 'spki', format: 'pem' }));
    const adminToken = randomBytes(24).toString('hex');
    const tokenFile = path.join(pki, 'tokens.csv');
    await writeFile(tokenFile, `${adminToken},nodewarden-admin,nodewarden-admin-uid,"system:masters"\n`, { mode: 0o600 });

    const address = opts.address ?? '127.0.0.1';
    const server = `https://${address}:${apiPort}`;
    const kubeconfigPath = path.join(dir, 'admin.kubeconfig');
    await writeFile(kubeconfigPath, kubeconfigYaml(server, 'nodewarden-admin', adminToken), { mode: 0o600 });

    // --- etcd ------------------------------------------------------------
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const peerUrl = `http://127.0.0.1:${etcdPeer}`;
    const etcd = await startProcess('etcd', 'etcd', [
      '--name=nodewarden-test',
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=nodewarden-test=${peerUrl}`,
      '--initial-cluster-state=new',
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    await waitFor(etcd, 'etcd /health', async () => {
      const r = await httpGet(`${etcdUrl}/health`);
      return r.status === 200 && /"health":\s*"true"/.test(r.body);
    });

    // --- kube-apiserver ---------------------------------------------------
    const apiserver = await startProcess('kube-apiserver', 'kube-apiserver', [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=${address}`,
      `--advertise-address=${address}`,
      `--secure-port=${apiPort}`,
      `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
      '--authorization-mode=Node,RBAC',
      `--token-auth-file=${tokenFile}`,
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      `--service-account-issuer=${SA_ISSUER}`,
      `--api-audiences=${SA_ISSUER}`,
      `--service-cluster-ip-range=${opts.serviceClusterIpRange ?? '10.96.0.0/16'}`,
      '--allow-privileged=true',
      '--endpoint-reconciler-type=none',
      '--profiling=false',
      '--v=1',
      ...(opts.deviceTaints ? DEVICE_TAINT_APISERVER_ARGS : []),
      ...(opts.apiserverArgs ?? []),
    ]);
    await waitFor(apiserver, 'kube-apiserver /readyz', async () => {
      const r = await httpGet(`${server}/readyz`, adminToken);
      return r.status === 200 && r.body.trim() === 'ok';
    });

    // --- kube-controller-manager -----------------------------------------
    const kcm = await startProcess('kube-controller-manager', 'kube-controller-manager', [
      `--kubeconfig=${kubeconfigPath}`,
      `--authentication-kubeconfig=${kubeconfigPath}`,
      `--authorization-kubeconfig=${kubeconfigPath}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${kcmPort}`,
      `--cert-dir=${path.join(dir, 'kcm-certs')}`,
      `--controllers=${(opts.controllers ?? DEFAULT_CONTROLLERS).join(',')}`,
      '--use-service-account-credentials=false',
      '--leader-elect=false',
      `--service-account-private-key-file=${saKey}`,
      `--root-ca-file=${path.join(dir, 'apiserver-certs', 'apiserver.crt')}`,
      `--service-cluster-ip-range=${opts.serviceClusterIpRange ?? '10.96.0.0/16'}`,
      '--profiling=false',
      '--v=1',
      ...(opts.controllerManagerArgs ?? []),
    ]);
    await waitFor(kcm, 'kube-controller-manager /healthz', async () => {
      const r = await httpGet(`https://127.0.0.1:${kcmPort}/healthz`);
      return r.status === 200;
    });
    // The default namespace exists, and the serviceaccount controller has
    // created default/default (ServiceAccount admission needs it for pods).
    await waitFor(kcm, 'namespace default and ServiceAccount default/default', async () => {
      const ns = await httpGet(`${server}/api/v1/namespaces/default`, adminToken);
      if (ns.status !== 200) return false;
      const sa = await httpGet(`${server}/api/v1/namespaces/default/serviceaccounts/default`, adminToken);
      return sa.status === 200;
    });

    const request = (method: string, apiPath: string, body?: unknown, token?: string): Promise<ApiResponse> =>
      doRequest(method, `${server}${apiPath}`, body, token ?? adminToken);

    let kubeconfigCounter = 0;
    const cluster: KubeCluster = {
      server,
      adminToken,
      kubeconfigPath,
      binDir,
      kubectlPath,
      dir,
      async kubectl(args: string[], kopts: KubectlOptions = {}): Promise<ExecResult> {
        const hasKubeconfig = args.some((a) => a === '--kubeconfig' || a.startsWith('--kubeconfig='));
        const full = hasKubeconfig ? args : [`--kubeconfig=${kopts.kubeconfig ?? kubeconfigPath}`, ...args];
        const env = { ...process.env };
        delete env['KUBECONFIG'];
        return run(kubectlPath, full, { input: kopts.input, timeoutMs: kopts.timeoutMs ?? 60_000, env });
      },
      async tokenFor(namespace: string, serviceAccount: string, expirationSeconds = 3600): Promise<string> {
        const r = await request(
          'POST',
          `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(serviceAccount)}/token`,
          { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds } },
        );
        const token = (r.json as { status?: { token?: unknown } } | undefined)?.status?.token;
        if (r.status !== 201 || typeof token !== 'string') {
          throw new Error(`TokenRequest for ${namespace}/${serviceAccount} failed: HTTP ${r.status} ${r.body}`);
        }
        return registerSecret(`ServiceAccount token ${namespace}/${serviceAccount}`, token);
      },
      async kubeconfigFor(token: string): Promise<string> {
        kubeconfigCounter += 1;
        const p = path.join(dir, `user-${kubeconfigCounter}.kubeconfig`);
        await writeFile(p, kubeconfigYaml(server, `user-${kubeconfigCounter}`, token), { mode: 0o600 });
        return p;
      },
      request,
      stop,
    };
    return cluster;
  } catch (e) {
    await stop();
    throw e;
  }
}

async function stopProcess(p: ManagedProcess): Promise<void> {
  if (p.exited || p.child.pid === undefined) return;
  const gone = new Promise<void>((resolve) => {
    if (p.exited) resolve();
    p.child.once('exit', () => resolve());
  });
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (!p.exited) p.child.kill('SIGKILL');
  }, 5_000);
  await gone;
  clearTimeout(timer);
}
