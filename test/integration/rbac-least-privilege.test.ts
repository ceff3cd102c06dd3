/**
 * RBAC least privilege of the agent and engine ServiceAccounts as the Helm
 * chart renders them (with the TLS/SASL values on, the RBAC must not change),
 * on a REAL kube-apiserver:
 * - everything each ServiceAccount may do (`kubectl auth can-i --list`, in its
 *   own namespace and in another) is inside an allowlist, so a rule added to
 *   the chart without updating this test fails it;
 * - an explicit deny list of what an attacker holding the token would want
 *   (Secrets, exec/attach/port-forward, eviction, node deletion or proxy,
 *   token minting, impersonation, RBAC escalation, webhooks, CRDs) is refused
 *   for both.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { parseAllDocuments, stringify } from 'yaml';
import type { KubeCluster } from '../harness/kube.js';
import { sharedKube } from './servers.js';

const exec = promisify(execFile);
const NS = 'nodewarden';

/** What each ServiceAccount may do: `resource` -> verbs (cluster-wide grants; ClusterRoles only). */
const ALLOWED: Record<'engine' | 'agent', Record<string, string[]>> = {
  engine: {
    nodes: ['get', 'list', 'watch', 'patch'],
    events: ['create', 'patch'],
    'events.events.k8s.io': ['create', 'patch'],
    'daemonsets.apps': ['get', 'list', 'watch', 'patch'],
    'deployments.apps': ['get', 'list', 'watch', 'patch'],
    'controllerrevisions.apps': ['get', 'list', 'watch'],
    'replicasets.apps': ['get', 'list', 'watch'],
    // GPU-level isolation (docs/gpu-scope.md): creates/deletes its own DRA device taints;
    // reads every rule and the ResourceSlices to budget the GPUs others tainted
    'devicetaintrules.resource.k8s.io': ['get', 'list', 'watch', 'create', 'delete'],
    'resourceslices.resource.k8s.io': ['list', 'watch'],
  },
  agent: {
    pods: ['get', 'list', 'watch'],
    nodes: ['get'],
  },
};

/** Granted only in nodewarden's own namespace (a Role): the repair ladder's Jobs. */
const ALLOWED_IN_NS: Record<'engine' | 'agent', Record<string, string[]>> = {
  engine: { 'jobs.batch': ['create', 'get', 'delete'] },
  agent: {},
};

/** Granted to every authenticated user by the apiserver's default roles (system:basic-user, discovery). */
const DEFAULT_FOR_EVERYONE = new Set([
  'selfsubjectreviews.authentication.k8s.io',
  'selfsubjectaccessreviews.authorization.k8s.io',
  'selfsubjectrulesreviews.authorization.k8s.io',
]);

/** [verb, resource(/subresource), namespace?] an attacker with either token would want; all must be "no". */
const DENIED: Array<[string, string, string?]> = [
  ['get', 'secrets', NS], ['list', 'secrets'], ['watch', 'secrets'], ['create', 'secrets', NS], ['get', 'secrets', 'kube-system'],
  ['get', 'configmaps', NS], ['patch', 'configmaps', NS],
  ['create', 'pods/exec', NS], ['get', 'pods/exec', 'kube-system'], ['create', 'pods/attach', NS], ['create', 'pods/portforward', NS], ['get', 'pods/log', NS],
  ['create', 'pods/eviction', 'default'], ['create', 'pods', NS], ['delete', 'pods', 'kube-system'], ['deletecollection', 'pods', 'default'],
  ['delete', 'nodes'], ['create', 'nodes'], ['update', 'nodes'], ['deletecollection', 'nodes'], ['get', 'nodes/proxy'], ['patch', 'nodes/status'],
  ['create', 'serviceaccounts/token', NS], ['create', 'serviceaccounts', NS], ['impersonate', 'users'], ['impersonate', 'serviceaccounts', NS], ['impersonate', 'groups'],
  ['create', 'clusterroles.rbac.authorization.k8s.io'], ['escalate', 'clusterroles.rbac.authorization.k8s.io'], ['bind', 'clusterroles.rbac.authorization.k8s.io'],
  ['create', 'clusterrolebindings.rbac.authorization.k8s.io'], ['create', 'rolebindings.rbac.authorization.k8s.io', NS],
  ['create', 'mutatingwebhookconfigurations.admissionregistration.k8s.io'], ['create', 'customresourcedefinitions.apiextensions.k8s.io'],
  ['update', 'certificatesigningrequests.certificates.k8s.io/approval'], ['delete', 'namespaces'], ['create', 'persistentvolumes'],
  ['update', 'devicetaintrules.resource.k8s.io'], ['patch', 'devicetaintrules.resource.k8s.io'], ['deletecollection', 'devicetaintrules.resource.k8s.io'],
  ['create', 'resourceslices.resource.k8s.io'], ['update', 'resourceslices.resource.k8s.io'], ['delete', 'resourceslices.resource.k8s.io'], ['get', 'resourceslices.resource.k8s.io'],
  ['create', 'resourceclaims.resource.k8s.io', 'default'], ['create', 'deviceclasses.resource.k8s.io'],
  ['delete', 'daemonsets.apps', NS], ['create', 'deployments.apps', NS], ['delete', 'deployments.apps', NS], ['update', 'deployments.apps', NS], ['patch', 'replicasets.apps', NS],
  ['create', 'jobs.batch', 'kube-system'], ['delete', 'jobs.batch', 'default'], ['list', 'jobs.batch', NS], ['update', 'jobs.batch', NS], ['patch', 'jobs.batch', NS], ['create', 'cronjobs.batch', NS],
  ['*', '*'],
];

