/**
 * Decisions and ledger records — the contract of brief §4. The engine turns
 * rule firings into decisions; remediations pass each through the guard and an
 * executor; every decision, executed or not, becomes one ledger record.
 */
/**
  * `taint`/`untaint` (brief §8, issue 11): a DRA device taint of one GPU
  * (`target.kind: Device`, `target.name` = GPU UUID or PCI bus id,
  * `target.node` = its node); remediations/kube/device-taints.ts.
  * `reset`, `reboot`, `validate` and `replace` are the repair ladder's steps
  * (remediations/ladder, brief §8): a GPU reset Job, a node reboot (Job or
  * annotation), a validation Job, and the hand-over to people (a critical page
  * with the episode's history).
  */
export const ACTIONS = ['cordon', 'uncordon', 'rollback', 'page', 'resolve', 'taint', 'untaint', 'reset', 'reboot', 'validate', 'replace'] as const;
export type ActionKind = (typeof ACTIONS)[number];

/** `pending-approval` (brief §8): the action waits for a person (remediations/approvals). */
export const OUTCOMES = ['executed', 'dry-run', 'denied', 'suppressed', 'failed', 'pending-approval'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/**
 * Every name a ledger record's `guard` can carry: what stopped or suppressed
 * an action. The blast-radius guard's checks (remediations/guard: memory-guard.ts
 * and lua/authorize.lua), the remediator's own (guardUnavailable, approvals,
 * idempotency of pages, incidentAcknowledged, denialPageOpen), the incident
 * pager's suppressions and the repair ladder's ends. One list, so the guard,
 * the remediator and the ledger agree (a unit test checks the Lua against it).
 */
export const GUARDS = [
  'paused',
  'idempotency',
  'inFlight',
  'circuitOpen',
  'cooldown',
  'rateLimit',
  'rollbackWindow',
  'rollbackFlapping',
  'maxUnavailable',
  'maxUnavailablePerGroup',
  'maxTaintedGpusPerNode',
  'unplacedDeviceTaint',
  'notOwned',
  'guardUnavailable',
  'approvalTimeout',
  'approvalDenied',
  'denialPageOpen',
  'incidentAcknowledged',
  'incidentUnacknowledged',
  'incidentOpen',
  'incidentFiring',
  'silenced',
  'resolvedByPerson',
  'nodeGone',
] as const;
export type GuardName = (typeof GUARDS)[number];

const GUARD_SET: ReadonlySet<string> = new Set(GUARDS);
/** Whether `s` (e.g. read back from Redis or the ledger) is a guard name. */
export function isGuardName(s: string): s is GuardName {
  return GUARD_SET.has(s);
}

export const SEVERITIES = ['critical', 'error', 'warning', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

export interface Target {
  kind: 'Node' | 'DaemonSet' | 'Deployment' | 'Group' | 'Fleet' | 'Device';
  name: string;
  namespace?: string;
  /** Device targets: the node the GPU is in (brief §8: every record about a node or its GPUs names the node). */
  node?: string;
  /** The GPU (UUID, else PCI address) of a per-GPU step on a Node target, e.g. a GPU reset. */
  gpu?: string;
}

/** A rule action's `approval:` (brief §8): force or skip the approval step for this action. */
export type Approval = 'required' | 'none';

/** Parameters every action may carry: the rule's approval override, the repair-ladder episode it belongs to. */
export interface CommonParams {
  approval?: Approval;
  /** The repair-ladder episode (remediations/ladder) a step belongs to. */
  episode?: string;
}

/**
 * The parameters of each action, typed where they are produced (the rule
 * engine, the ladder) so executors read them without re-validation.
 */
export interface ActionParams {
  cordon: CommonParams;
  /** `onlyIfCordonedByNodewarden`: an uncordon on clear never lifts a cordon a person set. */
  uncordon: CommonParams & { onlyIfCordonedByNodewarden?: true };
  /** `toRevision` absent: the previous revision; `fromRevision`: the revision the rollout regressed from. */
  rollback: CommonParams & { toRevision?: number; fromRevision?: number };
  page: CommonParams & { runbook?: string };
  resolve: CommonParams;
  taint: CommonParams;
  untaint: CommonParams;
  reset: CommonParams;
  reboot: CommonParams;
  validate: CommonParams;
  replace: CommonParams;
}

/** Everything of a decision but its action and params. */
export interface DecisionBase {
  /** Stable idempotency key: the same firing re-processed after a crash yields the same id. */
  id: string;
  /** Virtual or wall time of the decision, ms since epoch. */
  at: number;
  rule: string;
  target: Target;
  reason: string;
  severity?: Severity;
  /** Pages and resolves: the stable PagerDuty/Slack dedup key. */
  dedupKey?: string;
  /** Label values of the scope (pool, zone) for per-group guards and grouping. */
  group?: Record<string, string>;
  /**
   * The incident its pages join in place of the rule's own (the rule's
   * `incident:`, e.g. the rollout rule's pages join the node-fault storm's
   * incident of the same pool; ADR 0020). Absent: the rule id.
   */
  incident?: string;
  /** Evidence shown to humans (event ids, counts, windows). */
  evidence?: Record<string, unknown>;
}

/** The decision of one action `A`: its params are that action's. */
export type DecisionOf<A extends ActionKind> = DecisionBase & {
  action: A;
  /** Action parameters from the rule (e.g. toRevision, runbook, approval). */
  params?: ActionParams[A];
};

/**
 * What a rule asks for. Produced by the pure engine; carries everything an
 * executor needs. A union discriminated by `action`: narrowing on the action
 * types `params`.
 */
export type Decision = { [A in ActionKind]: DecisionOf<A> }[ActionKind];

/** One line of the ledger (brief §4). Optional fields appear only when they apply. */
export interface LedgerRecord {
  ts: string;
  rule: string;
  action: ActionKind;
  target: Target;
  outcome: Outcome;
  reason: string;
  guard: GuardName | null;
  severity?: Severity;
  dedupKey?: string;
  toRevision?: number;
  decisionId?: string;
  error?: string;
  details?: Record<string, unknown>;
}
