/**
 * The publisher's spool: priority-aware drops, observation order, retry of
 * the same batch, bounded flush/shutdown — with a fake producer behind the
 * MessageProducer port.
 */
import { expect } from 'chai';
import { BatchPublisher } from '../../../agent/publisher/batch-publisher.js';
import { eventPriority } from '../../../agent/publisher/priority.js';
import type { MessageProducer, ProducerMessage } from '../../../agent/publisher/producer.js';
import { PrioritySpool } from '../../../agent/publisher/spool.js';
import type { EventEnvelope, EventType } from '../../../core/envelope.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../agent/metrics.js';
import type { Registry } from '../../../agent/metrics.js';

let n = 0;
function ev(type: EventType, node = 'n1', data: Record<string, unknown> = {}): EventEnvelope {
  n++;
  return { v: 1, id: `e${String(n).padStart(6, '0')}`, ts: new Date(1_700_000_000_000 + n).toISOString(), node, type, source: 't', labels: {}, data };
}

/** A broker that can be switched off; records every batch it accepted. */
class FakeProducer implements MessageProducer {
  up = true;
  /** Accept connections even while sends fail (a broker that answers metadata but not produce). */
  connectAlwaysOk = false;
  connects = 0;
  sends: Array<{ topic: string; messages: ProducerMessage[]; ok: boolean }> = [];
  delivered: ProducerMessage[] = [];
  /** Hold sends until released (to test events arriving during a send). */
  gate: Promise<void> | null = null;
  disconnected = 0;
  connect(): Promise<void> {
    this.connects++;
    return this.up || this.connectAlwaysOk ? Promise.resolve() : Promise.reject(new Error('ECONNREFUSED'));
  }
  async send(topic: string, messages: ProducerMessage[]): Promise<void> {
    if (this.gate) await this.gate;
    const ok = this.up;
    this.sends.push({ topic, messages, ok });
    if (!ok) throw new Error('broker down');
    this.delivered.push(...messages);
  }
  disconnect(): Promise<void> {
    this.disconnected++;
    return Promise.resolve();
  }
  ids(): string[] {
    return this.delivered.map((m) => (JSON.parse(m.value) as EventEnvelope).id);
  }
}

