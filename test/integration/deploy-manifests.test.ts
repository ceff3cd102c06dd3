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
import { literalSecretProblems, parseConfigText } from '../../core/config.js';
import { loadConfig } from '../../adapters/config-file.js';
import type { NodewardenConfig } from '../../core/config.js';
import type { KubeCluster } from '../harness/kube.js';

const exec = promisify(execFile);

/** Helm values that switch on Kafka SASL_SSL and Redis TLS + ACL password (docs/security.md). */
const SECURED_VALUES = [
  'kafka.tls.enabled=true',
  'kafka.tls.caSecret=kafka-ca',
  'kafka.sasl.enabled=true',
  'redis.url=rediss://nodewarden@redis.nodewarden.svc:6380',
  'redis.passwordSecret=redis-password',
  'redis.tls.caSecret=redis-ca',
];

interface PodSpec {
  containers: Array<{ env?: Array<{ name: string; value?: string }>; volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }> }>;
  volumes: Array<{ name: string; secret?: unknown }>;
}

function loadConfigFromText(text: string): NodewardenConfig {
  const dir = mkdtempSync(join(tmpdir(), 'nw-cm-'));
  writeFileSync(join(dir, 'config.yaml'), text);
  return loadConfig({ file: join(dir, 'config.yaml'), env: {} });
}
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
  /** The chart with Kafka SASL_SSL and Redis TLS + ACL password switched on (values only). */
  let secured: K8sObject[];
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
    secured = parseObjects(await run(helm, ['template', 'nodewarden', 'deploy/helm/nodewarden', '--namespace', 'nodewarden', '--set', SECURED_VALUES.join(',')]));
  });

  it('with TLS/SASL values: credentials and CAs come from Secrets mounted read-only, the ConfigMap names only files', function () {
    const cm = secured.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'nodewarden-config') as unknown as { data: Record<string, string> };
    const text = cm.data['config.yaml'] ?? '';
    const doc = parseConfigText(text, 'nodewarden-config');
    expect(literalSecretProblems(doc), 'no literal secret in the ConfigMap').to.deep.equal([]);
    const cfg = loadConfigFromText(text);
    expect(cfg.kafka).to.deep.include({
      ssl: true,
      caFile: '/var/run/secrets/nodewarden/kafka-ca/ca.crt',
      sasl: { mechanism: 'scram-sha-512', usernameFile: '/var/run/secrets/nodewarden/kafka/username', passwordFile: '/var/run/secrets/nodewarden/kafka/password' },
    });
    expect(cfg.redis).to.deep.include({ url: 'rediss://nodewarden@redis.nodewarden.svc:6380', passwordFile: '/var/run/secrets/nodewarden/redis/password', caFile: '/var/run/secrets/nodewarden/redis-ca/ca.crt' });

    const podOf = (kind: string): PodSpec => (secured.find((o) => o.kind === kind)?.spec as { template: { spec: PodSpec } }).template.spec;
    const expectSecretMounts = (kind: string, want: Record<string, [string, string]>, absent: string[]): void => {
      const pod = podOf(kind);
      const mounts = pod.containers.flatMap((c) => c.volumeMounts ?? []);
      for (const [volume, [mountPath, secretName]] of Object.entries(want)) {
        expect(pod.volumes.find((v) => v.name === volume)?.secret, `${kind} volume ${volume}`).to.deep.equal({ secretName, defaultMode: 0o400 });
        expect(mounts.find((m) => m.name === volume), `${kind} mount ${volume}`).to.deep.equal({ name: volume, mountPath, readOnly: true });
      }
      for (const volume of absent) expect(pod.volumes.map((v) => v.name), `${kind} has no ${volume}`).not.to.include(volume);
      // Nothing secret as an env literal: only fieldRefs and secretKeyRefs may carry such names.
      for (const e of pod.containers.flatMap((c) => c.env ?? []))
        if (/pass|token|secret|key|webhook|sasl/i.test(e.name)) expect(e.value, `${kind} env ${e.name} is a literal`).to.equal(undefined);
      // Every file the config names is under one of this pod's read-only mounts (or not used by this component).
      for (const f of [cfg.kafka.caFile, cfg.kafka.sasl?.usernameFile, cfg.kafka.sasl?.passwordFile])
        expect(mounts.some((m) => m.readOnly === true && f?.startsWith(`${m.mountPath}/`)), `${kind}: ${f ?? ''} is mounted`).to.equal(true);
    };
    expectSecretMounts(
      'Deployment',
      {
        'kafka-credentials': ['/var/run/secrets/nodewarden/kafka', 'nodewarden-kafka-engine'],
        'kafka-ca': ['/var/run/secrets/nodewarden/kafka-ca', 'kafka-ca'],
        'redis-password': ['/var/run/secrets/nodewarden/redis', 'redis-password'],
        'redis-ca': ['/var/run/secrets/nodewarden/redis-ca', 'redis-ca'],
      },
      [],
    );
    // The agent gets its own Kafka identity and no Redis credentials at all.
    expectSecretMounts(
      'DaemonSet',
      { 'kafka-credentials': ['/var/run/secrets/nodewarden/kafka', 'nodewarden-kafka-agent'], 'kafka-ca': ['/var/run/secrets/nodewarden/kafka-ca', 'kafka-ca'] },
      ['redis-password', 'redis-ca'],
    );
    // No Secret object is rendered: credentials are created by the operator, never from values.
    expect(secured.filter((o) => o.kind === 'Secret')).to.deep.equal([]);
  });

  it('with repair values: the ConfigMap turns the ladder on, Jobs in the release namespace, templates verbatim, other settings at their defaults', async function () {
    const job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      spec: { template: { spec: { containers: [{ name: 'reset', image: 'registry.local/gpu-reset:1', command: ['sh', '-c', 'nvidia-smi --gpu-reset -i "{{gpu}}" && echo "{{node}} & <done>"'] }] } } },
    };
    // a namespace in the values is overridden: the engine's Role grants Jobs in the release namespace only
    const values = { repair: { enabled: true, namespace: 'elsewhere', quietPeriod: '45m', reset: { template: job }, reboot: { mode: 'annotation', annotation: 'example.com/reboot' } } };
    const file = join(work, 'repair-values.yaml');
    writeFileSync(file, stringify(values));
    const objs = parseObjects(await run(helm, ['template', 'nodewarden', 'deploy/helm/nodewarden', '--namespace', 'gpu-ops', '-f', file]));
    const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'nodewarden-config') as unknown as { data: Record<string, string> };
    expect(() => JSON.parse(cm.data['config.yaml'] ?? '') as unknown, 'the repair ConfigMap is JSON').to.not.throw();
    const cfg = loadConfigFromText(cm.data['config.yaml'] ?? '');
    expect(cfg.repair).to.deep.include({ enabled: true, namespace: 'gpu-ops', quietPeriod: '45m', window: '24h', maxAttemptsPerNode: 3 });
    expect(cfg.repair.reset).to.deep.equal({ template: job, timeout: '10m' });
    expect(cfg.repair.reboot).to.deep.include({ mode: 'annotation', annotation: 'example.com/reboot' });
    expect(cfg.repair.validate.template).to.equal(null);
    const role = objs.find((o) => o.kind === 'Role' && o.metadata.name === 'nodewarden-engine-repair-jobs');
    expect(role?.metadata.namespace).to.equal('gpu-ops');
    // off by default: the default render has no repair section (the config default, off)
    const plain = helmed.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'nodewarden-config') as unknown as { data: Record<string, string> };
    expect(loadConfigFromText(plain.data['config.yaml'] ?? '').repair.enabled).to.equal(false);
  });

  it('engine.consumer values reach the engine config (ADR 0046); left out, the config defaults apply', async function () {
    const file = join(work, 'consumer-values.yaml');
    writeFileSync(file, stringify({ engine: { consumer: { partitionsConcurrently: 6, chunkSize: 2000 } } }));
    const objs = parseObjects(await run(helm, ['template', 'nodewarden', 'deploy/helm/nodewarden', '--namespace', 'nodewarden', '-f', file]));
    const configOf = (os: typeof objs): ReturnType<typeof loadConfigFromText> => {
      const cm = os.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'nodewarden-config') as unknown as { data: Record<string, string> };
      return loadConfigFromText(cm.data['config.yaml'] ?? '');
    };
    expect(configOf(objs).engine.consumer).to.deep.equal({ partitionsConcurrently: 6, chunkSize: 2000 });
    expect(configOf(helmed).engine.consumer).to.deep.equal({ partitionsConcurrently: 3, chunkSize: 1000 });
  });

  it('the config in the ConfigMap is JSON, so the agent never loads its YAML parser (ADR 0043), and it loads', function () {
    for (const [name, objs] of [['kustomize', kustomized], ['helm', helmed], ['helm-tls-sasl', secured]] as const) {
      const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'nodewarden-config') as unknown as { data: Record<string, string> };
      const text = cm.data['config.yaml'] ?? '';
      const doc = JSON.parse(text) as unknown;
      expect(doc, name).to.deep.equal(parseConfigText(text, name));
      expect(loadConfigFromText(text).kafka.brokers, name).to.deep.equal(['kafka.kafka.svc:9092']);
    }
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
    for (const [name, objs] of [['kustomize', kustomized], ['helm', helmed], ['helm-tls-sasl', secured]] as const) {
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
