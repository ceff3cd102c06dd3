/**
 * The agent's metrics registry: a minimal Prometheus text-exposition (0.0.4)
 * implementation with the subset of the prom-client API the agent uses
 * (Registry, Counter, Gauge, Histogram, `getSingleMetric(name).get()`).
 *
 * Why not prom-client (the engine keeps it): loading it pulls in
 * @opentelemetry/api, tdigest and bintrees, ~2 MiB of the agent's RSS on
 * every node of the fleet; the agent needs none of summaries, exemplars,
 * cluster aggregation or push gateways (ADR 0039).
 *
 * Bounds: label values are cut to MAX_LABEL_VALUE_CHARS, and a metric keeps
 * at most `maxSeries` series (default MAX_SERIES_PER_METRIC), the last one
 * reserved: further label combinations fold into that one series whose label values are all
 * OVERFLOW_LABEL_VALUE, so totals stay right and memory stays bounded.
 */

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const MAX_SERIES_PER_METRIC = 500;
export const MAX_LABEL_VALUE_CHARS = 128;
export const OVERFLOW_LABEL_VALUE = '__overflow__';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export type LabelValues<T extends string> = Partial<Record<T, string | number>>;

export interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  /** Set for histogram series: `<name>_bucket`, `_sum`, `_count`. */
  metricName?: string;
}

export interface MetricSnapshot {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: MetricValue[];
}

export interface Metric {
  readonly name: string;
  get(): Promise<MetricSnapshot>;
}

interface MetricOptions<T extends string> {
  name: string;
  help: string;
  labelNames?: readonly T[];
  registers?: readonly Registry[];
  /** Bound on label combinations (default MAX_SERIES_PER_METRIC). */
  maxSeries?: number;
  /** Called before each read (scrape or get()), to refresh the values. */
  collect?: (this: never) => void;
}

/** `# HELP` text: backslash and newline escaped. */
export function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A label value inside double quotes: backslash, double quote and newline escaped. */
export function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** A sample value as Prometheus writes it (+Inf, -Inf, NaN). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function formatLabels(labels: Readonly<Record<string, string | number>>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(labels)) parts.push(`${k}="${escapeLabelValue(String(v))}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

export function validateMetricName(name: string): void {
  if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name "${name}"`);
}

export function validateLabelName(name: string): void {
  if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new Error(`invalid label name "${name}"`);
}

abstract class BaseMetric<T extends string, S> implements Metric {
  readonly name: string;
  readonly help: string;
  protected readonly labelNames: readonly T[];
  protected readonly series = new Map<string, { labels: Record<string, string>; state: S }>();
  private readonly maxSeries: number;
  private readonly collectFn: (() => void) | undefined;

  constructor(opts: MetricOptions<T>, reserved: readonly string[] = []) {
    validateMetricName(opts.name);
    for (const l of opts.labelNames ?? []) {
      validateLabelName(l);
      if (reserved.includes(l)) throw new Error(`label name "${l}" is reserved in ${opts.name}`);
    }
    if (new Set(opts.labelNames ?? []).size !== (opts.labelNames ?? []).length) throw new Error(`duplicate label name in ${opts.name}`);
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = [...(opts.labelNames ?? [])];
    this.maxSeries = Math.max(2, opts.maxSeries ?? MAX_SERIES_PER_METRIC);
    const collect = opts.collect as ((this: unknown) => void) | undefined;
    this.collectFn = collect ? () => collect.call(this) : undefined;
    for (const r of opts.registers ?? []) r.registerMetric(this);
  }

  abstract readonly type: MetricSnapshot['type'];
  protected abstract initial(): S;
  /** The samples of one series, labels already merged with the registry's defaults. */
  protected abstract samples(labels: Record<string, string | number>, state: S): MetricValue[];

  /** The state of the series `labels` name, created on first use (bounded). */
  protected state(labels: LabelValues<T> | undefined): S {
    const values: Record<string, string> = {};
    for (const k of Object.keys(labels ?? {})) if (!(this.labelNames as readonly string[]).includes(k)) throw new Error(`label "${k}" is not declared by ${this.name}`);
    for (const l of this.labelNames) {
      const v = labels?.[l];
      values[l] = v === undefined ? '' : String(v).slice(0, MAX_LABEL_VALUE_CHARS);
    }
    let key = this.labelNames.map((l) => values[l] ?? '').join('\u0000');
    let s = this.series.get(key);
    if (s) return s.state;
    if (this.series.size >= this.maxSeries - 1) {
      for (const l of this.labelNames) values[l] = OVERFLOW_LABEL_VALUE;
      key = this.labelNames.map(() => OVERFLOW_LABEL_VALUE).join('\u0000');
      s = this.series.get(key);
      if (s) return s.state;
    }
    s = { labels: values, state: this.initial() };
    this.series.set(key, s);
    return s.state;
  }

  /** Current series; an unlabelled metric always has its one series. */
  private current(): Array<{ labels: Record<string, string>; state: S }> {
    if (this.labelNames.length === 0 && this.series.size === 0) this.state(undefined);
    return [...this.series.values()];
  }

  get(): Promise<MetricSnapshot> {
    return Promise.resolve(this.snapshot({}));
  }

  snapshot(defaultLabels: Readonly<Record<string, string>>): MetricSnapshot {
    this.collectFn?.();
    const values: MetricValue[] = [];
    for (const s of this.current()) values.push(...this.samples({ ...s.labels, ...defaultLabelsMissing(defaultLabels, s.labels) }, s.state));
    return { name: this.name, help: this.help, type: this.type, values };
  }

