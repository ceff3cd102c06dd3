import { expect } from 'chai';
import { once } from 'node:events';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CollectorContext } from '../../../agent/collector.js';
import { createConntrackCollector } from '../../../agent/collectors/conntrack.js';
import { createDcgmCollector } from '../../../agent/collectors/dcgm.js';
import { createKernelLogCollector, readKmsgRecords } from '../../../agent/collectors/kernel-log.js';
import type { Clock } from '../../../core/clock.js';
import { ManualClock, systemClock } from '../../../core/clock.js';
import type { EventEnvelope, EventType } from '../../../core/envelope.js';
import { envelopeProblems } from '../../../core/envelope.js';
import { UlidFactory } from '../../../core/ids.js';
import { silentLogger } from '../../../core/logger.js';
import { createRegistry } from '../../../agent/metrics.js';
import type { Registry } from '../../../agent/metrics.js';

const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const FIX = path.join(REPO_ROOT, 'test', 'fixtures');
const HOSTROOTS = path.join(FIX, 'hostroots');
const NOW = Date.UTC(2026, 10, 21, 12, 0, 0);

function makeCtx(hostRoot: string, clock: Clock = new ManualClock(NOW), registry: Registry = createRegistry('agent')): CollectorContext {
  const ids = new UlidFactory();
  return {
    node: 'gpu-worker-042',
    labels: { pool: 'h100-train', zone: 'us-west-2c' },
    hostRoot,
    clock,
    logger: silentLogger,
    registry,
    newEvent<D extends object>(type: EventType, source: string, data: D, observedAt?: number): EventEnvelope {
      const t = observedAt ?? clock.now();
      return { v: 1, id: ids.next(t), ts: new Date(t).toISOString(), node: 'gpu-worker-042', type, source, labels: { pool: 'h100-train', zone: 'us-west-2c' }, data: data as Record<string, unknown> };
    },
  };
}

function valid(events: EventEnvelope[]): void {
  for (const e of events) expect(envelopeProblems(e), JSON.stringify(e)).to.deep.equal([]);
}

