/**
 * `nodewarden ctl`: operate a running engine through its control API.
 *
 *   ctl rules list
 *   ctl rules disable <id> --reason TEXT [--ttl 1h]
 *   ctl rules enable <id> --reason TEXT [--ttl 1h]
 *   ctl pause --reason TEXT
 *   ctl resume
 *   ctl guard
 *   ctl ledger [--since 1h] [--until T] [--rule X] [--node N] [--outcome denied] [--limit 50]
 *   ctl approvals | ctl approve <id> | ctl deny <id>
 *   ctl silence add --matcher pool=h100-train [--matcher …] --ttl 2h --reason TEXT
 *   ctl silence list | ctl silence expire <id>
 *   ctl incidents
 *   ctl outcomes [--since 24h] [--rule X]
 *
 * Global: --server URL (env NODEWARDEN_SERVER, default http://127.0.0.1:9102),
 * --token-file FILE (env NODEWARDEN_TOKEN_FILE) or env NODEWARDEN_TOKEN, -o table|json|yaml.
 */
import { readFileSync } from 'node:fs';
import { parseFlags } from '../args.js';
import { PoisonInputError } from '../../core/errors.js';
import { ControlClient, ControlClientError, DEFAULT_SERVER } from '../../control/client.js';
import type { LedgerParams } from '../../control/client.js';
import type { OutputFormat } from '../../control/render.js';
import { renderGuard, renderLedger, renderOutcomes, renderRules, structured } from '../../control/render.js';
import { MAX_LEDGER_LIMIT } from '../../control/api.js';
import type { LedgerRecord } from '../../core/decision.js';
import { outcomeFigures } from '../../remediations/ladder/outcomes.js';

const USAGE = `usage: nodewarden ctl [--server URL] [--token-file FILE] [-o table|json|yaml] <command>

commands:
  rules list                                     rules with file, runtime and effective state
  rules disable <id> --reason TEXT [--ttl 1h]    disable a rule at runtime (optionally for a while)
  rules enable <id> --reason TEXT [--ttl 1h]     enable a rule at runtime (optionally for a while)
  pause --reason TEXT                            stop every action (kill switch)
  resume                                         lift the pause
  guard                                          guard budgets right now
  ledger [--since 1h] [--until T] [--rule X] [--node N] [--outcome O] [--limit 50]
  approvals                                      actions waiting for (or decided by) a person
  approve <id> | deny <id>                       decide an approval (id = the decision id in the ledger)
  silence add --matcher M [--matcher M]... --ttl 2h --reason TEXT
                                                 suppress matching pages (never the ledger); M like pool=h100-train, rule=~gpu-.*
  silence list | silence expire <id>             active silences; end one now
  incidents                                      open and recently resolved incidents
  outcomes [--since 24h] [--rule X]              per rule: time to detect / isolate / return to service,
                                                 cordons a person undid before any repair

environment: NODEWARDEN_SERVER, NODEWARDEN_TOKEN, NODEWARDEN_TOKEN_FILE
`;

const OPTIONS = {
  server: { type: 'string' },
  'token-file': { type: 'string' },
  output: { type: 'string', short: 'o' },
  reason: { type: 'string' },
  ttl: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  rule: { type: 'string' },
  node: { type: 'string' },
  outcome: { type: 'string' },
  limit: { type: 'string' },
  matcher: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseFlags<typeof OPTIONS>>['values'];

function bad(message: string): PoisonInputError {
  return new PoisonInputError('REQUEST_INVALID', 'nodewarden ctl', [{ path: '', message }]);
}

/** Flags given that the verb does not take are errors, not silently ignored. */
function only(values: Values, verb: string, allowed: ReadonlyArray<keyof Values>): void {
  const global = ['server', 'token-file', 'output', 'help'];
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined || global.includes(k)) continue;
    if (!(allowed as readonly string[]).includes(k)) throw bad(`--${k} is not an option of "ctl ${verb}"`);
  }
}

