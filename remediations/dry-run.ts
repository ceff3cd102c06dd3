/**
 * Shadow mode as an implementation, not as `if`s: an Executor for every action
 * that changes nothing and says what it would have done. The guard still runs
 * (and reserves), so the ledger shows exactly what would have been denied.
 */
import type { ActionKind, Decision } from '../core/decision.js';
import { ACTIONS } from '../core/decision.js';
import type { Logger } from '../core/logger.js';
import type { ExecutionResult, Executor } from './ports.js';
import { targetKey } from './guard/policy.js';

export function createDryRunExecutor(opts: { logger?: Logger; actions?: readonly ActionKind[] } = {}): Executor {
  return {
    actions: opts.actions ?? ACTIONS,
    execute(decision: Decision): Promise<ExecutionResult> {
      const detail = `dry-run: would ${decision.action} ${targetKey(decision.target)}`;
      opts.logger?.info({ decisionId: decision.id, rule: decision.rule, action: decision.action, target: decision.target }, detail);
      const toRevision = decision.action === 'rollback' ? decision.params?.toRevision : undefined;
      return Promise.resolve({ ok: true, dryRun: true, detail, ...(toRevision === undefined ? {} : { toRevision }) });
    },
  };
}