async function until<T>(fn: () => T | undefined, what: string, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('kernel-log collector', () => {
  it('--once over hostroots/h100-xid79 (kmsg records): one gpu.xid 79 with the GPU UUID', async () => {
    const r = await createKernelLogCollector(makeCtx(path.join(HOSTROOTS, 'h100-xid79')), { pollMs: 50 }).collectOnce();
    expect(r.skipped).to.equal(undefined);
    valid(r.events);
    expect(r.events).to.have.length(1);
    const e = r.events[0];
    expect(e).to.deep.include({ type: 'gpu.xid', source: 'kmsg', node: 'gpu-worker-042' });
    expect(e?.data).to.deep.equal({ code: 79, pci: '0000:91:00', gpu: 'GPU-b6c3b2be-c55b-d076-fa0e-d464e4c7e08b', pid: null, process: null, message: 'GPU has fallen off the bus.' });
  });

  it('--once over hostroots/a100-mixed (kern.log): Xid 48, 64, 79 and ONE folded table-full event, stamped with the log time', async () => {
    const r = await createKernelLogCollector(makeCtx(path.join(HOSTROOTS, 'a100-mixed')), { pollMs: 50 }).collectOnce();
    valid(r.events);
    const x = r.events.filter((e) => e.type === 'gpu.xid');
    expect(x.map((e) => [e.data.code, e.data.pci])).to.deep.equal([
      [48, '0000:07:00'],
      [64, '0000:07:00'],
      [79, '0000:01:00'],
    ]);
    expect(x[0]?.source).to.equal('syslog');
    expect(x[0]?.ts).to.equal('2025-12-02T11:38:47.000Z');
    const full = r.events.filter((e) => e.type === 'net.conntrack');
    expect(full).to.have.length(1);
    expect(full[0]?.data).to.deep.include({ tableFull: true, module: 'nf_conntrack', suppressed: 0, count: null, max: null });
    expect(full[0]?.ts).to.equal('2026-02-23T16:44:36.000Z');
  });

  it('--once: table-full lines more than the window apart are separate events, folded ones counted in the next', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nw-kl-'));
    const f = path.join(dir, 'kern.log');
    await fsp.writeFile(
      f,
      [
        'Feb 23 16:44:36 jobs kernel: nf_conntrack: table full, dropping packet',
        'Feb 23 16:44:37 jobs kernel: nf_conntrack: table full, dropping packet',
        'Feb 23 16:44:38 jobs kernel: nf_conntrack: table full, dropping packet',
        'Feb 23 16:45:38 jobs kernel: net_ratelimit: 1263 callbacks suppressed',
        'Feb 23 16:45:38 jobs kernel: nf_conntrack: nf_conntrack: table full, dropping packet',
        '',
      ].join('\n'),
    );
    const r = await createKernelLogCollector(makeCtx(dir), { path: f, pollMs: 50 }).collectOnce();
    expect(r.events.map((e) => e.data.suppressed)).to.deep.equal([0, 2]);
    await fsp.rm(dir, { recursive: true });
  });

  it('--once over hostroots/empty: skipped with a reason; an empty file is skipped too', async () => {
    const r = await createKernelLogCollector(makeCtx(path.join(HOSTROOTS, 'empty')), { pollMs: 50 }).collectOnce();
    expect(r.events).to.deep.equal([]);
    expect(r.skipped).to.match(/no kernel log at .*dev\/kmsg/);
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nw-kl-'));
    await fsp.writeFile(path.join(dir, 'empty.log'), '');
    const e = await createKernelLogCollector(makeCtx(dir), { path: path.join(dir, 'empty.log'), pollMs: 50 }).collectOnce();
    expect(e.skipped).to.match(/is empty/);
    await fsp.rm(dir, { recursive: true });
  });

  it('--once on this machine\'s real /dev/kmsg (a character device): reads the ring buffer non-blocking and returns', async () => {
    expect(existsSync('/dev/kmsg'), '/dev/kmsg must exist on this machine').to.equal(true);
    const registry = createRegistry('agent');
    const r = await createKernelLogCollector(makeCtx('/', systemClock, registry), { pollMs: 50 }).collectOnce();
    expect(r.skipped).to.equal(undefined);
    const records = (await registry.getSingleMetric('nodewarden_agent_kernel_log_records_total')?.get())?.values[0]?.value ?? 0;
    expect(records).to.be.greaterThan(10);
  });

  it('live on the real /dev/kmsg: the backlog is not re-reported, stop() is clean', async () => {
    const got: EventEnvelope[] = [];
    const c = createKernelLogCollector(makeCtx('/', systemClock), { pollMs: 20 });
    await c.start((evs) => got.push(...evs));
    await sleep(80);
    await c.stop();
    await c.stop();
    expect(got.filter((e) => e.type === 'gpu.xid')).to.deep.equal([]);
  });

  it('kmsg reader: EPIPE (ring buffer overrun) is counted and reading goes on; SEQ already seen is skipped', async () => {
    const script: string[] = ['6,5,1,-;old\n', '6,6,2,-;a\n', 'EPIPE', '6,9,3,-;b\n', 'EAGAIN'];
    const fake = {
      read(buf: Buffer) {
        const next = script.shift();
        if (next === 'EPIPE' || next === 'EAGAIN' || next === undefined) {
          const err = Object.assign(new Error(next ?? 'EAGAIN'), { code: next ?? 'EAGAIN' });
          return Promise.reject(err);
        }
        const n = buf.write(next);
        return Promise.resolve({ bytesRead: n, buffer: buf });
      },
    };
    let overruns = 0;
    const r = await readKmsgRecords(fake, { lastSeq: 5 }, () => overruns++);
    expect(r).to.deep.equal({ text: '6,6,2,-;a\n6,9,3,-;b\n', eof: true });
    expect(overruns).to.equal(1);
  });

  describe('live on a regular file', () => {
    let dir: string;
    let file: string;
    let got: EventEnvelope[];
    beforeEach(async () => {
      dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nw-kl-'));
      file = path.join(dir, 'kern.log');
      got = [];
    });
    afterEach(async () => {
      await fsp.rm(dir, { recursive: true, force: true });
    });
    const xid = (code: number, pci = '0000:3b:00') => `Nov 21 10:15:23 gpu-1 kernel: NVRM: Xid (PCI:${pci}): ${code}, pid=1234, name=python, test line\n`;

    it('tails from the end (old lines not re-sent, but the UUID map is learned), survives rotation and truncation', async () => {
      const registry = createRegistry('agent');
      await fsp.writeFile(file, `Nov 21 10:00:00 gpu-1 kernel: NVRM: GPU at PCI:0000:3b:00: GPU-5f1c8f0e-1b2c-4d5e-8f90-123456789abc\n${xid(13)}`);
      const c = createKernelLogCollector(makeCtx(dir, systemClock, registry), { path: file, pollMs: 15 });
      await c.start((evs) => got.push(...evs));
      await sleep(60);
      expect(got).to.deep.equal([]);

      await fsp.appendFile(file, xid(79));
      const first = await until(() => got[0], 'Xid 79 after append');
      expect(first.data).to.deep.include({ code: 79, pci: '0000:3b:00', gpu: 'GPU-5f1c8f0e-1b2c-4d5e-8f90-123456789abc', pid: 1234, process: 'python' });

      // a line written in two pieces is one event, once complete
      await fsp.appendFile(file, 'Nov 21 10:15:24 gpu-1 kernel: NVRM: Xid (PCI:0000:3b:00): 4');
      await sleep(60);
      expect(got).to.have.length(1);
      await fsp.appendFile(file, '3, pid=1, name=a, split\n');
      await until(() => got[1], 'split line');
      expect(got[1]?.data.code).to.equal(43);

      // rotation: the last lines of the old file are not lost, the new file is read from its start
      await fsp.appendFile(file, xid(31));
      await fsp.rename(file, `${file}.1`);
      await fsp.writeFile(file, xid(48, '0000:5e:00'));
      await until(() => (got.length >= 4 ? true : undefined), 'events after rotation');
      expect(got.slice(2).map((e) => e.data.code)).to.deep.equal([31, 48]);

      // truncation (copytruncate): read again from the start
      await sleep(40);
      await fsp.truncate(file, 0);
      await sleep(40);
      await fsp.appendFile(file, xid(94));
      await until(() => (got.length >= 5 ? true : undefined), 'event after truncation');
      expect(got[4]?.data.code).to.equal(94);

      await c.stop();
      valid(got);
      const reopens = await registry.getSingleMetric('nodewarden_agent_kernel_log_reopens_total')?.get();
      const byReason = (reason: string) => (reopens?.values ?? []).find((v) => v.labels.reason === reason)?.value;
      expect(byReason('rotation')).to.equal(1);
      expect(byReason('truncation')).to.equal(1);
    });

    it('a missing file at start is waited for (no throw) and tailed once it appears', async () => {
      const c = createKernelLogCollector(makeCtx(dir, systemClock), { path: file, pollMs: 15 });
      await c.start((evs) => got.push(...evs));
      await sleep(40);
      // The first successful open tails from the end, like any start: what is appended afterwards counts.
      await fsp.writeFile(file, '');
      await sleep(40);
      await fsp.appendFile(file, xid(79));
      await until(() => got[0], 'event from a file that appeared late');
      await c.stop();
      expect(got[0]?.data.code).to.equal(79);
    });
  });
});