  /** The metric in text format 0.0.4. */
  render(defaultLabels: Readonly<Record<string, string>>): string {
    const snap = this.snapshot(defaultLabels);
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    for (const v of snap.values) lines.push(`${v.metricName ?? this.name}${formatLabels(v.labels)} ${formatValue(v.value)}`);
    return lines.join('\n');
  }
}

function defaultLabelsMissing(defaults: Readonly<Record<string, string>>, own: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(defaults)) if (!(k in own)) out[k] = v;
  return out;
}

function splitArgs<T extends string>(a: LabelValues<T> | number | undefined, b: number | undefined, dflt: number): { labels: LabelValues<T> | undefined; value: number } {
  if (typeof a === 'number') return { labels: undefined, value: a };
  return { labels: a, value: b ?? dflt };
}

/** One number per label set (counters and gauges). */
abstract class ScalarMetric<T extends string> extends BaseMetric<T, { v: number }> {
  protected initial(): { v: number } {
    return { v: 0 };
  }
  protected samples(labels: Record<string, string | number>, s: { v: number }): MetricValue[] {
    return [{ labels, value: s.v }];
  }
}

export class Counter<T extends string = string> extends ScalarMetric<T> {
  readonly type = 'counter' as const;
  constructor(opts: Omit<MetricOptions<T>, 'collect'> & { collect?: (this: Counter<T>) => void }) {
    super(opts);
  }
  inc(labels?: LabelValues<T> | number, value?: number): void {
    const a = splitArgs(labels, value, 1);
    if (!Number.isFinite(a.value) || a.value < 0) throw new Error(`${this.name}: a counter only increases by a finite value ≥ 0 (got ${a.value})`);
    this.state(a.labels).v += a.value;
  }
}

export class Gauge<T extends string = string> extends ScalarMetric<T> {
  readonly type = 'gauge' as const;
  constructor(opts: Omit<MetricOptions<T>, 'collect'> & { collect?: (this: Gauge<T>) => void }) {
    super(opts);
  }
  set(labels: LabelValues<T> | number, value?: number): void {
    const a = splitArgs(labels, value, 0);
    this.state(a.labels).v = a.value;
  }
  inc(labels?: LabelValues<T> | number, value?: number): void {
    const a = splitArgs(labels, value, 1);
    this.state(a.labels).v += a.value;
  }
  dec(labels?: LabelValues<T> | number, value?: number): void {
    const a = splitArgs(labels, value, 1);
    this.state(a.labels).v -= a.value;
  }
}

/** prom-client's default buckets. */
export const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface HistogramState {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram<T extends string = string> extends BaseMetric<T, HistogramState> {
  readonly type = 'histogram' as const;
  private readonly buckets: number[];
  constructor(opts: Omit<MetricOptions<T>, 'collect'> & { buckets?: readonly number[] }) {
    super(opts, ['le']);
    const b = [...(opts.buckets ?? DEFAULT_BUCKETS)].filter((x) => x !== Infinity);
    for (const x of b) if (!Number.isFinite(x)) throw new Error(`${opts.name}: bucket bounds must be finite numbers`);
    b.sort((x, y) => x - y);
    for (let i = 1; i < b.length; i++) if (b[i] === b[i - 1]) throw new Error(`${opts.name}: duplicate bucket bound ${b[i] ?? ''}`);
    this.buckets = b;
  }
  protected initial(): HistogramState {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }
  protected samples(labels: Record<string, string | number>, s: HistogramState): MetricValue[] {
    const out: MetricValue[] = [];
    let cum = 0;
    this.buckets.forEach((le, i) => {
      cum += s.counts[i] ?? 0;
      out.push({ labels: { ...labels, le }, value: cum, metricName: `${this.name}_bucket` });
    });
    out.push({ labels: { ...labels, le: '+Inf' }, value: s.count, metricName: `${this.name}_bucket` });
    out.push({ labels, value: s.sum, metricName: `${this.name}_sum` });
    out.push({ labels, value: s.count, metricName: `${this.name}_count` });
    return out;
  }
  observe(labels: LabelValues<T> | number, value?: number): void {
    const a = splitArgs(labels, value, 0);
    if (Number.isNaN(a.value)) throw new Error(`${this.name}: cannot observe NaN`);
    const s = this.state(a.labels);
    const i = this.buckets.findIndex((le) => a.value <= le);
    if (i >= 0) s.counts[i] = (s.counts[i] ?? 0) + 1;
    s.sum += a.value;
    s.count++;
  }
}

type AnyMetric = BaseMetric<string, unknown>;

export class Registry {
  readonly contentType = CONTENT_TYPE;
  private readonly byName = new Map<string, AnyMetric>();
  private defaults: Record<string, string> = {};

  setDefaultLabels(labels: Record<string, string>): void {
    for (const k of Object.keys(labels)) validateLabelName(k);
    this.defaults = { ...labels };
  }

  registerMetric(m: Metric): void {
    if (this.byName.has(m.name)) throw new Error(`a metric named ${m.name} is already registered`);
    if (!(m instanceof BaseMetric)) throw new Error(`${m.name}: not a metric of agent/metrics`);
    this.byName.set(m.name, m as AnyMetric);
  }

  getSingleMetric(name: string): Metric | undefined {
    return this.byName.get(name);
  }

  /** All metrics in text format 0.0.4, each once, with the default labels. */
  metrics(): Promise<string> {
    const parts: string[] = [];
    for (const m of this.byName.values()) parts.push(m.render(this.defaults));
    return Promise.resolve(parts.length === 0 ? '' : `${parts.join('\n\n')}\n`);
  }
}

/** The agent's private registry, every series labelled `component`. */
export function createRegistry(component: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ component });
  return registry;
}
