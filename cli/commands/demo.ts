/**
 * `nodewarden demo` (what `npm start` runs): the whole system in one process
 * on embedded defaults — no Kafka, Redis, cluster or network. Virtual time
 * runs `--speed` times faster than the wall clock; the simulated fleet's
 * faults arrive at the Llama 3 published rates times `--amplify`; a scripted
 * storyline (a driver rollout, then an Xid storm) shows the guards within the
 * first minute. The engine's HTTP endpoint (/metrics, /healthz, /readyz and
 * the control API, with a token generated and printed at start) listens on
 * 127.0.0.1. The local host's real conntrack table joins as one more node.
 */
import type { NodewardenConfig } from '../../core/config.js';
import { randomBytes, randomInt } from 'node:crypto';
import { hostname } from 'node:os';
import { parseFlags } from '../args.js';
import { loadConfig } from '../../adapters/config-file.js';
import { parseDuration } from '../../core/duration.js';
import type { EventEnvelope } from '../../core/envelope.js';
import { errorMessage, NodewardenError, PoisonInputError } from '../../core/errors.js';
import { createLogger } from '../../adapters/logger.js';
import type { LogLevel } from '../../core/logger.js';
import { createRegistry } from '../../adapters/metrics.js';
import type { LedgerRecord } from '../../core/decision.js';
import { defaultRulesPath, loadRules } from '../../rules/language/load.js';
import { createPagersFromConfig } from '../../remediations/pager/from-config.js';
import type { Pager } from '../../remediations/pager/pager.js';
import { EngineHttpServer } from '../../control/server.js';
import { pagingRoutes } from '../../control/paging-routes.js';
import { parseTokens } from '../../control/tokens.js';
import { createCollectorContext } from '../../agent/agent.js';
import { createRegistry as createAgentRegistry } from '../../agent/metrics.js';
import { createConntrackCollector } from '../../agent/collectors/conntrack.js';
import type { Collector } from '../../agent/collector.js';
import { createDemoSystem, defaultStoryline } from '../../demo/system.js';
import type { DemoNote } from '../../demo/system.js';
import { finalSummary, noteLine, recordLine, renderFrame, statusLine, summaryJson } from '../../demo/render.js';

const USAGE = `usage: nodewarden demo [options]

The whole system in one process: a simulated 200-node GPU fleet, the real rule
engine on the shipped rule pack, the real guard and remediator against a
simulated cluster, recording pagers. No Kafka, Redis, cluster or network.

  --speed N        virtual seconds per wall second (default 60: 1 s = 1 simulated minute)
  --amplify N      multiply the Llama 3 fault rates (default 400: a fault every few seconds at ×60)
  --seed N         random seed; the same seed replays the same faults (default: random, printed)
  --duration D     stop after D of wall time, e.g. 40s (default: until Ctrl-C)
  --port N         HTTP port on 127.0.0.1 for the console (/), /metrics, /healthz, /readyz, control API (default 9102; 0 = any)
  --no-tui         plain line output (also when stdout is not a terminal)
  --no-storyline   background faults only (no scripted rollout and storm)
  --no-local       do not read this host's conntrack table
  --dry-run        shadow mode: decide and record, never act
  --config FILE    nodewarden config (default: the shipped defaults)
  --real-pagers    deliver pages through the PagerDuty/Slack pagers of --config (off: pages are only recorded)
`;

/** Placeholder Job templates: the demo's simulated cluster runs them for 2 minutes of virtual time and reports success. */
function demoRepair(r: NodewardenConfig['repair']): NodewardenConfig['repair'] {
  const job = (name: string, command: string[]): Record<string, unknown> => ({ apiVersion: 'batch/v1', kind: 'Job', spec: { template: { spec: { containers: [{ name, image: 'demo.invalid/simulated:1', command }] } } } });
  return {
    ...r,
    enabled: true,
    quietPeriod: '10m',
    reset: { ...r.reset, template: job('reset', ['nvidia-smi', '--gpu-reset', '-i', '{{gpu}}']) },
    reboot: { ...r.reboot, template: job('reboot', ['systemctl', 'reboot']) },
    validate: { ...r.validate, template: job('validate', ['dcgmi', 'diag', '-r', '2']) },
  };
}

