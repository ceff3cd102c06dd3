/**
 * Remediation metrics on a registry passed in: counters fed from ledger
 * records (so metrics and ledger can never disagree), an execution duration
 * histogram, and gauges read from the guard's status at scrape time.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { GuardName, LedgerRecord } from '../../core/decision.js';
import type { Logger } from '../../core/logger.js';
import { errorMessage } from '../../core/errors.js';
import type { GuardControl, GuardStatus } from '../ports.js';

const CIRCUIT_VALUE = { closed: 0, 'half-open': 1, open: 2 } as const;

/** Guards that deny (not the ones that only suppress duplicates); exported at 0 so increase() sees the first denial. */
export const DENYING_GUARDS = ['paused', 'circuitOpen', 'rateLimit', 'rollbackWindow', 'rollbackFlapping', 'maxUnavailable', 'maxUnavailablePerGroup', 'maxTaintedGpusPerNode', 'unplacedDeviceTaint', 'guardUnavailable'] as const satisfies readonly GuardName[];
const ACTION_KINDS = ['cordon', 'uncordon', 'rollback', 'page', 'resolve', 'taint', 'untaint'] as const;

export class RemediationMetrics {
  readonly actions: Counter<'action' | 'outcome' | 'guard'>;
  readonly denials: Counter<'guard'>;
  readonly duration: Histogram<'action'>;
  readonly ledgerErrors: Counter<'sink'>;

  constructor(registry: Registry, opts: { guard?: GuardControl; logger?: Logger; statusTimeoutMs?: number } = {}) {
    this.actions = new Counter({
      name: 'nodewarden_actions_total',
      help: 'Decisions by action, outcome and the guard that denied (empty when none)',
      labelNames: ['action', 'outcome', 'guard'],
      registers: [registry],
    });
    this.denials = new Counter({
      name: 'nodewarden_guard_denials_total',
      help: 'Actions denied by a guard (suppressed duplicates are not denials: see nodewarden_actions_total{outcome="suppressed"})',
      labelNames: ['guard'],
      registers: [registry],
    });
    for (const guard of DENYING_GUARDS) this.denials.inc({ guard }, 0);
    for (const action of ACTION_KINDS)
      for (const outcome of ['executed', 'failed'] as const) this.actions.inc({ action, outcome, guard: '' }, 0);
    this.duration = new Histogram({
      name: 'nodewarden_action_duration_seconds',
      help: 'Time to execute an action (guard + executor + settle)',
      labelNames: ['action'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    this.ledgerErrors = new Counter({
      name: 'nodewarden_ledger_write_errors_total',
      help: 'Ledger batches a sink failed to write',
      labelNames: ['sink'],
      registers: [registry],
    });
    const guard = opts.guard;
    if (guard) {
      const logger = opts.logger;
      // One status read serves every guard gauge of a scrape (each read is a Lua call on Redis).
      // A scrape never waits on a slow or unreachable Redis: after `statusTimeoutMs` the gauges
      // keep their last values (the read goes on in the background and refreshes the cache).
      const timeoutMs = opts.statusTimeoutMs ?? 500;
      let pending: Promise<GuardStatus | undefined> | undefined;
      let last: GuardStatus | undefined;
      const status = (): Promise<GuardStatus | undefined> => {
        pending ??= guard
          .status()
          .then((s) => (last = s))
          .catch((err: unknown) => {
            logger?.warn({ err: errorMessage(err) }, 'guard status unavailable for metrics');
            return undefined;
          })
          .finally(() => setImmediate(() => (pending = undefined)));
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<GuardStatus | undefined>((resolve) => {
          timer = setTimeout(() => resolve(last), timeoutMs);
          timer.unref();
        });
        return Promise.race([pending, late]).finally(() => clearTimeout(timer));
      };
      const guardGauge = (name: string, help: string, label: string, fill: (s: GuardStatus, set: (l: string, v: number) => void) => void): void => {
        new Gauge({
          name,
          help,
          labelNames: [label],
          registers: [registry],
          async collect() {
            const s = await status();
            if (!s) return;
            this.reset();
            fill(s, (l, v) => this.set({ [label]: l }, v));
          },
        });
      };
      guardGauge('nodewarden_circuit_state', 'Circuit breaker per action kind: 0 closed, 1 half-open, 2 open', 'action', (s, set) => {
        for (const b of s.breakers) set(b.action, CIRCUIT_VALUE[b.state]);
      });
      guardGauge('nodewarden_unavailable_nodes', 'Unschedulable or NotReady nodes plus in-flight cordon reservations, by scope (fleet, or group such as pool=h100)', 'scope', (s, set) => {
        for (const b of [s.fleet, ...s.groups]) set(b.scope, b.unavailable + b.reserved);
      });
      guardGauge('nodewarden_unavailable_nodes_limit', 'maxUnavailable budget by scope', 'scope', (s, set) => {
        for (const b of [s.fleet, ...s.groups]) set(b.scope, b.limit);
      });
    }
  }

  record(r: LedgerRecord): void {
    this.actions.inc({ action: r.action, outcome: r.outcome, guard: r.guard ?? '' });
    if (r.guard !== null && r.outcome === 'denied') this.denials.inc({ guard: r.guard });
  }
}
