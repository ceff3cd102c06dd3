/**
 * `net.conntrack`: the host's connection-tracking table, read from
 * `<hostRoot>/proc/net/stat/nf_conntrack` (per-CPU counters, keyed by the
 * header line) and `<hostRoot>/proc/sys/net/netfilter/nf_conntrack_{count,max}`.
 *
 * The agent must read the HOST's network namespace: in the DaemonSet that is
 * `hostNetwork: true` with /proc mounted under the host root. A node without
 * the nf_conntrack module has none of these files: that is "no data", never
 * an error. Counters are cumulative; the engine computes increases.
 */
import { readFileBounded } from './read-bounded.js';
import path from 'node:path';
import { Counter } from '../metrics.js';
import { periodicCollector } from './periodic.js';
import type { Collector, CollectorContext, CollectResult, Emit } from '../collector.js';
import type { ConntrackData, EventEnvelope } from '../../core/envelope.js';
import { errorMessage } from '../../core/errors.js';
import type { Registry } from '../metrics.js';
import { parseConntrackStat, parseCount } from '../parsers/conntrack.js';

export interface ConntrackCollectorOptions {
  /** Emission period in live mode. */
  intervalMs: number;
}

/** `net.conntrack` data as this collector sends it: the contract plus the table size gauge. */
export interface ConntrackSampleData extends ConntrackData {
  /** `entries` from the stat file (same number as `count`, sampled at another instant). */
  entries?: number | null;
}

async function readText(file: string): Promise<string | null> {
  try {
    return (await readFileBounded(file)).text;
  } catch {
    return null;
  }
}

function counter(registry: Registry, name: string, help: string): Counter<string> {
  return (registry.getSingleMetric(name) as Counter<string> | undefined) ?? new Counter({ name, help, registers: [registry] });
}

export function createConntrackCollector(ctx: CollectorContext, opts: ConntrackCollectorOptions): Collector {
  const statFile = path.join(ctx.hostRoot, 'proc', 'net', 'stat', 'nf_conntrack');
  const countFile = path.join(ctx.hostRoot, 'proc', 'sys', 'net', 'netfilter', 'nf_conntrack_count');
  const maxFile = path.join(ctx.hostRoot, 'proc', 'sys', 'net', 'netfilter', 'nf_conntrack_max');
  const log = ctx.logger.child({ collector: 'conntrack' });
  const noData = counter(ctx.registry, 'nodewarden_agent_conntrack_no_data_total', 'Conntrack reads that found no data (module not loaded, files missing)');

  /** One sample, or why there is none. */
  async function sample(): Promise<{ event?: EventEnvelope; skipped?: string }> {
    const [statText, countText, maxText] = await Promise.all([readText(statFile), readText(countFile), readText(maxFile)]);
    if (statText === null && countText === null && maxText === null) {
      return { skipped: `no conntrack data (${statFile} and ${countFile} not readable: nf_conntrack not loaded?)` };
    }
    const stat = statText === null ? null : parseConntrackStat(statText);
    const count = countText === null ? null : parseCount(countText);
    const max = maxText === null ? null : parseCount(maxText);
    if (stat === null && count === null && max === null) {
      return { skipped: `no conntrack data (files under ${ctx.hostRoot} present but unreadable as conntrack text)` };
    }
    const data: ConntrackSampleData = { count, max, counters: stat?.counters ?? {} };
    if (stat !== null) data.entries = stat.entries;
    return { event: ctx.newEvent<ConntrackSampleData>('net.conntrack', 'procfs', data, ctx.clock.now()) };
  }

  let lastSkip: string | undefined;

  async function round(emit: Emit): Promise<void> {
    try {
      const r = await sample();
      if (r.event) {
        lastSkip = undefined;
        emit([r.event]);
      } else {
        noData.inc();
        // Say it once per streak: a node without conntrack stays that way.
        if (r.skipped !== lastSkip) log.info({ reason: r.skipped }, 'no conntrack data');
        lastSkip = r.skipped;
      }
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'conntrack sample failed');
    }
  }

  return periodicCollector('conntrack', opts.intervalMs, round, async (): Promise<CollectResult> => {
    const r = await sample();
    return r.event ? { events: [r.event] } : { events: [], skipped: r.skipped ?? 'no conntrack data' };
  });
}
