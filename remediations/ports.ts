/**
 * Ports of the remediation side. The engine hands decisions to a
 * `Remediator`; it asks the `Guard`, runs an `Executor` (real Kubernetes,
 * simulated cluster, pagers, or the dry-run implementation) and writes one
 * ledger record per decision.
 */
import type { ActionKind, Decision, GuardName, LedgerRecord, Target } from '../core/decision.js';
import type { NodewardenError } from '../core/errors.js';
import type { HeldFault, RuleEpisodes } from '../core/held-fault.js';

export interface ExecutionResult {
  ok: boolean;
  /** Rollbacks: the revision the workload was rolled back to. */
  toRevision?: number;
  /** Human-readable detail for the ledger (what changed, or why nothing did). */
  detail?: string;
  error?: NodewardenError;
  /** Set by the dry-run executor: nothing was changed, the ledger outcome is `dry-run`. */
  dryRun?: boolean;
  /** Repair steps run as a Kubernetes Job: its name (namespace/name), which the repair ladder watches. */
  job?: string;
}

/** Carries out one kind of action. Implementations: Kubernetes, simulated cluster, pagers, dry-run. */
export interface Executor {
  readonly actions: readonly ActionKind[];
  execute(decision: Decision): Promise<ExecutionResult>;
}

export interface GuardVerdict {
  allowed: boolean;
  /** Name of the guard that denied (e.g. `maxUnavailable`, `rateLimit`, `cooldown`, `circuitOpen`, `paused`). */
  guard: GuardName | null;
  /** Why — goes to the ledger and the grouped page. */
  reason?: string;
  /** `suppressed` for idempotent replays and cooldown duplicates that need no page; `denied` otherwise. */
  outcome?: 'denied' | 'suppressed';
  /** Reservation to confirm or release after execution. */
  reservation?: string;
}

/** Blast-radius guard: atomic across engine replicas. */
export interface Guard {
  /**
   * This replica's lease-holder token (random per guard object): authorize
   * writes it into the decision's in-flight record (ADR 0026).
   */
  readonly holder: string;
  authorize(decision: Decision): Promise<GuardVerdict>;
  /**
   * The verdicts of `authorize` for each decision in turn, as one atomic step
   * (ADR 0044): the same verdicts and the same state as that many `authorize`
   * calls back to back with nothing else in between — one round trip instead
   * of one per decision. Fails (nothing authorized) or answers for all.
   */
  authorizeBatch(decisions: readonly Decision[]): Promise<GuardVerdict[]>;
  /**
   * Reports the executor's result so budgets, breakers and idempotency records
   * settle. Refused (CONFLICT) for a decision another holder has taken over
   * or already settled: nothing changes.
   */
  settle(decision: Decision, verdict: GuardVerdict, result: ExecutionResult): Promise<void>;
  /**
   * Extends the in-flight lease of each decision to now + ttlMs, atomically,
   * where the record is still in flight AND names `holder`: `held`; anything
   * else (taken over, settled, gone) is `lost` for good. A lapsed lease nobody
   * took over is still the holder's, so renewing it is safe.
   */
  renew(decisionIds: readonly string[], holder: string, ttlMs: number): Promise<Map<string, LeaseState>>;
  /**
   * Read-only: what authorize would answer for each decision on idempotency
   * alone — `idempotency` (settled, its outcome remembered) or `inFlight`
   * (authorized somewhere, lease not lapsed, whichever holder) — or null (never
   * seen, failed, or a lapsed lease authorize would take over). Reserves, writes and renews
   * nothing; one round trip for all of them. The remediator asks it before
   * anything else (incident routing, approvals) so a settled decision that
   * comes again (a redelivered batch, a tick firing re-derived from the
   * outbox) is neither routed nor recorded again.
   */
  peek(decisions: readonly Decision[]): Promise<Array<GuardVerdict | null>>;
}

/** The answer of a lease renewal for one decision. */
export type LeaseState = 'held' | 'lost';

/** How the caller can recover the decisions of one submit if it fails. */
export interface SubmitOptions {
  /**
   * True when the caller regenerates these decisions if submit throws (a Kafka
   * batch is redelivered): their records are then not kept for a later write.
   * False (default: ticks, tests) keeps the unwritten records and writes them
   * first at the next submit or flush.
   */
  redeliverable?: boolean;
  /**
   * The shared store (guard, incidents) is known to be down (the engine's
   * degraded evaluation): pages go out as they come, without incident grouping,
   * instead of waiting on the store once more for each.
   */
  storeDown?: boolean;
}

/**
 * A decision found in flight on another replica (it holds the decision's
 * lease, or took it over before this replica's ledger write): nothing was
 * done here and nothing written to the ledger. The caller submits it again
 * later (a redelivered batch, the next tick), and it is then acted on once.
 */
export interface RetryLater {
  decisionId: string;
  rule: string;
  action: ActionKind;
  target: Target;
  /** The decision's reason. */
  reason: string;
  /** Why it was not acted on here: who holds it and until when. */
  inFlight: string;
  /** RFC 3339, by the remediator's clock. */
  ts: string;
}

/** What one submit (or flush) did. */
export interface SubmitResult {
  /** Its ledger records, in order: written to every ledger writer (or, `idempotency`, already written before). */
  records: LedgerRecord[];
  /** Decisions not acted on here because another replica has them in flight. */
  retryLater: RetryLater[];
}

