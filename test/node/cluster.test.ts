/**
 * The real single-node cluster itself: the node is Ready, a pod gets an IP
 * from the harness's bridge CNI, and a ClusterIP Service answers through the
 * kube-proxy static pod (iptables mode). Traffic: this process -> Service IP
 * -> DNAT by kube-proxy's rules -> the pod's network namespace on this machine.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { HOST_IP, POD_CIDR, type NodeCluster } from '../harness/node-cluster.js';
import { sharedNode } from './shared.js';

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

function inPodCidr(ip: string): boolean {
  const [a, b, c] = ip.split('.');
  const [pa, pb, pc] = POD_CIDR.split('.');
  return a === pa && b === pb && c === pc;
}

describe('real node cluster (kubelet + containerd + kube-proxy)', function () {
  this.timeout(600_000);
  let node: NodeCluster;

  before(async () => {
    node = await sharedNode();
  });

  after(async () => {
    await node?.kube.kubectl(['delete', 'namespace', 'web', '--wait=false']);
  });

  it('registers the node Ready with the bridge address and runs kube-proxy as a pod', async () => {
    const n = await node.kube.kubectl(['get', 'node', node.nodeName, '-o', 'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}']);
    assert.equal(n.stdout.trim(), HOST_IP);
    const kp = await node.kube.kubectl(['-n', 'kube-system', 'get', 'pods', '-l', 'k8s-app=kube-proxy', '-o', 'jsonpath={.items[0].spec.nodeName} {.items[0].status.phase}']);
    assert.equal(kp.stdout.trim(), `${node.nodeName} Running`);
  });

  it('gives a pod an IP on the bridge and serves a ClusterIP Service through kube-proxy', async () => {
    const manifest = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'web' } },
        {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'hello', namespace: 'web', labels: { app: 'hello' } },
          spec: {
            automountServiceAccountToken: false,
            containers: [
              {
                name: 'web',
                image: node.images.proxy,
                imagePullPolicy: 'Never',
                command: ['/bin/sh', '-c', 'mkdir -p /tmp/www && echo "hello from $(hostname)" > /tmp/www/index.html && exec /bin/busybox httpd -f -p 8080 -h /tmp/www'],
                ports: [{ containerPort: 8080 }],
              },
            ],
          },
        },
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: 'hello', namespace: 'web' },
          spec: { selector: { app: 'hello' }, ports: [{ port: 80, targetPort: 8080 }] },
        },
      ],
    };
    const applied = await node.kube.kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
    assert.equal(applied.code, 0, applied.stderr);
    const ready = await node.kube.kubectl(['-n', 'web', 'wait', '--for=condition=Ready', 'pod/hello', '--timeout=120s'], { timeoutMs: 130_000 });
    assert.equal(ready.code, 0, `${ready.stderr}\n${node.logTails()}`);

    const podIp = (await node.kube.kubectl(['-n', 'web', 'get', 'pod', 'hello', '-o', 'jsonpath={.status.podIP}'])).stdout.trim();
    assert.ok(inPodCidr(podIp), `pod IP ${podIp} is not in ${POD_CIDR}`);
    const direct = await get(`http://${podIp}:8080/`);
    assert.equal(direct.body.trim(), 'hello from hello');

    const clusterIp = (await node.kube.kubectl(['-n', 'web', 'get', 'svc', 'hello', '-o', 'jsonpath={.spec.clusterIP}'])).stdout.trim();
    assert.notEqual(clusterIp, '');
    // kube-proxy programs the rule within its sync period
    const deadline = Date.now() + 60_000;
    let last: string;
    for (;;) {
      try {
        const r = await get(`http://${clusterIp}/`);
        if (r.status === 200 && r.body.trim() === 'hello from hello') break;
        last = `HTTP ${r.status} ${r.body}`;
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
      }
      assert.ok(Date.now() < deadline, `Service ${clusterIp}:80 never answered through kube-proxy (last: ${last})`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  });
});
