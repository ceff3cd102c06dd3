/**
 * The compiled form of a rule file. Everything is resolved at load time
 * (durations in ms, predicates as closures, templates as functions) so the
 * engine's hot path only calls functions and compares numbers.
 */
import type { WorkloadRef } from '../../core/cluster.js';
import type { Severity } from '../../core/decision.js';
import type { EventEnvelope, EventType } from '../../core/envelope.js';
import type { FieldGetter } from './fields.js';
import type { Predicate } from './predicates.js';
import type { Template } from './template.js';
import type { XidCatalogue } from '../xid/catalogue.js';

/** Which events a leaf listens to: per event type, the predicate those events must satisfy. */
export interface Matcher {
  readonly byType: ReadonlyMap<EventType, Predicate>;
}

export function matches(m: Matcher, e: EventEnvelope): boolean {
  const p = m.byType.get(e.type);
  return p !== undefined && p(e);
}

export type ScopeSpec =
  | { kind: 'node'; by: FieldGetter[]; byRefs: string[] }
  | { kind: 'group'; label: string }
  | { kind: 'fleet' };

/** Leaves carry a `slot`: their index inside the rule, used to name their state. */
export type LeafCondition =
  | { kind: 'count'; slot: number; match: Matcher; min: number; within: number }
  | { kind: 'distinctNodes'; slot: number; match: Matcher; min: number | null; minPercent: number | null; within: number }
  | { kind: 'increase' | 'rate'; slot: number; match: Matcher; counter: FieldGetter; counterRef: string; min: number; within: number }
  | { kind: 'sustained'; slot: number; match: Matcher; holds: Predicate; forMs: number }
  | { kind: 'absent'; slot: number; match: Matcher; forMs: number }
  | { kind: 'sequence'; slot: number; steps: Matcher[]; within: number }
  | { kind: 'changedWithin'; slot: number; match: Matcher | null; workloads: WorkloadRef[] | null; within: number };

export type Condition = LeafCondition | { kind: 'allOf' | 'anyOf'; of: Condition[]; within: number };

export type ClearSpec =
  | { kind: 'none' }
  | { kind: 'after'; ms: number }
  | { kind: 'sustained'; slot: number; match: Matcher; holds: Predicate; forMs: number }
  /** Absent rules: the signal coming back resolves. */
  | { kind: 'onMatch' };

/** `required`: a person approves before it runs (remediations/approvals); `none`: never asks. Absent: the config's default. */
export type Approval = 'required' | 'none';

export type CompiledAction =
  | { type: 'cordon'; uncordonOnClear: boolean; summary: Template | null; approval?: Approval }
  | { type: 'uncordon'; summary: Template | null; approval?: Approval }
  /** One GPU (the firing event's data.gpu, else data.pci) by a DRA device taint; the node is cordoned where that cannot be done. */
  | { type: 'taint'; summary: Template | null; approval?: Approval }
  | { type: 'rollback'; workload: WorkloadRef | null; summary: Template | null; approval?: Approval }
  | { type: 'page'; severity: Severity; dedupKey: Template; summary: Template | null }
  | { type: 'resolve'; dedupKey: Template; summary: Template | null };

export interface CompiledRule {
  id: string;
  description: string;
  severity: Severity;
  /** As written in the file; runtime toggles may override. */
  enabled: boolean;
  runbook?: string;
  /** Pages of this rule join the incidents of this name (another rule's id) instead of the rule's own (ADR 0020). */
  incident?: string;
  /** File the rule came from. */
  source: string;
  scope: ScopeSpec;
  condition: Condition;
  clear: ClearSpec;
  cooldownMs: number;
  actions: CompiledAction[];
  summary: Template;
  /** Every leaf, in slot order. */
  leaves: LeafCondition[];
  /** Event types that can change this rule's state (index for the engine). */
  eventTypes: ReadonlySet<EventType>;
}

export interface RuleSet {
  rules: CompiledRule[];
  byId: Map<string, CompiledRule>;
  /** The Xid catalogue, when one of the loaded files holds it (the shipped pack does). */
  xidCatalogue?: XidCatalogue;
}
