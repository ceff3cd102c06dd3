/**
 * Agent composition: the collector registry isolates failures, labels come
 * from the Node (or flags), and the live agent publishes through the
 * publisher (a fake producer behind the port) and serves /metrics and /healthz.
 */
import { expect } from 'chai';
import http from 'node:http';
import { createCollectorContext, resolveLabels, runOnce, startAgent } from '../../../agent/agent.js';
import type { Collector, CollectorContext } from '../../../agent/collector.js';
import { buildCollectors, startCollectors } from '../../../agent/collectors/registry.js';
import type { CollectorFactory } from '../../../agent/collectors/registry.js';
import { labelsFromNode, parseLabelFlags } from '../../../agent/node-labels.js';
import type { MessageProducer, ProducerMessage } from '../../../agent/publisher/producer.js';
import { systemClock } from '../../../core/clock.js';
import { DEFAULT_CONFIG } from '../../../core/config.js';
import { loadConfig } from '../../../adapters/config-file.js';
import type { EventEnvelope } from '../../../core/envelope.js';
import { envelopeProblems } from '../../../core/envelope.js';
import { MemoryLogger, silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../agent/metrics.js';

const KEYS = DEFAULT_CONFIG.labels;

function fakeCollector(name: string, opts: { failStart?: boolean; events?: (ctx: CollectorContext) => EventEnvelope[] } = {}): CollectorFactory {
  return (ctx) =>
    Promise.resolve<Collector>({
      name,
      start: (emit) => {
        if (opts.failStart) return Promise.reject(new Error(`${name} cannot start`));
        emit(opts.events?.(ctx) ?? [ctx.newEvent('agent.heartbeat', name, { seq: 1 })]);
        return Promise.resolve();
      },
      stop: () => Promise.resolve(),
      collectOnce: () => {
        if (opts.failStart) return Promise.reject(new Error(`${name} broke`));
        return Promise.resolve({ events: opts.events?.(ctx) ?? [ctx.newEvent('agent.heartbeat', name, { seq: 1 })] });
      },
    });
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('agent/node-labels', () => {
  it('picks pool and zone from the configured node label keys', () => {
    expect(labelsFromNode({ 'nodewarden.io/pool': 'h100-train', 'topology.kubernetes.io/zone': 'us-west-2c', other: 'x' }, KEYS)).to.deep.equal({
      pool: 'h100-train',
      zone: 'us-west-2c',
    });
    expect(labelsFromNode({ 'nvidia.com/gpu.product': 'H100' }, { group: 'nvidia.com/gpu.product', zone: 'z' })).to.deep.equal({ pool: 'H100' });
    expect(labelsFromNode(undefined, KEYS)).to.deep.equal({});
  });

  it('parses --label k=v with short or configured keys, rejects malformed ones', () => {
    expect(parseLabelFlags(['pool=a', 'topology.kubernetes.io/zone=z1', 'rack=r7'], KEYS)).to.deep.equal({ pool: 'a', zone: 'z1', rack: 'r7' });
    expect(() => parseLabelFlags(['novalue'], KEYS)).to.throw(/expected k=v/);
  });

  it('reads the Node labels when the API is reachable; flags win; an API failure is logged, not fatal', async () => {
    const cfg = structuredClone(DEFAULT_CONFIG);
    const got = await resolveLabels({
      config: cfg,
      node: 'n1',
      kubeAccess: { kubeconfigPath: '/x', inCluster: false },
      labelFlags: ['zone=override'],
      logger: silentLogger,
      readLabels: (node) => {
        const labels: Record<string, string> = node === 'n1' ? { 'nodewarden.io/pool': 'p1', 'topology.kubernetes.io/zone': 'z1' } : {};
        return Promise.resolve(labels);
      },
    });
    expect(got).to.deep.equal({ pool: 'p1', zone: 'override' });
    const log = new MemoryLogger();
    const none = await resolveLabels({
      config: cfg,
      node: 'n1',
      kubeAccess: { kubeconfigPath: '/x', inCluster: false },
      labelFlags: [],
      logger: log,
      readLabels: () => Promise.reject(new Error('forbidden')),
    });
    expect(none).to.deep.equal({});
    expect(log.records.some((r) => r.level === 'warn' && /node labels/.test(r.msg ?? ''))).to.equal(true);
  });
});

describe('agent/collectors/registry', () => {
  it('one collector failing to build or start never stops the others; failures are counted per collector', async () => {
    const registry = createRegistry('t');
    const ctx = createCollectorContext({ node: 'n1', labels: {}, hostRoot: '/', clock: systemClock, logger: silentLogger, registry });
    const factories = new Map<string, CollectorFactory>([
      ['good-1', fakeCollector('good-1')],
      ['broken-build', () => Promise.reject(new Error('module missing'))],
      ['bad-start', fakeCollector('bad-start', { failStart: true })],
      ['good-2', fakeCollector('good-2')],
    ]);
    const { built, failed } = await buildCollectors(ctx, { config: DEFAULT_CONFIG, kubeAccess: null }, { factories });
    expect(built.map((b) => b.key)).to.deep.equal(['good-1', 'bad-start', 'good-2']);
    expect(failed).to.deep.equal([{ key: 'broken-build', error: 'module missing' }]);
    const emitted: EventEnvelope[] = [];
    const { started, failed: startFailed } = await startCollectors(ctx, built, (es) => emitted.push(...es));
    expect(started.map((s) => s.key)).to.deep.equal(['good-1', 'good-2']);
    expect(startFailed.map((f) => f.key)).to.deep.equal(['bad-start']);
    expect(emitted.map((e) => e.source)).to.deep.equal(['good-1', 'good-2']);
    const text = await registry.metrics();
    expect(text).to.match(/nodewarden_agent_collector_errors_total\{collector="broken-build",component="t"\} 1/);
    expect(text).to.match(/nodewarden_agent_collector_errors_total\{collector="bad-start",component="t"\} 1/);
  });

  it('runOnce isolates a failing collector and turns invalid events into notes', async () => {
    const factories = new Map<string, CollectorFactory>([
      ['good', fakeCollector('good')],
      ['broken', fakeCollector('broken', { failStart: true })],
      ['invalid', fakeCollector('invalid', { events: (ctx) => [ctx.newEvent('runtime.containerd', 'x', { state: 'bogus' })] })],
    ]);
    const r = await runOnce({ config: loadConfig({ flags: { 'agent.node': 'n9' } }), logger: silentLogger, labelFlags: ['pool=p'], kubeAccess: null, factories });
    expect(r.events).to.have.length(1);
    expect(r.events[0]).to.include({ node: 'n9', source: 'good' });
    expect(r.events[0]?.labels).to.deep.equal({ pool: 'p' });
    expect(r.notes.some((n) => /^broken: failed: broken broke/.test(n))).to.equal(true);
    expect(r.notes.some((n) => /^invalid: dropped an invalid event: \/data\/state/.test(n))).to.equal(true);
  });
});

class RecordingProducer implements MessageProducer {
  delivered: ProducerMessage[] = [];
  disconnected = false;
  connect(): Promise<void> {
    return Promise.resolve();
  }
  send(_topic: string, messages: ProducerMessage[]): Promise<void> {
    this.delivered.push(...messages);
    return Promise.resolve();
  }
  disconnect(): Promise<void> {
    this.disconnected = true;
    return Promise.resolve();
  }
}

describe('agent/agent: live composition', () => {
  it('publishes collector events (invalid ones dropped and counted), serves /metrics and /healthz, stops gracefully', async () => {
    const producer = new RecordingProducer();
    const config = loadConfig({ flags: { 'agent.node': 'gpu-7', 'agent.http.port': 0, 'agent.http.host': '127.0.0.1', 'agent.publish.lingerMs': 1 } });
    const factories = new Map<string, CollectorFactory>([
      ['xid', fakeCollector('xid', { events: (ctx) => [ctx.newEvent('gpu.xid', 'kmsg', { code: 79, pci: '0000:3b:00', message: 'GPU has fallen off the bus.' })] })],
      ['bad', fakeCollector('bad', { events: (ctx) => [ctx.newEvent('gpu.xid', 'kmsg', { code: 'x' })] })],
      ['fails', fakeCollector('fails', { failStart: true })],
    ]);
    const agent = await startAgent({ config, logger: silentLogger, producer, factories, kubeAccess: null, labelFlags: ['pool=h100'] });
    try {
      expect(agent.collectors).to.deep.equal(['xid', 'bad']);
      const port = agent.httpPort as number;
      const until = Date.now() + 3000;
      while (producer.delivered.length < 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      expect(producer.delivered).to.have.length(1);
      const e = JSON.parse(producer.delivered[0]?.value ?? '{}') as EventEnvelope;
      expect(envelopeProblems(e)).to.deep.equal([]);
      expect(producer.delivered[0]?.key).to.equal('gpu-7');
      expect(e.labels).to.deep.equal({ pool: 'h100' });

      const h = await get(port, '/healthz');
      expect(h.status).to.equal(200);
      expect(JSON.parse(h.body)).to.include({ ok: true, node: 'gpu-7' });
      const m = await get(port, '/metrics');
      expect(m.status).to.equal(200);
      expect(m.body).to.match(/nodewarden_agent_events_published_total\{type="gpu.xid",component="agent"\} 1/);
      expect(m.body).to.match(/nodewarden_agent_events_invalid_total\{type="gpu.xid",component="agent"\} 1/);
      expect(m.body).to.match(/nodewarden_agent_collector_errors_total\{collector="fails",component="agent"\} 1/);
      expect(m.body).to.match(/nodewarden_agent_spool_depth/);
      expect(m.body).to.match(/nodewarden_agent_process_resident_memory_bytes/);
      expect((await get(port, '/nope')).status).to.equal(404);
    } finally {
      await agent.stop();
      await agent.stop();
    }
    expect(producer.disconnected).to.equal(true);
  });
});
