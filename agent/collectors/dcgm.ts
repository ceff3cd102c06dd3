/**
 * `gpu.health` from dcgm-exporter's `/metrics` on the node (default
 * `http://127.0.0.1:9400/metrics`): scraped with a short timeout, parsed,
 * and turned into events by {@link DcgmTracker} (Xid gauge changes, counter
 * increases). A healthy GPU produces no event.
 *
 * Unreachable exporter: `collectOnce` reports it as skipped; live mode logs
 * once per outage, counts every failed scrape in
 * `nodewarden_agent_dcgm_scrape_failures_total` and keeps trying. Scrapes
 * never overlap.
 */
import { httpGetText } from './http-get.js';
import { Counter } from '../metrics.js';
import { periodicCollector } from './periodic.js';
import type { Collector, CollectorContext, CollectResult, Emit } from '../collector.js';
import type { EventEnvelope } from '../../core/envelope.js';
import { errorMessage } from '../../core/errors.js';
import type { Registry } from '../metrics.js';
import type { GpuHealthData } from '../parsers/dcgm.js';
import { DcgmTracker, parseDcgmMetrics } from '../parsers/dcgm.js';

export interface DcgmCollectorOptions {
  url: string;
  intervalMs: number;
  timeoutMs: number;
}

/** dcgm-exporter bodies are ~100 KiB for 8 GPUs; anything far larger is not an exporter. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

function counter(registry: Registry, name: string, help: string): Counter<string> {
  return (registry.getSingleMetric(name) as Counter<string> | undefined) ?? new Counter({ name, help, registers: [registry] });
}

export function createDcgmCollector(ctx: CollectorContext, opts: DcgmCollectorOptions): Collector {
  const log = ctx.logger.child({ collector: 'dcgm', url: opts.url });
  const scrapes = counter(ctx.registry, 'nodewarden_agent_dcgm_scrapes_total', 'dcgm-exporter scrapes attempted');
  const failures = counter(ctx.registry, 'nodewarden_agent_dcgm_scrape_failures_total', 'dcgm-exporter scrapes that failed (unreachable, timeout, bad status)');
  const tracker = new DcgmTracker();

  async function fetchMetrics(): Promise<string> {
    scrapes.inc();
    const res = await httpGetText(opts.url, { timeoutMs: opts.timeoutMs, maxBytes: MAX_BODY_BYTES, headers: { accept: 'text/plain;version=0.0.4' } });
    if (res.status < 200 || res.status >= 300) throw new Error(`dcgm-exporter answered HTTP ${res.status}`);
    return res.body;
  }

  function toEvents(body: string): EventEnvelope[] {
    const now = ctx.clock.now();
    return tracker.update(parseDcgmMetrics(body)).map((d) => ctx.newEvent<GpuHealthData>('gpu.health', 'dcgm-exporter', d, now));
  }

  let down = false;

  async function round(emit: Emit): Promise<void> {
    try {
      const body = await fetchMetrics();
      if (down) log.info({}, 'dcgm-exporter reachable again');
      down = false;
      const events = toEvents(body);
      if (events.length > 0) emit(events);
    } catch (err) {
      failures.inc();
      if (!down) log.warn({ err: errorMessage(err) }, 'dcgm-exporter scrape failed; retrying every interval');
      down = true;
    }
  }

  return periodicCollector('dcgm', opts.intervalMs, round, async (): Promise<CollectResult> => {
    let body: string;
    try {
      body = await fetchMetrics();
    } catch (err) {
      failures.inc();
      return { events: [], skipped: `dcgm-exporter unreachable at ${opts.url} (${errorMessage(err)})` };
    }
    return { events: toEvents(body) };
  });
}
