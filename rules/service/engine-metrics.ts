/** The rule engine's metrics port on Prometheus: `nodewarden_rules_decisions_total`. */
import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';
import { reuseMetric } from '../../adapters/metrics.js';
import type { RuleEngineMetrics } from '../engine/engine.js';

export function ruleEngineMetrics(registry: Registry): RuleEngineMetrics {
  const name = 'nodewarden_rules_decisions_total';
  const counter = reuseMetric(registry, name, () => new Counter<'rule' | 'action'>({ name, help: 'Decisions produced by the rule engine, by rule and action', labelNames: ['rule', 'action'], registers: [registry] }));
  return { decided: (rule, action) => counter.inc({ rule, action }) };
}
