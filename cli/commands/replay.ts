/**
 * `nodewarden replay [--rules PATH] [--cluster FILE] [--config FILE]
 *  [--disable RULE]... [--dry-run] [--until TS] EVENTS.jsonl`
 *
 * Runs the real engine over recorded events in virtual time and prints one
 * ledger record per line on stdout. Invalid lines are reported on stderr with
 * their line number and skipped. Output is byte-identical across runs.
 */
import { accessSync, constants, createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { loadConfig } from '../../adapters/config-file.js';
import type { EventEnvelope } from '../../core/envelope.js';
import { decodeEnvelope } from '../../core/envelope.js';
import { PoisonInputError, errorMessage } from '../../core/errors.js';
import { escapeControl } from '../../core/text.js';
import { parseFlags } from '../args.js';
import { defaultRulesPath, loadRules } from '../../rules/language/load.js';
import { ManualClock } from '../../core/clock.js';
import { silentLogger } from '../../core/logger.js';
import { replay } from '../../rules/replay/replay.js';
import { createReplayRemediation } from '../../remediations/index.js';
import { createSimulatedCluster, loadClusterFile } from '../../remediations/simulated/index.js';

const HELP = `usage: nodewarden replay [--rules PATH] [--cluster FILE] [--config FILE] [--disable RULE]... [--dry-run] [--until TS] EVENTS.jsonl

  --rules PATH     rule file or directory (default: the shipped pack)
  --cluster FILE   kubectl get nodes,daemonsets,deployments,controllerrevisions,replicasets -A -o yaml
  --config FILE    nodewarden config (default: shipped defaults)
  --disable RULE   switch a rule off for this run (repeatable)
  --dry-run        record decisions as dry-run instead of executing them on the simulated cluster
  --until TS       keep virtual time running to this RFC 3339 time after the last event
`;

/** Reads JSONL events; bad lines go to `onBad` with their 1-based line number. */
export async function* readEventsFile(path: string, onBad: (line: number, message: string) => void): AsyncGenerator<EventEnvelope> {
  const rl = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  for await (const line of rl) {
    n++;
    if (line.trim() === '') continue;
    try {
      yield decodeEnvelope(line);
    } catch (err) {
      onBad(n, err instanceof Error ? err.message : String(err));
    }
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('replay', argv, {
    rules: { type: 'string' },
    cluster: { type: 'string' },
    config: { type: 'string' },
    disable: { type: 'string', multiple: true },
    'dry-run': { type: 'boolean' },
    until: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    process.stderr.write(`nodewarden replay: exactly one EVENTS.jsonl file is required\n\n${HELP}`);
    return 2;
  }
  const file = positionals[0] as string;
  try {
    accessSync(file, constants.R_OK);
  } catch (err) {
    throw new PoisonInputError('REQUEST_INVALID', file, [{ path: '/', message: `cannot read: ${errorMessage(err)}` }], err);
  }
  const config = loadConfig({ file: values.config });
  const rules = loadRules(values.rules ?? config.engine.rulesPath ?? defaultRulesPath());
  for (const id of values.disable ?? [])
    if (!rules.byId.has(id)) throw new PoisonInputError('REQUEST_INVALID', 'nodewarden replay', [{ path: '--disable', message: `unknown rule "${id}"` }]);
  let until: number | undefined;
  if (values.until !== undefined) {
    until = Date.parse(values.until);
    if (Number.isNaN(until)) throw new PoisonInputError('REQUEST_INVALID', 'nodewarden replay', [{ path: '--until', message: 'must be an RFC 3339 time' }]);
  }
  // The real simulated cluster and guarded remediator (remediations/): actions change the
  // simulated cluster, so guards see their own effects. Virtual time is shared by all.
  const clock = new ManualClock(0);
  const cluster = createSimulatedCluster(values.cluster ? await loadClusterFile(values.cluster) : [], { clock, logger: silentLogger });
  const { remediator } = createReplayRemediation({ cluster, config, clock, dryRun: values['dry-run'] === true || config.guard.dryRun, catalogue: rules.xidCatalogue });
  let bad = 0;
  let duplicates = 0;
  const events = readEventsFile(file, (line, message) => {
    bad++;
    // A bad line may carry anything: never echo its raw control bytes to a terminal.
    process.stderr.write(`${file}:${line}: skipped invalid event: ${escapeControl(message.length > 500 ? `${message.slice(0, 500)}… (truncated)` : message)}\n`);
  });
  const out: string[] = [];
  const flushOut = (): void => {
    if (out.length) process.stdout.write(out.join(''));
    out.length = 0;
  };
  for await (const rec of replay({
    events,
    rules,
    cluster,
    remediator,
    config,
    clock,
    finish: async () => (await remediator.flush()).records,
    tickRemediator: config.repair.enabled,
    disabled: values.disable ?? [],
    onRejected: (e, reason, kind) => {
      if (kind === 'duplicate') duplicates++;
      else {
        bad++;
        process.stderr.write(`${file}: skipped event ${escapeControl(JSON.stringify(e.id))} (node ${escapeControl(JSON.stringify(e.node))}): ${escapeControl(reason)}\n`);
      }
    },
    ...(until !== undefined ? { until } : {}),
  })) {
    out.push(`${JSON.stringify(rec)}\n`);
    if (out.length >= 256) flushOut();
  }
  flushOut();
  if (bad > 0) process.stderr.write(`nodewarden replay: ${bad} invalid line(s) skipped\n`);
  if (duplicates > 0) process.stderr.write(`nodewarden replay: ${duplicates} event(s) with an already seen id skipped\n`);
  return 0;
}
