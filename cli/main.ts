/**
 * `nodewarden <command>`: a thin dispatcher. Each command lives in its own
 * module, loaded lazily so `nodewarden agent` never loads the engine.
 */
import { PoisonInputError, NodewardenError } from '../core/errors.js';
import { escapeControl } from '../core/text.js';

type CommandModule = { run(argv: string[]): Promise<number> };

const COMMANDS: Record<string, { load: () => Promise<CommandModule>; summary: string }> = {
  agent: { load: () => import('./commands/agent.js'), summary: 'run the node agent (or --once: print one round of events as JSONL)' },
  engine: { load: () => import('./commands/engine.js'), summary: 'run the rules engine service' },
  replay: { load: () => import('./commands/replay.js'), summary: 'run the real engine over recorded events in virtual time' },
  rules: { load: () => import('./commands/rules.js'), summary: 'rules check PATH | rules test FILE...' },
  demo: { load: () => import('./commands/demo.js'), summary: 'the whole system in one process on embedded defaults' },
  ctl: { load: () => import('./commands/ctl.js'), summary: 'operate a running engine through its control API' },
};

export function usage(): string {
  const lines = Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(8)} ${v.summary}`);
  return `usage: nodewarden <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'nodewarden <command> --help' for a command's options.\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(usage());
    return cmd ? 0 : 2;
  }
  const entry = COMMANDS[cmd];
  if (!entry) {
    process.stderr.write(`nodewarden: unknown command "${cmd}"\n\n${usage()}`);
    return 2;
  }
  try {
    const mod = await entry.load();
    return await mod.run(rest);
  } catch (err) {
    // One line on stderr, never a stack trace (NODEWARDEN_DEBUG=1 adds it for developers).
    const bad = err instanceof PoisonInputError || (err instanceof NodewardenError && !err.retriable);
    process.stderr.write(`nodewarden ${cmd}: ${oneLineError(err)}\n`);
    if (process.env.NODEWARDEN_DEBUG === '1' && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return bad ? 2 : 1;
  }
}

/** An error as one printable line: control characters escaped, newlines folded. */
export function oneLineError(err: unknown): string {
  let msg = (err instanceof Error ? err.message || err.name : String(err)).replace(/\s*\r?\n\s*/g, ' ').trim();
  // PoisonInputErrors raised by a command name it ("nodewarden ctl: /: ..."): main already does.
  msg = msg.replace(/^nodewarden [a-z]+(?: --once)?: (?:\/: )?/, '');
  return escapeControl(msg.length > 2000 ? `${msg.slice(0, 2000)}… (truncated)` : msg);
}
