/**
 * Extra nodes for the fleet scenarios: Node objects on the real apiserver
 * that the test keeps Ready by renewing their Lease and Ready condition every
 * few seconds (what KWOK does; the node-lifecycle controller is running), each
 * with a real nodewarden agent running as a process on this machine with
 * `--node NAME`, reading a kernel log file the test appends Xids to.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KubeCluster } from '../harness/kube.js';
import { freePort } from '../harness/ports.js';
import { repoRoot } from '../harness/kube.js';
import { spawnLogged, waitUntil, type ManagedProcess } from '../harness/proc.js';
import { CONTAINERD_SOCKET } from '../harness/node-cluster.js';

interface NodeCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastHeartbeatTime?: string;
  lastTransitionTime?: string;
}

export interface FakeNode {
  readonly name: string;
  /** Append a kernel-log record to this node's kmsg file (its agent tails it). */
  kmsg(line: string): void;
  readonly agent: ManagedProcess;
}

export class FakeFleet {
  private readonly nodes: FakeNode[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly heartbeating = new Set<string>();

  constructor(
    private readonly kube: KubeCluster,
    private readonly dir: string,
    private readonly kafkaBrokers: string[],
  ) {}

  /** Create Node `name` (Ready, with `labels`) and start its agent; resolves when the agent serves /healthz. */
  async add(name: string, labels: Record<string, string>): Promise<FakeNode> {
    const created = await this.kube.request('POST', '/api/v1/nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'nodewarden.io/fake': 'true', ...labels } },
      spec: {},
    });
    if (created.status !== 201) throw new Error(`create node ${name}: HTTP ${created.status} ${created.body}`);
    this.heartbeating.add(name);
    await this.heartbeat(name);
    this.timer ??= setInterval(() => {
      for (const n of this.heartbeating) void this.heartbeat(n).catch(() => undefined);
    }, 5000);

    const root = path.join(this.dir, 'fake-hosts', name);
    fs.mkdirSync(path.join(root, 'dev'), { recursive: true });
    const kmsgFile = path.join(root, 'dev', 'kmsg');
    fs.writeFileSync(kmsgFile, '');
    const port = await freePort();
    const config = {
      kafka: { brokers: this.kafkaBrokers },
      agent: {
        // the real containerd of this machine, named so that it is not resolved under --host-root
        containerdSocket: `unix:${CONTAINERD_SOCKET}`,
        http: { host: '127.0.0.1', port },
      },
    };
    const cfgFile = path.join(root, 'config.json');
    fs.writeFileSync(cfgFile, JSON.stringify(config));
    const agent = spawnLogged(process.execPath, [path.join(repoRoot(), 'bin', 'nodewarden'), 'agent', '--config', cfgFile, '--node', name, '--host-root', root], {
      name: `agent-${name}`,
      logFile: path.join(root, 'agent.log'),
      env: { ...process.env, KUBECONFIG: this.kube.kubeconfigPath, KUBERNETES_SERVICE_HOST: '', NODEWARDEN_LOG_LEVEL: 'warn' },
    });
    await waitUntil(async () => (await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) })).ok, {
      what: `agent for ${name} /healthz`,
      timeoutMs: 60_000,
      proc: agent,
    });
    let seq = 1;
    const node: FakeNode = {
      name,
      agent,
      // kmsg record format: "priority,seq,usec,flags;message", usec since boot (the agent dates records by it)
      kmsg: (line: string) => fs.appendFileSync(kmsgFile, `12,${seq++},${Math.round(os.uptime() * 1e6)},-;${line}\n`),
    };
    this.nodes.push(node);
    return node;
  }

  /** Renew the node's Lease and Ready condition. */
  private async heartbeat(name: string): Promise<void> {
    const now = new Date().toISOString();
    const micro = now.replace('Z', '000Z');
    const leasePath = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${name}`;
    const lease = await this.kube.request('GET', leasePath);
    if (lease.status === 404) {
      await this.kube.request('POST', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name },
        spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: micro },
      });
    } else if (lease.status === 200) {
      const l = lease.json as { spec: Record<string, unknown> };
      l.spec['renewTime'] = micro;
      await this.kube.request('PUT', leasePath, l);
    }
    const got = await this.kube.request('GET', `/api/v1/nodes/${name}`);
    if (got.status !== 200) return;
    const n = got.json as { status?: { conditions?: NodeCondition[]; [k: string]: unknown } };
    const prev = (n.status?.conditions ?? []).find((c) => c.type === 'Ready');
    const ready: NodeCondition = {
      type: 'Ready',
      status: 'True',
      reason: 'KubeletReady',
      message: 'kept Ready by the nodewarden node tests',
      lastHeartbeatTime: now,
      lastTransitionTime: prev?.status === 'True' ? (prev.lastTransitionTime ?? now) : now,
    };
    n.status = {
      ...(n.status ?? {}),
      conditions: [...(n.status?.conditions ?? []).filter((c) => c.type !== 'Ready'), ready],
      capacity: { cpu: '8', memory: '64Gi', pods: '110' },
      allocatable: { cpu: '8', memory: '64Gi', pods: '110' },
    };
    await this.kube.request('PUT', `/api/v1/nodes/${name}/status`, n);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.heartbeating.clear();
    await Promise.all(this.nodes.map((n) => n.agent.stop(5000)));
  }
}