/**
 * Decision in, ledger record out — the only way the engine acts on the world,
 * and the one remediator port: the engine service, the jobs, replay and the
 * demo all drive it (implementations: `createRemediator` in remediator.ts,
 * with the repair ladder behind it from ladder/wire.ts). A caller that only
 * submits (the batch processor, replay, the resolve job; the rule tests'
 * stand-in implements only that) takes `Pick<Remediator, 'submit'>`.
 */
export interface Remediator {
  submit(decisions: readonly Decision[], options?: SubmitOptions): Promise<SubmitResult>;
  /**
   * `submit` in two parts (ADR 0050): resolves once the submit's concurrent cordons and GPU taints
   * are carried out, with the rest of the submit (pages, resolves, the ledger write, the settles) to
   * call; the caller calls it exactly once, and lets no other submit's rest run at the same time.
   * Each part may throw as submit does. When the rest would act on the cluster it is carried out
   * before `begin` resolves. Absent: the caller submits as one step.
   */
  begin?(decisions: readonly Decision[], options?: SubmitOptions): Promise<() => Promise<SubmitResult>>;
  /**
   * Fault events an isolating rule matched while it was already firing or
   * cooling down (the engine's held faults, ADR 0034): the repair ladder reads
   * them as the fault coming back during validation or the quiet period.
   * Returns the records of what that made the ladder do (and, apart, its steps
   * in flight elsewhere). Absent: nothing behind the remediator cares (no ladder).
   */
  heldFaults?(faults: readonly HeldFault[]): Promise<SubmitResult>;
  /**
   * The rule engine in front of this remediator (the batch processor and
   * replay bind it): what the repair ladder returns to service ends the rule
   * episodes that isolated it, so a new fault isolates it again (ADR 0034).
   * Absent: no ladder behind.
   */
  bindRuleEpisodes?(episodes: RuleEpisodes): void;
  /** Sends every held denial page now; returns (and writes) their ledger records. */
  flush(): Promise<SubmitResult>;
  /** Flushes and stops the timer (idempotent). */
  close(): Promise<void>;
  /** Failed actions waiting for their next attempt. */
  readonly pendingRetries: number;
}

/** Who paused the guard, why and when (ms since epoch). */
export interface PauseState {
  reason: string;
  by: string;
  at: number;
}

/** Unavailable capacity of one scope (the fleet, or one group such as `pool=h100-train`). */
export interface BudgetStatus {
  scope: string;
  /** Nodes in the scope. */
  total: number;
  /** Unschedulable or NotReady nodes in the view, whoever made them so. */
  unavailable: number;
  /** In-flight or just-confirmed cordon reservations not yet visible in the view. */
  reserved: number;
  /** Node-equivalents taken by tainted GPUs of the scope's schedulable nodes (N of G GPUs count N/G; docs/gpu-scope.md). */
  gpuWeight: number;
  limit: number;
}

/** A schedulable node with GPUs tainted (in the view or by nodewarden): what it costs the budget and its per-node cap. */
export interface GpuNodeStatus {
  node: string;
  /** Tainted GPUs: the view's device taints ∪ the guard's own records (in flight, executed, held after a dry run). */
  tainted: string[];
  /** The node's GPU count; null when unknown (then one tainted GPU counts the whole node). */
  gpus: number | null;
  /** Its weight toward maxUnavailable, in [0, 1]. */
  weight: number;
  /** guard.maxTaintedGpusPerNode for this node. */
  cap: number;
}

export interface RateLimitStatus {
  action: string;
  limit: number;
  windowMs: number;
  used: number;
  remaining: number;
}

export type CircuitState = 'closed' | 'open' | 'half-open';

export interface BreakerStatus {
  action: string;
  state: CircuitState;
  /** Failures counted in the current window. */
  failures: number;
  /** While open: when it half-opens (ms since epoch). */
  openUntil?: number;
}

/** Guard budgets right now, for the control API and metrics. */
export interface GuardStatus {
  at: number;
  paused: PauseState | null;
  fleet: BudgetStatus;
  groups: BudgetStatus[];
  /** Nodes with tainted GPUs, by node name. */
  gpus: GpuNodeStatus[];
  rateLimits: RateLimitStatus[];
  breakers: BreakerStatus[];
  /**
   * Foreign DeviceTaintRules the cluster view cannot place (docs/gpu-scope.md): while
   * present, new cordons/taints are denied (`unplacedDeviceTaint`). Absent when none.
   */
  unplacedDeviceTaints?: { rules: Array<{ rule: string; reason: string }>; count: number };
}

/** Operator controls of the guard, stored with the guard state so every replica honours them. */
export interface GuardControl {
  pause(reason: string, by: string): Promise<void>;
  resume(): Promise<void>;
  status(): Promise<GuardStatus>;
}

/** One cordon reservation as a guard stores it. */
export interface ReservationEntry {
  node: string;
  /** ms since epoch when it stops counting. */
  exp: number;
}

/** A guard the control API and the jobs can operate. */
export interface ControllableGuard extends Guard, GuardControl {
  /**
   * Releases the cordon reservations `isStale` picks (the guard-reconcile job);
   * returns how many went. A reservation rewritten meanwhile is kept.
   */
  pruneReservations(isStale: (r: ReservationEntry) => boolean): Promise<number>;
  /** Releases connections it owns (idempotent). */
  close?(): Promise<void>;
}
