/**
 * Agent footprint: runs the real agent (`./bin/nodewarden agent`, default
 * intervals) against a fixture host root, a local fake dcgm-exporter, and a
 * real Kafka broker when one can be started (else Kafka unreachable, so the
 * spool is exercised — the summary says which), and samples its RSS and CPU
 * from /proc every second. A bare `node -e 'setInterval(()=>{},1000)'` runs
 * alongside as the peer baseline. The first `--warmup` seconds (startup,
 * module loading) are left out of the steady-state figures.
 *
 *   node dist/bench/agent-footprint.js [--seconds 180] [--runs 3] [--warmup 10]
 *        [--no-kafka] [--node-flags "--max-semi-space-size=1 ..."] [--host-root DIR]
 *        [--config-format json|yaml]
 *
 * The config file is JSON by default, as the chart and the Kustomize base render
 * it (ADR 0043: the agent then never loads its YAML parser); `--config-format
 * yaml` writes the same settings as YAML, a hand-written config's cost.
 *
 * Bar (design brief §7): ≤ 64 MiB RSS, ≤ 0.5 % of one core.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../adapters/paths.js';
import { ProcSampler, meanCpu } from './lib/proc-sampler.js';
import { quantile } from './lib/stats.js';
import type { ProcSample } from './lib/proc-sampler.js';

const BAR = { rssMiB: 64, cpuPct: 0.5 };

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '180' },
    runs: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '10' },
    'no-kafka': { type: 'boolean', default: false },
    'node-flags': { type: 'string', default: '' },
    'host-root': { type: 'string' },
    'config-format': { type: 'string', default: 'json' },
  },
});
const configFormat = values['config-format'];
if (configFormat !== 'json' && configFormat !== 'yaml') throw new Error(`--config-format must be json or yaml, got ${String(configFormat)}`);
const seconds = Number(values.seconds);
const runs = Number(values.runs);
const warmupMs = Number(values.warmup) * 1000;
const nodeFlags = (values['node-flags'] ?? '').split(/\s+/).filter(Boolean);
const root = packageRoot();
const hostRoot = values['host-root'] ?? path.join(root, 'test', 'fixtures', 'hostroots', 'h100-xid79');

interface Stats {
  rssMedianMiB: number;
  rssP95MiB: number;
  rssMaxMiB: number;
  cpuMeanPct: number;
  cpuP95Pct: number;
  samples: number;
}

function stats(samples: ProcSample[]): Stats {
  const steady = samples.filter((s) => s.t >= warmupMs);
  const rss = steady.map((s) => s.rssMiB);
  const cpu = steady.map((s) => s.cpuPct).filter((x): x is number => x !== null);
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    rssMedianMiB: r2(quantile(rss, 0.5)),
    rssP95MiB: r2(quantile(rss, 0.95)),
    rssMaxMiB: r2(Math.max(...rss)),
    cpuMeanPct: r2(meanCpu(steady)),
    cpuP95Pct: r2(quantile(cpu, 0.95)),
    samples: steady.length,
  };
}

async function fakeDcgm(): Promise<{ url: string; scrapes: () => number; close: () => Promise<void> }> {
  const body = fs.readFileSync(path.join(root, 'test', 'fixtures', 'dcgm', 'SYNTHESIZED-h100-scrape-1-healthy.prom'), 'utf8');
  let scrapes = 0;
  const server = http.createServer((req, res) => {
    scrapes++;
    if (req.url === '/metrics') res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/metrics`, scrapes: () => scrapes, close: () => new Promise((r) => server.close(() => r())) };
}

async function startBroker(): Promise<{ brokers: string[]; stop: () => Promise<void> } | null> {
  if (values['no-kafka']) return null;
  try {
    const { startKafka } = await import('../test/harness/kafka.js');
    const b = await startKafka({ numPartitions: 1 });
    await b.createTopics(['nodewarden.signals'], 1);
    return { brokers: b.brokers, stop: () => b.stop() };
  } catch (err) {
    process.stderr.write(`agent-footprint: no Kafka broker (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); running with Kafka unreachable\n`);
    return null;
  }
}

function metricsText(port: number): Promise<string> {
  return new Promise((resolve) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        let b = '';
        res.on('data', (d: Buffer) => (b += d.toString()));
        res.on('end', () => resolve(b));
      })
      .on('error', () => resolve(''));
  });
}

function metricValue(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && !line.startsWith('#')) total += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
  return total;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function stopChild(c: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    const t = setTimeout(() => c.kill('SIGKILL'), 15_000);
    c.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    c.kill('SIGTERM');
  });
}

async function oneRun(i: number, cfgFile: string, httpPort: number): Promise<{ agent: Stats; baseline: Stats; published: number; spoolDepth: number; dropped: number }> {
  const env = { ...process.env, NODEWARDEN_LOG_LEVEL: 'warn', NODE_NAME: 'bench-node' };
  const agentLog = path.join(os.tmpdir(), `nw-bench-agent-${process.pid}-${i}.log`);
  const out = fs.openSync(agentLog, 'w');
  const agent = spawn(process.execPath, [...nodeFlags, path.join(root, 'bin', 'nodewarden'), 'agent', '--config', cfgFile, '--host-root', hostRoot], {
    env,
    stdio: ['ignore', out, out],
  });
  const baseline = spawn(process.execPath, ['-e', 'setInterval(()=>{},1000)'], { stdio: 'ignore' });
  const sa = new ProcSampler(agent.pid as number);
  const sb = new ProcSampler(baseline.pid as number);
  sa.start();
  sb.start();
  await sleep(seconds * 1000);
  const text = await metricsText(httpPort);
  sa.stop();
  sb.stop();
  await Promise.all([stopChild(agent), stopChild(baseline)]);
  fs.closeSync(out);
  const a = stats(sa.samples);
  if (a.samples === 0) throw new Error(`agent run ${i} produced no samples; log: ${fs.readFileSync(agentLog, 'utf8').slice(-2000)}`);
  return {
    agent: a,
    baseline: stats(sb.samples),
    published: metricValue(text, 'nodewarden_agent_events_published_total'),
    spoolDepth: metricValue(text, 'nodewarden_agent_spool_depth'),
    dropped: metricValue(text, 'nodewarden_agent_events_dropped_total'),
  };
}

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(root, 'dist', 'cli', 'main.js'))) throw new Error('build first: npx tsc -p tsconfig.json');
  const dcgm = await fakeDcgm();
  const broker = await startBroker();
  const { freePort } = await import('../test/harness/ports.js');
  const httpPort = await freePort();
  const cfgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nw-bench-'));
  const cfgFile = path.join(cfgDir, 'agent.yaml');
  const settings = { kafka: { brokers: [broker?.brokers[0] ?? '127.0.0.1:1'] }, agent: { dcgmUrl: dcgm.url, http: { host: '127.0.0.1', port: httpPort } } };
  fs.writeFileSync(
    cfgFile,
    configFormat === 'json'
      ? JSON.stringify(settings, null, 2) + '\n'
      : [
          'kafka:',
          `  brokers: [${JSON.stringify(settings.kafka.brokers[0])}]`,
          'agent:',
          `  dcgmUrl: ${dcgm.url}`,
          '  http:',
          '    host: 127.0.0.1',
          `    port: ${httpPort}`,
          '',
        ].join('\n'),
  );
  const mode = broker ? `real Kafka broker ${broker.brokers[0] ?? ''}` : 'Kafka unreachable (events go to the spool)';
  process.stderr.write(`agent-footprint: ${runs} run(s) × ${seconds}s, warm-up ${warmupMs / 1000}s excluded, ${mode}, host root ${hostRoot}, ${configFormat} config, node flags [${nodeFlags.join(' ')}]\n`);
  const results = [];
  try {
    for (let i = 0; i < runs; i++) {
      const r = await oneRun(i, cfgFile, httpPort);
      results.push(r);
      process.stderr.write(
        `run ${i + 1}: agent RSS median ${r.agent.rssMedianMiB} MiB p95 ${r.agent.rssP95MiB} MiB, CPU mean ${r.agent.cpuMeanPct}% p95 ${r.agent.cpuP95Pct}% | ` +
          `baseline RSS ${r.baseline.rssMedianMiB} MiB CPU ${r.baseline.cpuMeanPct}% | published ${r.published}, spool ${r.spoolDepth}, dropped ${r.dropped}\n`,
      );
    }
  } finally {
    await dcgm.close();
    await broker?.stop();
    fs.rmSync(cfgDir, { recursive: true, force: true });
  }
  const med = (xs: number[]) => Math.round(quantile(xs, 0.5) * 100) / 100;
  const agentRss = med(results.map((r) => r.agent.rssMedianMiB));
  const agentRssP95 = med(results.map((r) => r.agent.rssP95MiB));
  const agentCpu = med(results.map((r) => r.agent.cpuMeanPct));
  const baseRss = med(results.map((r) => r.baseline.rssMedianMiB));
  const baseCpu = med(results.map((r) => r.baseline.cpuMeanPct));
  const summary = {
    bench: 'agent-footprint',
    mode,
    seconds,
    runs,
    warmupSeconds: warmupMs / 1000,
    nodeFlags,
    hostRoot,
    configFormat,
    dcgmScrapes: dcgm.scrapes(),
    agent: { rssMedianMiB: agentRss, rssP95MiB: agentRssP95, cpuMeanPctOfOneCore: agentCpu, perRun: results.map((r) => r.agent) },
    baseline: { what: "node -e 'setInterval(()=>{},1000)'", rssMedianMiB: baseRss, cpuMeanPctOfOneCore: baseCpu },
    bar: BAR,
    ratioToBar: { rss: Math.round((agentRssP95 / BAR.rssMiB) * 100) / 100, cpu: Math.round((agentCpu / BAR.cpuPct) * 100) / 100 },
    ratioToBaseline: { rss: Math.round((agentRss / baseRss) * 100) / 100, cpu: baseCpu > 0 ? Math.round((agentCpu / baseCpu) * 100) / 100 : null },
    meetsBar: agentRssP95 <= BAR.rssMiB && agentCpu <= BAR.cpuPct,
    publisher: results.map((r) => ({ published: r.published, spoolDepth: r.spoolDepth, dropped: r.dropped })),
  };
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`agent-footprint: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
