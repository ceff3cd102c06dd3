/**
 * Wiring of the repair ladder into a remediator: its policy from the config,
 * and a remediator whose submit also drives the ladder (every record of a
 * submit goes to the driver; an empty submit, the engine's tick, ticks it;
 * the engine's held faults go to it through `heldFaults`, ADR 0034).
 */
import type { NodewardenConfig } from '../../core/config.js';
import type { Decision, LedgerRecord } from '../../core/decision.js';
import type { HeldFault, RuleEpisodes } from '../../core/held-fault.js';
import { parseDuration } from '../../core/duration.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Remediator, SubmitOptions, SubmitResult } from '../ports.js';
import { retryLaterRecord, splitRecords } from '../remediator.js';
import type { LadderDriver } from './driver.js';
import type { LadderPolicy } from './ladder.js';

export function ladderPolicyFromConfig(cfg: NodewardenConfig): LadderPolicy {
  const r = cfg.repair;
  return {
    act: r.enabled && !cfg.guard.dryRun,
    maxAttemptsPerNode: r.maxAttemptsPerNode,
    maxAttemptsPerGpu: r.maxAttemptsPerGpu,
    windowMs: parseDuration(r.window),
    timeoutMs: { reset: parseDuration(r.reset.timeout), reboot: parseDuration(r.reboot.timeout), validate: parseDuration(r.validate.timeout) },
    quietMs: parseDuration(r.quietPeriod),
    retryMs: parseDuration(r.retry),
    validation: r.validate.template !== null,
  };
}

/**
 * The remediator, with the ladder behind it. The ladder's own failures (its
 * store down) are logged and never fail the caller's batch: the cordon and
 * the page already happened, and the next tick picks the ladder up again.
 */
export function withRepairLadder(inner: Remediator, driver: LadderDriver, logger: Logger): Remediator {
  const log = logger.child({ component: 'repair-ladder' });
  async function follow(decisions: readonly Decision[], r: SubmitResult): Promise<SubmitResult> {
    try {
      const more = await driver.observe(decisions, ladderView(r));
      if (decisions.length === 0) more.push(...(await driver.tick()));
      if (more.length === 0) return r;
      // the ladder's own steps: records, or in flight elsewhere like any decision
      const m = splitRecords(more);
      return { records: [...r.records, ...m.records], retryLater: [...r.retryLater, ...m.retryLater] };
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'repair ladder could not follow this batch; the next tick retries');
      return r;
    }
  }
  const begin = inner.begin?.bind(inner);
  return {
    get pendingRetries() {
      return inner.pendingRetries;
    },
    async submit(decisions: readonly Decision[], options?: SubmitOptions): Promise<SubmitResult> {
      return follow(decisions, await inner.submit(decisions, options));
    },
    // in two parts only while the ladder does not act: its steps on the nodes of a submit come after the submit (ADR 0050)
    ...(begin && !driver.acts
      ? {
          async begin(decisions: readonly Decision[], options?: SubmitOptions): Promise<() => Promise<SubmitResult>> {
            const rest = await begin(decisions, options);
            return async () => follow(decisions, await rest());
          },
        }
      : {}),
    async flush(): Promise<SubmitResult> {
      return follow([], await inner.flush());
    },
    async heldFaults(faults: readonly HeldFault[]): Promise<SubmitResult> {
      if (faults.length === 0) return { records: [], retryLater: [] };
      try {
        // the ladder's steps: records, or in flight elsewhere like any decision
        return splitRecords(await driver.held(faults));
      } catch (err) {
        log.error({ err: errorMessage(err), faults: faults.length }, 'repair ladder could not take the held faults of this batch');
        return { records: [], retryLater: [] };
      }
    },
    bindRuleEpisodes(episodes: RuleEpisodes): void {
      driver.bindRuleEpisodes(episodes);
    },
    close: () => inner.close(),
  };
}

/**
 * What the ladder driver reads of a submit: its records, and each decision in
 * flight elsewhere as a record suppressed by `inFlight` (a ladder step not done:
 * asked again later; a cordon not carried out here).
 */
export function ladderView(r: SubmitResult): LedgerRecord[] {
  return r.retryLater.length === 0 ? r.records : [...r.records, ...r.retryLater.map(retryLaterRecord)];
}
