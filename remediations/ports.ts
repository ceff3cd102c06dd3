/**
 * Ports of the remediation side. The engine hands decisions to a
 * `Remediator`; it asks the `Guard`, runs an `Executor` (real Kubernetes,
 * simulated cluster, pagers, or the dry-run implementation) and writes one
 * ledger record per decision.
 */
import type { ActionKind, Decision, LedgerRecord } from '../core/decision.js';
import type { NodewardenError } from '../core/errors.js';

export interface ExecutionResult {
  ok: boolean;
  /** Rollbacks: the revision the workload was rolled back to. */
  toRevision?: number;
  /** Human-readable detail for the ledger (what changed, or why nothing did). */
  detail?: string;
  error?: NodewardenError;
}

/** Carries out one kind of action. Implementations: Kubernetes, simulated cluster, pagers, dry-run. */
export interface Executor {
  readonly actions: readonly ActionKind[];
  execute(decision: Decision): Promise<ExecutionResult>;
}

export interface GuardVerdict {
  allowed: boolean;
  /** Name of the guard that denied (e.g. `maxUnavailable`, `rateLimit`, `cooldown`, `circuitOpen`, `paused`). */
  guard: string | null;
  /** Why — goes to the ledger and the grouped page. */
  reason?: string;
  /** `suppressed` for idempotent replays and cooldown duplicates that need no page; `denied` otherwise. */
  outcome?: 'denied' | 'suppressed';
  /** Reservation to confirm or release after execution. */
  reservation?: string;
}

/** Blast-radius guard: atomic across engine replicas. */
export interface Guard {
  authorize(decision: Decision): Promise<GuardVerdict>;
  /** Reports the executor's result so budgets, breakers and idempotency records settle. */
  settle(decision: Decision, verdict: GuardVerdict, result: ExecutionResult): Promise<void>;
}

/** Decision in, ledger record out — the only way the engine acts on the world. */
export interface Remediator {
  submit(decisions: readonly Decision[]): Promise<LedgerRecord[]>;
}
