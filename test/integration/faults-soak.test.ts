/**
 * Soak (issue 10, item 6): ten times the normal event rate of a 1,000-node
 * fleet for a CI-sized time, through the real broker and Redis into one
 * `nodewarden engine` (default rule pack, simulated cluster of that fleet).
 *
 * The fleet model (bench/lib/fleet-traffic.ts: heartbeat every 30 s, conntrack
 * every 15 s, containerd every 60 s, faults at amplified published rates) runs
 * ten times faster than the wall clock: 20 virtual minutes in 2 wall minutes,
 * stamped at wall time, ~1,200 events/s. Asserted: the engine's RSS is flat over
 * the second half, the lag does not grow and drains once production stops, and
 * the event-driven decisions (ledger decision ids) are those `nodewarden
 * replay` makes from the same events (time-driven rules: see NOT_COMPARED).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchFleet, fleetTraffic, writeClusterFile } from '../../bench/lib/fleet-traffic.js';
import { BIN, produceAll, ROOT, spawnEngine } from '../../bench/lib/kafka-bench.js';
import type { EngineChild } from '../../bench/lib/kafka-bench.js';
import { ProcSampler } from '../../bench/lib/proc-sampler.js';
import { sharedKafka, sharedRedis } from './servers.js';
import { sleep, TopicFollower, uniqueTopics, waitFor } from './engine-support.js';

/**
 * Rules whose decisions replay cannot be expected to match here, and why:
 * time-driven ones (absent, sustained) fire on the live tick in wall time, and
 * when the stream stops the whole live fleet falls silent, which replay (ending
 * at the last event) never sees; kubeproxy-restart-loop counts restarts the
 * fleet model stamps minutes ahead of their step (RELIABILITY.md: open).
 */
const NOT_COMPARED = new Set(['node-heartbeat-missing', 'containerd-unresponsive', 'conntrack-table-near-full', 'kubeproxy-restart-loop']);

const WALL_S = Number(process.env.NODEWARDEN_SOAK_SECONDS ?? 120);
const SPEED = 10;

function figure(name: string, value: number | string): void {
  process.stdout.write(`      FAULT-FIGURE ${name}=${value}\n`);
}

