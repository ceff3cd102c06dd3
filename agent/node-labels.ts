/**
 * The node's grouping labels, copied onto every event so rules can group by
 * pool and zone without asking the API per event. Read once at start from
 * the Node object (label keys configurable: `labels.group`, `labels.zone`);
 * in `--once` they come from `--label k=v` flags instead.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { EventLabels } from '../core/envelope.js';
import { PoisonInputError } from '../core/errors.js';

export interface LabelKeys {
  /** Node label holding the pool/group, e.g. `nodewarden.io/pool`. */
  group: string;
  /** Node label holding the zone, e.g. `topology.kubernetes.io/zone`. */
  zone: string;
}

/** Picks `{pool, zone}` out of a Node's labels. Pure. */
export function labelsFromNode(nodeLabels: Record<string, string> | undefined, keys: LabelKeys): EventLabels {
  const out: EventLabels = {};
  const pool = nodeLabels?.[keys.group];
  const zone = nodeLabels?.[keys.zone];
  if (pool) out.pool = pool;
  if (zone) out.zone = zone;
  return out;
}

/**
 * Parses `--label k=v` flags. `k` is `pool`, `zone`, or the configured node
 * label key (`nodewarden.io/pool=x` means pool=x); any other key is copied as is.
 */
export function parseLabelFlags(flags: readonly string[], keys: LabelKeys): EventLabels {
  const out: EventLabels = {};
  for (const f of flags) {
    const eq = f.indexOf('=');
    if (eq <= 0) throw new PoisonInputError('REQUEST_INVALID', 'nodewarden agent', [{ path: '--label', message: `expected k=v, got "${f}"` }]);
    const k = f.slice(0, eq).trim();
    const v = f.slice(eq + 1).trim();
    const name = k === keys.group ? 'pool' : k === keys.zone ? 'zone' : k;
    out[name] = v;
  }
  return out;
}

/** How to reach the Kubernetes API, or null when there is no cluster to ask. */
export interface KubeAccess {
  /** undefined = in-cluster service account (or the default kubeconfig resolution). */
  kubeconfigPath: string | undefined;
  inCluster: boolean;
}

/** In a pod (service account mounted), or a kubeconfig from $KUBECONFIG / ~/.kube/config; else null. */
export function detectKubeAccess(env: NodeJS.ProcessEnv = process.env): KubeAccess | null {
  if (env['KUBERNETES_SERVICE_HOST'] && existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token')) return { kubeconfigPath: undefined, inCluster: true };
  const fromEnv = env['KUBECONFIG']?.split(':').find((p) => p && existsSync(p));
  if (fromEnv) return { kubeconfigPath: fromEnv, inCluster: false };
  const home = join(env['HOME'] ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return { kubeconfigPath: home, inCluster: false };
  return null;
}

/** Reads the Node's labels from the API (the agent's lean client, `kube-api.ts`). */
export async function readNodeLabels(node: string, access: KubeAccess): Promise<Record<string, string>> {
  const { kubeGet, targetFor } = await import('./kube-api.js');
  const n = (await kubeGet(await targetFor(access), `/api/v1/nodes/${encodeURIComponent(node)}`)) as { metadata?: { labels?: Record<string, string> } } | null;
  return n?.metadata?.labels ?? {};
}