const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection', '*', 'escalate', 'bind', 'impersonate', 'approve', 'sign']);

async function helmRender(kube: KubeCluster, set: string[]): Promise<string> {
  const helm = join(kube.binDir, 'helm');
  expect(existsSync(helm), `helm binary at ${helm} (scripts/provision/kube.sh builds it)`).to.equal(true);
  const { stdout } = await exec(helm, ['template', 'nodewarden', 'deploy/helm/nodewarden', '--namespace', NS, ...set.flatMap((s) => ['--set', s])], { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

function rbacObjects(text: string): Array<Record<string, unknown>> {
  return parseAllDocuments(text)
    .map((d) => d.toJSON() as { kind?: string } | null)
    .filter((o): o is Record<string, unknown> & { kind: string } => o !== null && ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(o.kind ?? ''));
}

/** `kubectl auth can-i --list` parsed: resource -> verbs (resource names ignored: they only narrow). */
function parseList(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const line of text.split('\n').slice(1)) {
    const m = /^(\S+)\s+(\[.*?\])\s+(\[.*?\])\s+\[(.*)\]\s*$/.exec(line.trim());
    if (!m || m[1] === undefined || m[4] === undefined) continue;
    const verbs = out.get(m[1]) ?? new Set<string>();
    for (const v of m[4].split(/\s+/).filter(Boolean)) verbs.add(v);
    out.set(m[1], verbs);
  }
  return out;
}

describe('RBAC least privilege of the Helm chart on a real apiserver', function () {
  this.timeout(300_000);
  let kube: KubeCluster;
  const kc: Record<'engine' | 'agent', string> = { engine: '', agent: '' };

  before(async () => {
    kube = await sharedKube();
    const plain = rbacObjects(await helmRender(kube, []));
    const secured = rbacObjects(await helmRender(kube, ['kafka.tls.enabled=true', 'kafka.sasl.enabled=true', 'redis.passwordSecret=redis-password', 'redis.tls.caSecret=redis-ca']));
    expect(secured, 'TLS/SASL values change no RBAC object').to.deep.equal(plain);
    // the chart does not render the release namespace (it is created with the Secret): create it, whichever test runs first
    const ns = await kube.kubectl(['apply', '-f', '-'], { input: `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${NS}\n` });
    expect(ns.code, ns.stderr).to.equal(0);
    const r = await kube.kubectl(['apply', '-f', '-'], { input: plain.map((o) => stringify(o)).join('---\n') });
    expect(r.code, r.stderr).to.equal(0);
    for (const who of ['engine', 'agent'] as const) kc[who] = await kube.kubeconfigFor(await kube.tokenFor(NS, `nodewarden-${who}`));
  });

  for (const who of ['engine', 'agent'] as const) {
    it(`${who}: every permission it holds is on the allowlist (own namespace and another)`, async () => {
      const extra: string[] = [];
      for (const ns of [NS, 'kube-system']) {
        const r = await kube.kubectl(['auth', 'can-i', '--list', '-n', ns], { kubeconfig: kc[who] });
        expect(r.code, r.stderr).to.equal(0);
        const granted = parseList(r.stdout);
        expect(granted.size, `${who} can-i --list parsed`).to.be.greaterThan(0);
        const expected: Record<string, string[]> = { ...ALLOWED[who], ...(ns === NS ? ALLOWED_IN_NS[who] : {}) };
        for (const [res, verbs] of granted) {
          if (DEFAULT_FOR_EVERYONE.has(res)) continue;
          const allowed = new Set(expected[res] ?? []);
          for (const v of verbs) if (!allowed.has(v)) extra.push(`${v} ${res} in ${ns}`);
        }
        for (const [res, verbs] of Object.entries(expected))
          for (const v of verbs) if (!granted.get(res)?.has(v)) extra.push(`missing: ${v} ${res} in ${ns}`);
      }
      expect(extra, `${who}: permissions beyond the allowlist`).to.deep.equal([]);
      // The agent writes nothing at all; the engine's writes are exactly its actions (cordon, rollback, events, GPU taint and its undo, repair Jobs).
      const writes = Object.entries({ ...ALLOWED[who], ...ALLOWED_IN_NS[who] }).flatMap(([res, verbs]) => verbs.filter((v) => WRITE_VERBS.has(v)).map((v) => `${v} ${res}`));
      expect(writes).to.deep.equal(
        who === 'agent'
          ? []
          : ['patch nodes', 'create events', 'patch events', 'create events.events.k8s.io', 'patch events.events.k8s.io', 'patch daemonsets.apps', 'patch deployments.apps', 'create devicetaintrules.resource.k8s.io', 'delete devicetaintrules.resource.k8s.io', 'create jobs.batch', 'delete jobs.batch'],
      );
    });

    it(`${who}: what a stolen token would be used for is denied`, async () => {
      const allowedAnyway: string[] = [];
      for (const [verb, resource, ns] of DENIED) {
        const [res = resource, sub] = resource.split('/');
        const r = await kube.kubectl(['auth', 'can-i', verb, res, ...(sub ? [`--subresource=${sub}`] : []), ...(ns ? ['-n', ns] : [])], { kubeconfig: kc[who] });
        if (r.stdout.trim() !== 'no') allowedAnyway.push(`${verb} ${resource}${ns ? ` -n ${ns}` : ''}: ${r.stdout.trim()} ${r.stderr.trim()}`);
      }
      expect(allowedAnyway).to.deep.equal([]);
    });
  }
});
