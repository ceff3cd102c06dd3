/** Incident paging from the config: grouping options and the store the engine chose. */
import type { Clock } from '../../core/clock.js';
import type { NodewardenConfig } from '../../core/config.js';
import { parseDuration } from '../../core/duration.js';
import { Silences } from '../silences/silence.js';
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

/** The incident layer and the silences over one store; no incident layer when `incidents.enabled` is false. */
export function incidentPagingFromConfig(cfg: NodewardenConfig, store: DocStore, clock: Clock): { incidents: IncidentPaging | undefined; silences: Silences } {
  const silences = new Silences(store, clock);
  if (!cfg.incidents.enabled) return { incidents: undefined, silences };
  return { incidents: createIncidentPaging({ store, clock, options: groupingOptionsFromConfig(cfg), silences }), silences };
}
