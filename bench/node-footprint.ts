/**
 * Footprint as deployed: starts the real single-node cluster
 * (test/harness/node-cluster.ts), installs nodewarden with `helm install` as
 * the node tests do (default intervals, image imported into containerd), lets
 * it run, and samples the kubelet's Summary API (/stats/summary through the
 * apiserver's node proxy: cgroup working set and CPU usage of each container)
 * every `--interval` seconds for `--seconds`, leaving out the first
 * `--warmup` seconds. Prints the agent and engine pods' figures against the
 * brief's bar for the agent (≤ 64 MiB working set, ≤ 0.5 % of one core).
 *
 *   node dist/bench/node-footprint.js [--seconds 180] [--interval 10] [--warmup 30]
 *
 * Needs root and the provisioned node (scripts/provision/kube.sh, node.sh,
 * image.sh), like `npm run test:node`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startNodeCluster } from '../test/harness/node-cluster.js';
import { NAMESPACE, helmInstall, startBackends } from '../test/node/install.js';

const BAR = { wsMiB: 64, cpuPct: 0.5 };

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '180' },
    interval: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '30' },
  },
});
const seconds = Number(values.seconds);
const interval = Number(values.interval);
const warmup = Number(values.warmup);
for (const [k, v] of [['seconds', seconds], ['interval', interval], ['warmup', warmup]] as const) {
  if (!Number.isFinite(v) || v < 0 || v > 3600) {
    process.stderr.write(`node-footprint: --${k} must be a number of seconds in [0, 3600]\n`);
    process.exit(2);
  }
}

interface SummaryPod {
  podRef: { name: string; namespace: string; uid?: string };
  cpu?: { usageNanoCores?: number; usageCoreNanoSeconds?: number };
  memory?: { workingSetBytes?: number };
  containers?: Array<{ name: string; cpu?: { usageCoreNanoSeconds?: number }; memory?: { workingSetBytes?: number } }>;
}

interface Sample {
  at: number;
  ws: number;
  cpuNs: number;
  /** What the working set is made of (cgroup v1 memory.stat and the process's status), bytes; undefined where unreadable. */
  parts?: MemoryParts;
}

/** The working set (usage - inactive_file, as cAdvisor computes it on cgroup v1) broken down. */
interface MemoryParts {
  /** anonymous memory of the cgroup (heap, stacks: memory.stat total_rss) */
  anon: number;
  /** file pages in the active LRU (counted in the working set), of which the mapped ones (the node binary's text) */
  activeFile: number;
  mappedFile: number;
  /** kernel memory charged to the cgroup (memory.kmem.usage_in_bytes: page tables, slab, socket buffers) */
  kmem: number;
  /** the process's own view: VmRSS of the container's main process, = RssAnon + RssFile (+ RssShmem) */
  processRss: number;
  /** file-backed resident pages (the node binary's text): in the pod's working set only if its cgroup faulted them in first */
  rssFile: number;
}

const MEMCG = '/sys/fs/cgroup/memory/kubepods';

/** The memory cgroup directory of the pod's container whose process runs `needle`, searched under the kubepods hierarchy (cgroupfs driver). */
function containerCgroup(podUid: string, needle: string): { dir: string; pid: number } | undefined {
  const podDirs: string[] = [];
  const walk = (d: string, depth: number): void => {
    if (depth > 2) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const full = path.join(d, e.name);
      if (e.name === `pod${podUid}`) podDirs.push(full);
      else walk(full, depth + 1);
    }
  };
  try {
    walk(MEMCG, 0);
  } catch {
    return undefined;
  }
  for (const pod of podDirs) {
    for (const e of fs.readdirSync(pod, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const dir = path.join(pod, e.name);
      for (const pidText of fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        try {
          if (fs.readFileSync(`/proc/${pidText}/cmdline`, 'utf8').includes(needle)) return { dir, pid: Number(pidText) };
        } catch {
          /* exited */
        }
      }
    }
  }
  return undefined;
}

