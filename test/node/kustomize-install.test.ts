/**
 * nodewarden installed the other supported way: `kubectl apply -k` of an
 * overlay over deploy/ (the Kustomize base), as docs/operations.md shows for a
 * single-node cluster: the overlay only points the config at the test's
 * Kafka/Redis/PagerDuty, turns dry-run off, runs one engine replica and names
 * the locally imported image. Then the Xid scenario on the real node.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import type { NodeCluster } from '../harness/node-cluster.js';
import { repoRoot } from '../harness/kube.js';
import { sharedNode } from './shared.js';
import {
  eventuallyOnNode,
  getNode,
  isCordoned,
  kubeProxyHealthFromAgent,
  prepareInstall,
  ledgerRecord,
  startBackends,
  uncordon,
  waitBothPodsReady,
  writeKmsg,
  xidLine,
  type Backends,
} from './install.js';

describe('nodewarden installed with kubectl apply -k on a real node', function () {
  this.timeout(900_000);
  let node: NodeCluster;
  let b: Backends;
  let overlay: string;

  before(async () => {
    node = await sharedNode();
    b = await startBackends();
    const { image } = await prepareInstall(node, b);

    // The overlay a user writes: the base's config with their endpoints.
    const baseConfig = parse(fs.readFileSync(path.join(repoRoot(), 'deploy', 'base', 'config.yaml'), 'utf8').split(/^---$/m)[0] ?? '') as {
      data: { 'config.yaml': string };
    };
    const cfg = parse(baseConfig.data['config.yaml']) as Record<string, Record<string, unknown>>;
    cfg['kafka'] = { ...cfg['kafka'], brokers: b.kafka.brokers };
    cfg['redis'] = { ...cfg['redis'], url: b.redis.url };
    cfg['guard'] = { ...cfg['guard'], dryRun: false, maxUnavailable: '50%' };
    const pager = cfg['pager'] as { pagerduty: Record<string, unknown> };
    pager.pagerduty['url'] = `${b.pd.url}/v2/enqueue`;
    overlay = path.join(node.dir, 'overlay');
    fs.mkdirSync(overlay, { recursive: true });
    const [name, tag] = [image.ref.slice(0, image.ref.lastIndexOf(':')), image.ref.slice(image.ref.lastIndexOf(':') + 1)];
    fs.writeFileSync(
      path.join(overlay, 'kustomization.yaml'),
      stringify({
        apiVersion: 'kustomize.config.k8s.io/v1beta1',
        kind: 'Kustomization',
        resources: [path.relative(overlay, path.join(repoRoot(), 'deploy'))],
        images: [{ name: 'ghcr.io/nodewarden/nodewarden', newName: name, newTag: tag }],
        replicas: [{ name: 'nodewarden-engine', count: 1 }],
        patches: [
          {
            target: { kind: 'ConfigMap', name: 'nodewarden-config' },
            patch: stringify([{ op: 'replace', path: '/data/config.yaml', value: stringify(cfg) }]),
          },
        ],
      }),
    );
    const r = await node.kube.kubectl(['apply', '-k', overlay], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, `kubectl apply -k failed: ${r.stderr}`);
    const waited = await waitBothPodsReady(node);
    process.stdout.write(`      [figure] kubectl apply -k -> agent and engine pods Ready: ${waited} ms\n`);
  });

  after(async () => {
    if (overlay !== undefined) await node?.kube.kubectl(['delete', '-k', overlay, '--wait=true', '--timeout=120s'], { timeoutMs: 150_000 });
    await b?.stop();
  });

  it("reads kube-proxy's /healthz from the DaemonSet pod", async () => {
    const e = await kubeProxyHealthFromAgent(node, b);
    assert.equal(e.data['healthy'], true);
  });

  it('cordons the real node on an Xid in its kernel log and pages', async () => {
    const t0 = Date.now();
    writeKmsg(xidLine(95, '0000:af:00'));
    await eventuallyOnNode(node, 'node cordoned', 90_000, async () => (isCordoned(await getNode(node.kube, node.nodeName)) ? true : undefined));
    const page = await eventuallyOnNode(node, 'critical page', 60_000, () =>
      b.pd.accepted.find((e) => e.event_action === 'trigger' && /gpu-xid-(node-)?fatal/.test(e.dedup_key ?? '')),
    );
    assert.equal(page.payload?.severity, 'critical');
    await ledgerRecord(node, b.redis.url, 'gpu-xid-node-fatal cordon', (l) => l.rule === 'gpu-xid-node-fatal' && l.action === 'cordon' && l.outcome === 'executed');
    process.stdout.write(`      [figure] (kustomize) Xid 95 -> cordon + page: ${Date.now() - t0} ms\n`);
    await uncordon(node.kube, node.nodeName);
  });
});
