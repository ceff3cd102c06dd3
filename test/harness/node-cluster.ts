/**
 * A real single-node Kubernetes cluster on this machine, for the
 * "nodewarden as installed" tests (test/node/): etcd + kube-apiserver +
 * kube-controller-manager (test/harness/kube.ts) + kube-scheduler + containerd
 * + kubelet, and kube-proxy as a static pod (label k8s-app=kube-proxy).
 *
 * Binaries: scripts/provision/kube.sh (built from the Go module proxy);
 * containerd, runc, CNI plugins, iptables and the pause/kube-proxy images:
 * scripts/provision/node.sh (Debian packages, buildah). This harness only
 * checks for them and fails loudly when something is missing.
 *
 * Network: everything stays on this machine. The harness owns a Linux bridge
 * (`nwbr0`, 10.217.0.1/24) and the pod CIDR 10.217.0.0/24 behind it; pods live
 * in network namespaces made by the CNI bridge plugin, with no masquerading
 * and a FORWARD rule that drops anything from the bridge to another
 * interface (the bridge plugin turns IP forwarding on; it is restored on
 * stop); pods get no nameserver. Nothing from a pod is routed off the machine. The bridge address doubles as the node's InternalIP and the
 * address kube-apiserver binds to, so pods reach the apiserver through the
 * `kubernetes` Service (10.218.0.1) and the servers a test binds to it (Kafka,
 * Redis, receivers). Services: 10.218.0.0/24.
 *
 * Test-harness only, never shipped: containerd's runc is wrapped by a script
 * that clamps a negative `process.oomScoreAdj` to 0 in each bundle's
 * config.json, because this VM withholds CAP_SYS_RESOURCE even from root (see
 * docs/adr, "real node harness").
 *
 * One node cluster per machine at a time (one containerd socket, one
 * /dev/kmsg, host iptables): a lock file under /run enforces it. stop() and
 * the start of the next cluster remove processes, mounts, network namespaces,
 * the bridge, KUBE-* iptables chains and CNI state.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startKube, repoRoot, run, type ExecResult, type KubeCluster } from './kube.js';
import { assertPortFree, freePort } from './ports.js';
import { spawnLogged, tailFile, waitUntil, type ManagedProcess } from './proc.js';

export const BRIDGE = 'nwbr0';
export const HOST_IP = '10.217.0.1';
export const POD_CIDR = '10.217.0.0/24';
export const SERVICE_CIDR = '10.218.0.0/24';
export const CONTAINERD_SOCKET = '/run/containerd/containerd.sock';
const CNI_NETWORK = 'nodewarden-test';
const LOCK = '/run/nodewarden-node-cluster.lock';
const RUNC = '/usr/sbin/runc';
const ISOLATE_RULE = ['-i', BRIDGE, '!', '-o', BRIDGE, '-m', 'comment', '--comment', 'nodewarden test node: pods stay on this machine', '-j', 'DROP'];
const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';

export interface NodeClusterOptions {
  /** Name of the real node (default nw-node-1). */
  nodeName?: string;
  /** Labels the kubelet registers the node with. */
  nodeLabels?: Record<string, string>;
  /** Overall start-up timeout (default 240 s). */
  timeoutMs?: number;
}

export interface NodeImages {
  pause: string;
  pauseArchive: string;
  proxy: string;
  proxyArchive: string;
}

export interface NodeCluster {
  readonly kube: KubeCluster;
  readonly nodeName: string;
  /** The node's InternalIP: the harness bridge's address. */
  readonly hostIp: string;
  readonly images: NodeImages;
  /** Temp dir: configs, logs, containerd root/state, kubelet root. */
  readonly dir: string;
  readonly containerd: ManagedProcess;
  readonly kubelet: ManagedProcess;
  /** Run `ctr -n k8s.io` against the harness containerd. */
  ctr(args: string[], timeoutMs?: number): Promise<ExecResult>;
  /** Import an oci-archive into containerd's k8s.io namespace (no pull). */
  importImage(archive: string): Promise<void>;
  /** Log tails of the node components, for failure messages. */
  logTails(lines?: number): string;
  /** Tear everything down (idempotent). */
  stop(): Promise<void>;
}

// ------------------------------------------------------------------ helpers