function memoryParts(podUid: string | undefined): MemoryParts | undefined {
  if (podUid === undefined) return undefined;
  try {
    const cg = containerCgroup(podUid, 'nodewarden');
    if (cg === undefined) return undefined;
    const stat = new Map(
      fs
        .readFileSync(path.join(cg.dir, 'memory.stat'), 'utf8')
        .split('\n')
        .map((l) => l.split(' '))
        .map(([k, v]) => [k ?? '', Number(v)] as const),
    );
    const kmem = Number(fs.readFileSync(path.join(cg.dir, 'memory.kmem.usage_in_bytes'), 'utf8').trim());
    const status = fs.readFileSync(`/proc/${cg.pid}/status`, 'utf8');
    const kb = (field: string): number => {
      const v = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1];
      return v === undefined ? NaN : Number(v) * 1024;
    };
    return {
      anon: stat.get('total_rss') ?? NaN,
      activeFile: stat.get('total_active_file') ?? NaN,
      mappedFile: stat.get('total_mapped_file') ?? NaN,
      kmem,
      processRss: kb('VmRSS'),
      rssFile: kb('RssFile'),
    };
  } catch {
    return undefined;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : (s[Math.floor((s.length - 1) / 2)] ?? NaN);
}

async function main(): Promise<void> {
  const node = await startNodeCluster({ nodeLabels: { 'nodewarden.io/pool': 'bench' } });
  const b = await startBackends();
  try {
    const inst = await helmInstall(node, b, node.dir);
    process.stderr.write(`helm install -> both pods Ready in ${inst.readyMs} ms; sampling for ${seconds}s after ${warmup}s warm-up\n`);
    await new Promise((r) => setTimeout(r, warmup * 1000));
    const series = new Map<string, Sample[]>();
    const end = Date.now() + seconds * 1000;
    while (Date.now() <= end) {
      const r = await node.kube.request('GET', `/api/v1/nodes/${node.nodeName}/proxy/stats/summary`);
      if (r.status !== 200) throw new Error(`stats/summary: HTTP ${r.status} ${r.body.slice(0, 200)}`);
      const pods = (r.json as { pods?: SummaryPod[] }).pods ?? [];
      for (const p of pods.filter((x) => x.podRef.namespace === NAMESPACE)) {
        const role = p.podRef.name.startsWith('nodewarden-agent') ? 'agent' : p.podRef.name.startsWith('nodewarden-engine') ? 'engine' : p.podRef.name;
        const c = p.containers?.[0];
        const s: Sample = { at: Date.now(), ws: c?.memory?.workingSetBytes ?? 0, cpuNs: c?.cpu?.usageCoreNanoSeconds ?? 0 };
        const parts = memoryParts(p.podRef.uid);
        if (parts !== undefined) s.parts = parts;
        const arr = series.get(role) ?? [];
        arr.push(s);
        series.set(role, arr);
      }
      await new Promise((res) => setTimeout(res, interval * 1000));
    }
    const lines: string[] = [];
    for (const [role, s] of series) {
      const first = s[0];
      const last = s[s.length - 1];
      if (first === undefined || last === undefined || s.length < 2) continue;
      const cpuPct = ((last.cpuNs - first.cpuNs) / ((last.at - first.at) * 1e6)) * 100;
      const ws = s.map((x) => x.ws / 1048576);
      const line = `${role}: working set median ${median(ws).toFixed(1)} MiB, max ${Math.max(...ws).toFixed(1)} MiB; CPU ${cpuPct.toFixed(2)} % of one core over ${((last.at - first.at) / 1000).toFixed(0)} s (${s.length} samples)`;
      const verdict = role === 'agent' ? (Math.max(...ws) <= BAR.wsMiB && cpuPct <= BAR.cpuPct ? ' [within the bar]' : ' [OVER the bar]') : '';
      lines.push(line + verdict);
      const parts = s.flatMap((x) => (x.parts ? [x.parts] : []));
      if (parts.length > 0) {
        const m = (k: keyof MemoryParts): string => median(parts.map((x) => x[k] / 1048576)).toFixed(1);
        lines.push(
          `  ${role} working set made of (medians, MiB): anon ${m('anon')} + active file ${m('activeFile')} (mapped ${m('mappedFile')}) + kernel ${m('kmem')}; process VmRSS ${m('processRss')} (RssFile ${m('rssFile')}: file pages charged to the cgroup that first read them, here containerd's unpack)`,
        );
      }
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await b.stop();
    await node.stop();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`node-footprint: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
