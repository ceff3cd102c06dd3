/**
 * A real Prometheus scraping a real agent (`nodewarden agent`, live, over a
 * fixture host root, publishing to the shared Kafka broker) and a real engine
 * (`nodewarden engine --store redis --cluster fleet-100.yaml`, on the shared
 * Kafka and Redis). Asserts through PromQL that both targets are up and the
 * documented series exist, that every metric name the shipped alert rules
 * (deploy/base/prometheusrule.yaml) use is really exported, and that
 * `promtool check metrics` finds nothing wrong with either /metrics body.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, cpSync, createWriteStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse as parseYaml } from 'yaml';
import { startPrometheus } from '../harness/prometheus.js';
import type { PrometheusServer } from '../harness/prometheus.js';
import { freePort } from '../harness/ports.js';
import { resolveBinary } from '../harness/proc.js';
import type { EngineProc } from './engine-support.js';
import { BIN, engineLog, produce, ROOT, startEngine, uniqueTopics, waitFor, xid } from './engine-support.js';
import { sharedKafka, sharedRedis } from './servers.js';

const HOSTROOT_FIXTURE = join(ROOT, 'test', 'fixtures', 'hostroots', 'h100-xid79');
const PROMETHEUS_RULE = join(ROOT, 'deploy', 'base', 'prometheusrule.yaml');

/** Series the operations docs and alerts rely on, per target. */
const AGENT_SERIES = ['nodewarden_agent_events_published_total', 'nodewarden_agent_events_dropped_total', 'nodewarden_agent_spool_depth'];
const ENGINE_SERIES = [
  'nodewarden_engine_events_processed_total',
  'nodewarden_engine_events_consumed_total',
  'nodewarden_engine_events_invalid_total',
  'nodewarden_engine_consumer_lag',
  'nodewarden_actions_total',
  'nodewarden_guard_denials_total',
  'nodewarden_circuit_state',
  'nodewarden_unavailable_nodes',
  'nodewarden_job_runs_total',
];

interface PromtoolResult {
  status: number | null;
  problems: string[];
}

/** `promtool check metrics` on an exposition body (stdin). Exit 1 = unparsable, 3 = lint problems. */
function promtoolCheckMetrics(body: string): PromtoolResult {
  const bin = resolveBinary('NODEWARDEN_PROMTOOL', 'promtool', 'Install it with scripts/provision/prometheus.sh (Debian: apt-get install -y prometheus).');
  const r = spawnSync(bin, ['check', 'metrics'], { input: body, encoding: 'utf8', timeout: 30_000 });
  const problems = `${r.stdout}\n${r.stderr}`
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return { status: r.status, problems };
}

/** prom-client default metrics that are gauges named `*_total` (upstream: prometheus/client_js#283). */
const UPSTREAM_WARNING = /^\S*nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;

/** Splits promtool's output into errors (fail) and known upstream warnings (listed). */
function classifyPromtool(r: PromtoolResult): { warnings: string[]; problems: string[] } {
  if (r.status !== 0 && r.status !== 3) return { warnings: [], problems: [`promtool exit ${String(r.status)}: ${r.problems.join('; ') || 'no output'}`] };
  const warnings = r.problems.filter((p) => UPSTREAM_WARNING.test(p));
  const problems = r.problems.filter((p) => !UPSTREAM_WARNING.test(p));
  if (r.status === 3 && problems.length === 0 && warnings.length === 0) problems.push('promtool exit 3 without a problem listed');
  return { warnings, problems };
}

/** Every `nodewarden_*` metric name an alert expression uses. */
function alertRuleMetricNames(): Map<string, string[]> {
  const doc = parseYaml(readFileSync(PROMETHEUS_RULE, 'utf8')) as { spec: { groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }> } };
  const names = new Map<string, string[]>();
  for (const g of doc.spec.groups)
    for (const r of g.rules)
      for (const m of String(r.expr).matchAll(/\bnodewarden_[a-zA-Z0-9_]+/g)) {
        const list = names.get(m[0]) ?? [];
        list.push(r.alert ?? r.record ?? '?');
        names.set(m[0], list);
      }
  return names;
}

