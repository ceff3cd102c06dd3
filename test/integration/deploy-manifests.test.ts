/**
 * deploy/ checks against real tools and a real kube-apiserver: the Kustomize
 * base and the Helm chart render the same objects; both pass server-side
 * dry-run (with the Prometheus Operator CRDs generated from the operator's Go
 * types); `helm lint` passes; promtool accepts and unit-tests the alerts.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import { sharedKube } from './servers.js';
import type { KubeCluster } from '../harness/kube.js';

const exec = promisify(execFile);
const ROOT = process.cwd();

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
}

function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJSON() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null && typeof o === 'object');
}

function identity(o: K8sObject): string {
  return `${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

async function run(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await exec(cmd, args, { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}${e.stdout ?? ''}`, { cause: err });
  }
}

async function crdDir(): Promise<string> {
  const fromEnv = process.env['NODEWARDEN_CRDS'];
  if (fromEnv) return fromEnv;
  const out = await run('bash', ['scripts/provision/crds.sh']);
  return out.trim().split('\n').pop() ?? '';
}

describe('deploy manifests (Kustomize, Helm, real apiserver, promtool)', function () {
  let kube: KubeCluster;
  let helm: string;
  let kustomized: K8sObject[];
  let helmed: K8sObject[];
  let work: string;

  before(async function () {
    this.timeout(600_000);
    kube = await sharedKube();
    helm = join(kube.binDir, 'helm');
    expect(existsSync(helm), `helm binary at ${helm} (scripts/provision/kube.sh builds it)`).to.equal(true);
    work = mkdtempSync(join(tmpdir(), 'nw-deploy-'));
    const k = await kube.kubectl(['kustomize', 'deploy/']);
    expect(k.code, k.stderr).to.equal(0);
    kustomized = parseObjects(k.stdout);
    // namespace.create=true: the base creates its namespace; helm installs into an existing one
    helmed = parseObjects(await run(helm, ['template', 'nodewarden', 'deploy/helm/nodewarden', '--namespace', 'nodewarden', '--set', 'namespace.create=true']));
  });

  it('helm lint passes', async function () {
    const out = await run(helm, ['lint', 'deploy/helm/nodewarden', '--namespace', 'nodewarden', '--strict']);
    expect(out).to.match(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it('by default the Helm chart does not render the release Namespace (helm cannot adopt the one the Secret lives in)', async function () {
    const objs = parseObjects(await run(helm, ['template', 'nodewarden', 'deploy/helm/nodewarden', '--namespace', 'nodewarden']));
    expect(objs.filter((o) => o.kind === 'Namespace')).to.deep.equal([]);
    expect(objs.length).to.equal(helmed.length - 1);
  });

  it('the Helm chart renders exactly the objects of the Kustomize base', function () {
    expect(kustomized.length).to.be.greaterThan(10);
    expect(helmed.map(identity).sort()).to.deep.equal(kustomized.map(identity).sort());
    const byId = new Map(helmed.map((o) => [identity(o), o]));
    for (const o of kustomized) expect(byId.get(identity(o)), identity(o)).to.deep.equal(o);
  });

  it('contains what an SRE expects: RBAC per component, DaemonSet, Deployment with PDB, monitoring', function () {
    const kinds = new Set(kustomized.map((o) => `${o.kind}/${o.metadata.name}`));
    for (const want of [
      'Namespace/nodewarden',
      'ServiceAccount/nodewarden-agent',
      'ServiceAccount/nodewarden-engine',
      'DaemonSet/nodewarden-agent',
      'Deployment/nodewarden-engine',
      'PodDisruptionBudget/nodewarden-engine',
      'ServiceMonitor/nodewarden',
      'PrometheusRule/nodewarden',
      'NetworkPolicy/nodewarden-engine',
      'ConfigMap/nodewarden-config',
    ])
      expect(kinds.has(want), want).to.equal(true);
    const ds = kustomized.find((o) => o.kind === 'DaemonSet');
    const mounts = JSON.stringify(ds?.spec);
    expect(mounts).to.include('"readOnly":true');
    expect(mounts).to.include('system-node-critical');
  });

  it('passes server-side dry-run on the real apiserver (CRDs from the operator types)', async function () {
    this.timeout(300_000);
    const crds = await crdDir();
    for (const crd of ['monitoring.coreos.com_servicemonitors.yaml', 'monitoring.coreos.com_prometheusrules.yaml']) {
      const r = await kube.kubectl(['apply', '--server-side', '-f', join(crds, crd)]);
      expect(r.code, r.stderr).to.equal(0);
    }
    const est = await kube.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/servicemonitors.monitoring.coreos.com', 'crd/prometheusrules.monitoring.coreos.com']);
    expect(est.code, est.stderr).to.equal(0);
    // Namespaced dry-runs need the namespace to exist for real.
    const ns = await kube.kubectl(['create', 'namespace', 'nodewarden']);
    expect(ns.code === 0 || /AlreadyExists/.test(ns.stderr), ns.stderr).to.equal(true);
    for (const [name, objs] of [['kustomize', kustomized], ['helm', helmed]] as const) {
      const file = join(work, `${name}.yaml`);
      writeFileSync(file, objs.map((o) => stringify(o)).join('---\n'));
      const r = await kube.kubectl(['apply', '--dry-run=server', '-f', file]);
      expect(r.code, `${name}: ${r.stderr}`).to.equal(0);
      expect(r.stdout).to.include('daemonset.apps/nodewarden-agent');
    }
  });

  it('promtool checks and unit-tests the alerting rules', async function () {
    const rule = kustomized.find((o) => o.kind === 'PrometheusRule');
    expect(rule, 'PrometheusRule').to.not.equal(undefined);
    const rulesFile = join(work, 'nodewarden-alerts.yaml');
    writeFileSync(rulesFile, stringify(rule?.spec));
    const check = await run('promtool', ['check', 'rules', rulesFile]);
    expect(check).to.match(/SUCCESS: \d+ rules found/);
    const testFile = join(work, 'alerts.test.yaml');
    const tests = stringify({ rule_files: [rulesFile], ...(parseAllDocuments(await run('cat', ['deploy/tests/alerts.test.yaml']))[0]?.toJSON() as object) });
    writeFileSync(testFile, tests);
    const t = await run('promtool', ['test', 'rules', testFile]);
    expect(t).to.include('SUCCESS');
  });
});