async function must(cmd: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const r = await run(cmd, args, { timeoutMs });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

async function quiet(cmd: string, args: string[], timeoutMs = 30_000): Promise<ExecResult> {
  try {
    return await run(cmd, args, { timeoutMs });
  } catch (e) {
    return { code: 127, stdout: '', stderr: e instanceof Error ? e.message : String(e) };
  }
}

function parseKeyValues(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return m;
}

/** Checks every prerequisite; throws one message naming all that is missing and how to provision it. */
async function resolvePrereqs(): Promise<{ binDir: string; images: NodeImages }> {
  if (process.getuid?.() !== 0) throw new Error('the node cluster harness needs root (containerd, kubelet, iptables, /dev/kmsg)');
  const script = path.join(repoRoot(), 'scripts', 'provision', 'node.sh');
  const res = await run('bash', [script, '--check']);
  const kv = parseKeyValues(res.stdout);
  const binDir = process.env['NODEWARDEN_KUBE_BIN'] || kv.get('NODEWARDEN_KUBE_BIN') || '';
  const images: NodeImages = {
    pause: kv.get('PAUSE_IMAGE') ?? '',
    pauseArchive: kv.get('PAUSE_IMAGE_ARCHIVE') ?? '',
    proxy: kv.get('PROXY_IMAGE') ?? '',
    proxyArchive: kv.get('PROXY_IMAGE_ARCHIVE') ?? '',
  };
  const missing: string[] = [];
  if (res.code !== 0) missing.push(`scripts/provision/node.sh --check exited ${res.code}: ${res.stderr.trim()}`);
  for (const b of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubelet', 'kube-proxy']) {
    if (binDir === '' || !fs.existsSync(path.join(binDir, b))) missing.push(`${b} (in ${binDir || '?'})`);
  }
  for (const b of ['/usr/bin/containerd', '/usr/bin/ctr', RUNC, '/usr/lib/cni/bridge', '/usr/lib/cni/host-local', '/usr/lib/cni/loopback', '/usr/sbin/iptables']) {
    if (!fs.existsSync(b)) missing.push(b);
  }
  for (const a of [images.pauseArchive, images.proxyArchive]) if (a === '' || !fs.existsSync(a)) missing.push(`image archive ${a || '?'}`);
  if (missing.length > 0) {
    throw new Error(
      `the real node cluster cannot start, missing: ${missing.join('; ')}.\n` +
        'Provision with: bash scripts/provision/kube.sh && bash scripts/provision/node.sh',
    );
  }
  return { binDir, images };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function takeLock(): void {
  try {
    const other = Number(fs.readFileSync(LOCK, 'utf8').trim());
    if (Number.isInteger(other) && other > 0 && other !== process.pid && pidAlive(other)) {
      throw new Error(`another node cluster is running on this machine (pid ${other}, ${LOCK}); only one at a time`);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  fs.writeFileSync(LOCK, `${process.pid}\n`);
}

// ------------------------------------------------------------------ cleanup

/** Delete KUBE-* chains (and the jumps into them) from filter/nat/mangle, IPv4 and IPv6. */
async function cleanIptables(): Promise<void> {
  for (const [save, restore] of [
    ['iptables-save', 'iptables-restore'],
    ['ip6tables-save', 'ip6tables-restore'],
  ] as const) {
    for (const table of ['filter', 'nat', 'mangle']) {
      const r = await quiet(save, ['-t', table]);
      if (r.code !== 0) continue;
      const chains: string[] = [];
      const deletes: string[] = [];
      for (const line of r.stdout.split('\n')) {
        const def = /^:(KUBE-\S+)/.exec(line);
        if (def?.[1] !== undefined) chains.push(def[1]);
        const rule = /^-A (\S+) (.*-j KUBE-\S+.*)$/.exec(line);
        if (rule?.[1] !== undefined && !rule[1].startsWith('KUBE-')) deletes.push(`-D ${rule[1]} ${rule[2] ?? ''}`);
      }
      if (chains.length === 0 && deletes.length === 0) continue;
      const script = [`*${table}`, ...deletes, ...chains.map((c) => `-F ${c}`), ...chains.map((c) => `-X ${c}`), 'COMMIT', ''].join('\n');
      const res = await run(restore, ['--noflush'], { input: script, timeoutMs: 30_000 });
      if (res.code !== 0) throw new Error(`${restore} (cleanup of ${table}) failed: ${res.stderr.trim()}`);
    }
  }
}

/** Unmount everything at or under any of `prefixes` (deepest first). */
function unmountUnder(prefixes: string[]): void {
  let info: string;
  try {
    info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return;
  }
  const points = info
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p !== '' && prefixes.some((pre) => p === pre || p.startsWith(pre.endsWith('/') ? pre : `${pre}/`)))
    .sort((a, b) => b.length - a.length);
  for (const p of points) {
    try {
      execFileSync('umount', ['-l', p], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
}

function shimPids(): number[] {
  const pids: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.includes('containerd-shim-runc-v2') && cmd.includes(CONTAINERD_SOCKET)) pids.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return pids;
}

/** Remove cgroups the kubelet created (cgroupfs driver), deepest first. */
function removeKubeCgroups(): void {
  const root = '/sys/fs/cgroup';
  let controllers: string[];
  try {
    controllers = fs.readdirSync(root);
  } catch {
    return;
  }
  const rmTree = (p: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(p, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) rmTree(path.join(p, e.name));
    try {
      fs.rmdirSync(p);
    } catch {
      /* busy or gone */
    }
  };
  for (const c of controllers) rmTree(path.join(root, c, 'kubepods'));
}

/** Everything a (possibly crashed) node cluster leaves on the host, except its temp dir. */
async function cleanHost(dirs: string[]): Promise<void> {
  for (const pid of shimPids()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  // Container processes whose shim is gone are reparented; the cgroups tell which.
  for (const ctl of ['pids', 'memory', 'cpu']) {
    const procs = path.join('/sys/fs/cgroup', ctl, 'kubepods');
    if (!fs.existsSync(procs)) continue;
    const walk = (p: string): void => {
      try {
        for (const pid of fs.readFileSync(path.join(p, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        for (const e of fs.readdirSync(p, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(p, e.name));
      } catch {
        /* gone */
      }
    };
    walk(procs);
  }
  await new Promise((r) => setTimeout(r, 300));
  unmountUnder([...dirs, '/run/containerd/io.containerd.runtime.v2.task', '/run/containerd/io.containerd.grpc.v1.cri']);
  const ns = await quiet('ip', ['netns', 'list']);
  for (const line of ns.stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    if (name.startsWith('cni-')) await quiet('ip', ['netns', 'delete', name]);
  }
  unmountUnder(['/run/netns']);
  await quiet('ip', ['link', 'delete', BRIDGE]);
  await cleanIptables();
  for (let i = 0; i < 10 && (await quiet('iptables', ['-D', 'FORWARD', ...ISOLATE_RULE])).code === 0; i++) {
    /* remove every copy */
  }
  for (const d of ['/var/lib/cni/results', '/var/lib/cni/networks/' + CNI_NETWORK]) {
    try {
      if (d.endsWith(CNI_NETWORK)) fs.rmSync(d, { recursive: true, force: true });
      else for (const f of fs.readdirSync(d)) if (f.startsWith(`${CNI_NETWORK}-`)) fs.rmSync(path.join(d, f), { force: true });
    } catch {
      /* none */
    }
  }
  try {
    fs.rmSync('/run/containerd', { recursive: true, force: true });
  } catch {
    /* busy: left for the next run */
  }
  removeKubeCgroups();
}

// ------------------------------------------------------------------ configs

function containerdConfig(dir: string, pauseImage: string): string {
  return `version = 2
root = "${dir}/containerd/root"
state = "${dir}/containerd/state"
[grpc]
  address = "${CONTAINERD_SOCKET}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${pauseImage}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "${dir}/runc-wrapper"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${dir}/cni/net.d"
`;
}

/** Test-harness only (never shipped): see the module comment. */
function runcWrapper(): string {
  return `#!/bin/sh
# nodewarden TEST HARNESS ONLY (test/harness/node-cluster.ts), never shipped.
# This VM withholds CAP_SYS_RESOURCE even from root, so runc cannot set a
# negative oom_score_adj and every pod sandbox would fail. Clamp it to 0.
bundle=""; procfile=""; prev=""
for a in "$@"; do
  case "$prev" in --bundle|-b) bundle="$a" ;; --process|-p) procfile="$a" ;; esac
  case "$a" in --bundle=*) bundle="\${a#--bundle=}" ;; --process=*) procfile="\${a#--process=}" ;; esac
  prev="$a"
done
for f in "\${bundle:+$bundle/config.json}" "$procfile"; do
  [ -n "$f" ] && [ -f "$f" ] && sed -i -E 's/"oomScoreAdj":[[:space:]]*-[0-9]+/"oomScoreAdj":0/g' "$f"
done
exec ${RUNC} "$@"
`;
}

function cniConfig(dir: string): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: CNI_NETWORK,
    plugins: [
      {
        type: 'bridge',
        bridge: BRIDGE,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: POD_CIDR, gateway: HOST_IP }]],
          routes: [{ dst: '0.0.0.0/0' }],
          dataDir: path.join(dir, 'cni', 'ipam'),
        },
      },
    ],
  });
}

function kubeletConfig(dir: string, staticDir: string, healthzPort: number): string {
  return JSON.stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    cgroupDriver: 'cgroupfs',
    failCgroupV1: false,
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${CONTAINERD_SOCKET}`,
    address: HOST_IP,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort,
    authentication: { anonymous: { enabled: true }, webhook: { enabled: false }, x509: {} },
    authorization: { mode: 'AlwaysAllow' },
    staticPodPath: staticDir,
    podCIDR: POD_CIDR,
    clusterDomain: 'cluster.local',
    // no nameserver in pods: nothing they resolve could leave the machine
    resolvConf: '',
    maxPods: 40,
    serializeImagePulls: false,
    // A shared build machine: keep the kubelet from evicting or collecting
    // images because of other people's disk use.
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    nodeStatusUpdateFrequency: '5s',
    syncFrequency: '10s',
    fileCheckFrequency: '5s',
    cgroupRoot: '/',
    rotateCertificates: false,
    serverTLSBootstrap: false,
    volumePluginDir: path.join(dir, 'volume-plugins'),
  });
}

function kubeProxyManifest(image: string, confDir: string, nodeName: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'kube-proxy', namespace: 'kube-system', labels: { 'k8s-app': 'kube-proxy' } },
    spec: {
      hostNetwork: true,
      priorityClassName: 'system-node-critical',
      containers: [
        {
          name: 'kube-proxy',
          image,
          imagePullPolicy: 'Never',
          command: ['/usr/local/bin/kube-proxy', '--config=/etc/kube-proxy/config.json', `--hostname-override=${nodeName}`, '--v=1'],
          securityContext: { privileged: true },
          volumeMounts: [
            { name: 'conf', mountPath: '/etc/kube-proxy', readOnly: true },
            { name: 'xtables-lock', mountPath: '/run/xtables.lock' },
            { name: 'lib-modules', mountPath: '/lib/modules', readOnly: true },
          ],
        },
      ],
      volumes: [
        { name: 'conf', hostPath: { path: confDir, type: 'Directory' } },
        { name: 'xtables-lock', hostPath: { path: '/run/xtables.lock', type: 'FileOrCreate' } },
        { name: 'lib-modules', hostPath: { path: '/lib/modules', type: 'DirectoryOrCreate' } },
      ],
    },
  });
}

/**
 * kube-proxy's healthz port as Kubernetes defaults it (10256): the agent's
 * default `kubeProxyHealthUrl` and what the node suite checks the DaemonSet
 * pod reads. Bound to loopback only (the strictest setting a cluster uses;
 * the default 0.0.0.0 is a superset), which only a host-network agent reaches.
 */
export const KUBE_PROXY_HEALTHZ_PORT = 10256;

function kubeProxyConfig(healthzPort: number, metricsPort: number): string {
  return JSON.stringify({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig: '/etc/kube-proxy/kubeconfig' },
    mode: 'iptables',
    clusterCIDR: POD_CIDR,
    healthzBindAddress: `127.0.0.1:${healthzPort}`,
    metricsBindAddress: `127.0.0.1:${metricsPort}`,
    // Leave the host's conntrack sysctls alone (shared machine).
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
    iptables: { masqueradeAll: false, localhostNodePorts: false, syncPeriod: '10s', minSyncPeriod: '0s' },
    nodePortAddresses: [`${HOST_IP}/32`],
  });
}

// ------------------------------------------------------------------ start

interface NodeObject {
  status?: { conditions?: Array<{ type?: string; status?: string }> };
}

export async function startNodeCluster(opts: NodeClusterOptions = {}): Promise<NodeCluster> {
  const nodeName = opts.nodeName ?? 'nw-node-1';
  const timeoutMs = opts.timeoutMs ?? 240_000;
  const { binDir, images } = await resolvePrereqs();
  takeLock();
  await cleanHost([]);
  const ipForward = fs.readFileSync(IP_FORWARD, 'utf8').trim();

  const dir = await mkdtemp(path.join(os.tmpdir(), 'nodewarden-node-'));
  const procs: ManagedProcess[] = [];
  let kube: KubeCluster | undefined;
  let stopped = false;

  const ctr = (args: string[], t = 120_000): Promise<ExecResult> => run('ctr', ['--address', CONTAINERD_SOCKET, '-n', 'k8s.io', ...args], { timeoutMs: t });

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    const kubelet = procs.find((p) => p.name === 'kubelet');
    if (kube !== undefined && kubelet !== undefined && !kubelet.exited()) {
      // Let the kubelet stop every pod (CNI DEL, volume unmounts) first.
      fs.rmSync(path.join(dir, 'manifests'), { recursive: true, force: true });
      for (const kind of ['daemonsets', 'deployments', 'replicasets', 'statefulsets', 'jobs']) {
        await kube.kubectl(['delete', kind, '--all', '-A', '--wait=false'], { timeoutMs: 30_000 });
      }
      await kube.kubectl(['delete', 'pods', '--all', '-A', '--grace-period=0', '--force', '--wait=false'], { timeoutMs: 30_000 });
      const deadline = Date.now() + 45_000;
      while (Date.now() < deadline) {
        const t = await ctr(['tasks', 'ls', '-q'], 10_000).catch(() => undefined);
        if (t !== undefined && t.code === 0 && t.stdout.trim() === '') break;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    for (const p of [...procs].reverse()) {
      if (p.name === 'containerd') {
        // running containers would keep their shims; kill them through containerd first
        const t = await ctr(['tasks', 'ls', '-q'], 10_000).catch(() => undefined);
        for (const id of t?.stdout.split('\n').filter(Boolean) ?? []) await ctr(['tasks', 'kill', '-s', 'SIGKILL', id], 10_000).catch(() => undefined);
      }
      await p.stop(10_000);
    }
    if (kube !== undefined) await kube.stop();
    await cleanHost([dir]);
    try {
      fs.writeFileSync(IP_FORWARD, ipForward);
    } catch {
      /* read-only /proc/sys: nothing was changed there either */
    }
    fs.rmSync(dir, { recursive: true, force: true });
    try {
      if (fs.readFileSync(LOCK, 'utf8').trim() === String(process.pid)) fs.rmSync(LOCK);
    } catch {
      /* gone */
    }
  };

  try {
    // --- the bridge the pods hang off, and the node's address ---------
    await must('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
    await must('ip', ['addr', 'add', `${HOST_IP}/24`, 'dev', BRIDGE]);
    await must('ip', ['link', 'set', BRIDGE, 'up']);
    // The bridge CNI plugin (isGateway) turns IP forwarding on: nothing from
    // the pods may be forwarded anywhere but back onto the bridge.
    await must('iptables', ['-I', 'FORWARD', '1', ...ISOLATE_RULE]);
    // Service IPs route to the bridge too: should a ClusterIP ever miss
    // kube-proxy's DNAT, the packet still stays on this machine.
    await must('ip', ['route', 'add', SERVICE_CIDR, 'dev', BRIDGE, 'src', HOST_IP]);
    // kube-proxy's rules must see bridged pod traffic
    await quiet('modprobe', ['br_netfilter']);
    try {
      fs.writeFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', '1');
    } catch {
      /* not available: same-bridge Service traffic may not work */
    }

    // --- control plane --------------------------------------------------
    kube = await startKube({
      binDir,
      address: HOST_IP,
      serviceClusterIpRange: SERVICE_CIDR,
      controllers: ['*'],
      // the node's name does not resolve: reach the kubelet (logs, stats) by its InternalIP
      apiserverArgs: ['--endpoint-reconciler-type=lease', '--kubelet-preferred-address-types=InternalIP'],
      timeoutMs: Math.min(timeoutMs, 150_000),
    });
    const k = kube;

    const schedPort = await freePort();
    procs.push(
      spawnLogged(
        path.join(binDir, 'kube-scheduler'),
        [
          `--kubeconfig=${k.kubeconfigPath}`,
          `--authentication-kubeconfig=${k.kubeconfigPath}`,
          `--authorization-kubeconfig=${k.kubeconfigPath}`,
          '--bind-address=127.0.0.1',
          `--secure-port=${schedPort}`,
          '--leader-elect=false',
          '--v=1',
        ],
        { name: 'kube-scheduler', logFile: path.join(dir, 'kube-scheduler.log'), cwd: dir },
      ),
    );

    // --- containerd -------------------------------------------------------
    for (const d of ['cni/net.d', 'cni/ipam', 'containerd', 'manifests', 'kube-proxy', 'kubelet', 'volume-plugins']) {
      fs.mkdirSync(path.join(dir, d), { recursive: true });
    }
    await writeFile(path.join(dir, 'runc-wrapper'), runcWrapper(), { mode: 0o755 });
    await writeFile(path.join(dir, 'cni', 'net.d', '10-nodewarden-test.conflist'), cniConfig(dir));
    await writeFile(path.join(dir, 'containerd.toml'), containerdConfig(dir, images.pause));
    fs.mkdirSync('/run/containerd', { recursive: true });
    const containerd = spawnLogged('/usr/bin/containerd', ['--config', path.join(dir, 'containerd.toml'), '--log-level', 'warn'], {
      name: 'containerd',
      logFile: path.join(dir, 'containerd.log'),
      cwd: dir,
    });
    procs.push(containerd);
    await waitUntil(async () => (await ctr(['version'], 5_000)).code === 0, {
      what: `containerd on ${CONTAINERD_SOCKET}`,
      timeoutMs: 30_000,
      proc: containerd,
    });

    const importImage = async (archive: string): Promise<void> => {
      await must('ctr', ['--address', CONTAINERD_SOCKET, '-n', 'k8s.io', 'images', 'import', archive], 300_000);
    };
    await importImage(images.pauseArchive);
    await importImage(images.proxyArchive);

    // --- kube-proxy static pod ------------------------------------------
    const proxyConf = path.join(dir, 'kube-proxy');
    await writeFile(path.join(proxyConf, 'kubeconfig'), fs.readFileSync(k.kubeconfigPath));
    await assertPortFree(KUBE_PROXY_HEALTHZ_PORT, 'kube-proxy healthz');
    await writeFile(path.join(proxyConf, 'config.json'), kubeProxyConfig(KUBE_PROXY_HEALTHZ_PORT, await freePort()));
    await writeFile(path.join(dir, 'manifests', 'kube-proxy.json'), kubeProxyManifest(images.proxy, proxyConf, nodeName));

    // --- kubelet ----------------------------------------------------------
    await writeFile(path.join(dir, 'kubelet.json'), kubeletConfig(dir, path.join(dir, 'manifests'), await freePort()));
    const labels = Object.entries(opts.nodeLabels ?? {})
      .map(([key, v]) => `${key}=${v}`)
      .join(',');
    const kubelet = spawnLogged(
      path.join(binDir, 'kubelet'),
      [
        `--config=${path.join(dir, 'kubelet.json')}`,
        `--kubeconfig=${k.kubeconfigPath}`,
        `--hostname-override=${nodeName}`,
        `--node-ip=${HOST_IP}`,
        `--root-dir=${path.join(dir, 'kubelet')}`,
        `--cert-dir=${path.join(dir, 'kubelet-pki')}`,
        ...(labels ? [`--node-labels=${labels}`] : []),
        '--v=1',
      ],
      { name: 'kubelet', logFile: path.join(dir, 'kubelet.log'), cwd: dir },
    );
    procs.push(kubelet);

    const logTails = (lines = 30): string =>
      ['kubelet', 'containerd', 'kube-scheduler']
        .map((n) => `--- ${n} ---\n${tailFile(path.join(dir, `${n}.log`), lines)}`)
        .join('\n');

    await waitUntil(
      async () => {
        const r = await k.request('GET', `/api/v1/nodes/${nodeName}`);
        const node = r.json as NodeObject | undefined;
        return r.status === 200 && (node?.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
      },
      { what: `node ${nodeName} Ready`, timeoutMs, intervalMs: 1000, proc: kubelet, logFiles: [containerd.logFile] },
    );
    await waitUntil(
      async () => {
        const r = await k.kubectl(['-n', 'kube-system', 'get', 'pods', '-l', 'k8s-app=kube-proxy', '-o', 'jsonpath={.items[0].status.containerStatuses[0].ready}']);
        return r.stdout.trim() === 'true';
      },
      { what: 'kube-proxy static pod ready', timeoutMs: 120_000, intervalMs: 1000, proc: kubelet, logFiles: [containerd.logFile] },
    );

    return {
      kube: k,
      nodeName,
      hostIp: HOST_IP,
      images,
      dir,
      containerd,
      kubelet,
      ctr,
      importImage,
      logTails,
      stop,
    };
  } catch (e) {
    const tails = ['kubelet', 'containerd', 'kube-scheduler'].map((n) => `--- ${n} ---\n${tailFile(path.join(dir, `${n}.log`), 25)}`).join('\n');
    await stop().catch(() => undefined);
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${tails}`, { cause: e });
  }
}
