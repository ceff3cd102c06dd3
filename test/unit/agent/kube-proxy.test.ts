import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createKubeProxyHealthCollector,
  createKubeProxyRestartCollector,
  diffPodRestarts,
  fetchKubeProxyHealth,
  parseGoTime,
  parseKubeProxyHealthz,
  podView,
} from '../../../agent/collectors/kube-proxy.js';
import type { PodRestartView, PodSource, RestartBaseline, WatchEventType } from '../../../agent/collectors/kube-proxy.js';
import { createCollectorContext } from '../../../agent/agent.js';
import type { EventEnvelope } from '../../../core/envelope.js';
import { envelopeProblems } from '../../../core/envelope.js';
import { systemClock } from '../../../core/clock.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../agent/metrics.js';

const pod = (uid: string, restartCount: number, reason: string | null = null, exitCode: number | null = null): PodRestartView => ({
  namespace: 'kube-system',
  name: `kube-proxy-${uid}`,
  uid,
  containers: [{ name: 'kube-proxy', restartCount, reason, exitCode }],
});

const ctx = () =>
  createCollectorContext({ node: 'gpu-1', labels: { pool: 'h100', zone: 'z1' }, hostRoot: '/', clock: systemClock, logger: silentLogger, registry: createRegistry('t') });

async function waitFor(pred: () => boolean, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('agent/collectors/kube-proxy: restart diffing (pure)', () => {
  it('first sight records the baseline without emitting', () => {
    const b: RestartBaseline = new Map();
    expect(diffPodRestarts(b, pod('a', 7, 'OOMKilled', 137))).to.deep.equal([]);
    expect(b.get('a/kube-proxy')).to.equal(7);
  });

  it('one restart per increase, with lastState.terminated reason and exit code', () => {
    const b: RestartBaseline = new Map();
    diffPodRestarts(b, pod('a', 0));
    const r = diffPodRestarts(b, pod('a', 1, 'OOMKilled', 137));
    expect(r).to.deep.equal([
      { pod: 'kube-proxy-a', namespace: 'kube-system', container: 'kube-proxy', restartCount: 1, previousRestartCount: 0, reason: 'OOMKilled', exitCode: 137 },
    ]);
    // Same count again (a MODIFIED for another reason): nothing.
    expect(diffPodRestarts(b, pod('a', 1, 'OOMKilled', 137))).to.deep.equal([]);
    // A jump of 2 between two looks is one observed increase.
    const j = diffPodRestarts(b, pod('a', 3, 'Error', 1));
    expect(j).to.have.length(1);
    expect(j[0]?.restartCount).to.equal(3);
    expect(j[0]?.previousRestartCount).to.equal(1);
  });

  it('keys by pod uid: a replacement pod with the same name starts a new baseline', () => {
    const b: RestartBaseline = new Map();
    diffPodRestarts(b, pod('a', 5));
    expect(diffPodRestarts(b, { ...pod('b', 6), name: 'kube-proxy-a' })).to.deep.equal([]);
  });

  it('podView reads a Pod object as the API returns it', () => {
    const v = podView({
      metadata: { name: 'kube-proxy-x', namespace: 'kube-system', uid: 'u1' },
      status: { containerStatuses: [{ name: 'kube-proxy', restartCount: 2, lastState: { terminated: { reason: 'OOMKilled', exitCode: 137 } } }] },
    });
    expect(v).to.deep.equal({ namespace: 'kube-system', name: 'kube-proxy-x', uid: 'u1', containers: [{ name: 'kube-proxy', restartCount: 2, reason: 'OOMKilled', exitCode: 137 }] });
    expect(podView({ metadata: {} })).to.equal(null);
    expect(podView({ metadata: { name: 'p', uid: 'u' } })?.containers).to.deep.equal([]);
  });
});

/** A scripted PodSource: lists return `pods`; watches are driven by the test. */
class FakePods implements PodSource {
  pods: PodRestartView[] = [];
  lists = 0;
  failLists = 0;
  watches: Array<{
    rv: string;
    onEvent: (t: WatchEventType, p: PodRestartView | null, rv: string | null, code?: number) => void;
    onDone: (err: unknown) => void;
    aborted: boolean;
  }> = [];
  list(): Promise<{ pods: PodRestartView[]; resourceVersion: string }> {
    this.lists++;
    if (this.failLists > 0) {
      this.failLists--;
      return Promise.reject(new Error('connect ECONNREFUSED'));
    }
    return Promise.resolve({ pods: this.pods.map((p) => structuredClone(p)), resourceVersion: String(100 + this.lists) });
  }
  watch(
    rv: string,
    onEvent: (t: WatchEventType, p: PodRestartView | null, rv: string | null, code?: number) => void,
    onDone: (err: unknown) => void,
  ): Promise<{ abort(): void }> {
    const w = { rv, onEvent, onDone, aborted: false };
    this.watches.push(w);
    return Promise.resolve({ abort: () => (w.aborted = true) });
  }
  get last() {
    const w = this.watches[this.watches.length - 1];
    if (!w) throw new Error('no watch yet');
    return w;
  }
}

describe('agent/collectors/kube-proxy: restart collector over a PodSource', () => {
  it('baseline from the list, events from watch increases, re-list + re-watch with back-off on errors', async () => {
    const src = new FakePods();
    src.pods = [pod('a', 2)];
    const c = createKubeProxyRestartCollector(ctx(), { source: () => Promise.resolve(src), backoff: { initialMs: 20, maxMs: 40 } });
    const got: EventEnvelope[] = [];
    await c.start((es) => got.push(...es));
    try {
      await waitFor(() => src.watches.length === 1, 'first watch');
      expect(src.last.rv).to.equal('101');
      expect(got).to.have.length(0);

      src.last.onEvent('MODIFIED', pod('a', 3, 'OOMKilled', 137), '102');
      expect(got).to.have.length(1);
      const e = got[0] as EventEnvelope;
      expect(envelopeProblems(e)).to.deep.equal([]);
      expect(e.type).to.equal('kubeproxy.restart');
      expect(e.labels).to.deep.equal({ pool: 'h100', zone: 'z1' });
      expect(e.data).to.include({ pod: 'kube-proxy-a', restartCount: 3, reason: 'OOMKilled', exitCode: 137 });

      // A new pod seen through the watch: baseline only.
      src.last.onEvent('ADDED', pod('b', 4), '103');
      expect(got).to.have.length(1);

      // A clean server-side close: resume from the last resourceVersion, no re-list.
      src.last.onDone(null);
      await waitFor(() => src.watches.length === 2, 'resumed watch');
      expect(src.last.rv).to.equal('103');
      expect(src.lists).to.equal(1);

      // The watch breaks; the first re-list fails too; while it is down pod a restarted again.
      src.pods = [pod('a', 5, 'Error', 2), pod('b', 4)];
      src.failLists = 1;
      src.last.onDone(new Error('socket hang up'));
      await waitFor(() => src.watches.length === 3, 're-watch after re-list', 3000);
      expect(src.lists).to.equal(3);
      // The increase that happened during the gap is reported from the re-list.
      expect(got).to.have.length(2);
      expect(got[1]?.data).to.include({ pod: 'kube-proxy-a', restartCount: 5, reason: 'Error', exitCode: 2 });

      // 410 Gone → re-list.
      src.last.onEvent('ERROR', null, null, 410);
      src.last.onDone(null);
      await waitFor(() => src.watches.length === 4, 're-watch after 410');
      expect(src.lists).to.equal(4);
      expect(got).to.have.length(2);
    } finally {
      await c.stop();
    }
    expect(src.last.aborted).to.equal(true);
  });

  it('start rejects (the registry counts it) when there is no cluster; collectOnce is skipped with a note', async () => {
    const c = createKubeProxyRestartCollector(ctx(), { source: () => Promise.resolve(null) });
    let err: unknown;
    await c.start(() => undefined).catch((e: unknown) => (err = e));
    expect(String(err)).to.match(/no Kubernetes API/);
    const r = await c.collectOnce();
    expect(r.events).to.deep.equal([]);
    expect(r.skipped).to.match(/no Kubernetes API/);
  });
});

describe('agent/collectors/kube-proxy: health (local HTTP server)', () => {
  let server: http.Server;
  let url: string;
  let reply: { status: number; body: string } = { status: 200, body: '' };
  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url !== '/healthz') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(reply.status, { 'content-type': 'application/json' }).end(reply.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('healthy: 200 with lastUpdated age from kube-proxy\'s own clock (Go time.String() format, as kube-proxy prints it)', async () => {
    // Shape and time format from a real `curl :10256/healthz` (kubernetes healthcheck/proxier_health.go).
    reply = {
      status: 200,
      body: '{"lastUpdated": "2020-06-03 23:59:51.188063083 +0000 UTC m=+200.131797660","currentTime": "2020-06-03 23:59:53.688063083 +0000 UTC m=+202.631797660", "nodeEligible": true}',
    };
    const { data, refused } = await fetchKubeProxyHealth(url, 1000);
    expect(refused).to.equal(false);
    expect(data).to.deep.include({ healthy: true, statusCode: 200, lastUpdatedAgeMs: 2500, nodeEligible: true });
    expect(parseGoTime('2020-06-04 02:00:04.5 +0200 CEST')).to.equal(Date.parse('2020-06-04T00:00:04.500Z'));
  });

  it('unhealthy: 503 (rules not synced) keeps the age', async () => {
    reply = { status: 503, body: JSON.stringify({ lastUpdated: '2026-11-21T10:00:00Z', currentTime: '2026-11-21T10:02:00Z' }) };
    const { data } = await fetchKubeProxyHealth(url, 1000);
    expect(data).to.deep.include({ healthy: false, statusCode: 503, lastUpdatedAgeMs: 120_000, error: 'HTTP 503' });
  });

  it('plain "ok" (old kube-proxy) is healthy without an age; connection refused is flagged', async () => {
    expect(parseKubeProxyHealthz(200, 'ok', 'u', 0)).to.deep.include({ healthy: true, lastUpdatedAgeMs: null });
    const { data, refused } = await fetchKubeProxyHealth('http://127.0.0.1:1/healthz', 500);
    expect(refused).to.equal(true);
    expect(data.healthy).to.equal(false);
  });

  it('the collector emits a valid kubeproxy.health event per interval', async () => {
    reply = { status: 200, body: JSON.stringify({ lastUpdated: '2026-11-21T10:15:20Z', currentTime: '2026-11-21T10:15:21Z' }) };
    const c = createKubeProxyHealthCollector(ctx(), { url, intervalMs: 30 });
    const got: EventEnvelope[] = [];
    await c.start((es) => got.push(...es));
    try {
      await waitFor(() => got.length >= 3, 'three health events');
    } finally {
      await c.stop();
    }
    for (const e of got) expect(envelopeProblems(e)).to.deep.equal([]);
    expect(got[0]?.type).to.equal('kubeproxy.health');
    expect(got[0]?.data).to.deep.include({ healthy: true, lastUpdatedAgeMs: 1000 });
    const once = await c.collectOnce();
    expect(once.events).to.have.length(1);
    const none = await createKubeProxyHealthCollector(ctx(), { url: 'http://127.0.0.1:1/healthz', intervalMs: 1000 }).collectOnce();
    expect(none.events).to.have.length(0);
    expect(none.skipped).to.match(/nothing listening/);
  });
});