const OPTIONS = {
  speed: { type: 'string' },
  amplify: { type: 'string' },
  seed: { type: 'string' },
  duration: { type: 'string' },
  port: { type: 'string' },
  'no-tui': { type: 'boolean' },
  'no-storyline': { type: 'boolean' },
  'no-local': { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  config: { type: 'string' },
  'real-pagers': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function bad(message: string): PoisonInputError {
  return new PoisonInputError('REQUEST_INVALID', 'nodewarden demo', [{ path: '', message }]);
}

function numberFlag(name: string, v: string | undefined, dflt: number, min: number, max: number, integer = false): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) throw bad(`--${name} must be ${integer ? 'an integer' : 'a number'} between ${min} and ${max}, got "${v}"`);
  return n;
}

const PAGER_ENV = ['NODEWARDEN_SLACK_WEBHOOK_URL', 'NODEWARDEN_PAGERDUTY_ROUTING_KEY', 'PAGERDUTY_ROUTING_KEY', 'SLACK_WEBHOOK_URL'];

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags('demo', argv, OPTIONS, false);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const speed = numberFlag('speed', values.speed, 60, 0.1, 100_000);
  const amplify = numberFlag('amplify', values.amplify, 400, 0, 1_000_000);
  const seed = numberFlag('seed', values.seed, randomInt(1, 1_000_000), 0, 2 ** 32 - 1, true);
  let durationMs: number | null = null;
  if (values.duration !== undefined) {
    try {
      durationMs = parseDuration(values.duration);
    } catch {
      throw bad(`--duration must be a duration like 40s or 10m, got "${values.duration}"`);
    }
  }
  let port: number | undefined;
  if (values.port !== undefined) port = numberFlag('port', values.port, 9102, 0, 65535, true);
  const loaded = loadConfig({ file: values.config, env: process.env, flags: { 'guard.dryRun': values['dry-run'] ? true : undefined, 'engine.http.port': port } });
  // the demo shows the repair ladder with simulated Jobs unless the config sets it up itself
  const config = loaded.repair.enabled || values.config !== undefined ? loaded : { ...loaded, repair: demoRepair(loaded.repair) };
  const rules = loadRules(config.engine.rulesPath ?? defaultRulesPath());
  const tui = process.stdout.isTTY === true && values['no-tui'] !== true;
  const color = process.stdout.isTTY === true;
  const logger = createLogger({ component: 'demo', level: (process.env.NODEWARDEN_LOG_LEVEL as LogLevel | undefined) ?? (tui ? 'silent' : 'error') });
  const registry = createRegistry('engine', { defaultMetrics: true });
  const out = (s: string): void => void process.stdout.write(`${s}\n`);

  // Pages are recorded, never sent, unless asked for: a demo must not wake anyone up.
  let pagers: Pager[] = [];
  const pagerNote = (() => {
    if (values['real-pagers']) {
      pagers = createPagersFromConfig(config, logger);
      return pagers.length ? `pages are DELIVERED via ${pagers.map((p) => p.name).join(', ')} (--real-pagers)` : '--real-pagers given but the config has no pager: pages are only recorded';
    }
    const set = PAGER_ENV.filter((e) => process.env[e]);
    if (set.length || config.pager.pagerduty || config.pager.slack) return `pager settings found (${[...set, config.pager.pagerduty ? 'pager.pagerduty' : '', config.pager.slack ? 'pager.slack' : ''].filter(Boolean).join(', ')}) but not used: pages are only recorded (pass --real-pagers to deliver)`;
    return 'pages are recorded in memory, nothing is sent';
  })();

  const startWall = Date.now();
  const start = Math.floor(startWall / 1000) * 1000;
  const notesOut: DemoNote[] = [];
  const recordsOut: LedgerRecord[] = [];
  const system = createDemoSystem({
    config,
    rules,
    seed,
    amplification: amplify,
    start,
    storyline: values['no-storyline'] ? false : defaultStoryline(speed),
    registry,
    logger,
    pagers,
    dryRun: config.guard.dryRun,
    // denials within ~3 s of wall time become one page
    denialWindowMs: Math.max(30_000, Math.round(3000 * speed)),
    onRecord: (r) => {
      if (!tui) recordsOut.push(r);
    },
    onNote: (n) => {
      if (!tui) notesOut.push(n);
    },
  });

  // --- HTTP: metrics, health, and the control API with a token made for this run
  const token = randomBytes(24).toString('hex');
  let running = true;
  const http = new EngineHttpServer({
    host: '127.0.0.1',
    port: config.engine.http.port,
    registry,
    readiness: () => Promise.resolve({ ready: running, checks: { demo: running ? { ok: true } : { ok: false, detail: 'stopping' } } }),
    control: { backend: system.control, tokens: parseTokens(`${token} admin demo-admin\n`, 'demo token') },
    extraRoutes: pagingRoutes({ ...(system.remediation.incidents ? { incidents: system.remediation.incidents } : {}), silences: system.remediation.silences, approvals: system.remediation.approvals }),
    clock: system.clock,
    logger,
  });
  let addr: { host: string; port: number };
  try {
    addr = await http.listen();
  } catch (err) {
    await system.close();
    throw new NodewardenError('UNAVAILABLE', `cannot listen on 127.0.0.1:${config.engine.http.port}: ${errorMessage(err)} (try --port 0)`, { cause: err });
  }
  const base = `http://127.0.0.1:${addr.port}`;
  const metricsUrl = `${base}/metrics`;
  // The console's URL comes first: a newcomer opens it and watches the storyline there (docs/console.md).
  const consoleUrl = `${base}/`;
  out(`nodewarden console: ${consoleUrl}  (open it in a browser; sign in with the control API token printed below)`);

  // --- the local host's real conntrack table, as one more node on the same bus
  const localName = hostname();
  let localText = 'not read (--no-local)';
  let collector: Collector | undefined;
  if (!values['no-local']) {
    const ctx = createCollectorContext({ node: localName, labels: { pool: 'local', zone: 'local' }, hostRoot: '/', clock: system.clock, logger, registry: createAgentRegistry('agent') });
    const c = createConntrackCollector(ctx, { intervalMs: 1000 });
    const once = await c.collectOnce().catch((err: unknown) => ({ events: [] as EventEnvelope[], skipped: errorMessage(err) }));
    if (once.events.length === 0) {
      localText = `skipped: ${once.skipped ?? 'no conntrack data'}`;
    } else {
      collector = c;
      const describe = (e: EventEnvelope): void => {
        const d = e.data as { count?: number | null; max?: number | null; counters?: Record<string, number> };
        localText = `${localName}: conntrack ${d.count ?? '?'}/${d.max ?? '?'} entries, insert_failed ${d.counters?.insert_failed ?? 0}, drop ${d.counters?.drop ?? 0} (real, every 1 s)`;
      };
      const first = once.events[0];
      if (first) describe(first);
      await c.start((es) => {
        system.publish(es);
        const last = es[es.length - 1];
        if (last) describe(last);
      });
    }
  }

  const header = [
    `nodewarden demo: ${system.nodes.length} simulated GPU nodes in 4 pools, ${rules.rules.length} rules from ${config.engine.rulesPath === null ? 'the shipped pack' : [config.engine.rulesPath].flat().join(', ')}, seed ${seed} (rerun: --seed ${seed})`,
    `  virtual time ×${speed} (1 s of wall time = ${speed >= 60 ? `${Math.round((speed / 60) * 10) / 10} simulated min` : `${speed} simulated s`}), Llama 3 fault rates ×${amplify}${config.guard.dryRun ? ', DRY-RUN' : ''}`,
    `  metrics:  ${metricsUrl}   health: ${base}/healthz   ready: ${base}/readyz`,
    `  control API token (admin, this run only): ${token}`,
    `  try:      NODEWARDEN_TOKEN=${token} ./bin/nodewarden ctl --server ${base} rules list`,
    `  ${pagerNote}`,
    `  local host: ${localText}`,
  ];
  if (tui) process.stdout.write(`${'\x1b[?1049h'}\x1b[?25l`);
  else for (const l of header) out(l);

  // --- the wall-clock loop: virtual time = start + wall elapsed × speed
  let stopReason = '';
  let stopResolve: (() => void) | undefined;
  const stopped = new Promise<void>((resolve) => (stopResolve = resolve));
  const stop = (why: string): void => {
    if (stopReason) return;
    stopReason = why;
    stopResolve?.();
  };
  const onSignal = (sig: NodeJS.Signals): void => stop(sig);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let lastFrame = 0;
  let lastStatus = 0;
  let rateEvents = 0;
  let rateAt = startWall;
  let eventsPerSec = 0;
  const maxCatchUpMs = 2000 * speed;
  const render = async (force: boolean): Promise<void> => {
    const now = Date.now();
    const stats = system.stats();
    if (now - rateAt >= 1000) {
      eventsPerSec = ((stats.events - rateEvents) * 1000) / (now - rateAt);
      rateEvents = stats.events;
      rateAt = now;
    }
    if (!tui) {
      for (const n of notesOut.splice(0)) out(noteLine(n, start, color));
      for (const r of recordsOut.splice(0)) out(`ledger ${recordLine(r, start, color)}`);
      if (force || now - lastStatus >= 5000) {
        lastStatus = now;
        out(statusLine(stats, await system.guardStatus(), eventsPerSec));
      }
      return;
    }
    if (!force && now - lastFrame < 1000) return;
    lastFrame = now;
    const frame = renderFrame({
      stats,
      guard: await system.guardStatus(),
      speed,
      amplify,
      seed,
      wallMs: now - startWall,
      eventsPerSec,
      lagMs: Math.max(0, start + (now - startWall) * speed - stats.now),
      metricsUrl,
      consoleUrl,
      token,
      local: localText,
      width: process.stdout.columns ?? 120,
    });
    process.stdout.write(`\x1b[H\x1b[2J${frame}\n`);
  };

  let failure: unknown;
  const loop = (async () => {
    while (!stopReason) {
      const wall = Date.now();
      if (durationMs !== null && wall - startWall >= durationMs) {
        stop('duration');
        break;
      }
      const target = start + (wall - startWall) * speed;
      const from = system.stats().now;
      await system.advance(Math.min(target, from + maxCatchUpMs));
      await render(false);
      await Promise.race([new Promise((r) => setTimeout(r, 100)), stopped]);
    }
  })().catch((err: unknown) => {
    failure = err;
    stop('error');
  });

  await stopped;
  await loop;
  running = false;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  await collector?.stop();
  await system.flush();
  await render(true).catch(() => undefined);
  await system.close();
  await http.close();
  if (tui) process.stdout.write('\x1b[?25h\x1b[?1049l');
  const stats = system.stats();
  const extra = { seed, speed, amplify, wallMs: Date.now() - startWall, localHost: localText };
  if (tui) for (const l of header) out(l);
  out('');
  out(finalSummary(stats, extra, color));
  out(summaryJson(stats, extra));
  if (failure !== undefined) {
    process.stderr.write(`nodewarden demo: stopped by an error: ${errorMessage(failure).split('\n')[0] ?? ''}\n`);
    if (process.env.NODEWARDEN_DEBUG === '1' && failure instanceof Error && failure.stack) process.stderr.write(`${failure.stack}\n`);
    return 1;
  }
  return 0;
}