describe('conntrack collector', () => {
  it('--once over hostroots/h100-xid79 (5.15+ header): count, max, normalized counters', async () => {
    const r = await createConntrackCollector(makeCtx(path.join(HOSTROOTS, 'h100-xid79')), { intervalMs: 1000 }).collectOnce();
    valid(r.events);
    expect(r.events).to.have.length(1);
    expect(r.events[0]).to.deep.include({ type: 'net.conntrack', source: 'procfs' });
    expect(r.events[0]?.data).to.deep.include({ count: 171, max: 262144, entries: 171 });
    expect(r.events[0]?.data.counters).to.deep.include({ clash_resolve: 0, chaintoolong: 0, insert_failed: 0, drop: 0 });
  });

  it('--once over hostroots/a100-mixed (pre-5.10 header): sums of the real counters', async () => {
    const r = await createConntrackCollector(makeCtx(path.join(HOSTROOTS, 'a100-mixed')), { intervalMs: 1000 }).collectOnce();
    expect(r.events[0]?.data).to.deep.include({ count: 1822, max: 65536, entries: 1822 });
    // drop = 0x53a + 0 + 0x8 = 1346; found = 0x8c03e663 + 0x0f2d9e94 + 0x057c5a59 = 2695749456
    expect(r.events[0]?.data.counters).to.deep.include({ drop: 1346, found: 2695749456, delete_list: 8754252 });
  });

  it('--once over hostroots/empty: skipped, "no conntrack data"', async () => {
    const r = await createConntrackCollector(makeCtx(path.join(HOSTROOTS, 'empty')), { intervalMs: 1000 }).collectOnce();
    expect(r.events).to.deep.equal([]);
    expect(r.skipped).to.match(/^no conntrack data \(/);
  });

  it('--once on this machine (kernel 6.18.44): reads the real /proc', async () => {
    const r = await createConntrackCollector(makeCtx('/', systemClock), { intervalMs: 1000 }).collectOnce();
    expect(r.events).to.have.length(1);
    expect(r.events[0]?.data.max).to.be.a('number');
    expect(r.events[0]?.data.counters).to.have.property('chaintoolong');
  });

  it('live: emits at start and every interval; a missing source is logged, not thrown', async () => {
    const got: EventEnvelope[] = [];
    const c = createConntrackCollector(makeCtx(path.join(HOSTROOTS, 'h100-xid79'), systemClock), { intervalMs: 20 });
    await c.start((evs) => got.push(...evs));
    expect(got).to.have.length(1);
    await until(() => (got.length >= 3 ? true : undefined), 'periodic conntrack events');
    await c.stop();
    const n = got.length;
    await sleep(60);
    expect(got.length).to.equal(n);

    const empty: EventEnvelope[] = [];
    const e = createConntrackCollector(makeCtx(path.join(HOSTROOTS, 'empty'), systemClock), { intervalMs: 20 });
    await e.start((evs) => empty.push(...evs));
    await sleep(50);
    await e.stop();
    expect(empty).to.deep.equal([]);
  });
});

describe('dcgm collector (against a local HTTP server)', () => {
  let server: http.Server;
  let url: string;
  let bodies: string[];
  let status = 200;
  before(async () => {
    server = http.createServer((_req, res) => {
      const body = bodies.length > 1 ? (bodies.shift() as string) : (bodies[0] ?? '');
      res.writeHead(status, { 'content-type': 'text/plain; version=0.0.4' }).end(body);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  });
  after(async () => {
    server.close();
    await once(server, 'close');
  });
  beforeEach(() => {
    status = 200;
  });
  const dcgm = (n: string) => readFileSync(path.join(FIX, 'dcgm', n), 'utf8');

  it('--once: a healthy exporter gives no events; an unreachable one is skipped with the reason', async () => {
    bodies = [dcgm('SYNTHESIZED-h100-scrape-1-healthy.prom')];
    const ok = await createDcgmCollector(makeCtx('/'), { url, intervalMs: 1000, timeoutMs: 1000 }).collectOnce();
    expect(ok).to.deep.equal({ events: [] });
    // A port nothing listens on: bind, read the port, close.
    const probe = http.createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const deadPort = (probe.address() as AddressInfo).port;
    probe.close();
    await once(probe, 'close');
    const registry = createRegistry('agent');
    const down = await createDcgmCollector(makeCtx('/', new ManualClock(NOW), registry), { url: `http://127.0.0.1:${deadPort}/metrics`, intervalMs: 1000, timeoutMs: 500 }).collectOnce();
    expect(down.events).to.deep.equal([]);
    expect(down.skipped).to.match(/^dcgm-exporter unreachable at http:\/\/127\.0\.0\.1:\d+\/metrics/);
    const fails = (await registry.getSingleMetric('nodewarden_agent_dcgm_scrape_failures_total')?.get())?.values[0]?.value;
    expect(fails).to.equal(1);
  });

  it('--once: a non-zero Xid gauge at first sight is reported', async () => {
    bodies = [dcgm('SYNTHESIZED-h100-scrape-3-faults.prom')];
    const r = await createDcgmCollector(makeCtx('/'), { url, intervalMs: 1000, timeoutMs: 1000 }).collectOnce();
    valid(r.events);
    expect(r.events.map((e) => [e.type, e.source, e.data.kind]).sort()).to.deep.equal([
      ['gpu.health', 'dcgm-exporter', 'row_remap_failure'],
      ['gpu.health', 'dcgm-exporter', 'xid'],
    ]);
  });

  it('live: successive scrapes become events; a failing exporter is retried and counted, never thrown', async () => {
    bodies = [dcgm('SYNTHESIZED-h100-scrape-1-healthy.prom'), dcgm('SYNTHESIZED-h100-scrape-2-healthy.prom'), dcgm('SYNTHESIZED-h100-scrape-3-faults.prom')];
    const got: EventEnvelope[] = [];
    const registry = createRegistry('agent');
    const c = createDcgmCollector(makeCtx('/', systemClock, registry), { url, intervalMs: 25, timeoutMs: 500 });
    await c.start((evs) => got.push(...evs));
    await until(() => (got.length >= 7 ? true : undefined), 'gpu.health events');
    expect(new Set(got.map((e) => e.data.kind))).to.deep.equal(
      new Set(['xid', 'ecc_dbe', 'row_remap_failure', 'retired_pages', 'pcie_replay', 'nvlink_errors', 'thermal_violation']),
    );
    status = 503;
    await sleep(80);
    await c.stop();
    const fails = (await registry.getSingleMetric('nodewarden_agent_dcgm_scrape_failures_total')?.get())?.values[0]?.value ?? 0;
    expect(fails).to.be.greaterThan(0);
    expect(got).to.have.length(7);
  });
});
