/**
 * The real-API adapter of the DeviceTaintApi port. Plain JSON over the
 * kubeconfig's HTTPS connection (client-node's `applyToHTTPSOptions`) instead of
 * a typed or generic client, for two reasons:
 * - DeviceTaintRule changes shape between versions (1.33/1.34 v1alpha3 have CEL
 *   `selectors`; 1.35+ dropped them), and client-node's model serializer
 *   silently drops fields its model lacks — a rule without its selector would
 *   taint every GPU of the driver in the cluster;
 * - every write is sent with `fieldValidation=Strict`, so a server that does not
 *   know a field rejects the rule instead of storing it without that field.
 * Discovery: the newest version that lists the resource AND accepts, as a
 * server-side dry run, a probe rule with a CEL selector. Failures count in
 * `nodewarden_kube_api_errors_total` like every KubeApi call.
 */
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { errorMessage } from '../../core/errors.js';
import { kubeApiErrorCounter } from './client-node-api.js';
import { DEVICE_TAINT_GROUP, DEVICE_TAINT_KIND, DEVICE_TAINT_RESOURCE, DEVICE_TAINT_VERSIONS, type WireDeviceTaintRule } from './device-taint-rules.js';
import type { DeviceTaintApi } from './device-taints.js';
import { errorForStatus, networkError } from './errors.js';
import { FIELD_MANAGER } from './node-decisions.js';

const TIMEOUT_MS = 10_000;
const MAX_BODY = 1 << 20;

interface Reply {
  status: number;
  json: unknown;
}

async function requestJson(kc: KubeConfig, method: string, path: string, body?: unknown): Promise<Reply> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster in the kubeconfig');
  const url = new URL(path, cluster.server);
  const opts: https.RequestOptions = { method, headers: { Accept: 'application/json', 'Content-Type': 'application/json' }, timeout: TIMEOUT_MS };
  await kc.applyToHTTPSOptions(opts);
  return new Promise((resolve, reject) => {
    const req = https.request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY) chunks.push(c);
      });
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = text.slice(0, 500);
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    if (body !== undefined) req.write(JSON.stringify(body));
    req.end();
  });
}

function messageOf(json: unknown): string {
  if (typeof json === 'object' && json !== null && typeof (json as { message?: unknown }).message === 'string') return (json as { message: string }).message;
  return typeof json === 'string' ? json : '';
}

/** A rule no device matches (the UUID attribute of a GPU that cannot exist): the discovery probe, only ever a dry run. */
function probeRule(apiVersion: string): WireDeviceTaintRule {
  return {
    apiVersion,
    kind: DEVICE_TAINT_KIND,
    metadata: { name: 'nodewarden-discovery-probe' },
    spec: {
      deviceSelector: { driver: 'probe.nodewarden.io', selectors: [{ cel: { expression: 'device.driver == "probe.nodewarden.io"' } }] },
      taint: { key: 'nodewarden.io/probe', effect: 'NoSchedule' },
    },
  };
}

/**
 * The newest of `versions` (resource.k8s.io) whose discovery document lists
 * `resource` with `verb`; null when none does. Used by the cluster view for
 * DeviceTaintRule and ResourceSlice (list/watch).
 */
export async function servedVersion(kc: KubeConfig, resource: string, versions: readonly string[], verb: string): Promise<string | null> {
  for (const v of versions) {
    const r = await requestJson(kc, 'GET', `/apis/${DEVICE_TAINT_GROUP}/${v}`).catch((err: unknown) => {
      throw networkError(err, `discover ${DEVICE_TAINT_GROUP}/${v}`);
    });
    if (r.status === 404) continue;
    if (r.status !== 200) throw errorForStatus(r.status, `discover ${DEVICE_TAINT_GROUP}/${v}: HTTP ${r.status}: ${messageOf(r.json)}`);
    const resources = (r.json as { resources?: Array<{ name?: string; verbs?: string[] }> } | undefined)?.resources ?? [];
    if (resources.some((x) => x.name === resource && x.verbs?.includes(verb))) return v;
  }
  return null;
}

export function createClientNodeDeviceTaintApi(kc: KubeConfig, opts: { registry?: Registry } = {}): DeviceTaintApi {
  const errors = kubeApiErrorCounter(opts.registry);
  const base = (apiVersion: string): string => `/apis/${apiVersion}/${DEVICE_TAINT_RESOURCE}`;

  async function call(verb: string, name: string, method: string, path: string, body?: unknown): Promise<Reply> {
    const what = `${verb} ${DEVICE_TAINT_RESOURCE} ${name}`;
    let r: Reply;
    try {
      r = await requestJson(kc, method, path, body);
    } catch (err) {
      const e = networkError(err, what);
      errors.inc({ verb, resource: DEVICE_TAINT_RESOURCE, code: e.code === 'TIMEOUT' ? 'timeout' : 'network' });
      throw e;
    }
    if (r.status >= 200 && r.status < 300) return r;
    errors.inc({ verb, resource: DEVICE_TAINT_RESOURCE, code: String(r.status) });
    throw errorForStatus(r.status, `${what}: HTTP ${r.status}: ${messageOf(r.json) || errorMessage(r.json)}`);
  }
  const writeQuery = (dryRun: boolean): string => `?fieldManager=${FIELD_MANAGER}&fieldValidation=Strict${dryRun ? '&dryRun=All' : ''}`;

  return {
    async discover(): Promise<string | null> {
      for (const v of DEVICE_TAINT_VERSIONS) {
        const apiVersion = `${DEVICE_TAINT_GROUP}/${v}`;
        const list = await requestJson(kc, 'GET', `/apis/${apiVersion}`).catch((err: unknown) => {
          throw networkError(err, `discover ${apiVersion}`);
        });
        if (list.status === 404) continue;
        if (list.status !== 200) throw errorForStatus(list.status, `discover ${apiVersion}: HTTP ${list.status}: ${messageOf(list.json)}`);
        const resources = (list.json as { resources?: Array<{ name?: string; verbs?: string[] }> } | undefined)?.resources ?? [];
        if (!resources.some((r) => r.name === DEVICE_TAINT_RESOURCE && r.verbs?.includes('create'))) continue;
        // served: does this version select devices by CEL (1.33/1.34)? A strict server-side dry run tells
        const probe = await requestJson(kc, 'POST', `${base(apiVersion)}${writeQuery(true)}`, probeRule(apiVersion));
        if (probe.status === 201 || probe.status === 200) return apiVersion;
        if (probe.status === 400 || probe.status === 422) continue; // no CEL selectors in this version
        throw errorForStatus(probe.status, `discover ${apiVersion}: probe: HTTP ${probe.status}: ${messageOf(probe.json)}`);
      }
      return null;
    },
    async create(apiVersion, rule, o) {
      const r = await call('create', rule.metadata?.name ?? '', 'POST', `${base(apiVersion)}${writeQuery(o.dryRun)}`, rule);
      return r.json as WireDeviceTaintRule;
    },
    async get(apiVersion, name) {
      const r = await call('get', name, 'GET', `${base(apiVersion)}/${encodeURIComponent(name)}`);
      return r.json as WireDeviceTaintRule;
    },
    async delete(apiVersion, name, o) {
      const body = { kind: 'DeleteOptions', apiVersion: 'v1', ...(o.uid ? { preconditions: { uid: o.uid } } : {}), ...(o.dryRun ? { dryRun: ['All'] } : {}) };
      await call('delete', name, 'DELETE', `${base(apiVersion)}/${encodeURIComponent(name)}`, body);
    },
  };
}
