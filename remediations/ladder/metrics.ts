/**
 * Per-rule outcome figures (prom-client adapter of OutcomeMetrics):
 *   nodewarden_time_to_detect_seconds{rule}     fault (event ts) → decision
 *   nodewarden_time_to_isolate_seconds{rule}    fault → cordon executed
 *   nodewarden_time_to_return_seconds{rule,by}  fault → back in service (MTTR; by = nodewarden | person)
 *   nodewarden_cordons_undone_by_person_total{rule}  a person uncordoned before any repair (a likely false positive)
 *   nodewarden_repair_episodes_total{rule,end}
 *   nodewarden_repair_steps_total{action,outcome}
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { OutcomeMetrics } from './driver.js';
import type { ClosedEpisode } from './ladder.js';

/** 1 s … 3 d: detection is seconds to minutes, a return to service minutes to days. */
const BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14_400, 43_200, 86_400, 259_200];

export function createOutcomeMetrics(registry: Registry): OutcomeMetrics {
  const reg = [registry];
  const detect = new Histogram({ name: 'nodewarden_time_to_detect_seconds', help: 'Fault (the event time) to the decision, per rule', labelNames: ['rule'] as const, buckets: BUCKETS, registers: reg });
  const isolate = new Histogram({ name: 'nodewarden_time_to_isolate_seconds', help: 'Fault (the event time) to the executed cordon, per rule', labelNames: ['rule'] as const, buckets: BUCKETS, registers: reg });
  const ret = new Histogram({ name: 'nodewarden_time_to_return_seconds', help: 'Fault to the node back in service (MTTR), per rule; by = nodewarden (validated repair) or person', labelNames: ['rule', 'by'] as const, buckets: BUCKETS, registers: reg });
  const undone = new Counter({ name: 'nodewarden_cordons_undone_by_person_total', help: 'Cordons a person undid before any repair step succeeded (a likely false positive), per rule', labelNames: ['rule'] as const, registers: reg });
  const episodes = new Counter({ name: 'nodewarden_repair_episodes_total', help: 'Repair episodes ended, by rule and how (returned, resolved-by-person, node-gone)', labelNames: ['rule', 'end'] as const, registers: reg });
  const steps = new Counter({ name: 'nodewarden_repair_steps_total', help: 'Repair ladder steps by action and ledger outcome', labelNames: ['action', 'outcome'] as const, registers: reg });
  return {
    isolated(rule, detectSeconds, isolateSeconds) {
      detect.observe({ rule }, detectSeconds);
      isolate.observe({ rule }, isolateSeconds);
    },
    closed(c: ClosedEpisode) {
      const e = c.episode;
      episodes.inc({ rule: e.rule, end: c.end });
      const seconds = Math.max(0, c.at - e.faultAt) / 1000;
      if (c.end === 'returned') ret.observe({ rule: e.rule, by: 'nodewarden' }, seconds);
      if (c.end === 'resolved-by-person') {
        ret.observe({ rule: e.rule, by: 'person' }, seconds);
        if (!e.repaired) undone.inc({ rule: e.rule });
      }
    },
    step(action, outcome) {
      steps.inc({ action, outcome });
    },
  };
}
