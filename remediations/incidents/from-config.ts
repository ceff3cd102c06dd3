/** Incident paging from the config: grouping options and the store the engine chose. */
import type { Clock } from '../../core/clock.js';
import type { NodewardenConfig } from '../../core/config.js';
import { parseDuration } from '../../core/duration.js';
import { Silences } from '../silences/silence.js';
import { Approvals } from '../approvals/approvals.js';
import type { DocStore } from './doc-store.js';
import type { GroupingOptions } from './incident.js';
import type { IncidentPaging } from './incident-paging.js';
import { createIncidentPaging } from './incident-paging.js';

export function groupingOptionsFromConfig(cfg: NodewardenConfig): GroupingOptions {
  const i = cfg.incidents;
  return {
    by: i.groupBy,
    groupWaitMs: parseDuration(i.groupWait),
    groupIntervalMs: parseDuration(i.groupInterval),
    repeatIntervalMs: parseDuration(i.repeatInterval),
    holdOnAck: i.holdOnAck,
    keepResolvedMs: parseDuration(i.keepResolved),
  };
}

export interface PagingState {
  /** Absent when `incidents.enabled` is false. */
  incidents: IncidentPaging | undefined;
  silences: Silences;
  approvals: Approvals;
}

/** The incident layer, silences and approvals over one store. */
export function incidentPagingFromConfig(cfg: NodewardenConfig, store: DocStore, clock: Clock): PagingState {
  const silences = new Silences(store, clock);
  const a = cfg.incidents.approvals;
  const approvals = new Approvals(store, clock, { requiredFor: a.requiredFor, timeoutMs: parseDuration(a.timeout), onTimeout: a.onTimeout });
  const incidents = cfg.incidents.enabled ? createIncidentPaging({ store, clock, options: groupingOptionsFromConfig(cfg), silences }) : undefined;
  return { incidents, silences, approvals };
}