interface AgentProc {
  url: string;
  proc: ChildProcess;
  logFile: string;
  exited: Promise<number | null>;
}

async function startAgent(o: { brokers: string[]; signalsTopic: string; hostRoot: string; node: string }): Promise<AgentProc> {
  const dir = mkdtempSync(join(tmpdir(), 'nw-agent-'));
  const port = await freePort();
  const configFile = join(dir, 'agent.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      kafka: { brokers: o.brokers, clientId: 'nw-test-agent', topics: { signals: o.signalsTopic } },
      // a one-event spool: a burst of kernel-log records overflows it, so drops are real and counted
      agent: { http: { host: '127.0.0.1', port }, spool: { maxEvents: 1 }, publish: { batchSize: 1, lingerMs: 100 }, dcgmUrl: `http://127.0.0.1:${await freePort()}/metrics` },
    }),
  );
  const logFile = join(dir, 'agent.log');
  const log = createWriteStream(logFile);
  const proc = spawn(process.execPath, [BIN, 'agent', '--config', configFile, '--host-root', o.hostRoot, '--node', o.node], {
    cwd: ROOT,
    // no Kubernetes here: no kubeconfig to find
    env: { ...process.env, HOME: dir, KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '', NODEWARDEN_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout?.pipe(log, { end: false });
  proc.stderr?.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    `agent /metrics on ${url}`,
    async () => {
      if (gone) throw new Error(`agent exited early:\n${readFileSync(logFile, 'utf8').slice(-4000)}`);
      try {
        return (await fetch(`${url}/metrics`)).ok;
      } catch {
        return false;
      }
    },
    60_000,
    200,
  );
  return { url, proc, logFile, exited };
}

describe('Prometheus scrapes the real agent and engine', function () {
  this.timeout(240_000);
  let prom: PrometheusServer | undefined;
  let engine: EngineProc | undefined;
  let agent: AgentProc | undefined;

  after(async () => {
    await prom?.stop();
    if (agent && agent.proc.exitCode === null) {
      agent.proc.kill('SIGTERM');
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([agent.exited, new Promise((r) => (grace = setTimeout(r, 15_000)))]);
      clearTimeout(grace);
      if (agent.proc.exitCode === null) agent.proc.kill('SIGKILL');
    }
    await engine?.kill('SIGTERM');
  });

  it('both targets are up, the documented series exist, alert rules use real names, and promtool accepts both bodies', async () => {
    const [kafka, redis] = await Promise.all([sharedKafka(), sharedRedis()]);
    const topics = uniqueTopics('prom');
    await kafka.createTopics([topics.signals, topics.deadLetter, topics.ledger], 2);

    engine = await startEngine({ brokers: kafka.brokers, redisUrl: redis.url, keyPrefix: `prom-${process.pid}-${Date.now().toString(36)}:`, groupId: `prom-${process.pid}-${Date.now()}`, topics }, ['--store', 'redis']);

    const hostRoot = mkdtempSync(join(tmpdir(), 'nw-hostroot-'));
    cpSync(HOSTROOT_FIXTURE, hostRoot, { recursive: true });
    agent = await startAgent({ brokers: kafka.brokers, signalsTopic: topics.signals, hostRoot, node: 'gpu-node-000' });

    prom = await startPrometheus([
      { job: 'nodewarden-agent', url: `${agent.url}/metrics` },
      { job: 'nodewarden-engine', url: `${engine.url}/metrics` },
    ]);
    await prom.waitForTarget('nodewarden-agent', 60_000);
    await prom.waitForTarget('nodewarden-engine', 60_000);

    // Traffic that makes the labelled series exist. The engine: Xid 79 on 8 nodes of one pool
    // (fleet-100 has 3 of 100 unavailable and a 5 % budget: 2 cordons, then maxUnavailable
    // denials), plus one malformed message for the dead-letter path.
    const nodes = Array.from({ length: 8 }, (_, i) => `gpu-node-${String(20 + i * 3).padStart(3, '0')}`);
    await produce(kafka.brokers, topics.signals, [...nodes.map((n) => ({ key: n, value: xid(n, 79) })), { key: 'bad', value: '{"v":1,"not":"an envelope"' }]);
    // The agent: a burst of kernel-log Xid records (it tails the file from the end) overflows its one-event spool.
    const lines: string[] = [];
    for (let i = 0; i < 40; i++) lines.push(`4,${5000 + i},${6781741600000 + i * 1000},-;NVRM: Xid (PCI:0000:91:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.`);
    appendFileSync(join(hostRoot, 'dev', 'kmsg'), lines.join('\n') + '\n');

    const p = prom;
    const failures: string[] = [];
    const seen = async (expr: string, timeoutMs = 60_000): Promise<number> => {
      try {
        return await waitFor(
          expr,
          async () => {
            const v = await p.queryVector(expr);
            return v.length > 0 ? v.length : undefined;
          },
          timeoutMs,
          500,
        );
      } catch {
        failures.push(expr);
        return 0;
      }
    };
    expect(await p.queryVector('up{job="nodewarden-agent"} == 1')).to.have.length(1);
    expect(await p.queryVector('up{job="nodewarden-engine"} == 1')).to.have.length(1);
    for (const name of AGENT_SERIES) await seen(`${name}{job="nodewarden-agent"}`);
    for (const name of ENGINE_SERIES) await seen(`${name}{job="nodewarden-engine"}`);
    // the traffic above really moved them
    await seen('nodewarden_agent_events_published_total{job="nodewarden-agent"} > 0');
    await seen('nodewarden_agent_events_dropped_total{job="nodewarden-agent",reason="spool_full"} > 0');
    await seen('nodewarden_engine_events_processed_total{job="nodewarden-engine"} >= 8');
    await seen('nodewarden_engine_events_invalid_total{job="nodewarden-engine"} >= 1');
    await seen('nodewarden_actions_total{job="nodewarden-engine",action="cordon",outcome="executed"} >= 2');
    await seen('nodewarden_guard_denials_total{job="nodewarden-engine",guard="maxUnavailable"} >= 1');
    await seen('nodewarden_circuit_state{job="nodewarden-engine",action="cordon"} == 0');
    expect(failures, `series missing in Prometheus:\n  ${failures.join('\n  ')}\nengine log tail:\n${engineLog(engine).slice(-3000)}\nagent log tail:\n${readFileSync(agent.logFile, 'utf8').slice(-3000)}`).to.deep.equal([]);

    // Every nodewarden_* name in the shipped alert rules must be a series Prometheus has.
    const scraped = new Set((await p.queryVector('group by (__name__) ({__name__=~"nodewarden_.+"})')).map((x) => x.metric['__name__'] ?? ''));
    const missing: string[] = [];
    for (const [name, alerts] of alertRuleMetricNames()) {
      const present = scraped.has(name) || scraped.has(`${name}_bucket`) || scraped.has(`${name}_count`);
      if (!present) missing.push(`${name} (used by ${alerts.join(', ')}) is not exported by the agent or the engine`);
    }
    expect(missing, `alert rules reference metric names the code does not export:\n  ${missing.join('\n  ')}`).to.deep.equal([]);

    // Naming conventions: promtool lints each body. Unparsable output and any problem with a
    // name nodewarden defines fail the test; the known upstream problem of prom-client's
    // default metrics (gauges named *_total, prometheus/client_js#283) is listed as a warning.
    const errors: string[] = [];
    for (const [target, url] of [
      ['agent', `${agent.url}/metrics`],
      ['engine', `${engine.url}/metrics`],
    ] as const) {
      const body = await (await fetch(url)).text();
      const r = promtoolCheckMetrics(body);
      const { warnings, problems } = classifyPromtool(r);
      for (const w of warnings) process.stdout.write(`      promtool warning (${target}): ${w}\n`);
      errors.push(...problems.map((x) => `${target}: ${x}`));
    }
    expect(errors, `promtool check metrics:\n  ${errors.join('\n  ')}`).to.deep.equal([]);
  });
});