function tokenFrom(values: Values, env: NodeJS.ProcessEnv): string | null {
  const file = values['token-file'] ?? env.NODEWARDEN_TOKEN_FILE;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw bad(`cannot read token file ${file}: ${(err as Error).message}`);
    }
    // The file may hold just the token, or a line of the server's tokens file (`token role name`).
    const first = text.split(/\r?\n/).map((l) => l.replace(/#.*$/, '').trim()).find((l) => l.length > 0);
    if (!first) throw bad(`token file ${file} is empty`);
    return first.split(/\s+/)[0] ?? null;
  }
  const t = env.NODEWARDEN_TOKEN?.trim();
  return t ? t : null;
}

export interface CtlIo {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
  now: () => number;
}

export async function run(argv: string[], io: CtlIo = defaultIo()): Promise<number> {
  const { values, positionals } = parseFlags('ctl', argv, OPTIONS);
  if (values.help || positionals.length === 0) {
    io.out(USAGE);
    return values.help ? 0 : 2;
  }
  const output = (values.output ?? 'table') as OutputFormat;
  if (!['table', 'json', 'yaml'].includes(output)) throw bad(`-o must be table, json or yaml, got "${values.output ?? ''}"`);
  const server = values.server ?? io.env.NODEWARDEN_SERVER ?? DEFAULT_SERVER;
  if (!/^https?:\/\//.test(server)) throw bad(`--server must be an http(s) URL, got "${server}"`);
  const client = new ControlClient({ server, token: tokenFrom(values, io.env) });
  const [group, verb, ...rest] = positionals;
  const show = (value: unknown, table: () => string): void => io.out(output === 'table' ? table() : structured(value, output));
  const noMore = (n: number, what: string): void => {
    if (positionals.length > n) throw bad(`unexpected argument "${positionals[n] ?? ''}" after "ctl ${what}"`);
  };

  try {
    switch (group) {
      case 'rules': {
        if (verb === 'list' || verb === undefined) {
          noMore(2, 'rules list');
          only(values, 'rules list', []);
          const res = await client.listRules();
          show(res, () => renderRules(res.rules, io.now()));
          return 0;
        }
        if (verb === 'disable' || verb === 'enable') {
          const id = rest[0];
          if (!id) throw bad(`ctl rules ${verb} needs a rule id`);
          noMore(3, `rules ${verb} ${id}`);
          only(values, `rules ${verb}`, ['reason', 'ttl']);
          if (!values.reason) throw bad(`ctl rules ${verb} needs --reason "why"`);
          const res = await client.setRule(id, verb === 'enable', { reason: values.reason, ...(values.ttl ? { ttl: values.ttl } : {}) });
          show(res, () => {
            const until = res.toggle.expiresAt ? ` until ${new Date(res.toggle.expiresAt).toISOString()}` : '';
            return `rule ${id} ${verb}d${until} (by ${res.toggle.by}: ${res.toggle.reason})\n`;
          });
          return 0;
        }
        throw bad(`unknown command "ctl rules ${verb}" (expected list, disable, enable)`);
      }
      case 'pause': {
        noMore(1, 'pause');
        only(values, 'pause', ['reason']);
        if (!values.reason) throw bad('ctl pause needs --reason "why"');
        const res = await client.pause(values.reason);
        show(res, () => `paused: every action is now denied (by ${res.by}: ${res.reason})\n`);
        return 0;
      }
      case 'resume': {
        noMore(1, 'resume');
        only(values, 'resume', []);
        const res = await client.resume();
        show(res, () => `resumed (by ${res.by})\n`);
        return 0;
      }
      case 'guard': {
        noMore(1, 'guard');
        only(values, 'guard', []);
        const res = await client.guard();
        show(res, () => renderGuard(res, io.now()));
        return 0;
      }
      case 'ledger': {
        noMore(1, 'ledger');
        only(values, 'ledger', ['since', 'until', 'rule', 'node', 'outcome', 'limit']);
        const p: LedgerParams = {};
        for (const k of ['since', 'until', 'rule', 'node', 'outcome'] as const) if (values[k] !== undefined) p[k] = values[k];
        if (values.limit !== undefined) {
          const n = Number(values.limit);
          if (!Number.isInteger(n) || n < 1) throw bad(`--limit must be a positive integer, got "${values.limit}"`);
          p.limit = n;
        }
        const res = await client.ledger(p);
        show(res, () => renderLedger(res.records));
        return 0;
      }
      case 'approvals': {
        noMore(1, 'approvals');
        only(values, 'approvals', []);
        const res = await client.approvals();
        show(res, () => res.approvals.map((a) => `${String(a.id)}  ${String(a.state)}  ${String((a.decision as { action?: string } | undefined)?.action ?? '')} ${String((a.decision as { target?: { name?: string } } | undefined)?.target?.name ?? '')}${typeof a.by === 'string' ? `  by ${a.by}` : ''}\n`).join('') || 'no approvals\n');
        return 0;
      }
      case 'approve':
      case 'deny': {
        const id = verb;
        if (!id) throw bad(`ctl ${group} needs an approval id (ctl approvals lists them)`);
        noMore(2, `${group} ${id}`);
        only(values, group, []);
        const res = await client.decideApproval(id, group);
        show(res, () => `${id} ${String(res.approval.state)} (by ${String(res.approval.by)})\n`);
        return 0;
      }
      case 'silence': {
        if (verb === 'add') {
          noMore(2, 'silence add');
          only(values, 'silence add', ['matcher', 'ttl', 'reason']);
          if (!values.matcher?.length) throw bad('ctl silence add needs at least one --matcher like pool=h100-train');
          if (!values.ttl) throw bad('ctl silence add needs --ttl, e.g. 2h');
          if (!values.reason) throw bad('ctl silence add needs --reason "why"');
          const res = await client.createSilence({ matchers: values.matcher, ttl: values.ttl, reason: values.reason });
          show(res, () => `silence ${String(res.silence.id)} until ${new Date(Number(res.silence.endsAt)).toISOString()}\n`);
          return 0;
        }
        if (verb === 'list' || verb === undefined) {
          noMore(2, 'silence list');
          only(values, 'silence list', []);
          const res = await client.silences();
          show(res, () => res.silences.map((x) => `${String(x.id)}  until ${new Date(Number(x.endsAt)).toISOString()}  ${JSON.stringify(x.matchers)}  by ${String(x.createdBy)}: ${String(x.reason)}\n`).join('') || 'no active silences\n');
          return 0;
        }
        if (verb === 'expire') {
          const id = rest[0];
          if (!id) throw bad('ctl silence expire needs a silence id');
          noMore(3, `silence expire ${id}`);
          only(values, 'silence expire', []);
          const res = await client.expireSilence(id);
          show(res, () => `silence ${res.expired} expired\n`);
          return 0;
        }
        throw bad(`unknown command "ctl silence ${verb}" (expected add, list, expire)`);
      }
      case 'incidents': {
        noMore(1, 'incidents');
        only(values, 'incidents', []);
        const res = await client.incidents();
        show(res, () => res.incidents.map((i) => `${String(i.dedupKey)}  ${String(i.status)}${i.ack ? ' (acknowledged)' : ''}  ${Object.keys((i.members as Record<string, unknown> | undefined) ?? {}).length} node(s)\n`).join('') || 'no incidents\n');
        return 0;
      }
      case 'outcomes': {
        noMore(1, 'outcomes');
        only(values, 'outcomes', ['since', 'rule']);
        const since = values.since ?? '24h';
        const res = await client.ledger({ since, limit: MAX_LEDGER_LIMIT, ...(values.rule !== undefined ? { rule: values.rule } : {}) });
        const records = res.records.filter((r): r is LedgerRecord => 'rule' in r && 'action' in r);
        const rows = outcomeFigures(records, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
        const partial = res.records.length >= MAX_LEDGER_LIMIT;
        show({ since, partial, rules: rows }, () => renderOutcomes(rows, since, partial));
        return 0;
      }
      default:
        throw bad(`unknown command "ctl ${group ?? ''}"\n\n${USAGE}`);
    }
  } catch (err) {
    if (err instanceof ControlClientError) {
      io.err(`nodewarden ctl: ${err.message}\n`);
      return err.status === null ? 1 : 2;
    }
    throw err;
  }
}

function defaultIo(): CtlIo {
  return {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    env: process.env,
    now: () => Date.now(),
  };
}
