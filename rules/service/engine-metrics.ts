/** The rule engine's metrics port on Prometheus: `nodewarden_rules_decisions_total`. */
import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';
import type { RuleEngineMetrics } from '../engine/engine.js';

export function ruleEngineMetrics(registry: Registry): RuleEngineMetrics {
  const name = 'nodewarden_rules_decisions_total';
  const existing = registry.getSingleMetric(name) as Counter<'rule' | 'action'> | undefined;
  const counter = existing ?? new Counter({ name, help: 'Decisions produced by the rule engine, by rule and action', labelNames: ['rule', 'action'], registers: [registry] });
  return { decided: (rule, action) => counter.inc({ rule, action }) };
}