async function waitFor(pred: () => boolean, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function counter(registry: Registry, name: string): Promise<Array<{ labels: Record<string, string | number>; value: number }>> {
  const m = registry.getSingleMetric(name);
  if (!m) return [];
  const got = await m.get();
  return got.values.map((v) => ({ labels: v.labels, value: v.value }));
}

describe('agent/publisher: priority', () => {
  it('routine samples vs alarms', () => {
    expect(eventPriority(ev('agent.heartbeat'))).to.equal('routine');
    expect(eventPriority(ev('kubeproxy.health'))).to.equal('routine');
    expect(eventPriority(ev('net.conntrack', 'n', { count: 1, max: 2, counters: {} }))).to.equal('routine');
    expect(eventPriority(ev('net.conntrack', 'n', { count: null, max: null, counters: {}, tableFull: true }))).to.equal('alarm');
    expect(eventPriority(ev('gpu.xid'))).to.equal('alarm');
    expect(eventPriority(ev('runtime.containerd'))).to.equal('alarm');
    expect(eventPriority(ev('kubeproxy.restart'))).to.equal('alarm');
    expect(eventPriority(ev('gpu.health', 'n', { kind: 'xid', code: 79 }))).to.equal('alarm');
    expect(eventPriority(ev('gpu.health', 'n', { kind: 'ecc_dbe', delta: 1 }))).to.equal('alarm');
    expect(eventPriority(ev('gpu.health', 'n', { kind: 'thermal_violation', delta: 1000 }))).to.equal('routine');
    expect(eventPriority(ev('gpu.health', 'n', { kind: 'pcie_replay', delta: 3 }))).to.equal('routine');
  });
});

describe('agent/publisher: PrioritySpool', () => {
  it('when full, evicts the oldest routine sample before any alarm; refuses an alarm only when all are alarms', () => {
    const s = new PrioritySpool(3);
    const a1 = ev('gpu.xid');
    const h1 = ev('agent.heartbeat');
    const h2 = ev('agent.heartbeat');
    s.offer(a1, 'alarm', 0);
    s.offer(h1, 'routine', 0);
    s.offer(h2, 'routine', 0);
    const a2 = ev('runtime.containerd');
    const r1 = s.offer(a2, 'alarm', 0);
    expect(r1.accepted).to.equal(true);
    expect(r1.dropped?.event.id).to.equal(h1.id);
    const h3 = ev('agent.heartbeat');
    const r2 = s.offer(h3, 'routine', 0);
    expect(r2.dropped?.event.id).to.equal(h2.id);
    const a3 = ev('kubeproxy.restart');
    expect(s.offer(a3, 'alarm', 0).dropped?.event.id).to.equal(h3.id);
    // Only alarms left: the newcomer is refused, the older facts stay.
    const a4 = ev('gpu.xid');
    const r3 = s.offer(a4, 'alarm', 0);
    expect(r3.accepted).to.equal(false);
    expect(r3.dropped?.event.id).to.equal(a4.id);
    const out: string[] = [];
    for (let b = s.take(10); b.length > 0; b = s.take(10)) out.push(...s.ack().map((e) => e.event.id));
    expect(out).to.deep.equal([a1.id, a2.id, a3.id]);
  });

  it('take keeps arrival order across priorities; a failed batch is taken again unchanged, ahead of newer events', () => {
    const s = new PrioritySpool(100);
    const es = [ev('agent.heartbeat'), ev('gpu.xid'), ev('net.conntrack'), ev('kubeproxy.restart'), ev('agent.heartbeat')];
    for (const e of es) s.offer(e, eventPriority(e), 0);
    const b = s.take(3);
    expect(b.map((x) => x.event.id)).to.deep.equal(es.slice(0, 3).map((e) => e.id));
    expect(() => s.take(1)).to.throw(/in flight/);
    const late = ev('gpu.xid');
    s.offer(late, 'alarm', 0);
    s.nack();
    expect(s.take(100)).to.equal(b);
    s.ack();
    expect(s.take(100).map((x) => x.event.id)).to.deep.equal([...es.slice(3).map((e) => e.id), late.id]);
    s.ack();
    expect(s.depth).to.equal(0);
  });

  it('a batch never takes more than half the capacity, so alarms can still evict routine samples while it is pinned', () => {
    const s = new PrioritySpool(10);
    for (let i = 0; i < 10; i++) s.offer(ev('agent.heartbeat'), 'routine', 0);
    expect(s.take(100)).to.have.length(5);
    s.nack();
    for (let i = 0; i < 5; i++) expect(s.offer(ev('gpu.xid'), 'alarm', 0).accepted).to.equal(true);
    // Queue now holds only alarms, the pinned batch only routine: the next alarm is refused.
    expect(s.offer(ev('gpu.xid'), 'alarm', 0).accepted).to.equal(false);
    expect(s.depth).to.equal(10);
  });

  it('counts the batch in flight against capacity but never evicts it', () => {
    const s = new PrioritySpool(2);
    const h1 = ev('agent.heartbeat');
    const h2 = ev('agent.heartbeat');
    s.offer(h1, 'routine', 0);
    s.offer(h2, 'routine', 0);
    expect(s.take(2)).to.have.length(1);
    s.offer(ev('gpu.xid'), 'alarm', 0); // evicts h2, the only queued routine sample
    const a = ev('gpu.xid');
    const r = s.offer(a, 'alarm', 0);
    expect(r.accepted).to.equal(false);
    expect(s.depth).to.equal(2);
  });
});

describe('agent/publisher: BatchPublisher over a fake producer', () => {
  const make = (producer: FakeProducer, over: Partial<ConstructorParameters<typeof BatchPublisher>[0]> = {}) => {
    const registry = createRegistry('t');
    const errors: unknown[] = [];
    const pub = new BatchPublisher({
      producer,
      topic: 'signals',
      batchSize: 10,
      lingerMs: 5,
      maxEvents: 1000,
      registry,
      logger: silentLogger,
      flushTimeoutMs: 2000,
      retry: { initialMs: 10, maxMs: 40 },
      onError: (e) => errors.push(e),
      ...over,
    });
    return { pub, registry, errors };
  };

  it('batches by size and linger, keyed by node, in publish order', async () => {
    const p = new FakeProducer();
    const { pub, registry } = make(p);
    const es = Array.from({ length: 25 }, (_, i) => ev('gpu.xid', `node-${i % 3}`));
    await pub.publish(es.slice(0, 12));
    await pub.publish(es.slice(12));
    await waitFor(() => p.delivered.length === 25, 'all delivered');
    expect(p.ids()).to.deep.equal(es.map((e) => e.id));
    expect(p.sends.every((s) => s.messages.length <= 10 && s.topic === 'signals')).to.equal(true);
    expect(p.delivered[1]?.key).to.equal('node-1');
    expect(p.delivered[0]?.timestamp).to.equal(String(Date.parse(es[0]?.ts ?? '')));
    const published = await counter(registry, 'nodewarden_agent_events_published_total');
    expect(published).to.deep.equal([{ labels: { type: 'gpu.xid' }, value: 25 }]);
    await pub.shutdown();
    expect(p.disconnected).to.equal(1);
  });

  it('broker down: events wait in the spool; a failed batch is resent unchanged; drains in order when it returns', async () => {
    const p = new FakeProducer();
    p.up = false;
    p.connectAlwaysOk = true;
    const { pub, registry, errors } = make(p);
    const es = Array.from({ length: 35 }, (_, i) => ev(i % 2 ? 'agent.heartbeat' : 'gpu.xid', `node-${i % 4}`));
    await pub.publish(es.slice(0, 10));
    await waitFor(() => errors.length >= 2, 'a few failures');
    await pub.publish(es.slice(10));
    expect(pub.depth).to.equal(35);
    // flush() during an outage returns (everything is spooled) instead of hanging.
    const t0 = Date.now();
    await pub.flush();
    expect(Date.now() - t0).to.be.lessThan(1500);
    p.up = true;
    await waitFor(() => p.delivered.length === 35, 'drain after recovery');
    expect(p.ids()).to.deep.equal(es.map((e) => e.id));
    expect(new Set(p.ids()).size).to.equal(35);
    // Every failed send carried exactly the batch that finally went through first.
    const failed = p.sends.filter((s) => !s.ok).map((s) => JSON.stringify(s.messages));
    expect(failed.length).to.be.greaterThan(1);
    const firstOk = p.sends.find((s) => s.ok);
    expect(new Set([...failed, JSON.stringify(firstOk?.messages)]).size).to.equal(1);
    const errs = await counter(registry, 'nodewarden_agent_publish_errors_total');
    expect(errs[0]?.value).to.be.greaterThan(0);
    expect(pub.depth).to.equal(0);
    await pub.shutdown();
  });

  it('full spool while down: routine samples are dropped first, alarms survive, every drop is counted by type and reason', async () => {
    const p = new FakeProducer();
    p.up = false;
    const { pub, registry } = make(p, { maxEvents: 20 });
    const alarms: EventEnvelope[] = [];
    const all: EventEnvelope[] = [];
    for (let i = 0; i < 100; i++) {
      const e = i % 10 === 0 ? ev('gpu.xid') : i % 10 === 5 ? ev('kubeproxy.restart') : ev(i % 3 ? 'agent.heartbeat' : 'net.conntrack', 'n1', { count: 1, max: 10, counters: {} });
      if (eventPriority(e) === 'alarm') alarms.push(e);
      all.push(e);
      await pub.publish([e]);
    }
    expect(pub.depth).to.equal(20);
    p.up = true;
    await waitFor(() => pub.depth === 0, 'drain');
    const got = p.ids();
    expect(got).to.have.length(20);
    // All 20 alarms survived, and what was delivered is in observation order.
    expect(alarms).to.have.length(20);
    expect(got).to.deep.equal(alarms.map((e) => e.id));
    const dropped = await counter(registry, 'nodewarden_agent_events_dropped_total');
    const total = dropped.reduce((s, d) => s + d.value, 0);
    expect(total).to.equal(80);
    expect(dropped.every((d) => d.labels['reason'] === 'spool_full')).to.equal(true);
    expect(dropped.map((d) => d.labels['type']).sort()).to.deep.equal(['agent.heartbeat', 'net.conntrack']);
    await pub.shutdown();
  });

  it('onSettled fires once every event of a publish is delivered or dropped, never before (the kernel-log cursor waits on it)', async () => {
    const p = new FakeProducer();
    p.up = false;
    const { pub } = make(p, { maxEvents: 4 });
    const settled: string[] = [];
    await pub.publish([ev('gpu.xid'), ev('gpu.xid')], () => settled.push('alarms'));
    await pub.publish([ev('agent.heartbeat'), ev('agent.heartbeat')], () => settled.push('routine'));
    await pub.publish([], () => settled.push('empty'));
    expect(settled, 'nothing delivered while the broker is down').to.deep.equal(['empty']);
    // Two more alarms evict the two routine samples: dropped and counted is settled too.
    await pub.publish([ev('gpu.xid'), ev('gpu.xid')], () => settled.push('late alarms'));
    expect(settled).to.deep.equal(['empty', 'routine']);
    p.up = true;
    await waitFor(() => settled.length === 4, 'the alarms delivered');
    expect(settled).to.deep.equal(['empty', 'routine', 'alarms', 'late alarms']);
    await pub.shutdown();
  });

  it('events arriving during a send go out after it, in order', async () => {
    const p = new FakeProducer();
    let release = () => undefined as void;
    p.gate = new Promise<void>((r) => (release = r));
    const { pub } = make(p, { batchSize: 3, lingerMs: 0 });
    const es = Array.from({ length: 9 }, () => ev('gpu.xid'));
    await pub.publish(es.slice(0, 3));
    await pub.publish(es.slice(3));
    release();
    p.gate = null;
    await waitFor(() => p.delivered.length === 9, 'all');
    expect(p.ids()).to.deep.equal(es.map((e) => e.id));
    await pub.shutdown();
  });

  it('shutdown flushes what it can within the timeout, counts the rest as dropped, and is idempotent', async () => {
    const p = new FakeProducer();
    const { pub } = make(p, { lingerMs: 10_000 });
    await pub.publish([ev('gpu.xid'), ev('gpu.xid')]);
    await pub.shutdown();
    expect(p.delivered).to.have.length(2);

    const q = new FakeProducer();
    q.up = false;
    const { pub: pub2, registry } = make(q, { flushTimeoutMs: 200 });
    await pub2.publish([ev('gpu.xid'), ev('agent.heartbeat')]);
    const t0 = Date.now();
    await Promise.all([pub2.shutdown(), pub2.shutdown()]);
    expect(Date.now() - t0).to.be.within(150, 1500);
    const dropped = await counter(registry, 'nodewarden_agent_events_dropped_total');
    expect(dropped.filter((d) => d.labels['reason'] === 'shutdown').reduce((s, d) => s + d.value, 0)).to.equal(2);
    // After shutdown, publish drops (counted) instead of throwing.
    await pub2.publish([ev('gpu.xid')]);
    const after = await counter(registry, 'nodewarden_agent_events_dropped_total');
    expect(after.filter((d) => d.labels['reason'] === 'shutdown').reduce((s, d) => s + d.value, 0)).to.equal(3);
    expect(q.disconnected).to.equal(1);
  });

  it('exposes spool depth and publish latency on the registry', async () => {
    const p = new FakeProducer();
    p.up = false;
    const { pub, registry } = make(p);
    await pub.publish([ev('gpu.xid'), ev('gpu.xid'), ev('gpu.xid')]);
    const text = await registry.metrics();
    expect(text).to.match(/nodewarden_agent_spool_depth\{component="t"\} 3/);
    p.up = true;
    await waitFor(() => p.delivered.length === 3, 'delivered');
    const after = await registry.metrics();
    expect(after).to.match(/nodewarden_agent_publish_latency_seconds_count\{component="t"\} 3/);
    await pub.shutdown();
  });
});