describe('soak: 10x the event rate of a 1,000-node fleet', function () {
  this.timeout((WALL_S + 240) * 1000);
  let engine: EngineChild | undefined;
  let ledger: TopicFollower | undefined;
  after(async () => {
    await engine?.kill('SIGKILL');
    await ledger?.stop().catch(() => undefined);
  });

  it('flat memory, no growing lag, and the same decisions as replay of the same events', async () => {
    const [kafka, redis] = await Promise.all([sharedKafka(), sharedRedis()]);
    const topics = uniqueTopics('soak');
    await kafka.createTopics([topics.signals, topics.deadLetter, topics.ledger], 4);
    const fleet = benchFleet(1000);
    const clusterFile = writeClusterFile(fleet);
    const tag = `soak-${process.pid}-${Date.now().toString(36)}`;
    engine = await spawnEngine({ brokers: kafka.brokers, redisUrl: redis.url, keyPrefix: `${tag}:`, groupId: tag, topics, clusterFile, readyTimeoutMs: 90_000, args: ['--session-timeout', '10s'] });
    ledger = await new TopicFollower(kafka.brokers, topics.ledger).start();
    const sampler = new ProcSampler(engine.pid, 2000);
    sampler.start();

    const lines: string[] = [];
    const lags: Array<{ t: number; lag: number }> = [];
    const traffic = fleetTraffic({ nodes: fleet, amplification: 2000 }, 0);
    const wall0 = Date.now();
    let seq = 0;
    let produced = 0;
    for (let s = 0; s < WALL_S; s++) {
      const batch: Array<{ key: string; value: string }> = [];
      for (let k = 0; k < SPEED; k++) {
        const step = traffic.next();
        if (step.done) break;
        for (const e of step.value) {
          // virtual time runs SPEED times faster than the wall clock, stamped on the wall clock
          const ts = new Date(wall0 + Math.floor(Date.parse(e.ts) / SPEED)).toISOString();
          const value = JSON.stringify({ ...e, id: `${tag}-${seq++}`, ts });
          batch.push({ key: e.node, value });
          lines.push(value);
        }
      }
      await produceAll(kafka.brokers, topics.signals, batch);
      produced += batch.length;
      if (s % 5 === 4) lags.push({ t: Date.now() - wall0, lag: await engine.metric('nodewarden_engine_consumer_lag') });
      const ahead = wall0 + (s + 1) * 1000 - Date.now();
      if (ahead > 0) await sleep(ahead);
    }
    const prodMs = Date.now() - wall0;
    figure('soak_events', produced);
    figure('soak_rate_per_s', Math.round(produced / (prodMs / 1000)));
    const drainT0 = Date.now();
    await waitFor('the engine to drain', async () => (await engine?.metric('nodewarden_engine_events_consumed_total')) === produced, 120_000, 500);
    figure('soak_drain_ms', Date.now() - drainT0);
    sampler.stop();

    // memory: flat over the second half (no slope beyond noise)
    const rss = sampler.samples.map((x) => x.rssMiB);
    const half = rss.slice(Math.floor(rss.length / 2));
    const firstQ = half.slice(0, Math.max(1, Math.floor(half.length / 3)));
    const lastQ = half.slice(-Math.max(1, Math.floor(half.length / 3)));
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    figure('soak_rss_peak_mib', Math.round(Math.max(...rss)));
    figure('soak_rss_second_half_growth_mib', (mean(lastQ) - mean(firstQ)).toFixed(1));
    expect(mean(lastQ) - mean(firstQ), 'RSS growth over the second half (MiB)').to.be.below(40);

    // lag: does not grow (the second half never above the first half's peak plus one second of traffic)
    const lagFirst = Math.max(...lags.slice(0, Math.ceil(lags.length / 2)).map((l) => l.lag));
    const lagSecond = Math.max(...lags.slice(Math.ceil(lags.length / 2)).map((l) => l.lag));
    figure('soak_lag_peak_first_half', lagFirst);
    figure('soak_lag_peak_second_half', lagSecond);
    expect(lagSecond, 'lag in the second half').to.be.at.most(lagFirst + produced / WALL_S);

    // decisions: the same as replay of the same events
    await sleep(3000);
    const dir = mkdtempSync(join(tmpdir(), 'nw-soak-'));
    const eventsFile = join(dir, 'events.jsonl');
    writeFileSync(eventsFile, lines.join('\n') + '\n');
    const replay = spawnSync(process.execPath, [BIN, 'replay', '--cluster', clusterFile, eventsFile], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 30, env: { ...process.env, NODEWARDEN_LOG_LEVEL: 'error' } });
    expect(replay.status, replay.stderr.slice(-2000)).to.equal(0);
    type Rec = { decisionId?: string; rule?: string; action?: string };
    // Compared: the decisions of rules, by their own ids. Not compared: the remediator's aggregate pages, sent on
    // the clock, not per event — `denial:` pages (denial window) and, since pages are grouped into incidents
    // (docs/paging.md), `incident:<dedupKey>:<seq>` updates sent when incidents.groupInterval (1m) has passed:
    // live that is a wall minute (10 virtual minutes here), in replay a virtual minute, so their number differs
    // by design. Every page decision that joined an incident is still compared by its own id (executed or suppressed).
    const AGGREGATE = /^(denial|incident):/;
    const ids = (recs: Rec[]): Set<string> => new Set(recs.filter((r) => r.decisionId && !AGGREGATE.test(r.decisionId)).map((r) => `${r.rule ?? ''} ${r.action ?? ''} ${r.decisionId ?? ''}`));
    const replayed = ids(replay.stdout.split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l) as Rec));
    // time-driven rules (sustained, absent) fire on the live engine's tick, in wall time, after the events that
    // started them: the live side may need up to the longest `for` (2 min of event time, 12 s of wall time here) more
    const compared = (x: string): boolean => !NOT_COMPARED.has(x.split(' ')[0] ?? '');
    // waits for the compared ones only: a time-driven decision replay made may never come live (see NOT_COMPARED)
    const converge0 = Date.now();
    await waitFor('the live decisions to include the replayed ones', () => [...replayed].filter(compared).every((x) => ids(ledger?.records as Rec[]).has(x)), 20_000, 500).catch(() => undefined);
    figure('soak_live_converge_wait_ms', Date.now() - converge0);
    const live = ids(ledger.records);
    const onlyLive = [...live].filter((x) => !replayed.has(x));
    const onlyReplay = [...replayed].filter((x) => !live.has(x));
    figure('soak_decisions_live', live.size);
    figure('soak_decisions_replay', replayed.size);
    figure('soak_decisions_compared', [...live].filter(compared).length);
    figure('soak_decisions_differing_time_driven', onlyLive.length + onlyReplay.length - onlyLive.filter(compared).length - onlyReplay.filter(compared).length);
    expect([...live].filter(compared).length, 'the soak made event-driven decisions at all').to.be.above(10);
    expect({ onlyLive: onlyLive.filter(compared).slice(0, 10), onlyReplay: onlyReplay.filter(compared).slice(0, 10) }).to.deep.equal({ onlyLive: [], onlyReplay: [] });
  });
});
