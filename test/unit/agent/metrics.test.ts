/**
 * agent/metrics.ts: the agent's lean Prometheus registry writes text format
 * 0.0.4 exactly (golden cases, escaping, histogram buckets), validates names,
 * bounds label values and series, and reads back like prom-client's get().
 */
import { expect } from 'chai';
import { Counter, Gauge, Histogram, MAX_LABEL_VALUE_CHARS, OVERFLOW_LABEL_VALUE, Registry, createRegistry, escapeLabelValue } from '../../../agent/metrics.js';
import { registerProcessMetrics } from '../../../agent/process-metrics.js';

describe('agent/metrics: text exposition 0.0.4', () => {
  it('golden: counter, gauge and histogram with default labels', async () => {
    const r = createRegistry('agent');
    const c = new Counter({ name: 'x_events_total', help: 'Events seen', labelNames: ['type'], registers: [r] });
    const g = new Gauge({ name: 'x_depth', help: 'Depth', registers: [r] });
    const h = new Histogram({ name: 'x_latency_seconds', help: 'Latency', buckets: [1, 0.1], registers: [r] });
    c.inc({ type: 'gpu.xid' });
    c.inc({ type: 'gpu.xid' }, 2);
    g.set(7);
    h.observe(0.05);
    h.observe(0.5);
    h.observe(3);
    expect(await r.metrics()).to.equal(
      [
        '# HELP x_events_total Events seen',
        '# TYPE x_events_total counter',
        'x_events_total{type="gpu.xid",component="agent"} 3',
        '',
        '# HELP x_depth Depth',
        '# TYPE x_depth gauge',
        'x_depth{component="agent"} 7',
        '',
        '# HELP x_latency_seconds Latency',
        '# TYPE x_latency_seconds histogram',
        'x_latency_seconds_bucket{component="agent",le="0.1"} 1',
        'x_latency_seconds_bucket{component="agent",le="1"} 2',
        'x_latency_seconds_bucket{component="agent",le="+Inf"} 3',
        'x_latency_seconds_sum{component="agent"} 3.55',
        'x_latency_seconds_count{component="agent"} 3',
        '',
      ].join('\n'),
    );
    expect(r.contentType).to.equal('text/plain; version=0.0.4; charset=utf-8');
  });

  it('an unlabelled metric shows 0 before its first use; a labelled one shows nothing', async () => {
    const r = new Registry();
    new Counter({ name: 'a_total', help: 'a', registers: [r] });
    new Counter({ name: 'b_total', help: 'b', labelNames: ['k'], registers: [r] });
    new Histogram({ name: 'c_seconds', help: 'c', buckets: [1], registers: [r] });
    const text = await r.metrics();
    expect(text).to.contain('\na_total 0\n');
    expect(text).to.contain('# TYPE b_total counter\n\n');
    expect(text).to.contain('c_seconds_bucket{le="1"} 0\nc_seconds_bucket{le="+Inf"} 0\nc_seconds_sum 0\nc_seconds_count 0\n');
  });

  it('escapes backslash, double quote and newline in label values, backslash and newline in help', async () => {
    const r = new Registry();
    const c = new Counter({ name: 'e_total', help: 'a \\ b\nc "q"', labelNames: ['v'], registers: [r] });
    c.inc({ v: 'C:\\dir "x"\nnext' });
    const text = await r.metrics();
    expect(text).to.contain('# HELP e_total a \\\\ b\\nc "q"\n');
    expect(text).to.contain('e_total{v="C:\\\\dir \\"x\\"\\nnext"} 1\n');
    expect(escapeLabelValue('\\"\n')).to.equal('\\\\\\"\\n');
  });

  it('writes +Inf, -Inf and NaN as Prometheus does', async () => {
    const r = new Registry();
    const g = new Gauge({ name: 'g', help: 'g', labelNames: ['k'], registers: [r] });
    g.set({ k: 'a' }, Infinity);
    g.set({ k: 'b' }, -Infinity);
    g.set({ k: 'c' }, NaN);
    const text = await r.metrics();
    expect(text).to.contain('g{k="a"} +Inf\ng{k="b"} -Inf\ng{k="c"} NaN\n');
  });

  it('histogram buckets are cumulative, le inclusive, sorted; le is reserved', async () => {
    const r = new Registry();
    const h = new Histogram({ name: 'h', help: 'h', labelNames: ['op'], buckets: [5, 1, 2], registers: [r] });
    for (const v of [0, 1, 1.5, 2, 4.9, 5, 6]) h.observe({ op: 'x' }, v);
    const snap = await h.get();
    const buckets = snap.values.filter((v) => v.metricName === 'h_bucket').map((v) => [v.labels['le'], v.value]);
    expect(buckets).to.deep.equal([
      [1, 2],
      [2, 4],
      [5, 6],
      ['+Inf', 7],
    ]);
    expect(snap.values.find((v) => v.metricName === 'h_count')?.value).to.equal(7);
    expect(snap.values.find((v) => v.metricName === 'h_sum')?.value).to.equal(20.4);
    expect(() => new Histogram({ name: 'h2', help: 'h', labelNames: ['le'] })).to.throw(/reserved/);
    expect(() => new Histogram({ name: 'h3', help: 'h', buckets: [1, 1] })).to.throw(/duplicate/);
    expect(() => h.observe({ op: 'x' }, NaN)).to.throw(/NaN/);
  });

  it('validates metric and label names, refuses undeclared labels, negative increments and duplicates', () => {
    const r = new Registry();
    expect(() => new Counter({ name: '1bad', help: 'x' })).to.throw(/invalid metric name/);
    expect(() => new Counter({ name: 'bad-name', help: 'x' })).to.throw(/invalid metric name/);
    expect(() => new Counter({ name: 'ok_total', help: 'x', labelNames: ['__reserved'] })).to.throw(/invalid label name/);
    expect(() => new Counter({ name: 'ok_total', help: 'x', labelNames: ['a-b'] })).to.throw(/invalid label name/);
    expect(() => new Counter({ name: 'ok_total', help: 'x', labelNames: ['a', 'a'] })).to.throw(/duplicate/);
    expect(() => r.setDefaultLabels({ 'bad-label': 'x' })).to.throw(/invalid label name/);
    const c = new Counter({ name: 'ok_total', help: 'x', labelNames: ['a'], registers: [r] });
    expect(() => c.inc({ b: 'x' } as never)).to.throw(/not declared/);
    expect(() => c.inc(-1)).to.throw(/increases/);
    expect(() => c.inc(Infinity)).to.throw(/increases/);
    expect(() => new Counter({ name: 'ok_total', help: 'again', registers: [r] })).to.throw(/already registered/);
  });

  it('bounds label values and the number of series (extra series fold into one overflow series)', async () => {
    const r = new Registry();
    const c = new Counter({ name: 'b_total', help: 'b', labelNames: ['k', 'j'], registers: [r], maxSeries: 3 });
    c.inc({ k: 'x'.repeat(10_000), j: '1' });
    for (let i = 0; i < 100; i++) c.inc({ k: `v${i}`, j: '1' });
    const snap = await c.get();
    expect(snap.values.length).to.equal(3);
    expect(String(snap.values[0]?.labels['k']).length).to.equal(MAX_LABEL_VALUE_CHARS);
    const overflow = snap.values.find((v) => v.labels['k'] === OVERFLOW_LABEL_VALUE);
    expect(overflow?.labels['j']).to.equal(OVERFLOW_LABEL_VALUE);
    expect(overflow?.value).to.equal(99);
    expect(snap.values.reduce((s, v) => s + v.value, 0)).to.equal(101);
  });

  it('get() and getSingleMetric() read back like prom-client; gauge collect() runs before each read', async () => {
    const r = createRegistry('t');
    let depth = 1;
    new Gauge({
      name: 'depth',
      help: 'd',
      registers: [r],
      collect() {
        this.set(depth);
      },
    });
    const c = new Counter({ name: 'n_total', help: 'n', labelNames: ['type', 'reason'], registers: [r] });
    c.inc({ type: 'a', reason: 'full' }, 4);
    depth = 9;
    expect((await r.getSingleMetric('depth')?.get())?.values[0]?.value).to.equal(9);
    expect((await r.getSingleMetric('n_total')?.get())?.values).to.deep.equal([{ labels: { type: 'a', reason: 'full' }, value: 4 }]);
    expect(r.getSingleMetric('missing')).to.equal(undefined);
    expect(await r.metrics()).to.contain('depth{component="t"} 9\n');
  });

  it('process metrics: the names dashboards and docs use, plausible values', async () => {
    const r = createRegistry('agent');
    const stop = registerProcessMetrics(r, 'nodewarden_agent_');
    try {
      const text = await r.metrics();
      const value = (name: string) => Number(new RegExp(`^${name}\\{component="agent"\\} (\\S+)$`, 'm').exec(text)?.[1]);
      expect(value('nodewarden_agent_process_resident_memory_bytes')).to.be.greaterThan(10 * 1024 * 1024);
      expect(value('nodewarden_agent_process_cpu_seconds_total')).to.be.greaterThan(0);
      expect(value('nodewarden_agent_process_start_time_seconds')).to.be.within(Date.now() / 1000 - 86_400, Date.now() / 1000 + 1);
      expect(value('nodewarden_agent_nodejs_heap_size_used_bytes')).to.be.greaterThan(0);
      expect(text).to.match(/^# TYPE nodewarden_agent_process_cpu_seconds_total counter$/m);
      expect(text).to.contain(`nodewarden_agent_nodejs_version_info{version="${process.version}"`);
      const before = value('nodewarden_agent_process_cpu_seconds_total');
      let x = 0;
      for (let i = 0; i < 2e6; i++) x += i; // some CPU
      expect(x).to.be.greaterThan(0);
      const after = Number(/^nodewarden_agent_process_cpu_seconds_total\{component="agent"\} (\S+)$/m.exec(await r.metrics())?.[1]);
      expect(after).to.be.at.least(before);
    } finally {
      stop();
    }
  });
});
