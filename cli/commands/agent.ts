/**
 * `nodewarden agent`: the node agent (live, publishing to Kafka) or, with
 * `--once`, one round of every collector over a host root printed as
 * envelope-v1 JSONL on stdout (notes on stderr; no Kafka, no cluster).
 */
import { parseFlags } from '../args.js';
import { loadConfig } from '../../adapters/config-file.js';
import { parseEnvelope } from '../../core/envelope.js';
import { PoisonInputError } from '../../core/errors.js';
import { createJsonLogger as createLogger } from '../../agent/json-logger.js';

const USAGE = `usage: nodewarden agent [options]

Runs the node agent: collectors watch node signals and publish envelope-v1
events to Kafka (topic kafka.topics.signals, key = node name).

options:
  --config FILE       config file (YAML or JSON); defaults are built in
  --host-root DIR     read host paths under DIR (default /; /host in the DaemonSet)
  --node NAME         node name (default $NODE_NAME, else the hostname)
  --dcgm-url URL      dcgm-exporter metrics URL (default http://127.0.0.1:9400/metrics)
  --once              run every collector once over DIR, print events as JSONL, exit
  --output jsonl      output format for --once (only jsonl)
  --label k=v         node label for --once (pool=..., zone=..., or the configured
                      label keys); repeatable. Live, labels come from the Node object.
  -h, --help          this text
`;

const OPTIONS = {
  config: { type: 'string' },
  'host-root': { type: 'string' },
  node: { type: 'string' },
  'dcgm-url': { type: 'string' },
  once: { type: 'boolean' },
  output: { type: 'string' },
  label: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('agent', argv, OPTIONS, false);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new PoisonInputError('REQUEST_INVALID', 'nodewarden agent', [{ path: '', message: `unexpected argument "${positionals[0] ?? ''}"` }]);
  if (values.output !== undefined && values.output !== 'jsonl')
    throw new PoisonInputError('REQUEST_INVALID', 'nodewarden agent', [{ path: '--output', message: `unsupported output "${values.output}" (only jsonl)` }]);
  const config = loadConfig({
    file: values.config,
    env: process.env,
    flags: { 'agent.hostRoot': values['host-root'], 'agent.node': values.node, 'agent.dcgmUrl': values['dcgm-url'] },
  });
  const labelFlags = values.label ?? [];

  if (values.once) {
    // --once: logs only at warn and above, so stderr carries the notes, not chatter.
    const logger = createLogger({ component: 'agent', level: process.env.NODEWARDEN_LOG_LEVEL ? undefined : 'warn' });
    const { runOnce } = await import('../../agent/agent.js');
    const { events, notes } = await runOnce({ config, logger, labelFlags });
    const out: string[] = [];
    for (const e of events) out.push(JSON.stringify(parseEnvelope(e, 'agent --once')));
    if (out.length > 0) process.stdout.write(out.join('\n') + '\n');
    for (const n of notes) process.stderr.write(`nodewarden agent --once: ${n}\n`);
    return 0;
  }

  const logger = createLogger({ component: 'agent' });
  const { startAgent } = await import('../../agent/agent.js');
  const agent = await startAgent({ config, logger, labelFlags });
  return new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        logger.warn({ signal: sig }, 'second signal: exiting without flushing');
        process.exit(130);
      }
      logger.info({ signal: sig }, 'stopping agent');
      agent
        .stop()
        .then(() => resolve(0))
        .catch(() => resolve(1));
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
